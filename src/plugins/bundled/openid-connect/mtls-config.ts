/**
 * Configuration checks of the mutual-TLS features (RFC 8705), run by the schema's superRefine:
 * `tls_client_auth` / `self_signed_tls_client_auth` need a client certificate, mTLS proof of
 * possession allows only the compatible `auth_methods` (unless the validation is switched off),
 * and the `proof_of_possession_mtls_from_header` fields that only matter for OCSP/CRL
 * revocation checks (not implemented) are refused unless left at their defaults.
 */
import type { z } from 'zod';

/** The fields these checks read (a structural type: the schema module imports this one). */
interface MtlsFields {
  client_auth: readonly string[] | null;
  token_endpoint_auth_method: string | null;
  introspection_endpoint_auth_method: string | null;
  revocation_endpoint_auth_method: string | null;
  pushed_authorization_request_endpoint_auth_method: string | null;
  tls_client_auth_cert_id: string | null;
  auth_methods: readonly string[];
  proof_of_possession_mtls: string;
  proof_of_possession_auth_methods_validation: boolean;
  proof_of_possession_mtls_from_header: { revocation_check_mode: string } | null;
}

export interface MtlsIssue {
  path: (string | number)[];
  message: string;
}

/** Client authentication methods that present a client certificate (RFC 8705 §2). */
export const tlsClientAuthMethods: ReadonlySet<string> = new Set(['tls_client_auth', 'self_signed_tls_client_auth']);

const endpointAuthFields = ['token_endpoint_auth_method', 'introspection_endpoint_auth_method', 'revocation_endpoint_auth_method', 'pushed_authorization_request_endpoint_auth_method'] as const;
const popCompatible = new Set(['bearer', 'introspection', 'session']);

/**
 * The refusal of a `proof_of_possession_mtls_from_header` field that only OCSP/CRL revocation
 * checks use (applied to the field itself, so it is named even when the record has other
 * problems): any value but the default is refused.
 */
export function revocationOnly<T extends z.ZodType>(type: T, dflt: unknown): T {
  return type.refine((v) => v === dflt, { message: `not supported: used only by OCSP/CRL revocation checks, which are not implemented (only ${JSON.stringify(dflt)} is accepted)` }) as unknown as T;
}

const skipOnly = 'not supported (OCSP/CRL revocation checks are not implemented); set SKIP';

/** `revocation_check_mode`: SKIP only (a given value; the default is refused by `mtlsIssues`). */
export function skipRevocation<T extends z.ZodType>(type: T): T {
  return type.refine((v) => v === 'SKIP', { message: skipOnly }) as unknown as T;
}

export function mtlsIssues(cfg: MtlsFields): MtlsIssue[] {
  const out: MtlsIssue[] = [];
  const usesTls = (cfg.client_auth ?? []).some((m) => tlsClientAuthMethods.has(m)) || endpointAuthFields.some((f) => tlsClientAuthMethods.has(cfg[f] ?? ''));
  if (usesTls && !cfg.tls_client_auth_cert_id) {
    out.push({ path: ['tls_client_auth_cert_id'], message: 'required when tls_client_auth or self_signed_tls_client_auth is used (the id of a certificate entity to present to the identity provider)' });
  }
  if (cfg.proof_of_possession_mtls !== 'off' && cfg.proof_of_possession_auth_methods_validation) {
    cfg.auth_methods.forEach((m, i) => {
      if (!popCompatible.has(m)) {
        out.push({ path: ['auth_methods', i], message: `${m}: not compatible with proof_of_possession_mtls (only bearer, introspection and session are; or set proof_of_possession_auth_methods_validation to false)` });
      }
    });
  }
  // Kong's default (IGNORE_CA_ERROR) checks revocation: refused too, so it must be set to SKIP.
  const h = cfg.proof_of_possession_mtls_from_header;
  if (h && h.revocation_check_mode !== 'SKIP') {
    out.push({ path: ['proof_of_possession_mtls_from_header', 'revocation_check_mode'], message: `${h.revocation_check_mode}: ${skipOnly}` });
  }
  return out;
}
