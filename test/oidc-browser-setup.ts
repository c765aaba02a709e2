/**
 * Shared set-up for the browser-flow tests: the demo IdP, a harness server running a small
 * stand-in for the plugin pipeline (session → logout → authorization code), and openid-client
 * Configurations for the demo client.
 */
import * as oidc from 'openid-client';
import { pino } from 'pino';
import { startIdp, type DemoIdp, type StartIdpOptions } from '../demo/idp.ts';
import { createBrowserFlows, type BrowserConfig, type BrowserFlows } from '../src/plugins/bundled/openid-connect/browser/index.ts';
import type { RequestContext } from '../src/plugins/sdk.ts';
import type { KeyValueStore } from '../src/storage/ports.ts';
import { MemoryKv, startHarness, type Harness } from './helpers/fake-ctx.ts';

export interface Setup {
  idp: DemoIdp;
  harness: Harness;
  flows: BrowserFlows;
  kv: KeyValueStore;
  clock: { offsetMs: number };
  /** openid-client configuration of the demo `kong` client */
  client(): Promise<oidc.Configuration>;
  close(): Promise<void>;
}

export async function setup(config: BrowserConfig, opts: { idp?: StartIdpOptions; backchannelPath?: string; kv?: KeyValueStore } = {}): Promise<Setup> {
  const clock = { offsetMs: 0 };
  const now = () => Date.now() + clock.offsetMs;
  let flows: BrowserFlows | null = null;
  const harness = await startHarness(
    async (ctx: RequestContext) => {
      const f = flows!;
      const bcl = await f.backchannelLogout(ctx);
      if (bcl) return bcl;
      // Password grant stand-in (part 1's job): Basic credentials → token → session (seed 000).
      const auth = ctx.request.header('authorization');
      if (auth?.startsWith('Basic ')) {
        const [username, password] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
        const res = await oidc.genericGrantRequest(await client(), 'password', { username, password, scope: 'openid' });
        const session = f.newSession({
          method: 'password',
          clientIndex: 0,
          tokens: { access_token: res.access_token, id_token: res.id_token, refresh_token: res.refresh_token, expires_at: Math.floor(now() / 1000) + (res.expires_in ?? 300) },
          claims: { id_token: res.claims() ? { ...res.claims() } : undefined },
        });
        await f.saveSession(ctx, session);
        f.stripCookies(ctx);
        return { upstream: true, extra: { method: 'password', sub: session.subject } };
      }
      const callback = await f.isCallback(ctx);
      const session = callback ? null : await f.loadSession(ctx);
      const out = await f.logout(ctx, session);
      if (out) return out;
      if (session) {
        f.stripCookies(ctx);
        return { upstream: true, extra: { method: 'session', sub: session.subject, access_token: session.tokens.access_token, sid: session.id } };
      }
      const r = await f.authorizationCode(ctx);
      if (r.kind === 'reply') return r.reply;
      f.stripCookies(ctx);
      return { upstream: true, extra: { method: 'authorization_code', sub: r.session.subject } };
    },
    { now },
  );
  const idp = await startIdp({
    ...opts.idp,
    ...(opts.backchannelPath ? { backchannelLogoutUris: { kong: `${harness.url}${opts.backchannelPath}` } } : {}),
  });
  let cached: Promise<oidc.Configuration> | null = null;
  const client = (): Promise<oidc.Configuration> => {
    cached ??= oidc.discovery(new URL(idp.issuer), 'kong', { client_secret: 'kong-secret' }, oidc.ClientSecretPost('kong-secret'), {
      execute: [oidc.allowInsecureRequests],
      timeout: 5,
    });
    return cached;
  };
  const kv = opts.kv ?? new MemoryKv(now);
  flows = createBrowserFlows(config, {
    getClient: () => client(),
    selectClient: () => 0,
    sharedKv: kv,
    workers: 1,
    log: pino({ level: 'silent' }),
    now,
  });
  return {
    idp,
    harness,
    flows,
    kv,
    clock,
    client,
    async close() {
      await flows!.close();
      await harness.close();
      await idp.close();
    },
  };
}

export const baseConfig: BrowserConfig = {
  client_id: ['kong'],
  session_secret: 'a-test-secret-that-is-long-enough-0123456789',
};
