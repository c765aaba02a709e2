/**
 * Configuration checks of the mutual-TLS features (RFC 8705), run by the schema's superRefine:
 * `tls_client_auth` / `self_signed_tls_client_auth` need a client certificate, mTLS proof of
 * possession allows only the compatible `auth_methods` (unless the validation is switched off),
 * and the forward proxy of the header certificate's revocation checks is a host and a port.
 */

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
  proof_of_possession_mtls_from_header: {
    http_proxy_host: string | null;
    http_proxy_port: number | null;
    https_proxy_host: string | null;
    https_proxy_port: number | null;
  } | null;
}

export interface MtlsIssue {
  path: (string | number)[];
  message: string;
}

/** Client authentication methods that present a client certificate (RFC 8705 §2). */
export const tlsClientAuthMethods: ReadonlySet<string> = new Set(['tls_client_auth', 'self_signed_tls_client_auth']);

const endpointAuthFields = ['token_endpoint_auth_method', 'introspection_endpoint_auth_method', 'revocation_endpoint_auth_method', 'pushed_authorization_request_endpoint_auth_method'] as const;
const popCompatible = new Set(['bearer', 'introspection', 'session']);

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
  // The revocation checks' forward proxies: a host needs its port and the other way round.
  const h = cfg.proof_of_possession_mtls_from_header;
  if (h) {
    for (const scheme of ['http', 'https'] as const) {
      const host = h[`${scheme}_proxy_host`];
      const port = h[`${scheme}_proxy_port`];
      if ((host === null) !== (port === null)) {
        const missing = host === null ? `${scheme}_proxy_host` : `${scheme}_proxy_port`;
        out.push({ path: ['proof_of_possession_mtls_from_header', missing], message: `required with ${host === null ? `${scheme}_proxy_port` : `${scheme}_proxy_host`} (the forward proxy of the revocation checks is a host and a port)` });
      }
    }
  }
  return out;
}
