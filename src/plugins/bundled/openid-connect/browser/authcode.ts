/**
 * The authorization code flow for people in browsers (OpenID Connect Core 1.0 §3.1, RFC 6749
 * §4.1, PKCE RFC 7636, Form Post Response Mode). Protocol work is openid-client's: URL building,
 * state/nonce/PKCE checks, code exchange and ID token validation (§3.1.3.7: signature, iss,
 * aud/azp, exp, iat, nonce, at_hash/c_hash).
 *
 * Flow state lives in one sealed cookie per pending sign-in. The first pending sign-in uses exactly
 * `authorization_cookie_name` (what Kong users look for); while it is pending, further ones use
 * `<authorization_cookie_name>.<tag>` with a tag derived from their `state`, so several tabs can
 * sign in at once without overwriting each other's cookie; at most `maxPendingFlows` are kept
 * (the oldest are dropped).
 */
import { loginReply } from './login.ts';

export { localPath } from './login.ts';
import { timingSafeEqual } from 'node:crypto';
import { isGatewayError } from '../../../../errors.ts';
import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import type { Reply, RequestContext } from '../../../sdk.ts';
import type { KeyValueStore } from '../../../../storage/ports.ts';
import { perClient, type ResolvedConfig } from './config.ts';
import { clearCookie, cookieAttributes } from './cookies.ts';
import { failureReply, isNavigation } from './replies.ts';
import { digest, type Sealer } from './seal.ts';
import { isSecureRequest, type SessionData, type SessionTokens } from './session.ts';

export const maxPendingFlows = 5;

/** What the authorization cookie remembers between the redirect and the callback. */
interface Flow {
  /** state, nonce (or null), PKCE verifier (or null) */
  s: string;
  n: string | null;
  v: string | null;
  /** redirect_uri sent (the code exchange must repeat it, RFC 6749 §4.1.3) */
  r: string;
  /** original path and raw query */
  p: string;
  q: string;
  c: number;
  /** created, ms */
  t: number;
}

/** The client's private key for JAR request objects, with the JWS header options it needs. */
export interface RequestObjectKey {
  key: oidc.PrivateKey;
  options: oidc.ModifyAssertionOptions;
}

/** A header of the token endpoint's response, replayed to the client (`token_headers_replay`). */
export interface ReplayedHeader {
  name: string;
  value: string;
}

/**
 * One token endpoint call made for a request: the client's Configuration for it (its calls carry
 * the extra request headers), the extra form arguments, and the array the response fills with the
 * headers to replay to the client (`token_post_args_*`, `token_headers_*`).
 */
export interface TokenCall {
  client: oidc.Configuration;
  params: Record<string, string>;
  replay: ReplayedHeader[];
}

/** User info for an access token: its claims and, when the IdP signed it, the JWT. */
export interface UserInfo {
  claims: Record<string, unknown>;
  jwt: string | null;
}

export interface AuthCodeDeps {
  cfg: ResolvedConfig;
  sealer: Sealer;
  kv: KeyValueStore;
  now(): number;
  /** The client's Configuration for the token endpoint, or (`par`) for the PAR endpoint's own auth method. */
  getClient(index: number, purpose?: 'token' | 'par'): Promise<oidc.Configuration>;
  /** The token endpoint call of the code exchange for this request (token request options). */
  tokenCall(ctx: RequestContext, index: number, grant: 'authorization_code'): Promise<TokenCall>;
  /** The user info call (`search_user_info`) with the plugin's user info options; with `search_user_info` and without it, the callback fails. */
  userinfo?(ctx: RequestContext, index: number, accessToken: string): Promise<UserInfo>;
  /** The key that signs request objects (`client_jwk` or the generated key). */
  requestObjectKey?(index: number): Promise<RequestObjectKey>;
  selectClient(ctx: RequestContext): number;
  /** Save the new session (honours disable_session) and return it. */
  saveNew(ctx: RequestContext, init: { clientIndex: number; tokens: SessionTokens; claims: SessionData['claims'] }): Promise<SessionData>;
}

export type AuthCodeResult = { kind: 'reply'; reply: Reply } | { kind: 'authenticated'; session: SessionData };

const callbackParams = ['code', 'state', 'session_state', 'iss', 'error', 'error_description', 'error_uri', 'response'];

/** Map a token endpoint response to what the session keeps; `expires_in <= 0` means already expired. */
export function tokensFrom(res: oidc.TokenEndpointResponse, nowMs: number): SessionTokens {
  const t: SessionTokens = { access_token: res.access_token, token_type: res.token_type };
  if (res.id_token) t.id_token = res.id_token;
  if (res.refresh_token) t.refresh_token = res.refresh_token;
  if (typeof res.scope === 'string') t.scope = res.scope;
  if (typeof res.expires_in === 'number') t.expires_at = Math.floor(nowMs / 1000) + Math.max(0, res.expires_in);
  return t;
}

export class AuthorizationCodeFlow {
  readonly #d: AuthCodeDeps;
  /** Configurations already switched to JWT response mode (openid-client's useJwtResponseMode). */
  readonly #jarmClients = new WeakSet<oidc.Configuration>();

  constructor(deps: AuthCodeDeps) {
    this.#d = deps;
  }

  /** Callback parameters of this request (query, or the form_post body), or null when it is not a callback. */
  async callbackParams(ctx: RequestContext): Promise<URLSearchParams | null> {
    if (!this.#formPost(ctx)) return this.callbackParamsWithoutBody(ctx)!;
    const form = await ctx.request.form();
    return this.#callback(form && (form.has('state') || (this.#jarm() && form.has('response'))) ? form : ctx.request.query);
  }

  /** `callbackParams` when the request body need not be read; undefined when it must be (form_post). */
  callbackParamsWithoutBody(ctx: RequestContext): URLSearchParams | null | undefined {
    if (this.#formPost(ctx)) return undefined;
    // No query string, no callback parameters (skips building URLSearchParams on the hot path).
    if (ctx.request.rawQuery === '') return null;
    return this.#callback(ctx.request.query);
  }

  #formPost(ctx: RequestContext): boolean {
    return ctx.request.method === 'POST' && this.#d.cfg.responseMode.startsWith('form_post');
  }

  #callback(params: URLSearchParams): URLSearchParams | null {
    // JARM: the whole response is one signed JWT in `response` (its state is read to find the flow;
    // openid-client verifies the JWT before anything in it is trusted).
    if (this.#jarm() && params.has('response') && !params.has('state')) return params;
    if (!params.has('state') || (!params.has('code') && !params.has('error'))) return null;
    return params;
  }

  #jarm(): boolean {
    return this.#d.cfg.responseMode.endsWith('jwt');
  }

  /** The state of a callback: the parameter, or (JARM) the claim inside the unverified response JWT. */
  #stateOf(params: URLSearchParams): string {
    const direct = params.get('state');
    if (direct !== null) return direct;
    try {
      const claim = decodeJwt(params.get('response') ?? '').state;
      return typeof claim === 'string' ? claim : '';
    } catch {
      return '';
    }
  }

  /**
   * Whether this request is the callback of a sign-in pending in this browser: callback
   * parameters, and an authorization cookie bound to their state. A callback URL without one (a
   * reload or a bookmark of the page a sign-in landed on, its code and state spent) is not.
   */
  isPendingCallback(ctx: RequestContext): boolean | Promise<boolean> {
    const params = this.callbackParamsWithoutBody(ctx);
    if (params === null) return false;
    return this.#pendingCallback(ctx, params);
  }

  async #pendingCallback(ctx: RequestContext, known: URLSearchParams | undefined): Promise<boolean> {
    const params = known ?? (await this.callbackParams(ctx));
    return params !== null && (await this.#flowCookie(ctx, this.#stateOf(params))) !== null;
  }

  async run(ctx: RequestContext): Promise<AuthCodeResult> {
    const params = await this.callbackParams(ctx);
    return params ? this.#finish(ctx, params) : this.#start(ctx);
  }

  #taggedName(state: string): string {
    return `${this.#d.cfg.authCookie.name}.${digest(state).slice(0, 12)}`;
  }

  /** The cookie name for a new flow: the plain name unless another flow already holds it. */
  #newCookieName(ctx: RequestContext, state: string): string {
    const base = this.#d.cfg.authCookie.name;
    return ctx.request.cookies.has(base) ? this.#taggedName(state) : base;
  }

  /** The cookie carrying the flow of `state`: its tagged cookie, else the plain one if it is bound to it. */
  async #flowCookie(ctx: RequestContext, state: string): Promise<{ name: string; flow: Flow | null } | null> {
    const tagged = this.#taggedName(state);
    const candidates = [tagged, this.#d.cfg.authCookie.name];
    for (const name of candidates) {
      const sealed = ctx.request.cookies.get(name);
      if (!sealed) continue;
      const flow = (await this.#d.sealer.open('authorization', sealed)) as Flow | null;
      // The plain cookie may belong to another tab's flow: only take it when it is bound to this state.
      if (name !== tagged && !(flow && typeof flow.s === 'string' && sameString(flow.s, state))) continue;
      return { name, flow };
    }
    return null;
  }

  /** Names of pending authorization cookies in this request (plain and tagged). */
  pendingCookieNames(ctx: RequestContext): string[] {
    const base = this.#d.cfg.authCookie.name;
    const prefix = `${base}.`;
    return [...ctx.request.cookies.keys()].filter((n) => n === base || n.startsWith(prefix));
  }

  async #start(ctx: RequestContext): Promise<AuthCodeResult> {
    const { cfg } = this.#d;
    const clientIndex = this.#d.selectClient(ctx);
    if (!isNavigation(ctx)) {
      return { kind: 'reply', reply: failureReply(ctx, cfg, 'unauthorized', { reason: 'no session and not a navigation', clientIndex }) };
    }
    let client: oidc.Configuration;
    try {
      client = await this.#d.getClient(clientIndex);
    } catch (err) {
      // Discovery failed (IdP down, bad issuer): unexpected_redirect_uri or 500, never a loop.
      const reason = `IdP configuration unavailable: ${err instanceof Error ? err.message : String(err)}`;
      return { kind: 'reply', reply: failureReply(ctx, cfg, 'unexpected', { reason, clientIndex }) };
    }
    const meta = client.serverMetadata();
    const state = oidc.randomState();
    const nonce = cfg.verifyNonce ? oidc.randomNonce() : null;
    const usePkce = cfg.pkce ?? Array.isArray(meta.code_challenge_methods_supported);
    const verifier = usePkce ? oidc.randomPKCECodeVerifier() : null;
    const redirectUri = perClient(cfg.redirectUri, clientIndex) ?? defaultRedirectUri(ctx);

    const params = new URLSearchParams({ response_type: cfg.responseType, scope: cfg.scopes.join(' '), redirect_uri: redirectUri, state });
    if (nonce) params.set('nonce', nonce);
    if (verifier) {
      params.set('code_challenge', await oidc.calculatePKCECodeChallenge(verifier));
      params.set('code_challenge_method', 'S256');
    }
    if (cfg.responseMode !== 'query') params.set('response_mode', cfg.responseMode);
    if (cfg.audience.length > 0) params.set('audience', cfg.audience.join(' '));
    if (cfg.maxAge !== null) params.set('max_age', String(cfg.maxAge));
    for (const [n, v] of cfg.authorizationArgs) params.set(n, v);
    for (const n of cfg.authorizationArgsClient) {
      const v = ctx.request.query.get(n);
      if (v !== null) params.set(n, v);
    }
    const usePar = cfg.par ?? meta.require_pushed_authorization_requests === true;
    const useJar = cfg.jar ?? meta.require_signed_request_object === true;
    let location = '';
    let step = 'authorization request';
    try {
      let request: URLSearchParams = params;
      if (useJar) {
        // JAR (RFC 9101): the parameters travel in a request object signed with the client's key.
        step = 'request object';
        if (!this.#d.requestObjectKey) throw new Error('no key to sign request objects with');
        const { key, options } = await this.#d.requestObjectKey(clientIndex);
        const signed = await oidc.buildAuthorizationUrlWithJAR(client, params, key, options);
        if (!usePar) location = signed.href;
        request = signed.searchParams;
      }
      if (usePar) {
        // PAR (RFC 9126): the parameters (or the request object) go to the IdP directly, with the
        // PAR endpoint's client authentication; the browser carries only a request_uri.
        step = 'PAR';
        const parClient = await this.#d.getClient(clientIndex, 'par');
        location = (await oidc.buildAuthorizationUrlWithPAR(parClient, request)).href;
      } else if (!useJar) {
        location = oidc.buildAuthorizationUrl(client, params).href;
      }
    } catch (err) {
      return classifyFailure(err, (reason, kind) => ({ kind: 'reply' as const, reply: failureReply(ctx, cfg, kind, { reason: `${step}: ${reason}`, clientIndex }) }));
    }

    const now = this.#d.now();
    const flow: Flow = { s: state, n: nonce, v: verifier, r: redirectUri, p: ctx.request.path, q: ctx.request.rawQuery, c: clientIndex, t: now };
    const dropped = await this.#dropOldFlows(ctx);
    // A plain cookie expired just now frees the plain name for this flow.
    const cookieName = dropped.includes(cfg.authCookie.name) ? cfg.authCookie.name : this.#newCookieName(ctx, state);
    const secure = isSecureRequest(ctx);
    const maxAge = cfg.authorizationRollingTimeout > 0 ? cfg.authorizationRollingTimeout : undefined;
    ctx.downstreamHeaders.add(
      'set-cookie',
      `${cookieName}=${await this.#d.sealer.seal('authorization', flow)}${cookieAttributes(cfg.authCookie, secure, maxAge, now)}`,
    );
    return { kind: 'reply', reply: ctx.reply(302, undefined, { location, 'cache-control': 'no-store' }) };
  }

  /** Keep at most maxPendingFlows - 1 old flows so the new one fits; unreadable ones go first. */
  async #dropOldFlows(ctx: RequestContext): Promise<string[]> {
    const names = this.pendingCookieNames(ctx);
    if (names.length < maxPendingFlows) return [];
    const aged: { name: string; t: number }[] = [];
    for (const name of names) {
      const flow = (await this.#d.sealer.open('authorization', ctx.request.cookies.get(name) ?? '')) as Flow | null;
      aged.push({ name, t: flow && typeof flow.t === 'number' ? flow.t : -1 });
    }
    aged.sort((a, b) => a.t - b.t);
    const dropped = aged.slice(0, names.length - maxPendingFlows + 1).map((a) => a.name);
    for (const name of dropped) ctx.downstreamHeaders.add('set-cookie', clearCookie(name, this.#d.cfg.authCookie, isSecureRequest(ctx)));
    return dropped;
  }

  async #finish(ctx: RequestContext, params: URLSearchParams): Promise<AuthCodeResult> {
    const { cfg } = this.#d;
    const state = this.#stateOf(params);
    const fallbackClient = this.#d.selectClient(ctx);
    const fail = (reason: string, kind: 'unauthorized' | 'unexpected' = 'unauthorized', clientIndex = fallbackClient): AuthCodeResult => ({
      kind: 'reply',
      reply: failureReply(ctx, cfg, kind, { reason, clientIndex, error: kind === 'unauthorized' ? 'invalid_request' : null }),
    });
    const found = await this.#flowCookie(ctx, state);
    // A failed callback never starts a new sign-in by itself: that is how redirect loops begin.
    if (!found) return fail('authorization cookie missing or expired for this state');
    // The flow is single-use whatever happens next.
    ctx.downstreamHeaders.add('set-cookie', clearCookie(found.name, cfg.authCookie, isSecureRequest(ctx)));
    const flow = found.flow;
    if (!flow || typeof flow.s !== 'string' || !sameString(flow.s, state)) return fail('authorization cookie invalid or not bound to this state');
    if (cfg.authorizationRollingTimeout > 0 && this.#d.now() - flow.t > cfg.authorizationRollingTimeout * 1000) {
      return fail('authorization cookie expired', 'unauthorized', flow.c);
    }
    // Replay guard across workers and nodes: a state is accepted once (the cookie alone could be replayed).
    if (!(await this.#d.kv.add(`oidc:state:${digest(state)}`, '1', Math.max(cfg.authorizationRollingTimeout, 60) * 1000))) {
      return fail('state already used', 'unauthorized', flow.c);
    }
    if (params.has('error')) {
      return fail(`the IdP returned an error: ${params.get('error')}`, 'unauthorized', flow.c);
    }
    let call: TokenCall;
    try {
      call = await this.#d.tokenCall(ctx, flow.c, 'authorization_code');
    } catch (err) {
      return fail(`IdP configuration unavailable: ${err instanceof Error ? err.message : String(err)}`, 'unexpected', flow.c);
    }
    const client = call.client;
    if (this.#jarm() && !this.#jarmClients.has(client)) {
      oidc.useJwtResponseMode(client);
      this.#jarmClients.add(client);
    }
    const currentUrl = new URL(flow.r);
    currentUrl.search = '';
    for (const k of callbackParams) {
      const v = params.get(k);
      if (v !== null) currentUrl.searchParams.set(k, v);
    }
    let res: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      res = await oidc.authorizationCodeGrant(client, currentUrl, {
        expectedState: flow.s,
        expectedNonce: flow.n ?? undefined,
        pkceCodeVerifier: flow.v ?? undefined,
        idTokenExpected: cfg.scopes.includes('openid'),
        maxAge: cfg.maxAge ?? undefined,
      }, call.params);
    } catch (err) {
      return classifyFailure(err, (reason, kind) => fail(reason, kind, flow.c));
    }
    // `token_headers_replay`: on the callback's response, whatever it turns out to be (redirect,
    // login_action reply, or the proxied response).
    for (const h of call.replay) ctx.downstreamHeaders.set(h.name, h.value);
    const now = this.#d.now();
    const claims: SessionData['claims'] = {};
    const idClaims = res.claims();
    if (idClaims) claims.id_token = { ...idClaims };
    if (cfg.searchUserInfo && res.access_token) {
      if (!this.#d.userinfo) return fail('userinfo: no user info call configured', 'unexpected', flow.c);
      let info: UserInfo;
      try {
        info = await this.#d.userinfo(ctx, flow.c, res.access_token);
      } catch (err) {
        if (isGatewayError(err)) return fail(`userinfo: ${err.detail ?? err.message}`, err.status === 401 ? 'unauthorized' : 'unexpected', flow.c);
        return classifyFailure(err, (reason, kind) => fail(`userinfo: ${reason}`, kind, flow.c));
      }
      // OpenID Connect Core §5.3.2: the user info is about the person the ID token names.
      if (typeof idClaims?.sub === 'string' && info.claims.sub !== idClaims.sub) return fail('userinfo: sub does not match the ID token', 'unauthorized', flow.c);
      claims.userinfo = { ...info.claims };
      if (info.jwt) claims.userinfo_jwt = info.jwt;
    }
    const session = await this.#d.saveNew(ctx, { clientIndex: flow.c, tokens: tokensFrom(res, now), claims });
    return this.#loginAction(ctx, flow, session, res);
  }

  #loginAction(ctx: RequestContext, flow: Flow, session: SessionData, res: oidc.TokenEndpointResponse): AuthCodeResult {
    const { cfg } = this.#d;
    const reply = loginReply(ctx, cfg.login, 'authorization_code', { tokens: res, introspection: null, clientIndex: flow.c, path: flow.p, query: flow.q });
    if (reply !== null) return { kind: 'reply', reply };
    // The callback request is proxied: without the protocol parameters, with the original query when asked.
    for (const k of callbackParams) ctx.upstream.query.delete(k);
    if (cfg.preserveQueryArgs) for (const [k, v] of new URLSearchParams(flow.q)) ctx.upstream.query.append(k, v);
    return { kind: 'authenticated', session };
  }
}

/** The redirect URI Kong derives when none is configured: this request's URL without its query. */
export function defaultRedirectUri(ctx: RequestContext): string {
  const host = ctx.request.header('host') ?? `${ctx.request.host}:${ctx.request.port}`;
  return `${ctx.request.scheme}://${host}${ctx.request.path}`;
}

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** openid-client codes that say the IdP could not be reached or answered garbage: try later. */
const transientCodes = new Set(['OAUTH_TIMEOUT', 'OAUTH_ABORT', 'OAUTH_RESPONSE_IS_NOT_CONFORM', 'OAUTH_RESPONSE_IS_NOT_JSON', 'OAUTH_PARSE_ERROR']);

/**
 * True for protocol rejections: an OAuth error response from the IdP (RFC 6749 §5.2, 4xx), or an
 * answer that failed validation (ID token claims, signature, key selection). False for outages.
 */
export function isRejection(err: unknown): boolean {
  if (err instanceof oidc.ResponseBodyError) return err.status >= 400 && err.status < 500;
  if (err instanceof oidc.AuthorizationResponseError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof oidc.ClientError && typeof code === 'string' && code.startsWith('OAUTH_') && !transientCodes.has(code);
}

/**
 * Protocol rejections (IdP error responses, failed ID token checks) are the person's problem: 401.
 * Anything else (IdP unreachable, timeouts, 5xx) is unexpected.
 */
export function classifyFailure<T>(err: unknown, fail: (reason: string, kind: 'unauthorized' | 'unexpected') => T): T {
  if (err instanceof oidc.ResponseBodyError && isRejection(err)) return fail(`token endpoint error: ${err.error}`, 'unauthorized');
  if (err instanceof oidc.AuthorizationResponseError) return fail(`authorization error: ${err.error}`, 'unauthorized');
  if (isRejection(err)) {
    const claim = findClaim(err);
    const e = err as Error & { code: string };
    return fail(`${e.code}: ${e.message}${claim ? ` (${claim})` : ''}`, 'unauthorized');
  }
  return fail(`IdP call failed: ${err instanceof Error ? err.message : String(err)}`, 'unexpected');
}

/** The claim name a validation error is about (oauth4webapi nests it in the cause chain). */
function findClaim(err: unknown): string | null {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const claim = (e as { claim?: unknown }).claim;
    if (typeof claim === 'string') return claim;
  }
  return null;
}
