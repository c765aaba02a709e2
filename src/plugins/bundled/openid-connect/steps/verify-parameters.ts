/**
 * `verify_parameters: true`: the plugin's configuration is checked against what the discovery
 * document says the IdP supports (OpenID Connect Discovery 1.0 §3, RFC 8414 §2), once per
 * discovered document. A list the IdP does not publish is not checked (the IdP made no promise).
 *
 * | field | checked against |
 * |---|---|
 * | `scopes` (each) | `scopes_supported` |
 * | `response_type` (joined by spaces) | `response_types_supported` |
 * | `response_mode` | `response_modes_supported` |
 * | `client_auth`, `token_endpoint_auth_method` | `token_endpoint_auth_methods_supported` |
 * | `introspection_endpoint_auth_method` | `introspection_endpoint_auth_methods_supported` |
 * | `revocation_endpoint_auth_method` | `revocation_endpoint_auth_methods_supported` |
 *
 * `auth_methods` is not compared with `grant_types_supported`: its default lists every grant,
 * including ones an IdP rarely advertises (`password`), whether the deployment uses them or not.
 *
 * A mismatch is the gateway's misconfiguration: every request gets Kong's 500, and the log names
 * the fields (so does `display_errors`).
 */
import type { ServerMetadata } from 'openid-client';
import { GatewayError } from '../../../../errors.ts';
import type { OidcConfig } from '../schema.ts';

/** The mismatches between `cfg` and `meta`, each naming the field (empty when none). */
export function parameterProblems(cfg: OidcConfig, meta: ServerMetadata): string[] {
  const problems: string[] = [];
  const check = (field: string, values: readonly string[], supported: unknown, list: string) => {
    if (!Array.isArray(supported)) return;
    for (const v of values) if (!supported.includes(v)) problems.push(`${field}: ${v} is not in the IdP's ${list}`);
  };
  check('scopes', cfg.scopes, meta.scopes_supported, 'scopes_supported');
  check('response_type', [cfg.response_type.join(' ')], meta.response_types_supported, 'response_types_supported');
  check('response_mode', [cfg.response_mode], meta.response_modes_supported, 'response_modes_supported');
  check('client_auth', cfg.client_auth ?? [], meta.token_endpoint_auth_methods_supported, 'token_endpoint_auth_methods_supported');
  check('token_endpoint_auth_method', cfg.token_endpoint_auth_method ? [cfg.token_endpoint_auth_method] : [], meta.token_endpoint_auth_methods_supported, 'token_endpoint_auth_methods_supported');
  check('introspection_endpoint_auth_method', cfg.introspection_endpoint_auth_method ? [cfg.introspection_endpoint_auth_method] : [], meta.introspection_endpoint_auth_methods_supported, 'introspection_endpoint_auth_methods_supported');
  check('revocation_endpoint_auth_method', cfg.revocation_endpoint_auth_method ? [cfg.revocation_endpoint_auth_method] : [], meta.revocation_endpoint_auth_methods_supported, 'revocation_endpoint_auth_methods_supported');
  return problems;
}

const checked = new WeakMap<object, string[]>();

/** Throws (500) when the configuration does not fit the discovery document; remembered per document. */
export function assertParameters(cfg: OidcConfig, meta: ServerMetadata): void {
  let problems = checked.get(meta);
  if (problems === undefined) {
    problems = parameterProblems(cfg, meta);
    checked.set(meta, problems);
  }
  if (problems.length > 0) {
    throw new GatewayError('GW_PLUGIN_FAILED', 'The plugin configuration does not match the identity provider', {
      status: 500,
      detail: `verify_parameters: ${problems.join('; ')}`,
    });
  }
}
