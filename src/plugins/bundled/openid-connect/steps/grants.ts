/**
 * Steps that obtain tokens from the IdP's token endpoint for the client: `refresh_token`
 * (RFC 6749 §6), `password` (§4.3) and `client_credentials` (§4.4). Responses are cached
 * (`cache_tokens`) under a salted hash of the credentials, expiring before the token does.
 */
import { createHash } from 'node:crypto';
import { ClientSecretBasic, ClientSecretPost, genericGrantRequest } from 'openid-client';
import type { TokenEndpointResponse } from 'openid-client';
import { decodeJwt } from 'jose';
import { isGatewayError } from '../../../../errors.ts';
import { cacheTtlMs } from '../caches.ts';
import { authError, idpUnavailable, isIdpOutage } from '../errors.ts';
import type { Claims, HeaderWrite, Outcome, RequestState, Runtime, Source, TokenEndpointResult } from '../runtime.ts';
import { findPair, findRefreshToken } from './find-credential.ts';
import { looksLikeJwt, sharedOrFresh, verifyAccessJwtEntry } from './verify-token.ts';
import { replayHook, tokenPostArgs, tokenRequestHeaders, type TokenGrant } from './token-request.ts';
import { verifyIdToken, wantsIdJwk } from './id-token.ts';
import type { JWK } from 'jose';

/** Cached tokens are dropped this long before they expire, so none is forwarded nearly dead. */
const EARLY_EXPIRY_MS = 10_000;

type Grant = Exclude<TokenGrant, 'authorization_code'>;

/** Scope and the extra form arguments of a token request (`scopes`, `token_post_args_*`). */
async function grantParams(rt: Runtime, rs: RequestState): Promise<Record<string, string>> {
  const params: Record<string, string> = {};
  if (rt.cfg.scopes.length > 0) params.scope = rt.cfg.scopes.join(' ');
  return Object.assign(params, await tokenPostArgs(rt.cfg, rs.ctx.request, rs.body));
}

/**
 * The token cache key: salt, grant, credentials and every argument and header of the token request
 * (those from `token_post_args_client` / `token_headers_client` come from the client and may ask
 * for another token, e.g. another `resource`), except the scope unless `token_cache_key_include_scope`.
 */
function cacheKey(rt: Runtime, grant: Grant, parts: readonly string[], params: Record<string, string>, headers: Record<string, string>): string {
  const h = createHash('sha256').update(rt.salt).update('\0').update(grant);
  for (const p of parts) h.update('\0').update(p);
  const scoped = rt.cfg.token_cache_key_include_scope ? params.scope ?? '' : '';
  h.update('\0').update(scoped);
  const args = Object.keys(params).filter((k) => k !== 'scope').sort();
  // JSON: names and values cannot run into one another.
  h.update('\0').update(JSON.stringify(args.map((k) => [k, params[k]])));
  const names = Object.keys(headers).sort();
  h.update('\0').update(JSON.stringify(names.map((k) => [k, headers[k]])));
  return h.digest('base64url');
}

function expiresAt(rt: Runtime, res: TokenEndpointResponse): number | null {
  if (typeof res.expires_in === 'number') return Math.floor(rt.now() / 1000) + res.expires_in;
  if (res.access_token && looksLikeJwt(res.access_token)) {
    try {
      const exp = decodeJwt(res.access_token).exp;
      if (typeof exp === 'number') return exp;
    } catch {
      // not a JWT after all: expiry unknown
    }
  }
  return null;
}

/**
 * Run one grant (or serve it from the token cache). `run` performs the token request with the
 * right Configuration. IdP rejections (RFC 6749 §5.2) become 401; outages 500.
 */
async function viaCache(rt: Runtime, rs: RequestState, grant: Grant, key: string | null, run: (replay: HeaderWrite[]) => Promise<TokenEndpointResponse>): Promise<TokenEndpointResult> {
  if (!key) return callTokenEndpoint(rt, grant, run);
  const hit = rt.caches.tokens.get(key);
  rt.http.cache('token', hit !== undefined);
  if (hit) return hit;
  // Behind the in-memory cache: the cluster cache (`cluster_cache_items: [tokens]`), then the IdP;
  // an expired entry within `cache_ttl_resurrect` serves while the IdP cannot be reached.
  return rt.flights.tokens.run(key, rs.ctx.signal, () => sharedOrFresh(rt, rt.caches.tokens, 'tokens', key, true, async () => {
    const result = await callTokenEndpoint(rt, grant, run);
    return { value: result, ttlMs: cacheTtlMs(rt.cfg, rt.now(), result.expiresAt, EARLY_EXPIRY_MS) };
  }));
}

async function callTokenEndpoint(rt: Runtime, grant: Grant, run: (replay: HeaderWrite[]) => Promise<TokenEndpointResponse>): Promise<TokenEndpointResult> {
  let res: TokenEndpointResponse;
  const replay: HeaderWrite[] = [];
  try {
    res = await run(replay);
  } catch (err) {
    if (isIdpOutage(err)) throw idpUnavailable(`token (${grant})`, err);
    // Our own failures (e.g. a client key that cannot sign) are not the IdP's verdict.
    if (isGatewayError(err)) throw err;
    throw authError('invalid_token', `${grant} grant rejected by the identity provider`, err);
  }
  const result: TokenEndpointResult = {
    tokens: { access_token: res.access_token, id_token: res.id_token, refresh_token: res.refresh_token, token_type: res.token_type, expires_in: res.expires_in },
    expiresAt: expiresAt(rt, res),
    ...(replay.length > 0 ? { replay } : {}),
  };
  return result;
}

/** Verify a token-endpoint access token when it is a JWT, unless `ignore_signature` lists the grant. */
async function toOutcome(rt: Runtime, rs: RequestState, grant: Grant, result: TokenEndpointResult, used: Source[]): Promise<Outcome> {
  const at = result.tokens.access_token;
  let accessClaims: Claims | null = null;
  let accessJwk: JWK | null = null;
  if (at && looksLikeJwt(at)) {
    if (rt.cfg.ignore_signature.includes(grant)) accessClaims = decodeJwt(at) as Claims;
    else {
      const v = await verifyAccessJwtEntry(rt, rs, at);
      accessClaims = v.claims;
      accessJwk = v.jwk ?? null;
    }
  }
  let idClaims: Claims | null = null;
  let idJwk: JWK | null = null;
  const it = result.tokens.id_token;
  if (it) {
    // openid-client validated the ID token's claims when it received it (OIDC Core §3.1.3.7).
    idClaims = decodeJwt(it) as Claims;
    // `*_id_token_jwk_header`: the key that signed it, found by verifying it with the IdP's keys.
    if (wantsIdJwk(rt) && !rt.cfg.ignore_signature.includes(grant)) idJwk = (await verifyIdToken(rt, rs, it)).jwk;
  }
  return {
    method: grant, tokens: result.tokens, accessClaims, idClaims, introspection: null, userinfo: null, used,
    ...(result.replay ? { replay: result.replay } : {}),
    ...(accessJwk ? { accessJwk } : {}),
    ...(idJwk ? { idJwk } : {}),
  };
}

/** `refresh_token`: the client sends a refresh token; the gateway runs the refresh grant. */
export async function refreshTokenStep(rt: Runtime, rs: RequestState): Promise<Outcome | null> {
  const found = await findRefreshToken(rt.cfg, rs.ctx.request, rs.body);
  if (!found || !rs.client) return null;
  const params = await grantParams(rt, rs);
  const meta = await rt.issuer.metadata();
  const client = rs.client;
  // Refresh responses are not cached: each refresh token is typically single-use (RFC 6749 §10.4).
  const result = await viaCache(rt, rs, 'refresh_token', null, async (replay) => {
    const config = await rt.clients.configuration(meta, client, 'token', { signal: rs.ctx.signal, headers: tokenRequestHeaders(rt.cfg, rs.ctx.request), onResponse: replayHook(rt.cfg, 'refresh_token', replay) });
    return genericGrantRequest(config, 'refresh_token', { ...params, refresh_token: found.token });
  });
  return toOutcome(rt, rs, 'refresh_token', result, [{ location: found.location, name: found.name }]);
}

/**
 * `password`: username/password from the Basic header or parameters. When the IdP rejects a Basic
 * header and `client_credentials` reads that header too, the same credentials are tried as a
 * client id and secret next (Kong gives the password grant priority for a shared Basic header).
 * Rejected `username`/`password` parameters are nobody else's credential: 401 `invalid_token`.
 */
export async function passwordStep(rt: Runtime, rs: RequestState): Promise<Outcome | null> {
  const pair = await findPair(rt.cfg.password_param_type, rs.ctx.request, rs.body, 'username', 'password');
  if (!pair || !rs.client) return null;
  const params = await grantParams(rt, rs);
  const client = rs.client;
  const headers = tokenRequestHeaders(rt.cfg, rs.ctx.request);
  const key = rt.cfg.cache_tokens ? cacheKey(rt, 'password', [client.id, pair.id, pair.secret], params, headers) : null;
  try {
    const result = await viaCache(rt, rs, 'password', key, async (replay) => {
      const meta = await rt.issuer.metadata();
      const config = await rt.clients.configuration(meta, client, 'token', { signal: rs.ctx.signal, headers, onResponse: replayHook(rt.cfg, 'password', replay) });
      return genericGrantRequest(config, 'password', { ...params, username: pair.id, password: pair.secret });
    });
    return await toOutcome(rt, rs, 'password', result, pair.sources);
  } catch (err) {
    const shared = pair.sources[0].location === 'header' && rt.cfg.client_credentials_param_type.includes('header');
    if (shared && rt.enabled.has('client_credentials') && (err as { status?: number }).status === 401) return null;
    throw err;
  }
}

/**
 * `client_credentials`: the caller's own client id and secret (Basic header or parameters) are
 * sent to the token endpoint; `audience` is passed along. Client selection does not apply.
 */
export async function clientCredentialsStep(rt: Runtime, rs: RequestState): Promise<Outcome | null> {
  const pair = await findPair(rt.cfg.client_credentials_param_type, rs.ctx.request, rs.body, 'client_id', 'client_secret');
  if (!pair) return null;
  const params = await grantParams(rt, rs);
  if (rt.cfg.audience && rt.cfg.audience.length > 0) params.audience = rt.cfg.audience.join(' ');
  const headers = tokenRequestHeaders(rt.cfg, rs.ctx.request);
  const key = rt.cfg.cache_tokens ? cacheKey(rt, 'client_credentials', [pair.id, pair.secret], params, headers) : null;
  const result = await viaCache(rt, rs, 'client_credentials', key, async (replay) => {
    const meta = await rt.issuer.metadata();
    // The caller authenticates as itself, with the method configured for the plugin's client
    // when it is a shared-secret one, else client_secret_basic (RFC 6749 §2.3.1).
    const method = rs.client ? rt.clients.authMethod(rs.client, 'token', meta) : 'client_secret_basic';
    const auth = method === 'client_secret_post' ? ClientSecretPost(pair.secret) : ClientSecretBasic(pair.secret);
    // With tls_client_auth the gateway's certificate is presented too (to the mTLS alias), so the
    // IdP can bind the caller's token to it (RFC 8705 §3).
    const mtls = rs.client ? rt.clients.mtlsCall(rs.client, 'token', meta) : null;
    const config = rt.clients.build(mtls?.meta ?? meta, pair.id, pair.secret, auth, { signal: rs.ctx.signal, headers, pools: mtls?.pools, onResponse: replayHook(rt.cfg, 'client_credentials', replay) }, mtls !== null);
    return genericGrantRequest(config, 'client_credentials', params);
  });
  return toOutcome(rt, rs, 'client_credentials', result, pair.sources);
}
