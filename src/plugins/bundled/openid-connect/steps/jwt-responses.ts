/**
 * JWT-formatted introspection and user info responses (`introspection_accept`,
 * `userinfo_accept`): RFC 9701 (`application/token-introspection+jwt`), the obsolete draft's
 * `application/jwt` introspection response, and signed user info (OpenID Connect Core §5.3.2).
 *
 * openid-client builds the request; it reads RFC 9701 answers itself (checking `typ`, `iss`, `aud`
 * and the `token_introspection` claim) but checks no signature. The response hook here verifies
 * the signature with the IdP's keys (the issuer cache, like every token) before openid-client
 * reads the answer, and keeps the JWT itself for the `*_jwt_header` headers; the other two forms
 * are handed on as the JSON they carry, once their `iss` (when present) is checked.
 * `ignore_signature` (`introspection`, `userinfo`) and `verify_signature: false` skip the
 * signature check.
 */
import { decodeJwt } from 'jose';
import type { Claims, Runtime } from '../runtime.ts';

/** What one call's hook learnt: the JWT the IdP answered with, or why it was refused. */
export interface JwtSink {
  jwt: string | null;
  /** Set when the JWT failed verification (the call then fails too). */
  rejected: string | null;
}

const jwtTypes = new Set(['application/jwt', 'application/token-introspection+jwt']);

/** The `Accept` header for the call, or null for plain JSON (openid-client's default). */
export function acceptFor(rt: Runtime, kind: 'introspection' | 'userinfo'): string | null {
  const accept = kind === 'introspection' ? rt.cfg.introspection_accept : rt.cfg.userinfo_accept;
  return accept === 'application/json' ? null : accept;
}

/**
 * The response hook of one introspection or user info call: a JWT answer is verified and
 * remembered in `sink`. The obsolete `application/jwt` introspection form (claims at the top
 * level, or under `token_introspection`) is handed on as the JSON it carries, since openid-client
 * reads only the RFC 9701 form.
 */
export function jwtResponseHook(rt: Runtime, kind: 'introspection' | 'userinfo', sink: JwtSink): (res: Response) => Promise<Response> {
  return async (res) => {
    const type = res.headers.get('content-type')?.split(';')[0].trim().toLowerCase() ?? '';
    if (res.status !== 200 || !jwtTypes.has(type)) return res;
    const jwt = (await res.text()).trim();
    const verify = rt.cfg.verify_signature && !rt.cfg.ignore_signature.includes(kind);
    if (verify) {
      try {
        // Signature (and the issuer allow-list) only: openid-client checks the response's claims.
        await rt.issuer.verifyJwt(jwt, { leewaySec: rt.cfg.leeway, verifyClaims: false, issuers: rt.cfg.issuers_allowed });
      } catch (err) {
        sink.rejected = `${kind} response signature: ${err instanceof Error ? err.message : String(err)}`;
        throw new Error(sink.rejected);
      }
    }
    sink.jwt = jwt;
    const headers = new Headers(res.headers);
    // RFC 9701: openid-client reads it itself (typ, iss, aud, the token_introspection claim).
    if (type === 'application/token-introspection+jwt') return new Response(jwt, { status: 200, headers });
    const payload = decodeJwt(jwt) as Claims;
    // OpenID Connect Core §5.3.2: a signed answer SHOULD name the issuer; when it does, it must be ours.
    const issuer = (await rt.issuer.metadata()).issuer;
    const allowed = rt.cfg.issuers_allowed && rt.cfg.issuers_allowed.length > 0 ? rt.cfg.issuers_allowed : [issuer];
    if (payload.iss !== undefined && !allowed.includes(String(payload.iss))) {
      sink.rejected = `${kind} response from another issuer`;
      throw new Error(sink.rejected);
    }
    // The obsolete introspection draft and signed user info: handed on as the JSON they carry
    // (openid-client then checks what it checks of a JSON answer: `active`, `sub`).
    const claims = kind === 'introspection' && typeof payload.token_introspection === 'object' && payload.token_introspection !== null ? payload.token_introspection : payload;
    headers.set('content-type', 'application/json');
    return new Response(JSON.stringify(claims), { status: 200, headers });
  };
}
