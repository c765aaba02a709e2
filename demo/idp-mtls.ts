/**
 * The demo OpenID Provider over HTTPS with oidc-provider's mutual-TLS features (RFC 8705):
 * certificate-bound access tokens, `tls_client_auth` and `self_signed_tls_client_auth`.
 *
 * The issuer's own server does not ask for client certificates; a second HTTPS server (same
 * provider) does, and the discovery document lists it as `mtls_endpoint_aliases` (RFC 8705 §5),
 * as IdPs that run a separate mTLS host name do. A client certificate is accepted as
 * `tls_client_auth` when it chains to one of `ca` and its subject is the client's registered
 * `tls_client_auth_subject_dn`.
 */
import https from 'node:https';
import type http from 'node:http';
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { KoaContextWithOIDC } from 'oidc-provider';

export interface IdpMtlsOptions {
  /** The IdP's server certificate and key (PEM), for both servers. */
  cert: string;
  key: string;
  /** CAs of the `tls_client_auth` client certificates (PEM). */
  ca: string[];
  /** Publish `mtls_endpoint_aliases` in discovery (default true). */
  aliases?: boolean;
}

/** Both HTTPS servers, on the request listener of the provider. */
export function mtlsServers(o: IdpMtlsOptions, listener: http.RequestListener): { main: https.Server; mtls: https.Server } {
  return {
    main: https.createServer({ cert: o.cert, key: o.key }, listener),
    mtls: https.createServer({ cert: o.cert, key: o.key, ca: o.ca, requestCert: true, rejectUnauthorized: false }, listener),
  };
}

/** The client certificate of the request's TLS connection, if any. */
export function peerCertificate(ctx: KoaContextWithOIDC): X509Certificate | undefined {
  const socket = ctx.req.socket as TLSSocket;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const peer = socket.getPeerCertificate();
  return peer && peer.raw ? new X509Certificate(peer.raw) : undefined;
}

/** The provider options that switch mTLS on; `mtlsBase` is the mTLS server's origin. */
export function mtlsProviderOptions(o: IdpMtlsOptions, mtlsBase: string): { top: Record<string, unknown>; mTLS: Record<string, unknown> } {
  return {
    top: {
      clientAuthMethods: ['client_secret_basic', 'client_secret_jwt', 'client_secret_post', 'private_key_jwt', 'none', 'tls_client_auth', 'self_signed_tls_client_auth'],
      ...(o.aliases === false ? {} : {
        discovery: {
          mtls_endpoint_aliases: {
            token_endpoint: `${mtlsBase}/token`,
            introspection_endpoint: `${mtlsBase}/token/introspection`,
            revocation_endpoint: `${mtlsBase}/token/revocation`,
            userinfo_endpoint: `${mtlsBase}/me`,
          },
        },
      }),
    },
    mTLS: {
      enabled: true,
      certificateBoundAccessTokens: true,
      tlsClientAuth: true,
      selfSignedTlsClientAuth: true,
      getCertificate: peerCertificate,
      certificateAuthorized: (ctx: KoaContextWithOIDC) => (ctx.req.socket as TLSSocket).authorized === true,
      certificateSubjectMatches: (ctx: KoaContextWithOIDC, property: string, expected: string) =>
        property === 'tls_client_auth_subject_dn' && peerCertificate(ctx)?.subject === expected,
    },
  };
}
