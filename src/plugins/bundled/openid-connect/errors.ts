/**
 * The one place where failures of the plugin (jose, openid-client, network) become gateway
 * errors, and where gateway errors become replies in Kong's shape:
 *
 * - 401 `{"message": unauthorized_error_message}` + `WWW-Authenticate: Bearer realm="..."`, with
 *   `error="invalid_token"` when a credential was presented (RFC 6750 §3, §3.1) and
 *   `expose_error_code` is on; no error code when no credential was sent at all.
 * - 403 `{"message": forbidden_error_message}` + `error="insufficient_scope"` (RFC 6750 §3.1).
 * - IdP unreachable, or any other unexpected failure → 500 `{"message":"An unexpected error
 *   occurred"}` as Kong answers (`display_errors` adds the reason, e.g. that the identity provider
 *   is unavailable; the log has the details).
 *
 * - With DPoP on (`proof_of_possession_dpop`), RFC 9449 challenges: `DPoP realm=..., error=...,
 *   algs="..."` (`invalid_dpop_proof`, `use_dpop_nonce`, plus the `DPoP-Nonce` the error
 *   carries); under `optional` other failures offer `Bearer` and `DPoP` both.
 *
 * `display_errors` adds a short, token-free reason to the body as `error_description`.
 */
import { GatewayError, isGatewayError } from '../../../errors.ts';

/** Why authentication failed, for the challenge header and `display_errors`. */
export type AuthFailure = 'no_credentials' | 'invalid_token' | 'invalid_request' | 'insufficient_scope' | DpopFailure;

/** RFC 9449 §7.1, §9: a proof the resource server does not accept, or one without the nonce it wants. */
export type DpopFailure = 'invalid_dpop_proof' | 'use_dpop_nonce';

/** A verification/authorization failure: 401 (or 403 for `insufficient_scope`). */
export function authError(failure: AuthFailure, reason: string, cause?: unknown, headers?: Record<string, string>): GatewayError {
  // RFC 6750 §3.1: a malformed request (e.g. a token sent in two places) is a 400.
  const status = failure === 'insufficient_scope' ? 403 : failure === 'invalid_request' ? 400 : 401;
  return new GatewayError(status === 403 ? 'GW_AUTH_FORBIDDEN' : failure === 'no_credentials' ? 'GW_AUTH_UNAUTHORIZED' : 'GW_AUTH_BAD_TOKEN', reason, {
    status,
    expose: true,
    detail: `${failure}: ${reason}`,
    cause,
    ...(headers ? { headers } : {}),
  });
}

/**
 * The IdP could not be reached or answered with garbage: Kong's 500 "An unexpected error
 * occurred" (the reason only with `display_errors`); the gateway keeps serving.
 */
export function idpUnavailable(what: string, cause?: unknown): GatewayError {
  return new GatewayError('GW_AUTH_IDP_UNAVAILABLE', 'The identity provider is unavailable', {
    status: 500,
    expose: false,
    detail: `${what}: ${describe(cause)}`,
    cause,
  });
}

/** Short, secret-free description of a foreign error for the log. */
export function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${err.name} ${code}: ${err.message}` : `${err.name}: ${err.message}`;
  }
  return String(err);
}

/**
 * Is this openid-client/oauth4webapi failure a network problem (IdP down, timeout, 5xx) rather
 * than the IdP rejecting the request (RFC 6749 §5.2 error response, 4xx)?
 */
export function isIdpOutage(err: unknown): boolean {
  if (isGatewayError(err)) return err.code === 'GW_AUTH_IDP_UNAVAILABLE';
  if (!(err instanceof Error)) return true;
  const e = err as Error & { code?: string; status?: number; error?: string; cause?: unknown };
  // An HTTP answer from the IdP: only 5xx means it is unwell; 4xx is a verdict on the request.
  if (typeof e.status === 'number') return e.status >= 500;
  if (e.name === 'ResponseBodyError' || typeof e.error === 'string') return typeof e.status === 'number' && e.status >= 500;
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return true;
  // A success answer that is not JSON or lacks required members: the IdP is unwell, not refusing.
  if (e.code === 'OAUTH_PARSE_ERROR' || e.code === 'OAUTH_INVALID_RESPONSE') return true;
  if (e.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' || e.code === 'OAUTH_RESPONSE_IS_NOT_JSON') {
    const status = (e.cause as { status?: number } | undefined)?.status;
    return status === undefined || status >= 500;
  }
  if (e.message === 'fetch failed' || e.name === 'TypeError') return true;
  if (e.cause) return isIdpOutage(e.cause);
  return false;
}

export interface ReplyOptions {
  unauthorizedMessage: string;
  forbiddenMessage: string;
  exposeErrorCode: boolean;
  displayErrors: boolean;
  realm: string;
  /**
   * DPoP in force (`proof_of_possession_dpop`): `strict` challenges with the `DPoP` scheme only,
   * `optional` with `Bearer` and `DPoP` both (RFC 9449 §7.1, §7.2); `algs` lists the accepted
   * proof algorithms.
   */
  dpop?: { mode: 'strict' | 'optional'; algs: string } | null;
}

export interface ErrorReply {
  status: number;
  body: { message: string; error_description?: string };
  headers: Record<string, string | string[]>;
}

/** Turn an error into the reply the client gets (no tokens, no secrets). */
export function toReply(err: unknown, opts: ReplyOptions): ErrorReply {
  const ge = isGatewayError(err) ? err : null;
  const status = ge?.status ?? 500;
  const headers: Record<string, string | string[]> = { ...ge?.headers };
  let message: string;
  if (status === 401 || status === 403 || (status === 400 && ge?.code === 'GW_AUTH_BAD_TOKEN')) {
    message = status === 403 ? opts.forbiddenMessage : status === 400 ? 'Bad Request' : opts.unauthorizedMessage;
    const failure = (ge?.detail ?? '').split(':')[0] as AuthFailure;
    const dpopFailure = failure === 'invalid_dpop_proof' || failure === 'use_dpop_nonce';
    const dpop = opts.dpop ?? null;
    const scheme = dpop !== null && (dpop.mode === 'strict' || dpopFailure) ? 'DPoP' : 'Bearer';
    // The realm is the request's Host: a client-chosen value, so quote it properly.
    const realm = `realm="${quotedStringContent(opts.realm)}"`;
    let challenge = `${scheme} ${realm}`;
    // A client cannot follow a nonce challenge it is not told about: use_dpop_nonce always shows.
    if ((opts.exposeErrorCode && failure !== 'no_credentials') || failure === 'use_dpop_nonce') {
      const code = status === 403 ? 'insufficient_scope' : failure === 'invalid_request' ? 'invalid_request' : dpopFailure ? failure : 'invalid_token';
      challenge += `, error="${code}"`;
      if (opts.displayErrors && ge) challenge += `, error_description="${quoteSafe(ge.message)}"`;
    }
    if (scheme === 'DPoP') challenge += `, algs="${dpop!.algs}"`;
    // optional: a plain bearer token is still welcome, and so is a DPoP-bound one (RFC 9449 §7.2).
    headers['www-authenticate'] = scheme === 'Bearer' && dpop !== null ? [challenge, `DPoP ${realm}, algs="${dpop.algs}"`] : challenge;
  } else if (ge && ge.expose) {
    message = ge.message;
  } else {
    message = 'An unexpected error occurred';
  }
  const body: ErrorReply['body'] = { message };
  if (opts.displayErrors && ge && ge.message !== message) body.error_description = ge.message;
  return { status, body, headers };
}

/**
 * The content of an RFC 9110 §5.6.4 quoted-string: `"` and `\` escaped, control characters
 * (which no header may carry) dropped.
 */
export function quotedStringContent(s: string): string {
  return s.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '').replace(/["\\]/g, '\\$&');
}

/** RFC 6750 §3: error_description allows no `"` or `\` at all (not even escaped). */
export function quoteSafe(s: string): string {
  return s.replace(/["\\\r\n]/g, ' ');
}
