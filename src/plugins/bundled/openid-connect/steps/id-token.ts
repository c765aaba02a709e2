/**
 * ID tokens: the one a client sends with its request (`id_token_param_name` in the
 * `id_token_param_type` locations) and the key that signed an ID token (`*_id_token_jwk_header`).
 *
 * A client-sent ID token is verified as OpenID Connect Core §3.1.3.7 describes for the claims
 * the gateway can check: signature with the IdP's keys, `iss` (the issuer or `issuers_allowed`),
 * `aud` containing the selected client's id, `exp`/`iat`/`nbf` with `leeway` (unless
 * `verify_claims: false`). It then is the request's ID token: its claims are a source for
 * consumer mapping and headers, and `upstream_id_token_header` forwards it. An ID token that
 * does not verify is a 401 `invalid_token`; none sent changes nothing.
 */
import type { JWK } from 'jose';
import { authError } from '../errors.ts';
import type { Claims, Outcome, RequestState, Runtime } from '../runtime.ts';
import { findIdToken } from './find-credential.ts';

/** Whether a header wants the JWK that verified the ID token. */
export function wantsIdJwk(rt: Runtime): boolean {
  return !!(rt.cfg.upstream_id_token_jwk_header || rt.cfg.downstream_id_token_jwk_header);
}

/** Verify an ID token with the IdP's keys (see above); `audience` is checked when given. */
export async function verifyIdToken(rt: Runtime, rs: RequestState, token: string, audience: string | null = null): Promise<{ claims: Claims; jwk: JWK | null }> {
  const cfg = rt.cfg;
  const verified = await rt.issuer.verifyJwt(token, {
    issuers: cfg.issuers_allowed,
    leewaySec: cfg.leeway,
    hmacSecret: cfg.enable_hs_signatures ? (rs.client?.secret ?? null) : null,
    verifyClaims: cfg.verify_claims,
    verifySignature: cfg.verify_signature,
    wantJwk: wantsIdJwk(rt),
    audience: cfg.verify_claims ? audience : null,
  });
  return { claims: verified.payload as Claims, jwk: verified.jwk ?? null };
}

/**
 * The request's own ID token (`id_token_param_name`), added to the Outcome of the credential
 * search. Returns the Outcome to use (the same one when the request carries no ID token).
 */
export async function withRequestIdToken(rt: Runtime, rs: RequestState, o: Outcome): Promise<Outcome> {
  const found = await findIdToken(rt.cfg, rs.ctx.request, rs.body);
  if (found === null) return o;
  let verified: { claims: Claims; jwk: JWK | null };
  try {
    verified = await verifyIdToken(rt, rs, found.token, rs.client?.id ?? null);
  } catch (err) {
    throw authError('invalid_token', `id token: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  return {
    ...o,
    tokens: { ...o.tokens, id_token: found.token },
    idClaims: verified.claims,
    ...(verified.jwk ? { idJwk: verified.jwk } : {}),
    used: [...o.used, { location: found.location, name: found.name }],
  };
}
