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
  /** Another gateway node: own flows instance and harness, same config, IdP and shared store. */
  addNode(): Promise<Node>;
  close(): Promise<void>;
}

type Flows = BrowserFlows;

/** The stand-in pipeline: back-channel logout → password grant (part 1's job) → callback → session → logout → code flow. */
function pipeline(getFlows: () => Flows, client: () => Promise<oidc.Configuration>, now: () => number) {
  return async (ctx: RequestContext) => {
    const f = getFlows();
    const bcl = await f.backchannelLogout(ctx);
    if (bcl) return bcl;
    // Password grant stand-in: Basic credentials → token → session (seed 000).
    const auth = ctx.request.header('authorization');
    if (auth?.startsWith('Basic ')) {
      const [username, password] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
      const res = await oidc.genericGrantRequest(await client(), 'password', { username, password, scope: 'openid' });
      const claims = res.claims();
      const session = f.newSession({
        method: 'password',
        clientIndex: 0,
        tokens: { access_token: res.access_token, id_token: res.id_token, refresh_token: res.refresh_token, expires_at: Math.floor(now() / 1000) + (res.expires_in ?? 300) },
        claims: claims ? { id_token: { ...claims } } : {},
      });
      await f.saveSession(ctx, session);
      f.stripCookies(ctx);
      return { upstream: true as const, extra: { method: 'password', sub: session.subject } };
    }
    const callback = await f.isCallback(ctx);
    const session = callback ? null : await f.loadSession(ctx);
    const out = await f.logout(ctx, session);
    if (out) return out;
    if (session) {
      f.stripCookies(ctx);
      return {
        upstream: true as const,
        extra: { method: 'session', sub: session.subject, access_token: session.tokens.access_token, refresh_token: session.tokens.refresh_token, sid: session.id, userinfo: session.claims.userinfo ?? null },
      };
    }
    const r = await f.authorizationCode(ctx);
    if (r.kind === 'reply') return r.reply;
    f.stripCookies(ctx);
    return { upstream: true as const, extra: { method: 'authorization_code', sub: r.session.subject } };
  };
}

export interface Node {
  harness: Harness;
  flows: BrowserFlows;
  close(): Promise<void>;
}

export async function setup(config: BrowserConfig, opts: { idp?: StartIdpOptions; backchannelPath?: string; kv?: KeyValueStore } = {}): Promise<Setup> {
  const clock = { offsetMs: 0 };
  const now = () => Date.now() + clock.offsetMs;
  let flows: BrowserFlows | null = null;
  let cached: Promise<oidc.Configuration> | null = null;
  let issuer = '';
  const client = (): Promise<oidc.Configuration> => {
    cached ??= oidc.discovery(new URL(issuer), 'kong', { client_secret: 'kong-secret' }, oidc.ClientSecretPost('kong-secret'), {
      execute: [oidc.allowInsecureRequests],
      timeout: 5,
    });
    return cached;
  };
  const harness = await startHarness(pipeline(() => flows!, client, now), { now });
  const idp = await startIdp({
    ...opts.idp,
    ...(opts.backchannelPath ? { backchannelLogoutUris: { kong: `${harness.url}${opts.backchannelPath}` } } : {}),
  });
  issuer = idp.issuer;
  const kv = opts.kv ?? new MemoryKv(now);
  const deps = {
    getClient: () => client(),
    selectClient: () => 0,
    sharedKv: kv,
    workers: 1,
    log: pino({ level: 'silent' }),
    now,
  };
  flows = createBrowserFlows(config, deps);
  const nodes: Node[] = [];
  return {
    idp,
    harness,
    flows,
    kv,
    clock,
    client,
    async addNode() {
      const f = createBrowserFlows(config, deps);
      const h = await startHarness(pipeline(() => f, client, now), { now });
      const node = { harness: h, flows: f, close: async () => { await f.close(); await h.close(); } };
      nodes.push(node);
      return node;
    },
    async close() {
      for (const n of nodes) await n.close();
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
