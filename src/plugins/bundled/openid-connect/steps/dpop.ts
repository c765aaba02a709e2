/**
 * DPoP (RFC 9449), `proof_of_possession_dpop`: the proof of possession step after the credential
 * search. For the PoP-compatible methods (`bearer`, `introspection`, and `session` when the
 * session was made by one of those) the request must carry one `DPoP` proof that
 *
 * - is a JWT with `typ: dpop+jwt`, an asymmetric `alg` (`dpopAlgs`) and a public `jwk` in its
 *   header, signed by that key (imported once per key, see `proofKey`);
 * - names this request: `htm` = the method, `htu` = the URL the client sent it to (scheme, host,
 *   port, path; no query or fragment), and `ath` = the access token's SHA-256 (RFC 9449 §4.3);
 * - is fresh: made (`iat`, or the server nonce's issue time with `dpop_use_nonce`) no longer than
 *   `dpop_proof_lifetime` (+ `leeway`) ago, and its `jti` never seen before in that window
 *   (dpop-state.ts: shared by workers and, through Redis, by nodes);
 * - is signed with the key the token is bound to: the token's `cnf.jkt` (from the JWT, or from
 *   introspection for opaque tokens) equals the proof key's RFC 7638 thumbprint.
 *
 * `strict`: every such request needs a proof and a DPoP-bound token. `optional`: only tokens
 * bound to a key (`cnf.jkt`) need a proof; others pass as plain bearer tokens. A bound token must
 * come as `Authorization: DPoP <token>` (RFC 9449 §7.1: no downgrade to Bearer). On success the
 * `DPoP` header is removed and the upstream sees `Authorization: Bearer <token>` (Kong).
 * Failures are 401s with a `WWW-Authenticate: DPoP ... algs="..."` challenge (errors.ts).
 */
import { hash } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, errors, importJWK, jwtVerify, type CryptoKey, type JWK, type KeyObject } from 'jose';
import type { IncomingView } from '../../../sdk.ts';
import { popCompatibleMethods as popMethods, type AuthMethod } from '../schema.ts';
import { authError } from '../errors.ts';
import { isGatewayError } from '../../../../errors.ts';
import { TtlCache } from '../caches.ts';
import type { Claims, FoundToken, Outcome, RequestState, Runtime, Sync } from '../runtime.ts';

/** Proof algorithms accepted (asymmetric only: never `none` or HS*), as advertised in `algs`. */
export const dpopAlgs: readonly string[] = ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512'];
export const dpopAlgsText = dpopAlgs.join(' ');


/** JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037). */
const privateMembers = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** Proofs longer than this are refused before parsing (a proof is a few hundred bytes). */
const MAX_PROOF_LENGTH = 8 * 1024;

/**
 * Proof keys seen recently, by alg and JWK text: the imported public key and its RFC 7638
 * thumbprint. A client signs every proof with the same key, and importing it and hashing it cost
 * more than half of a proof's check (bench/NOTES.md). Pure functions of the JWK: shared by all
 * plugin instances, bounded.
 */
const proofKeys = new TtlCache<Promise<{ key: CryptoKey | KeyObject; jkt: string }>>({ maxEntries: 1000 });

/** The proof's public key (as jose's `EmbeddedJWK` would import it) and its thumbprint; throws on a bad JWK. */
function proofKey(jwk: JWK, alg: string): Promise<{ key: CryptoKey | KeyObject; jkt: string }> {
  const id = `${alg} ${JSON.stringify(jwk)}`;
  let entry = proofKeys.get(id);
  if (entry === undefined) {
    entry = (async () => {
      if (jwk.use !== undefined && jwk.use !== 'sig') throw new errors.JWKInvalid('jwk "use" must be "sig" when present');
      if (jwk.alg !== undefined && jwk.alg !== alg) throw new errors.JWKInvalid('jwk "alg" must be the proof alg when present');
      // (WebCrypto refuses a malformed key with a DOMException: it is the client's bad JWK all the same.)
      const key = await importJWK({ ...jwk, ext: true }, alg).catch((cause: unknown) => {
        throw cause instanceof errors.JOSEError ? cause : new errors.JWKInvalid('jwk cannot be imported', { cause });
      });
      if (key instanceof Uint8Array || key.type !== 'public') throw new errors.JWKInvalid('jwk must be a public key');
      return { key, jkt: await calculateJwkThumbprint(jwk, 'sha256') };
    })();
    proofKeys.set(id, entry, 3_600_000);
    // A JWK that cannot be imported is not remembered.
    entry.catch(() => proofKeys.delete(id));
  }
  return entry;
}

/** A refused proof; with nonces on, the reply carries a fresh one for the client's next try. */
function refuse(failure: 'invalid_dpop_proof' | 'use_dpop_nonce' | 'invalid_token', reason: string, nonce: string | null, cause?: unknown): Error {
  return authError(failure, reason, cause, nonce !== null ? { 'dpop-nonce': nonce } : undefined);
}

/**
 * The URL the client sent the request to, for `htu` (RFC 9449 §4.3 check 9): the request's
 * scheme (X-Forwarded-Proto already applied for trusted peers), its Host (or, from a trusted
 * peer, X-Forwarded-Host and X-Forwarded-Port) and its path, without the query.
 */
export function requestUrl(req: IncomingView): URL | null {
  let authority = req.header('host') ?? req.header(':authority') ?? `${req.host}:${req.port}`;
  if (req.trusted) {
    const xfh = req.header('x-forwarded-host');
    if (xfh) {
      authority = xfh.split(',')[0].trim();
      const xfp = req.header('x-forwarded-port');
      if (xfp && /^\d+$/.test(xfp.trim()) && !/:\d+$/.test(authority)) authority += `:${xfp.trim()}`;
    }
  }
  return URL.parse(`${req.scheme}://${authority}${req.path}`);
}

/** `htu` names `expected`: same scheme, host, port and path after URL normalization; query and fragment ignored. */
export function htuMatches(htu: string, expected: URL): boolean {
  const u = URL.parse(htu);
  if (u === null) return false;
  return u.protocol === expected.protocol && u.host === expected.host && u.pathname === expected.pathname;
}

/** base64url SHA-256 of the access token (the `ath` claim, RFC 9449 §4.2). */
export function accessTokenHash(token: string): string {
  return hash('sha256', token, 'base64url');
}

/** The key a token is bound to (`cnf.jkt`, RFC 9449 §6), from introspection or the JWT itself. */
export function boundKey(o: Outcome): string | null {
  for (const claims of [o.introspection, o.accessClaims] as (Claims | null)[]) {
    const cnf = claims?.cnf;
    if (cnf !== null && typeof cnf === 'object') {
      const jkt = (cnf as Record<string, unknown>).jkt;
      if (typeof jkt === 'string' && jkt !== '') return jkt;
    }
  }
  return null;
}

export interface CheckedProof {
  /** RFC 7638 thumbprint of the proof key. */
  jkt: string;
  jti: string;
  iat: number;
  nonce: string | null;
}

/**
 * Checks one proof against the request (RFC 9449 §4.3): everything but freshness, nonce, replay
 * and the token binding, which need the clock and the shared state. Throws `invalid_dpop_proof`.
 */
export async function checkProof(proof: string, method: string, url: URL | null, accessToken: string | null, nonce: string | null): Promise<CheckedProof> {
  const bad = (reason: string, cause?: unknown) => refuse('invalid_dpop_proof', reason, nonce, cause);
  if (proof.length > MAX_PROOF_LENGTH) throw bad('DPoP proof too large');
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(proof);
  } catch (err) {
    throw bad('DPoP proof is not a JWT', err);
  }
  if (header.typ !== 'dpop+jwt') throw bad('DPoP proof typ must be dpop+jwt');
  if (typeof header.alg !== 'string' || !dpopAlgs.includes(header.alg)) throw bad('DPoP proof alg is not an accepted asymmetric algorithm');
  const jwk = header.jwk as JWK | undefined;
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) throw bad('DPoP proof has no jwk header');
  if (jwk.kty === 'oct' || privateMembers.some((m) => m in jwk)) throw bad('DPoP proof jwk must be a public key');
  let payload: Record<string, unknown>;
  let jkt: string;
  try {
    const k = await proofKey(jwk, header.alg);
    jkt = k.jkt;
    ({ payload } = await jwtVerify(proof, k.key, { typ: 'dpop+jwt', algorithms: [header.alg] }));
  } catch (err) {
    if (err instanceof errors.JWTClaimValidationFailed) throw bad(`DPoP proof ${err.claim} claim is invalid`, err);
    if (err instanceof errors.JOSEError) throw bad('DPoP proof signature or format is invalid', err);
    throw err;
  }
  const { jti, htm, htu, iat, ath } = payload;
  if (typeof jti !== 'string' || jti === '' || jti.length > 256) throw bad('DPoP proof jti is missing or longer than 256 characters');
  if (htm !== method) throw bad('DPoP proof htm does not match the request method');
  if (typeof htu !== 'string' || url === null || !htuMatches(htu, url)) throw bad('DPoP proof htu does not match the request URL');
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw bad('DPoP proof iat is missing');
  if (accessToken !== null && ath !== accessTokenHash(accessToken)) throw bad('DPoP proof ath does not match the access token');
  const n = payload.nonce;
  return { jkt, jti, iat, nonce: typeof n === 'string' ? n : null };
}

/** The DPoP header's proofs: none, one, or (joined by node:http with ", ") several. */
function proofsOf(req: IncomingView): string[] {
  const v = req.headers.dpop;
  if (v === undefined) return [];
  const all = Array.isArray(v) ? v : [v];
  return all.flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '');
}

/**
 * The proof of possession step (after the credential search). Synchronous when nothing is to be
 * checked (DPoP `optional` and an unbound token without a proof); otherwise a Promise.
 */
export function dpopStep(rt: Runtime, rs: RequestState, o: Outcome): Sync<undefined> {
  const cfg = rt.cfg;
  // Methods incompatible with PoP (allowed only with proof_of_possession_auth_methods_validation
  // false) are not checked, as Kong; a session only when a compatible method made it.
  if (!popMethods.has(o.method)) return undefined;
  if (o.method === 'session' && !(rs.session !== null && popMethods.has(rs.session.method as AuthMethod))) return undefined;
  const jkt = boundKey(o);
  const req = rs.ctx.request;
  if (jkt === null && cfg.proof_of_possession_dpop === 'optional') {
    if (req.headers.dpop === undefined && !req.headers.authorization?.slice(0, 5).toLowerCase().startsWith('dpop')) return undefined;
    return bearerForUpstream(rs, o.method === 'session' ? null : rs.bearer(), o);
  }
  return verify(rt, rs, o, jkt);
}

/** Success: the upstream gets `Authorization: Bearer <token>` instead of `DPoP`, and no `DPoP` header (Kong). */
function bearerForUpstream(rs: RequestState, found: Sync<FoundToken | null>, o: Outcome): Sync<undefined> {
  if (found instanceof Promise) return found.then((f) => bearerForUpstream(rs, f, o));
  const up = rs.ctx.upstream;
  up.removeHeader('dpop');
  if (found?.scheme === 'dpop' && o.tokens.access_token) up.setHeader('authorization', `Bearer ${o.tokens.access_token}`);
  return undefined;
}

/** `checkRequest`, with its refusals counted (`portcullis_oidc_auth_failures_total{reason="dpop_*"}`). */
async function verify(rt: Runtime, rs: RequestState, o: Outcome, jkt: string | null): Promise<undefined> {
  try {
    return await checkRequest(rt, rs, o, jkt);
  } catch (err) {
    if (isGatewayError(err) && err.status === 401) rt.http.metrics?.authFailure(err.detail?.startsWith('use_dpop_nonce') ? 'dpop_nonce' : 'dpop_proof');
    throw err;
  }
}

async function checkRequest(rt: Runtime, rs: RequestState, o: Outcome, jkt: string | null): Promise<undefined> {
  const cfg = rt.cfg;
  const state = rt.dpop!;
  const useNonce = cfg.dpop_use_nonce;
  const serverNonce = useNonce ? await state.nonce() : null;
  const found = o.method === 'session' ? null : await rs.bearer();
  const req = rs.ctx.request;
  const proofs = proofsOf(req);
  if (proofs.length === 0) throw refuse('invalid_dpop_proof', 'DPoP proof missing', serverNonce);
  if (proofs.length > 1) throw refuse('invalid_dpop_proof', 'more than one DPoP proof', serverNonce);
  // A bound token must come with the DPoP scheme (RFC 9449 §7.1), not as a bearer token.
  if (jkt !== null && found !== null && found.scheme !== 'dpop') throw refuse('invalid_token', 'a DPoP-bound token must be sent as Authorization: DPoP', serverNonce);
  const token = o.tokens.access_token ?? null;
  const proof = await checkProof(proofs[0], req.method, requestUrl(req), token, serverNonce);

  const nowSec = rt.now() / 1000;
  const leeway = cfg.leeway;
  let made = proof.iat;
  if (useNonce) {
    if (proof.nonce === null) throw refuse('use_dpop_nonce', 'DPoP proof has no nonce', serverNonce);
    const issued = await state.nonceIssuedAt(proof.nonce);
    if (issued === null) throw refuse('use_dpop_nonce', 'DPoP nonce not issued here', serverNonce);
    made = issued / 1000;
    if (nowSec - made > cfg.dpop_proof_lifetime + leeway) throw refuse('use_dpop_nonce', 'DPoP nonce expired', serverNonce);
  }
  // The proof's own clock must not run ahead, whatever dates it.
  if (proof.iat > nowSec + leeway) throw refuse('invalid_dpop_proof', 'DPoP proof iat is in the future', serverNonce);
  if (nowSec - made > cfg.dpop_proof_lifetime + leeway) throw refuse('invalid_dpop_proof', 'DPoP proof is too old', serverNonce);
  if (jkt === null) throw refuse('invalid_token', 'the token is not DPoP-bound (no cnf.jkt)', serverNonce);
  if (proof.jkt !== jkt) throw refuse('invalid_dpop_proof', "DPoP proof key is not the token's cnf.jkt", serverNonce);
  if (await state.replayed(proof.jkt, proof.jti)) throw refuse('invalid_dpop_proof', 'DPoP proof jti already used', serverNonce);

  // A nonce near its end is replaced now, on a success, so the client's next proof needs no retry.
  if (useNonce && (nowSec - made) * 1000 >= state.rotateMs) rs.ctx.downstreamHeaders.set('dpop-nonce', serverNonce!);
  bearerForUpstream(rs, found, o);
  return undefined;
}
