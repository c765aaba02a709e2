/**
 * Steps for a token the client presents: `bearer` (local JWT verification, RFC 7519 §7.2),
 * `introspection` (RFC 7662) and `userinfo` (OpenID Connect Core §5.3). Results are cached
 * (bounded, never past the token's expiry) so a repeated token costs no signature check and no
 * IdP call.
 */
import { hash } from 'node:crypto';
import { fetchUserInfo, skipSubjectCheck, tokenIntrospection } from 'openid-client';
import { decodeJwt } from 'jose';
import { cacheTtlMs, memoKey } from '../caches.ts';
import { authError, describe, idpUnavailable, isIdpOutage } from '../errors.ts';
import { GatewayError, isGatewayError } from '../../../../errors.ts';
import type { TtlCache } from '../caches.ts';
import type { ClusterItem } from '../cluster-cache.ts';
import type { Claims, FoundToken, IdpAnswer, Outcome, RequestState, Runtime, Sync, VerifiedToken } from '../runtime.ts';
import type { RequestContext } from '../../../sdk.ts';
import type { OidcClient } from '../clients.ts';
import { acceptFor, jwtResponseHook, type JwtSink } from './jwt-responses.ts';

/** A compact JWS has exactly three base64url parts (RFC 7515 §7.1). */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

function tokenHash(token: string): string {
  // One-shot hash: a Hash object per request (createHash) cost more than the rest of a warm
  // bearer check (bench/RESULTS.md).
  return hash('sha256', token, 'base64url');
}

/** Headers/args from `*_names`/`*_values` plus client request headers named in `*_client`. */
export function extraPairs(names: readonly string[] | null, values: readonly string[] | null): Record<string, string> {
  const out: Record<string, string> = {};
  (names ?? []).forEach((n, i) => (out[n] = values?.[i] ?? ''));
  return out;
}

function copyClientHeaders(ctx: RequestContext, names: readonly string[] | null, into: Record<string, string>): void {
  for (const n of names ?? []) {
    const v = ctx.request.header(n);
    if (v !== undefined) into[n] = v;
  }
}

/**
 * The cached verification of a JWT access token, while the cache entry lives and the token has
 * not expired (`exp` plus leeway against the clock at `nowMs`): the cache skips the signature,
 * never the clock. Only tokens that look like JWTs are ever cached (`verifyAccessJwt`).
 */
export function cachedVerification(rt: Runtime, token: string, nowMs: number): VerifiedToken | undefined {
  // Keyed by the token's tail, compared in full (a slice of a header compares as fast as a string).
  const key = memoKey(token);
  const cached = rt.caches.verified.get(key, nowMs);
  if (cached === undefined || cached.token !== token) return undefined;
  const exp = cached.claims.exp;
  if (typeof exp !== 'number' || exp + rt.cfg.leeway > nowMs / 1000) return cached;
  rt.caches.verified.delete(key);
  return undefined;
}

/** Whether a header plan wants the JWK that verified the access token (`*_access_token_jwk_header`). */
export function wantsAccessJwk(rt: Runtime): boolean {
  return !!(rt.cfg.upstream_access_token_jwk_header || rt.cfg.downstream_access_token_jwk_header);
}

/** Verify a JWT access token locally; memoized per token until it expires. */
export async function verifyAccessJwt(rt: Runtime, rs: RequestState, token: string): Promise<Claims> {
  return (await verifyAccessJwtEntry(rt, rs, token)).claims;
}

/** As `verifyAccessJwt`, with the JWK that verified it (when asked for). */
export async function verifyAccessJwtEntry(rt: Runtime, rs: RequestState, token: string): Promise<{ claims: Claims; jwk: VerifiedToken['jwk'] }> {
  const cfg = rt.cfg;
  const cached = cachedVerification(rt, token, rt.now());
  rt.http.cache('verified_token', cached !== undefined);
  if (cached) return { claims: cached.claims, jwk: cached.jwk ?? null };
  const verified = await rt.issuer.verifyJwt(token, {
    issuers: cfg.issuers_allowed,
    leewaySec: cfg.leeway,
    hmacSecret: cfg.enable_hs_signatures ? (rs.client?.secret ?? null) : null,
    verifyClaims: cfg.verify_claims,
    verifySignature: cfg.verify_signature,
    wantJwk: wantsAccessJwk(rt),
  });
  if (cfg.domains && cfg.domains.length > 0 && !cfg.domains.includes(String(verified.payload.hd))) throw authError('invalid_token', 'hd claim not allowed');
  const exp = typeof verified.payload.exp === 'number' ? verified.payload.exp + cfg.leeway : null;
  // Keyed by the token itself (its tail, compared in full): no hashing on the hot path. A token
  // verified with an HS* secret is proof only for the clients that share that secret: with
  // several secrets it is verified again on every request, against the selected client's.
  const hmac = verified.header.alg.startsWith('HS');
  const jwk = verified.jwk ?? null;
  if (looksLikeJwt(token) && (!hmac || new Set(cfg.client_secret ?? []).size <= 1)) rt.caches.verified.set(memoKey(token), { token, claims: verified.payload as Claims, outcome: null, found: null, jwk }, cacheTtlMs(cfg, rt.now(), exp));
  return { claims: verified.payload as Claims, jwk };
}

/**
 * `jwt_session_cookie` / `jwt_session_claim`: a verified JWT bearer token is accepted only with
 * the cookie of that name, whose value must equal the token's claim (default `sid`), so a token
 * works only alongside the browser session it was issued for. A missing cookie or claim, or
 * another value, is a 401 `invalid_token`.
 */
function checkJwtSessionCookie(rt: Runtime, rs: RequestState, claims: Claims): void {
  const cookie = rs.ctx.request.cookies.get(rt.cfg.jwt_session_cookie!);
  const claim = claims[rt.cfg.jwt_session_claim];
  if (cookie === undefined || cookie === '') throw authError('invalid_token', `${rt.cfg.jwt_session_cookie} cookie missing (jwt_session_cookie)`);
  if (typeof claim !== 'string' && typeof claim !== 'number') throw authError('invalid_token', `token has no ${rt.cfg.jwt_session_claim} claim (jwt_session_claim)`);
  if (String(claim) !== cookie) throw authError('invalid_token', `${rt.cfg.jwt_session_cookie} cookie does not match the token's ${rt.cfg.jwt_session_claim} claim`);
}

/**
 * `bearer`: a JWT-shaped bearer token is verified here; opaque tokens go on to introspection. A
 * JWT that does not verify (signature, claims) is offered to `introspection` / `userinfo` when
 * one of them is enabled (the IdP may know tokens the gateway cannot check locally), else 401.
 * A token whose verification is cached is answered synchronously, with the Outcome made for it
 * the first time (memoized on the cache entry, per location it is sent in).
 */
export function bearerStep(rt: Runtime, rs: RequestState): Sync<Outcome | null> {
  const found = rs.bearer();
  return found instanceof Promise ? found.then((f) => bearerOf(rt, rs, f)) : bearerOf(rt, rs, found);
}

function bearerOf(rt: Runtime, rs: RequestState, found: FoundToken | null): Sync<Outcome | null> {
  if (found === null) return null;
  const entry = found.verified;
  if (entry !== undefined && !rt.cfg.introspect_jwt_tokens) {
    rs.bearerHandled = true;
    rt.http.cache('verified_token', true);
    if (rt.cfg.jwt_session_cookie !== null) checkJwtSessionCookie(rt, rs, entry.claims);
    const used = entry.outcome?.used[0];
    if (used !== undefined && used.location === found.location && used.name === found.name) return entry.outcome;
    const o = outcome('bearer', { location: found.location, name: found.name, token: entry.token }, entry.claims, null, null);
    if (entry.jwk) o.accessJwk = entry.jwk;
    return (entry.outcome = o);
  }
  if (!looksLikeJwt(found.token)) return null;
  return verifyBearer(rt, rs, found);
}

async function verifyBearer(rt: Runtime, rs: RequestState, found: FoundToken): Promise<Outcome | null> {
  rs.bearerHandled = true;
  let claims: Claims;
  let jwk: VerifiedToken['jwk'] = null;
  try {
    ({ claims, jwk } = await verifyAccessJwtEntry(rt, rs, found.token));
  } catch (err) {
    const rejected = isGatewayError(err) && err.status === 401;
    if (rejected && (rt.enabled.has('introspection') || rt.enabled.has('userinfo'))) {
      rs.bearerHandled = false;
      return null;
    }
    throw err;
  }
  if (rt.cfg.jwt_session_cookie !== null) checkJwtSessionCookie(rt, rs, claims);
  let introspection: IdpAnswer | null = null;
  // introspect_jwt_tokens: a valid signature does not prove the token was not revoked.
  if (rt.cfg.introspect_jwt_tokens) introspection = await introspect(rt, rs, found);
  const o = outcome('bearer', found, claims, introspection?.claims ?? null, null);
  if (jwk) o.accessJwk = jwk;
  if (introspection?.jwt) o.introspectionJwt = introspection.jwt;
  return o;
}

/** `introspection`: ask the IdP about the bearer token (RFC 7662 §2.1). */
export async function introspectionStep(rt: Runtime, rs: RequestState): Promise<Outcome | null> {
  const found = await rs.bearer();
  if (!found || rs.bearerHandled) return null;
  rs.bearerHandled = true;
  const result = await introspect(rt, rs, found);
  const o = outcome('introspection', found, null, result.claims, null);
  if (result.jwt) o.introspectionJwt = result.jwt;
  return o;
}

/**
 * `search_user_info`: fetch the user info for the access token of an outcome (cached), as an
 * extra claim source for consumer mapping and headers. A refusal is a 401 like `userinfo`.
 */
export async function searchUserInfo(rt: Runtime, rs: RequestState, o: Outcome): Promise<IdpAnswer | null> {
  const token = o.tokens.access_token;
  if (!token) return null;
  return userInfoFor(rt, rs.ctx, rs.client, token);
}

/** `userinfo`: a 200 from the user info endpoint for the token authenticates (OIDC Core §5.3.2). */
export async function userinfoStep(rt: Runtime, rs: RequestState): Promise<Outcome | null> {
  const found = await rs.bearer();
  if (!found || rs.bearerHandled) return null;
  rs.bearerHandled = true;
  const info = await userInfoFor(rt, rs.ctx, rs.client, found.token);
  const o = outcome('userinfo', found, null, null, info.claims);
  if (info.jwt) o.userinfoJwt = info.jwt;
  return o;
}

/**
 * The cache key of a call made for `token`: the token alone, or, when the client passes headers or
 * arguments through to the IdP (`*_client` options) or one of several clients is selected, those
 * too: they may change the IdP's answer, so they must not share an entry.
 */
function callKey(token: string, client: number, extra: Record<string, string>[]): string {
  if (client === 0 && extra.every((e) => Object.keys(e).length === 0)) return tokenHash(token);
  const sorted = extra.map((e) => Object.keys(e).sort().map((k) => [k, e[k]]));
  // JSON: names and values cannot run into one another.
  return tokenHash(`${token}\0${client}\0${JSON.stringify(sorted)}`);
}

/**
 * The user info for `token` (OpenID Connect Core §5.3), asked by `client` for the request `ctx`,
 * with every user info option: `userinfo_accept` (a signed answer is verified and kept),
 * `userinfo_headers_*`, `userinfo_query_args_*`; cached as `cache_user_info` says. Used by the
 * `userinfo` method, `search_user_info` and the code flow's sign-in (browser-slots.ts).
 */
export async function userInfoFor(rt: Runtime, ctx: RequestContext, selected: OidcClient | null, token: string): Promise<IdpAnswer> {
  const fromClient: Record<string, string> = {};
  copyClientHeaders(ctx, rt.cfg.userinfo_headers_client, fromClient);
  // Query arguments the client passes on (`userinfo_query_args_client`): from its query string.
  const queryFromClient: Record<string, string> = {};
  for (const n of rt.cfg.userinfo_query_args_client ?? []) {
    const v = ctx.request.query.get(n);
    if (v !== null && v !== undefined) queryFromClient[n] = v;
  }
  const key = callKey(token, selected?.index ?? 0, [fromClient, queryFromClient]);
  const cached = rt.cfg.cache_user_info ? rt.caches.userinfo.get(key) : undefined;
  if (cached) return cached;
  return rt.flights.userinfo.run(key, ctx.signal, () => sharedOrFresh(rt, rt.caches.userinfo, null, key, rt.cfg.cache_user_info, async () => {
    let info: Claims;
    const meta = await rt.issuer.metadata();
    if (!meta.userinfo_endpoint) throw idpUnavailable('userinfo', new Error('no userinfo_endpoint'));
    const headers: Record<string, string> = { ...extraPairs(rt.cfg.userinfo_headers_names, rt.cfg.userinfo_headers_values), ...fromClient };
    const accept = acceptFor(rt, 'userinfo');
    if (accept) headers.accept = accept;
    const query = { ...extraPairs(rt.cfg.userinfo_query_args_names, rt.cfg.userinfo_query_args_values), ...queryFromClient };
    const sink: JwtSink = { jwt: null, rejected: null };
    const client = selected ?? { index: 0, id: 'portcullis', secret: null };
    const config = await rt.clients.configuration(meta, client, 'userinfo', {
      signal: ctx.signal,
      headers,
      query: Object.keys(query).length > 0 ? query : null,
      onResponse: accept ? jwtResponseHook(rt, 'userinfo', sink) : null,
    });
    try {
      info = (await fetchUserInfo(config, token, skipSubjectCheck)) as Claims;
    } catch (err) {
      if (sink.rejected) throw authError('invalid_token', sink.rejected, err);
      if (isIdpOutage(err)) throw idpUnavailable('userinfo', err);
      throw authError('invalid_token', 'user info request rejected', err);
    }
    // Never cache past a JWT access token's own expiry; opaque tokens fall back to cache_ttl.
    let exp: number | null = null;
    if (looksLikeJwt(token)) {
      try {
        const e = decodeJwt(token).exp;
        if (typeof e === 'number') exp = e;
      } catch {
        exp = null;
      }
    }
    return { value: { claims: info, jwt: sink.jwt }, ttlMs: cacheTtlMs(rt.cfg, rt.now(), exp) };
  }));
}

/** Call the introspection endpoint (cached by token hash until the result's `exp`). */
export async function introspect(rt: Runtime, rs: RequestState, found: FoundToken): Promise<IdpAnswer> {
  const cfg = rt.cfg;
  // What the client passes through (arguments, headers) is gathered first: it is part of the key.
  const clientHeaders: Record<string, string> = {};
  copyClientHeaders(rs.ctx, cfg.introspection_headers_client, clientHeaders);
  const clientArgs: Record<string, string> = {};
  for (const n of cfg.introspection_post_args_client ?? []) {
    const v = rs.ctx.request.query.get(n) ?? (await rs.body.get(n));
    if (v !== null && v !== undefined) clientArgs[n] = v;
  }
  for (const n of cfg.introspection_post_args_client_headers ?? []) {
    const v = rs.ctx.request.header(n);
    if (v !== undefined) clientArgs[n] = v;
  }
  const key = callKey(found.token, rs.client?.index ?? 0, [clientHeaders, clientArgs]);
  let result = cfg.cache_introspection ? rt.caches.introspection.get(key) : undefined;
  if (cfg.cache_introspection) rt.http.cache('introspection', result !== undefined);
  result ??= await rt.flights.introspection.run(key, rs.ctx.signal, () => sharedOrFresh(rt, rt.caches.introspection, 'introspection', key, cfg.cache_introspection, async () => {
    let fresh: Claims;
    const meta = await rt.issuer.metadata();
    if (!meta.introspection_endpoint) throw idpUnavailable('introspection', new Error('no introspection_endpoint'));
    if (!rs.client) throw idpUnavailable('introspection', new Error('no client_id configured'));
    const headers: Record<string, string> = { ...extraPairs(cfg.introspection_headers_names, cfg.introspection_headers_values), ...clientHeaders };
    const accept = acceptFor(rt, 'introspection');
    if (accept) headers.accept = accept;
    const params: Record<string, string> = { token_type_hint: cfg.introspection_hint, ...extraPairs(cfg.introspection_post_args_names, cfg.introspection_post_args_values), ...clientArgs };
    const sink: JwtSink = { jwt: null, rejected: null };
    const config = await rt.clients.configuration(meta, rs.client, 'introspection', {
      signal: rs.ctx.signal,
      headers,
      tokenParam: cfg.introspection_token_param_name,
      onResponse: accept ? jwtResponseHook(rt, 'introspection', sink) : null,
    });
    try {
      fresh = (await tokenIntrospection(config, found.token, params)) as Claims;
    } catch (err) {
      if (sink.rejected) {
        throw new GatewayError('GW_PLUGIN_FAILED', 'The introspection response could not be verified', { status: 500, detail: sink.rejected, cause: err });
      }
      if (isIdpOutage(err)) throw idpUnavailable('introspection', err);
      rt.log.warn({ err: describe(err) }, 'openid-connect: introspection request rejected');
      throw idpUnavailable('introspection', err);
    }
    if (cfg.cache_introspection) {
      const exp = typeof fresh.exp === 'number' ? fresh.exp : null;
      // Inactive answers are remembered too (cache_ttl_neg, else 30 s) so a flood of bad
      // tokens does not turn into a flood of introspection calls.
      const ttl = fresh.active === true ? cacheTtlMs(cfg, rt.now(), exp) : (cfg.cache_ttl_neg ?? 30) * 1000;
      return { value: { claims: fresh, jwt: sink.jwt }, ttlMs: ttl };
    }
    return { value: { claims: fresh, jwt: sink.jwt }, ttlMs: 0 };
  }));
  if (cfg.introspection_check_active && result.claims.active !== true) throw authError('invalid_token', 'token is not active');
  return result;
}

/**
 * One cached IdP call behind the in-memory cache: the cluster cache first (`cluster_cache_*`),
 * else the IdP (`fetch` answers the value and its lifetime; 0 = not cached), whose answer goes to
 * both caches. When the IdP cannot be reached, an entry expired less than `cache_ttl_resurrect`
 * ago is served instead (and logged).
 */
export async function sharedOrFresh<T>(
  rt: Runtime,
  local: TtlCache<T>,
  item: ClusterItem | null,
  key: string,
  cached: boolean,
  fetch: () => Promise<{ value: T; ttlMs: number }>,
): Promise<T> {
  const shared = cached && item !== null && rt.cluster?.holds(item) ? await rt.cluster.get<T>(item, key) : undefined;
  if (shared !== undefined) {
    local.set(key, shared.value, shared.ttlMs, resurrectMs(rt));
    return shared.value;
  }
  let fresh: { value: T; ttlMs: number };
  try {
    fresh = await fetch();
  } catch (err) {
    const stale = cached && rt.cfg.cache_ttl_resurrect ? local.getStale(key) : undefined;
    if (stale === undefined || !isIdpOutage(err)) throw err;
    rt.log.warn({ err: describe(err), item }, 'openid-connect: the IdP cannot be reached; serving the last answer (cache_ttl_resurrect)');
    return stale;
  }
  if (cached && fresh.ttlMs > 0) {
    local.set(key, fresh.value, fresh.ttlMs, resurrectMs(rt));
    if (item !== null) rt.cluster?.set(item, key, fresh.value, fresh.ttlMs);
  }
  return fresh.value;
}

function resurrectMs(rt: Runtime): number {
  return (rt.cfg.cache_ttl_resurrect ?? 0) * 1000;
}

function outcome(method: Outcome['method'], found: FoundToken, accessClaims: Claims | null, introspection: Claims | null, userinfo: Claims | null): Outcome {
  return {
    method,
    tokens: { access_token: found.token, token_type: 'Bearer' },
    accessClaims,
    idClaims: null,
    introspection,
    userinfo,
    used: [{ location: found.location, name: found.name }],
  };
}
