/**
 * Mutual-TLS client authentication to the identity provider (RFC 8705 §2, `tls_client_auth` and
 * `self_signed_tls_client_auth`): the gateway's calls present the client certificate of the
 * certificate entity `tls_client_auth_cert_id` (looked up in the request's entity snapshot, so
 * a certificate replaced through the Admin API is used from the next call on), verify the IdP's
 * certificate per `tls_client_auth_ssl_verify`, and go to the mTLS endpoint aliases (RFC 8705
 * §5): `mtls_token_endpoint` / `mtls_introspection_endpoint` / `mtls_revocation_endpoint`, else
 * the discovery document's `mtls_endpoint_aliases`, else the regular endpoint.
 */
import { hash } from 'node:crypto';
import type { ServerMetadata } from 'openid-client';
import { GatewayError } from '../../../errors.ts';
import type { EntityLookup } from '../../sdk.ts';
import type { IdpHttp, IdpPools } from './http.ts';
import { tlsClientAuthMethods } from './mtls-config.ts';
import type { OidcConfig } from './schema.ts';

export { tlsClientAuthMethods };

/**
 * What an mTLS call changes: the metadata with the aliases to use, and the pools that present the
 * certificate (direct, or through the configured proxy: the IdP client chooses as for any call).
 */
export interface MtlsCall {
  meta: ServerMetadata;
  pools: IdpPools;
}

/** The metadata with the configured mTLS aliases over the discovered ones. */
export function withMtlsAliases(cfg: OidcConfig, meta: ServerMetadata): ServerMetadata {
  const configured: Record<string, string> = {};
  if (cfg.mtls_token_endpoint) configured.token_endpoint = cfg.mtls_token_endpoint;
  if (cfg.mtls_introspection_endpoint) configured.introspection_endpoint = cfg.mtls_introspection_endpoint;
  if (cfg.mtls_revocation_endpoint) configured.revocation_endpoint = cfg.mtls_revocation_endpoint;
  if (Object.keys(configured).length === 0) return meta;
  return { ...meta, mtls_endpoint_aliases: { ...meta.mtls_endpoint_aliases, ...configured } };
}

/**
 * Resolves the client certificate of `tls_client_auth_cert_id` in the newest entity snapshot a
 * request brought (`use`), and gives the pools presenting it.
 */
export class MtlsClient {
  readonly #cfg: OidcConfig;
  readonly #http: IdpHttp;
  #entities: EntityLookup | null = null;
  readonly #aliased = new WeakMap<ServerMetadata, ServerMetadata>();
  /** The version of each certificate entity object seen (entity snapshots are immutable). */
  readonly #versions = new WeakMap<object, string>();

  constructor(cfg: OidcConfig, http: IdpHttp) {
    this.#cfg = cfg;
    this.#http = http;
  }

  /** The entities of the request being served (the newest snapshot the instance has seen). */
  use(entities: EntityLookup): void {
    this.#entities = entities;
  }

  /** The metadata and pools for a call made with `method`, or null when it is not an mTLS method. */
  call(method: string, meta: ServerMetadata): MtlsCall | null {
    if (!tlsClientAuthMethods.has(method)) return null;
    const id = this.#cfg.tls_client_auth_cert_id;
    const cert = id && this.#entities ? this.#entities.certificateById(id) : null;
    if (cert === null) {
      throw new GatewayError('GW_PLUGIN_FAILED', 'The client authentication to the identity provider is misconfigured', {
        status: 500,
        detail: `${method}: tls_client_auth_cert_id: no certificate with id ${String(id)}`,
      });
    }
    // A reload may replace the entity without a new updated_at (DB-less): the content counts too.
    let version = this.#versions.get(cert);
    if (version === undefined) this.#versions.set(cert, (version = `${cert.updated_at}:${hash('sha256', `${cert.cert}\0${cert.key}`, 'base64url')}`));
    const pools = this.#http.mtlsPools({ certId: cert.id, version, cert: cert.cert, key: cert.key, verify: this.#cfg.tls_client_auth_ssl_verify });
    let aliased = this.#aliased.get(meta);
    if (aliased === undefined) {
      aliased = withMtlsAliases(this.#cfg, meta);
      if (aliased.mtls_endpoint_aliases) this.#http.learn(aliased.mtls_endpoint_aliases as Record<string, unknown>);
      this.#aliased.set(meta, aliased);
    }
    return { meta: aliased, pools };
  }
}
