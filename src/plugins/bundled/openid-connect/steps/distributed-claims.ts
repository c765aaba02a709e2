/**
 * `resolve_distributed_claims: true`: distributed claims (OpenID Connect Core §5.6.2) are fetched
 * and merged into the claim set that refers to them: the access token's, the ID token's, the
 * introspection result or the user info. A claim set names them in `_claim_names` (claim → source)
 * and `_claim_sources` (source → `{endpoint, access_token}`); the gateway GETs each endpoint with
 * `Authorization: Bearer` the source's `access_token` (or, without one, the request's access
 * token) and reads the answer, a JWT, whose named claims join the set.
 *
 * The answer must be signed by a key the plugin trusts (the IdP's keys and `extra_jwks_uris`,
 * the issuer cache), unless `verify_signature: false`. A source that cannot be fetched or
 * verified contributes nothing (logged): its claims stay absent, so checks that need them fail
 * closed. Aggregated claims (a `JWT` inside `_claim_sources`) are read the same way, without a
 * fetch. Resolution is remembered per Outcome (a cached token resolves once).
 */
import { decodeJwt } from 'jose';
import { describe } from '../errors.ts';
import type { Claims, Outcome, RequestState, Runtime } from '../runtime.ts';

const resolved = new WeakMap<Outcome, Promise<Outcome>>();

/** The Outcome with its distributed claims resolved (the same Outcome when it has none). */
export function withDistributedClaims(rt: Runtime, rs: RequestState, o: Outcome): Promise<Outcome> {
  let p = resolved.get(o);
  if (p === undefined) {
    p = resolve(rt, rs, o);
    resolved.set(o, p);
  }
  return p;
}

function hasSources(c: Claims | null): c is Claims {
  return !!c && typeof c._claim_names === 'object' && c._claim_names !== null && typeof c._claim_sources === 'object' && c._claim_sources !== null;
}

async function resolve(rt: Runtime, rs: RequestState, o: Outcome): Promise<Outcome> {
  const sets = { accessClaims: o.accessClaims, idClaims: o.idClaims, introspection: o.introspection, userinfo: o.userinfo } as const;
  if (!Object.values(sets).some(hasSources)) return o;
  const out: Outcome = { ...o };
  for (const [field, claims] of Object.entries(sets) as [keyof typeof sets, Claims | null][]) {
    if (hasSources(claims)) out[field] = await resolveSet(rt, rs, claims, o.tokens.access_token ?? null);
  }
  return out;
}

async function resolveSet(rt: Runtime, rs: RequestState, claims: Claims, accessToken: string | null): Promise<Claims> {
  const names = claims._claim_names as Record<string, unknown>;
  const sources = claims._claim_sources as Record<string, { endpoint?: unknown; access_token?: unknown; JWT?: unknown }>;
  const merged: Claims = { ...claims };
  const bySource = new Map<string, string[]>();
  for (const [claim, source] of Object.entries(names)) {
    if (typeof source !== 'string') continue;
    bySource.set(source, [...(bySource.get(source) ?? []), claim]);
  }
  for (const [source, wanted] of bySource) {
    const spec = sources[source];
    if (!spec) continue;
    try {
      const jwt = typeof spec.JWT === 'string' ? spec.JWT : await fetchSource(rt, rs, spec, accessToken);
      const payload = await verified(rt, jwt);
      for (const claim of wanted) if (payload[claim] !== undefined) merged[claim] = payload[claim];
    } catch (err) {
      rt.log.warn({ source, err: describe(err) }, 'openid-connect: distributed claims not resolved');
    }
  }
  return merged;
}

async function fetchSource(rt: Runtime, rs: RequestState, spec: { endpoint?: unknown; access_token?: unknown }, accessToken: string | null): Promise<string> {
  if (typeof spec.endpoint !== 'string') throw new Error('source has no endpoint');
  const token = typeof spec.access_token === 'string' ? spec.access_token : accessToken;
  const headers: Record<string, string> = { accept: 'application/jwt' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await rt.http.fetchFor({ signal: rs.ctx.signal })(spec.endpoint, { method: 'GET', headers, body: undefined, redirect: 'manual' });
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new Error(`claims endpoint answered ${res.status}`);
  }
  return (await res.text()).trim();
}

async function verified(rt: Runtime, jwt: string): Promise<Claims> {
  if (!rt.cfg.verify_signature) return decodeJwt(jwt) as Claims;
  const v = await rt.issuer.verifyJwt(jwt, { leewaySec: rt.cfg.leeway, verifyClaims: false, issuers: null });
  return v.payload as Claims;
}
