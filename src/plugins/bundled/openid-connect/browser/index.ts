/**
 * Browser flows of the `openid-connect` plugin: sessions, the authorization code flow, refresh in
 * a session, logout and back-channel logout. The plugin's pipeline calls these; this folder does
 * not decide which method runs when (that is the step table in ../access.ts).
 */
import * as oidc from 'openid-client';
import type { Logger, Reply, RequestContext } from '../../../sdk.ts';
import type { KeyValueStore } from '../../../../storage/ports.ts';
import { GatewayError } from '../../../../errors.ts';
import { AuthorizationCodeFlow, isRejection, tokensFrom, type AuthCodeResult, type RequestObjectKey, type TokenCall, type UserInfo } from './authcode.ts';
import { resolveConfig, type BrowserConfig, type ResolvedConfig } from './config.ts';
import { CookieTooLargeError, stripFromCookieHeader } from './cookies.ts';
import { Logout } from './logout.ts';
import { RedisKv } from './redis.ts';
import { createRedisClient } from '../../../../storage/redis.ts';
import { MemcachedKv } from './memcached.ts';
import { lastKnownKv } from './last-known.ts';
import { RefreshCoordinator, type RefreshOutcome } from './refresh.ts';
import { failureReply, type FailureKind } from './replies.ts';
import { Sealer } from './seal.ts';
import { SessionStore, stateKey, type NewSession, type SessionData } from './session.ts';
import { sessionHeaders } from './session-headers.ts';
import type { OidcMetrics } from '../../../../observability/oidc-metrics.ts';
import { countedKv } from './counted-kv.ts';

export type { BrowserConfig, RedisRecord, SameSite } from './config.ts';
export type { SessionData, SessionTokens, NewSession } from './session.ts';
export { isNavigation } from './replies.ts';
export type { FailureKind } from './replies.ts';
export type { ReplayedHeader, TokenCall, UserInfo } from './authcode.ts';

export interface BrowserDeps {
  /**
   * openid-client Configuration for client index i (0-based): `par` with the PAR endpoint's auth
   * method, `revocation` for revocation calls (`revocation_endpoint_auth_method`,
   * `revocation_token_param_name`), the token endpoint's otherwise.
   */
  getClient(index: number, purpose?: 'token' | 'par' | 'revocation'): Promise<oidc.Configuration>;
  /**
   * A token endpoint call of `grant` made for this request (the code exchange, a session's
   * refresh) with the plugin's token request options: `token_post_args_*` as `params`,
   * `token_headers_*` on the Configuration's calls, `token_headers_replay` into `replay`.
   * Absent: the plain token endpoint client, no options.
   */
  tokenCall?(ctx: RequestContext, index: number, grant: 'authorization_code' | 'refresh_token'): Promise<TokenCall>;
  /**
   * User info for the code flow's `search_user_info`, with the plugin's user info options
   * (`userinfo_accept`, `userinfo_headers_*`, `userinfo_query_args_*`; cached as `cache_user_info`).
   */
  userinfo?(ctx: RequestContext, index: number, accessToken: string): Promise<UserInfo>;
  /** The client's private key for JAR request objects (RFC 9101). */
  requestObjectKey?(index: number): Promise<RequestObjectKey>;
  /** Selected client index for this request (`client_arg`). */
  selectClient(ctx: RequestContext): number;
  sharedKv: KeyValueStore;
  workers: number;
  /** PluginDeps.database: with a database, a generated session secret is kept in `sharedKv`. */
  database?: 'off' | 'sqlite' | 'postgres';
  /** Names the generated secret in `sharedKv` (the plugin entity's id). */
  instanceId?: string;
  log: Logger;
  /** The node's openid-connect metrics (refreshes, logouts), when it has metrics. */
  metrics?: OidcMetrics;
  now(): number;
}

/**
 * The browser flows, as the access pipeline (../access.ts) calls them. Each answers directly
 * when it can tell without I/O (the common case: nothing to do, or a remembered session) and
 * with a Promise otherwise.
 */
export interface BrowserFlows {
  /**
   * `session` method: the session of this request, or null (none, invalid, expired, refresh
   * rejected). Synchronous for a session cookie opened before that is valid and needs no write
   * and no refresh, and for a request without any session cookie. `nowMs`: when the request
   * arrived (the steady state is judged at that time, as Kong judges at its cached `ngx.now()`).
   */
  loadSession(ctx: RequestContext, nowMs: number): SessionData | null | Promise<SessionData | null>;
  /**
   * Create/renew the session after a successful auth method (unless the method is in
   * disable_session): the session as saved, or null when none was saved.
   */
  saveSession(ctx: RequestContext, data: SessionData): Promise<SessionData | null>;
  /** End `session` (the one of this request, or null when none was opened) and clear its cookies. */
  destroySession(ctx: RequestContext, session: SessionData | null): Promise<void>;
  /** Fill in ids and times of a session made by another method (password grant, ...). */
  newSession(init: NewSession): SessionData;
  /** `authorization_code` method: finish a callback, or start a sign-in (302, or 401 for script requests). */
  authorizationCode(ctx: RequestContext): Promise<AuthCodeResult>;
  /**
   * True when this request is the callback (state + code/error) of a sign-in pending in this
   * browser (its authorization cookie is there). Such a callback starts a new session; any other
   * request, a reload of the callback URL included, may be served by the current session.
   * Synchronous when the request has no callback parameters (and no form_post body to read).
   */
  isCallback(ctx: RequestContext): boolean | Promise<boolean>;
  /** Logout when the request matches logout_uri_suffix/methods/args; null (at once) otherwise. */
  logout(ctx: RequestContext, session: SessionData | null): Reply | null | Promise<Reply | null>;
  /** Back-channel logout endpoint handler (POST logout_token); null (at once) when the path does not match. */
  backchannelLogout(ctx: RequestContext): Reply | null | Promise<Reply>;
  /** `session_request_headers` / `session_response_headers`: headers describing `session`. */
  sessionHeadersOf(session: SessionData, fields: readonly string[]): Array<{ name: string; value: string }>;
  /** Removes session/authorization cookies from the upstream request. */
  stripCookies(ctx: RequestContext): void;
  /**
   * Kong-shaped failure reply (401/403/500 `{"message"}`, or a redirect to the configured
   * `*_redirect_uri`). Destroying the session on failure (`*_destroy_session`) is the caller's call.
   */
  failure(ctx: RequestContext, kind: FailureKind, reason: string, error?: string | null): Reply;
  close(): Promise<void>;
}

/** Refresh a little before expiry so the token does not expire on its way upstream. */
const refreshSkewSeconds = 10;

/**
 * Build the browser flows for one plugin instance. Throws an Error naming the field for session
 * settings that cannot work (e.g. no `session_secret` with several workers).
 */
export function createBrowserFlows(config: BrowserConfig, deps: BrowserDeps): BrowserFlows {
  const database = deps.database ?? 'off';
  const cfg: ResolvedConfig = resolveConfig(config, deps.workers, database);
  let secrets: readonly string[] | (() => Promise<readonly string[]>) = cfg.secrets;
  if (secrets.length === 0 && (database !== 'off' || deps.workers > 1)) {
    // As Kong: generated once and stored in the database, so every worker and node shares it;
    // DB-less, in the node's own key-value file, so every worker of the node shares it (it ends
    // with the node: sessions do not survive a restart and do not cross nodes).
    const key = `openid-connect:session-secret:${deps.instanceId ?? 'default'}`;
    const shared = deps.sharedKv;
    secrets = async () => {
      await shared.add(key, Sealer.randomSecret());
      const stored = await shared.get(key);
      if (stored === null) throw new Error('openid-connect: the generated session secret could not be stored');
      return [stored];
    };
  } else if (secrets.length === 0) {
    deps.log.warn('openid-connect: session_secret is not set; using a secret generated for this node (sessions end on restart)');
    secrets = [Sealer.randomSecret()];
  }
  const sealer = new Sealer(secrets);
  sealer.warm();
  const serverKv: KeyValueStore | null =
    cfg.storage === 'redis' && cfg.redis ? new RedisKv(createRedisClient(cfg.redis), cfg.redis.prefix, cfg.redis.connection_is_proxied ?? false) : cfg.storage === 'memcached' ? new MemcachedKv(cfg.memcached) : null;
  // Session records, locks and logout markers go where every node can see them. Markers in the
  // database are served from memory while it is down (last-known.ts).
  const kv: KeyValueStore = countedKv(
    serverKv ?? (database === 'off' ? deps.sharedKv : lastKnownKv(deps.sharedKv, deps.log, deps.now)),
    serverKv === null ? (database === 'off' ? 'node' : 'database') : cfg.storage === 'memcached' ? 'memcached' : 'redis',
    deps.metrics,
  );
  const store = new SessionStore(cfg, sealer, kv, deps.now);
  const refresher = new RefreshCoordinator(kv, sealer);

  const save = async (ctx: RequestContext, data: SessionData, renew: boolean): Promise<SessionData> => {
    let saved: SessionData;
    try {
      saved = await store.write(ctx, data, { renew });
    } catch (err) {
      if (err instanceof CookieTooLargeError) {
        throw new GatewayError('GW_AUTH_BAD_SESSION', 'An unexpected error occurred', { status: 500, detail: err.message, cause: err });
      }
      throw err;
    }
    ctx.state.set(stateKey, saved);
    return saved;
  };

  const tokenCall = deps.tokenCall ?? (async (_ctx: RequestContext, index: number): Promise<TokenCall> => ({ client: await deps.getClient(index), params: {}, replay: [] }));
  const authCode = new AuthorizationCodeFlow({
    cfg,
    sealer,
    kv,
    now: deps.now,
    getClient: deps.getClient,
    tokenCall,
    userinfo: deps.userinfo,
    requestObjectKey: deps.requestObjectKey,
    selectClient: deps.selectClient,
    async saveNew(ctx, init) {
      const session = store.newSession({ method: 'authorization_code', ...init });
      if (cfg.disableSession.includes('authorization_code')) return session;
      return save(ctx, session, true);
    },
  });
  const logout = new Logout({ cfg, store, kv, getClient: deps.getClient, selectClient: deps.selectClient, metrics: deps.metrics });

  const grant = async (ctx: RequestContext, session: SessionData): Promise<RefreshOutcome> => {
    try {
      const call = await tokenCall(ctx, session.clientIndex, 'refresh_token');
      const res = await oidc.refreshTokenGrant(call.client, session.tokens.refresh_token!, call.params);
      const tokens = tokensFrom(res, deps.now());
      // RFC 6749 §6: the IdP may keep the old refresh token (and need not send a new ID token).
      if (!tokens.refresh_token) tokens.refresh_token = session.tokens.refresh_token;
      if (!tokens.id_token && session.tokens.id_token) tokens.id_token = session.tokens.id_token;
      const claims = res.claims();
      deps.metrics?.refresh(true);
      return { kind: 'refreshed', tokens, idTokenClaims: claims ? { ...claims } : null, ...(call.replay.length > 0 ? { replay: call.replay } : {}) };
    } catch (err) {
      deps.metrics?.refresh(false);
      // The IdP refused the refresh token, or answered with tokens that do not validate: the
      // session cannot go on. Anything else (IdP unreachable, timeout) may pass: keep the session.
      if (isRejection(err)) return { kind: 'rejected' };
      throw new GatewayError('GW_AUTH_IDP_UNAVAILABLE', 'An unexpected error occurred', {
        status: 500,
        detail: 'refresh token grant failed',
        cause: err,
      });
    }
  };

  // Session and authorization cookies are never sent upstream (`stripCookies`).
  const gatewayCookies = new Set<string>();
  for (const b of [cfg.sessionCookie.name, ...(cfg.remember ? [cfg.rememberCookie.name] : [])]) {
    for (let i = 1; i <= 9; i++) gatewayCookies.add(i === 1 ? b : `${b}${i}`);
  }
  gatewayCookies.add(cfg.authCookie.name);
  const authPrefix = `${cfg.authCookie.name}.`;
  const isGatewayCookie = (n: string): boolean => gatewayCookies.has(n) || n.startsWith(authPrefix);
  /**
   * Long Cookie headers already stripped (the same session cookie comes back on every request), by
   * the kernel's parsed map of the header as the client sent it: every request with that header
   * shares the map (the kernel compared the header in full to find it), so this costs no second
   * comparison of kilobytes.
   */
  const strippedByParse = new WeakMap<ReadonlyMap<string, string>, string>();

  /** The steady state of a session: opened before, valid, no write and no refresh due. */
  const remembered = (ctx: RequestContext, nowMs: number): SessionData | undefined => {
    const session = store.peek(ctx, nowMs);
    if (session === undefined) return undefined;
    const expiresAt = session.tokens.expires_at;
    // Due for a refresh (or over): `load` decides.
    if (expiresAt !== undefined && expiresAt - refreshSkewSeconds <= nowMs / 1000) return undefined;
    return session;
  };

  const load = async (ctx: RequestContext): Promise<SessionData | null> => {
    const found = await store.read(ctx);
    if (!found) return null;
    let { session } = found;
    const expiresAt = session.tokens.expires_at;
    const nowS = deps.now() / 1000;
    const refreshDue = expiresAt !== undefined && expiresAt - refreshSkewSeconds <= nowS;
    // A logout ends the session as it is (as Kong, before any expiry check): no refresh at the
    // IdP, no write, and its ID token still goes to the end-session endpoint as id_token_hint.
    if ((refreshDue || found.dirty) && (await logout.matches(ctx))) return session;
    if (refreshDue) {
      if (!cfg.refreshTokens || !session.tokens.refresh_token) {
        // The access token is useless and cannot be renewed: the session is over.
        await store.destroy(ctx, session);
        return null;
      }
      const outcome = await refresher.refresh(session.tokens.refresh_token, () => grant(ctx, session));
      if (outcome.kind === 'rejected') {
        ctx.log.info('openid-connect: refresh token rejected; session ended');
        await store.destroy(ctx, session);
        return null;
      }
      // `token_headers_replay`: on the response to this request (and to every request that shared
      // the refresh), whether it is proxied or answered here.
      for (const h of outcome.replay ?? []) ctx.downstreamHeaders.set(h.name, h.value);
      session = {
        ...session,
        tokens: outcome.tokens,
        claims: outcome.idTokenClaims ? { ...session.claims, id_token: outcome.idTokenClaims } : session.claims,
      };
      // New tokens must reach the cookie, or the next request refreshes again with a spent token.
      // No renewal (same id): concurrent requests of this session all write the same record.
      return save(ctx, session, false);
    }
    // Renewal or idle touch; `session` in disable_session means "do not renew on session auth".
    if (found.dirty && !cfg.disableSession.includes('session')) return save(ctx, session, store.renewalDue(session));
    return session;
  };

  const flows: BrowserFlows = {
    loadSession(ctx, nowMs) {
      const session = remembered(ctx, nowMs);
      if (session !== undefined) return session;
      return store.present(ctx) ? load(ctx) : null;
    },

    async saveSession(ctx, data) {
      if (cfg.disableSession.includes(data.method)) return null;
      return save(ctx, data, true);
    },

    async destroySession(ctx, session) {
      await store.destroy(ctx, session);
      ctx.state.delete(stateKey);
    },

    newSession: (init) => store.newSession(init),

    authorizationCode: (ctx) => authCode.run(ctx),

    isCallback: (ctx) => authCode.isPendingCallback(ctx),

    logout: (ctx, session) => logout.logout(ctx, session),

    backchannelLogout: (ctx) => logout.backchannel(ctx),

    sessionHeadersOf(session, fields) {
      return fields.length === 0 ? [] : sessionHeaders(fields, session, cfg, deps.now());
    },

    stripCookies(ctx) {
      const header = ctx.upstream.getHeader('cookie');
      if (header === undefined) return;
      let value: string | undefined;
      if (header === ctx.request.headers.cookie && typeof header === 'string' && header.length >= 128) {
        const parsed = ctx.request.cookies;
        value = strippedByParse.get(parsed);
        if (value === undefined) strippedByParse.set(parsed, (value = stripFromCookieHeader(header, isGatewayCookie)));
      } else {
        // Short, or changed by an earlier plugin: stripped again.
        value = stripFromCookieHeader(Array.isArray(header) ? header.join('; ') : header, isGatewayCookie);
      }
      if (value === '') ctx.upstream.removeHeader('cookie');
      else ctx.upstream.setHeader('cookie', value);
    },

    failure(ctx, kind, reason, error) {
      const session = ctx.state.get(stateKey) as SessionData | undefined;
      return failureReply(ctx, cfg, kind, { reason, error, clientIndex: session?.clientIndex ?? deps.selectClient(ctx) });
    },

    async close() {
      await serverKv?.close();
    },
  };
  return flows;
}
