/**
 * The synchronous fast path of `access` for the two steady states of the plugin: a bearer JWT
 * whose verification is cached, and a session whose cookie was opened before (cookie storage).
 *
 * It first decides without any side effect, and gives up (returns false: the caller runs the full
 * `access`, which repeats the work and gets the same answer) whenever something needs I/O or is
 * not plain success: a cache miss, an IdP call, a request body to read, a session to write (new,
 * renewed, touched, refreshed, ended), a logout or callback request, any error. Only then does it
 * make the same changes to the request as the full path, in the same order, with everything that
 * depends only on the token or session (outcome, header values, claims authorization, consumer
 * mapping for one Snapshot) computed once and remembered with it.
 */
import type { Consumer } from '../../../config/types.ts';
import type { Credential, EntityLookup, RequestContext } from '../../sdk.ts';
import type { OidcConfig, AuthMethod } from './schema.ts';
import type { Outcome, Runtime, VerifiedToken } from './runtime.ts';
import type { BrowserFlows, SessionData } from './browser/index.ts';
import { sessionOutcome } from './browser-slots.ts';
import type { Location } from './steps/find-credential.ts';
import { cachedVerification, cachedVerificationAt } from './steps/verify-token.ts';
import { authorizeClaims, mapConsumer } from './steps/authorize.ts';
import type { ConsumerGroup } from '../../../config/credentials.ts';
import { configuredNames, headersFromPlan, hideCredentials, type HeaderPlan, type HeaderWrite } from './steps/headers.ts';
import { utf8HeaderValue } from '../../header-value.ts';

/** Request bodies are parsed for fields only for these methods' complements (`BodyFields`). */
function noBody(method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS';
}

/** A visible ASCII character (not whitespace) at `i`. */
function printableAt(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c > 0x20 && c < 0x7f;
}

/**
 * Where the token starts after `Bearer` and its spaces or tabs (case-insensitive, as
 * `findBearerToken`'s `^bearer[ \t]+`), or -1 when the value does not start so.
 */
function bearerSchemeEnd(raw: string): number {
  if (raw.length < 8) return -1;
  // `| 0x20` lower-cases ASCII letters; only B/b, E/e, A/a, R/r map to these codes.
  if ((raw.charCodeAt(0) | 0x20) !== 0x62 || (raw.charCodeAt(1) | 0x20) !== 0x65 || (raw.charCodeAt(2) | 0x20) !== 0x61) return -1;
  if ((raw.charCodeAt(3) | 0x20) !== 0x72 || (raw.charCodeAt(4) | 0x20) !== 0x65 || (raw.charCodeAt(5) | 0x20) !== 0x72) return -1;
  let i = 6;
  for (let c = raw.charCodeAt(i); c === 0x20 || c === 0x09; c = raw.charCodeAt(++i));
  return i === 6 ? -1 : i;
}

/** What the plugin leaves in `ctx.state` for later phases and plugins (Kong 3.14: the token). */
export interface OidcRequestState {
  method: AuthMethod;
  accessToken: string | null;
  downstream: HeaderWrite[];
}

/** `ctx.state` key of {@link OidcRequestState}. */
export const STATE_KEY = 'openid-connect';

/** A copy of `s` held as one contiguous string (V8 keeps concatenations and slices as trees). */
function flat(s: string): string {
  if (s.length < 64) return s;
  const copy = Buffer.from(s, 'latin1').toString('latin1');
  return copy === s ? copy : s; // (a character beyond Latin-1 would not survive the copy)
}

/** Kong's consumer headers, removed from the client request before the plugin writes its own. */
export const consumerHeaderNames = ['x-consumer-id', 'x-consumer-username', 'x-consumer-custom-id', 'x-anonymous-consumer', 'x-authenticated-groups', 'x-credential-identifier'];

type ConsumerRef = { id: string; username: string | null; custom_id: string | null } | null;

/** The consumer headers to set (after removing {@link consumerHeaderNames}), in Kong's order. */
export function consumerHeaders(consumer: ConsumerRef, groups: readonly string[] | null, credential: { identifier?: string | null } | null): HeaderWrite[] {
  const out: HeaderWrite[] = [];
  // Names, ids and groups are Unicode text: UTF-8 on the wire (utf8HeaderValue).
  if (credential?.identifier) out.push({ name: 'x-credential-identifier', value: utf8HeaderValue(credential.identifier) });
  if (consumer) {
    out.push({ name: 'x-consumer-id', value: utf8HeaderValue(consumer.id) });
    if (consumer.username) out.push({ name: 'x-consumer-username', value: utf8HeaderValue(consumer.username) });
    if (consumer.custom_id) out.push({ name: 'x-consumer-custom-id', value: utf8HeaderValue(consumer.custom_id) });
  }
  if (groups && groups.length > 0) out.push({ name: 'x-authenticated-groups', value: utf8HeaderValue(groups.join(', ')) });
  return out;
}

/**
 * `max_age` (OpenID Connect Core §3.1.2.1 / §3.1.3.7 item 11): the end user must have
 * authenticated no longer than `max_age` seconds ago, per the `auth_time` claim. The problem
 * (a 401 `invalid_token`), or null.
 */
export function maxAgeProblem(cfg: OidcConfig, o: Outcome, nowMs: number): string | null {
  if (cfg.max_age === null) return null;
  const authTime = o.idClaims?.auth_time ?? o.accessClaims?.auth_time ?? o.introspection?.auth_time;
  if (typeof authTime !== 'number') return 'auth_time claim missing while max_age is set';
  if (authTime + cfg.max_age + cfg.leeway < nowMs / 1000) return 'authentication too old (max_age)';
  return null;
}

/** Consumer mapping of an outcome against one Snapshot's entities. */
interface Identity {
  readonly entities: EntityLookup;
  /** Null when mapping fails (no consumer and `consumer_optional` off): the full path answers. */
  readonly who: { consumer: Consumer | null; credential: Credential | null; groups: readonly string[] | null; consumerGroups: readonly ConsumerGroup[] | null } | null;
  readonly headers: readonly HeaderWrite[];
}

/** What the fast path derives once from a token or session. */
export interface Prepared {
  readonly outcome: Outcome;
  readonly upstream: readonly HeaderWrite[];
  /** `*_required` / `claims_forbidden` are met (they depend only on the config and the claims). */
  readonly authorized: boolean;
  /** `hide_credentials` has something left to remove (a header among the first removals has not). */
  readonly hide: boolean;
  /** The request state, shared by the requests of this token when nothing per request is added. */
  readonly state: OidcRequestState;
  identity: Identity | null;
}

export interface FastPathDeps {
  cfg: OidcConfig;
  rt: Runtime;
  browser: BrowserFlows | null;
  upstreamPlan: HeaderPlan;
  downstreamPlan: HeaderPlan;
  /** Headers the plugin may write upstream (session facts included): client-sent copies go. */
  upstreamNames: readonly string[];
}

/**
 * The fast path for this configuration, or null when no request could take it. It returns true
 * when it handled the request completely (authenticated, request changed), false when the full
 * `access` must run (nothing was changed then).
 */
export function buildFastPath(d: FastPathDeps): ((ctx: RequestContext) => boolean) | null {
  const { cfg, rt, browser } = d;
  // Extra user info needs an IdP call or its cache: the full path.
  if (cfg.search_user_info) return null;
  const sessionMode = browser !== null && rt.enabled.has('session');
  // With the browser flows, a bearer token that authenticates starts a session: never steady.
  const bearerMode = browser === null && rt.enabled.has('bearer') && !cfg.introspect_jwt_tokens;
  if (!sessionMode && !bearerMode) return null;
  const codeFlow = rt.enabled.has('authorization_code');
  const clientIds = cfg.client_id ?? [];
  const bodyBearer = cfg.bearer_token_param_type.includes('body');

  // All removals first (anti-spoofing): they commute with one another. Consumer headers the
  // token headers may set (a config naming one) are removed again after those are set.
  const lower = (names: readonly string[]) => names.map((n) => n.toLowerCase());
  const removed = new Set([...lower(d.upstreamNames), ...consumerHeaderNames]);
  const removeFirst = [...removed];
  const written = new Set(lower(configuredNames(cfg, 'upstream')));
  const removeAgain = consumerHeaderNames.filter((n) => written.has(n));
  const requestFields = cfg.session_request_headers ?? [];
  const responseFields = cfg.session_response_headers ?? [];
  const perRequestDownstream = sessionMode && (responseFields.length > 0 || cfg.downstream_session_id_header !== null);
  const sessions = new WeakMap<SessionData, Prepared>();

  const prepare = (outcome: Outcome): Prepared => {
    let authorized = true;
    try {
      authorizeClaims(cfg, outcome.introspection ?? outcome.accessClaims);
    } catch {
      authorized = false;
    }
    // Shared by every request of this token or session: frozen, so no one can change it for the others.
    const downstream = Object.freeze(headersFromPlan(d.downstreamPlan, outcome)) as HeaderWrite[];
    const state: OidcRequestState = Object.freeze({ method: outcome.method, accessToken: outcome.tokens.access_token ?? null, downstream });
    const hide = cfg.hide_credentials && outcome.used.some((u) => u.location !== 'header' || !removed.has(u.name));
    // Each value goes out on every request of this token: stored as one flat string, not as the
    // concatenation (of a slice of the first request's header) it was built from.
    // Names lower-cased once (`setLowerHeaders`).
    const upstream = headersFromPlan(d.upstreamPlan, outcome).map((h) => ({ ...h, name: h.name.toLowerCase(), value: flat(h.value) }));
    return { outcome, upstream, authorized, hide, state, identity: null };
  };

  const identityOf = (p: Prepared, entities: EntityLookup): Identity => {
    if (p.identity !== null && p.identity.entities === entities) return p.identity;
    const o = p.outcome;
    let identity: Identity;
    try {
      const mapped = mapConsumer(cfg, [o.accessClaims, o.idClaims, o.introspection, o.userinfo], entities);
      if (mapped.credential?.consumer) Object.freeze(mapped.credential.consumer);
      const credential = mapped.credential && Object.freeze(mapped.credential);
      const groups = mapped.groups && Object.freeze(mapped.groups);
      identity = { entities, who: { consumer: mapped.consumer, credential, groups, consumerGroups: mapped.consumerGroups && Object.freeze(mapped.consumerGroups) }, headers: consumerHeaders(mapped.consumer, groups, credential) };
    } catch {
      identity = { entities, who: null, headers: [] };
    }
    p.identity = identity;
    return identity;
  };

  /** Would `selectClient` read the body (several clients, no `client_arg` in a header or the query)? */
  const clientInBody = (ctx: RequestContext): boolean => {
    const req = ctx.request;
    if (clientIds.length <= 1 || req.method === 'GET' || req.method === 'HEAD') return false;
    return (req.header(cfg.client_arg) ?? (req.rawQuery === '' ? null : req.query.get(cfg.client_arg))) == null;
  };

  const types = cfg.bearer_token_param_type;
  const bearerHeaderNames = !types.includes('header') ? [] : cfg.bearer_token_header_name ? [cfg.bearer_token_header_name.toLowerCase()] : ['authorization', 'access-token', 'x-access-token'];
  const bearerInQuery = types.includes('query');
  const bearerCookie = types.includes('cookie') ? cfg.bearer_token_cookie_name : null;

  /**
   * The one bearer credential of the request with its live cached verification, or null when the
   * full path must decide (`findBearerToken`): nothing, anything it would not take as the token,
   * a value in a second location, a token without a cached verification. On a hit the token is
   * JWT-shaped (only such tokens are cached), so `findBearerToken` finds exactly it: this needs no
   * regular expression over the token and builds no string for it.
   */
  const cachedBearer = (ctx: RequestContext, nowMs: number): { entry: VerifiedToken; location: Location; name: string } | null => {
    const req = ctx.request;
    let hit: { entry: VerifiedToken; location: Location; name: string } | null = null;
    const headers = req.headers;
    for (const name of bearerHeaderNames) {
      const value = headers[name];
      const raw = typeof value === 'string' ? value : value?.[0];
      if (!raw) continue;
      if (hit !== null || !printableAt(raw, raw.length - 1)) return null;
      const start = bearerSchemeEnd(raw);
      // Without the Bearer scheme, only the token itself is taken, and not from Authorization.
      if (start < 0 && (name === 'authorization' || !printableAt(raw, 0))) return null;
      const entry = cachedVerificationAt(rt, raw, start < 0 ? 0 : start, nowMs);
      if (entry === undefined) return null;
      hit = { entry, location: 'header', name };
    }
    if (bearerInQuery && req.rawQuery !== '') {
      const v = req.query.get('access_token');
      if (v) {
        const entry = hit === null ? cachedVerification(rt, v, nowMs) : undefined;
        if (entry === undefined) return null;
        hit = { entry, location: 'query', name: 'access_token' };
      }
    }
    if (bodyBearer && !noBody(req.method)) return null;
    if (bearerCookie) {
      const v = req.cookies.get(bearerCookie);
      if (v) {
        const entry = hit === null ? cachedVerification(rt, v, nowMs) : undefined;
        if (entry === undefined) return null;
        hit = { entry, location: 'cookie', name: bearerCookie };
      }
    }
    return hit;
  };

  const bearerPrepared = (ctx: RequestContext, nowMs: number): Prepared | null => {
    const found = cachedBearer(ctx, nowMs);
    if (found === null) return null;
    const entry = found.entry;
    const used = entry.fast?.outcome.used[0];
    if (used?.location === found.location && used.name === found.name) return entry.fast;
    const outcome: Outcome = {
      method: 'bearer',
      tokens: { access_token: entry.token, token_type: 'Bearer' },
      accessClaims: entry.claims,
      idClaims: null,
      introspection: null,
      userinfo: null,
      used: [{ location: found.location, name: found.name }],
    };
    return (entry.fast = prepare(outcome));
  };

  const sessionPrepared = (ctx: RequestContext): { p: Prepared; session: SessionData } | null => {
    const b = browser!;
    if (b.isBackchannelLogout(ctx)) return null;
    // A callback starts a new session (or, with form_post, only the body can tell).
    if (codeFlow && b.isCallbackWithoutBody(ctx) !== false) return null;
    const session = b.peekSession(ctx);
    if (session === undefined) return null;
    if (b.isLogoutWithoutBody(ctx) !== false) return null;
    let p = sessions.get(session);
    if (p === undefined) {
      p = prepare(sessionOutcome('session', session));
      sessions.set(session, p);
    }
    return { p, session };
  };

  return (ctx) => {
    const nowMs = rt.now();
    let p: Prepared | null;
    let session: SessionData | null = null;
    if (clientInBody(ctx)) return false;
    if (sessionMode) {
      const found = sessionPrepared(ctx);
      if (found === null) return false;
      p = found.p;
      session = found.session;
    } else {
      p = bearerPrepared(ctx, nowMs);
      if (p === null) return false;
    }
    if (!p.authorized || maxAgeProblem(cfg, p.outcome, nowMs) !== null) return false;
    const identity = identityOf(p, ctx.entities);
    if (identity.who === null) return false;

    // Decided: the same changes as the full path, in its order.
    ctx.authenticate(identity.who);
    const up = ctx.upstream;
    up.removeLowerHeaders(removeFirst);
    // Synchronous here: the credential is never in the body on this path.
    if (p.hide) void hideCredentials(ctx, p.outcome.used);
    browser?.stripCookies(ctx);
    up.setLowerHeaders(p.upstream);
    if (removeAgain.length > 0) up.removeLowerHeaders(removeAgain);
    up.setLowerHeaders(identity.headers);
    let state = p.state;
    if (session !== null) {
      for (const h of browser!.sessionHeadersOf(session, requestFields)) up.setHeader(h.name, h.value);
      if (perRequestDownstream) {
        const downstream = [...state.downstream, ...browser!.sessionHeadersOf(session, responseFields)];
        if (cfg.downstream_session_id_header) downstream.push({ name: cfg.downstream_session_id_header, value: session.id });
        state = { ...state, downstream };
      }
      if (cfg.upstream_session_id_header) up.setHeader(cfg.upstream_session_id_header, session.id);
    }
    ctx.state.set(STATE_KEY, state);
    return true;
  };
}
