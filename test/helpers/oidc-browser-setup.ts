/**
 * Shared set-up for the browser-flow tests: the demo IdP, and the real openid-connect plugin
 * (its whole `access` pipeline, `create.ts`) served by the test harness of helpers/fake-ctx.ts,
 * with `password`, `session` and `authorization_code` enabled; plus openid-client Configurations
 * for the demo client.
 *
 * What the tests look at besides the upstream request (`extra`: the method, subject, tokens,
 * session id and user info) comes from the plugin itself: `ctx.state` and upstream headers the
 * harness asks it to write (`reportHeaders`), which are taken off the echoed request.
 */
import { randomUUID } from 'node:crypto';
import * as oidc from 'openid-client';
import { pino } from 'pino';
import { startIdp, type DemoIdp, type StartIdpOptions } from './idp.ts';
import { createOidc } from '../../src/plugins/bundled/openid-connect/create.ts';
import { oidcConfigSchema } from '../../src/plugins/bundled/openid-connect/schema.ts';
import { STATE_KEY, type OidcRequestState } from '../../src/plugins/bundled/openid-connect/runtime.ts';
import type { BrowserConfig } from '../../src/plugins/bundled/openid-connect/browser/index.ts';
import type { PluginHandlers, RequestContext } from '../../src/plugins/sdk.ts';
import type { KeyValueStore } from '../../src/storage/ports.ts';
import { MemoryKv, startHarness, type Handler, type Harness } from './fake-ctx.ts';

export interface Setup {
  idp: DemoIdp;
  harness: Harness;
  kv: KeyValueStore;
  clock: { offsetMs: number };
  /** openid-client configuration of the demo `kong` client */
  client(): Promise<oidc.Configuration>;
  /** Another gateway node: own plugin instance and harness, same config, IdP and shared store. */
  addNode(): Promise<Node>;
  close(): Promise<void>;
}

export interface Node {
  harness: Harness;
  close(): Promise<void>;
}

/** Upstream headers the plugin writes for the tests (taken off the echoed request). */
const reportHeaders = {
  upstream_headers_claims: ['sub'],
  upstream_headers_names: ['x-test-sub'],
  upstream_refresh_token_header: 'x-test-refresh-token',
  upstream_session_id_header: 'x-test-session-id',
  upstream_user_info_header: 'x-test-userinfo',
};

function report(ctx: RequestContext, name: string): string | null {
  const v = ctx.upstream.getHeader(name);
  ctx.upstream.removeHeader(name);
  return typeof v === 'string' ? v : null;
}

/** The real pipeline: the plugin's `access`, then what it decided as `extra`. */
function pipeline(plugin: PluginHandlers): Handler {
  return async (ctx) => {
    const reply = await plugin.access!(ctx);
    if (reply) return reply;
    const state = ctx.state.get(STATE_KEY) as OidcRequestState;
    const userinfo = report(ctx, 'x-test-userinfo');
    return {
      upstream: true as const,
      extra: {
        method: state.method,
        sub: report(ctx, 'x-test-sub'),
        access_token: state.accessToken,
        refresh_token: report(ctx, 'x-test-refresh-token'),
        sid: report(ctx, 'x-test-session-id'),
        userinfo: userinfo ? (JSON.parse(Buffer.from(userinfo, 'base64').toString()) as unknown) : null,
      },
    };
  };
}

export async function setup(config: BrowserConfig & Record<string, unknown>, opts: { idp?: StartIdpOptions; backchannelPath?: string; kv?: KeyValueStore } = {}): Promise<Setup> {
  const clock = { offsetMs: 0 };
  const now = () => Date.now() + clock.offsetMs;
  let cached: Promise<oidc.Configuration> | null = null;
  // The harness comes first: the IdP needs its URL for back-channel logout.
  let plugin: PluginHandlers | null = null;
  const harness = await startHarness((ctx) => pipeline(plugin!)(ctx), { now });
  const idp = await startIdp({
    ...opts.idp,
    ...(opts.backchannelPath ? { backchannelLogoutUris: { kong: `${harness.url}${opts.backchannelPath}` } } : {}),
  });
  const client = (): Promise<oidc.Configuration> => {
    cached ??= oidc.discovery(new URL(idp.issuer), 'kong', { client_secret: 'kong-secret' }, oidc.ClientSecretPost('kong-secret'), {
      execute: [oidc.allowInsecureRequests],
      timeout: 5,
    });
    return cached;
  };
  const kv = opts.kv ?? new MemoryKv(now);
  const parsed = oidcConfigSchema.safeParse({
    issuer: idp.issuer,
    client_secret: ['kong-secret'],
    client_auth: ['client_secret_post'],
    auth_methods: ['password', 'session', 'authorization_code'],
    // Each password login is a fresh grant (its own refresh token), as each user's would be.
    cache_tokens: false,
    ...reportHeaders,
    ...config,
  });
  if (!parsed.success) {
    // A refused configuration leaves nothing running behind it.
    await harness.close();
    await idp.close();
    throw parsed.error;
  }
  const cfg = parsed.data;
  const entity = { id: randomUUID(), name: 'openid-connect' } as never;
  const build = () => createOidc(cfg, { entity, log: pino({ level: 'silent' }), sharedKv: kv, workers: 1, now });
  plugin = build();
  const nodes: Node[] = [];
  return {
    idp,
    harness,
    kv,
    clock,
    client,
    async addNode() {
      const p = build();
      const h = await startHarness(pipeline(p), { now });
      const node = { harness: h, close: async () => { await p.close?.(); await h.close(); } };
      nodes.push(node);
      return node;
    },
    async close() {
      for (const n of nodes) await n.close();
      await plugin!.close?.();
      await harness.close();
      await idp.close();
    },
  };
}

export const baseConfig: BrowserConfig = {
  client_id: ['kong'],
  session_secret: 'a-test-secret-that-is-long-enough-0123456789',
};
