/**
 * One undici Pool per upstream origin and TLS setting, shared across Snapshots: a reload that
 * keeps a service keeps its warm keep-alive connections.
 */
import { createHash } from 'node:crypto';
import tls, { type PeerCertificate } from 'node:tls';
import { Pool } from 'undici';
import type { Service } from '../config/types.ts';
import { H1Pool, h1Available } from './h1.ts';
import { GrpcClient } from './grpc.ts';

export interface UpstreamTarget {
  readonly key: string;
  readonly origin: string;
  readonly pool: Pool;
  /** Host header value when preserve_host is off (port omitted when default for the scheme). */
  readonly hostHeader: string;
  readonly secure: boolean;
  /** The lean HTTP/1.1 client for body-less requests to a plain-HTTP upstream (null: undici only). */
  readonly h1: H1Pool | null;
  /** The HTTP/2 client of a grpc/grpcs service (null for the others). */
  readonly grpc: GrpcClient | null;
}

export interface PoolSettings {
  /** Verify upstream TLS certificates when a service leaves tls_verify unset (Kong: off). */
  tlsVerifyDefault: boolean;
  /** Extra trusted CAs (PEM) for upstream TLS. */
  ca?: string;
  /** Keep-alive connections per pool. */
  connections?: number;
  keepAliveTimeout?: number;
  /** Use the lean client (src/proxy/h1.ts) where it applies (default true). */
  leanClient?: boolean;
}

/** A service's TLS material resolved from entities: CA certificates (PEM) and its client certificate. */
export interface UpstreamTls {
  /** PEM of each CA certificate entity in `services.ca_certificates`. */
  ca: readonly string[];
  /** `services.client_certificate` (mTLS to the upstream). */
  clientCert: { cert: string; key: string } | null;
}

function keyFor(s: Service, settings: PoolSettings, host: string, port: number, hostHeader: string | null, material: UpstreamTls | null): string {
  const verify = s.tls_verify ?? settings.tlsVerifyDefault;
  const m = material === null ? '' : createHash('sha256').update(`${material.ca.join('\n')}|${material.clientCert?.cert ?? ''}|${material.clientCert?.key ?? ''}`).digest('base64url');
  return `${s.protocol}|${host}|${port}|${hostHeader ?? ''}|${s.connect_timeout}|${verify}|${s.tls_verify_depth ?? ''}|${m}`;
}

/**
 * nginx's proxy_ssl_verify_depth: the verified chain may have at most `depth` certificates above
 * the upstream's own (depth 1: the leaf and its issuer).
 */
export function depthCheck(depth: number): (host: string, cert: PeerCertificate) => Error | undefined {
  return (host, cert) => {
    const identity = tls.checkServerIdentity(host, cert);
    if (identity !== undefined) return identity;
    let above = 0;
    let c = cert as PeerCertificate & { issuerCertificate?: PeerCertificate };
    while (c.issuerCertificate !== undefined && c.issuerCertificate !== c && !c.issuerCertificate.raw.equals(c.raw)) {
      above++;
      c = c.issuerCertificate as PeerCertificate & { issuerCertificate?: PeerCertificate };
    }
    if (above > depth) return Object.assign(new Error(`certificate chain too long (${above + 1} certificates, tls_verify_depth ${depth})`), { code: 'ERR_TLS_CERT_CHAIN_TOO_LONG' });
    return undefined;
  };
}

export class ProxyPools {
  readonly #pools = new Map<string, UpstreamTarget>();
  readonly #settings: PoolSettings;

  constructor(settings: PoolSettings) {
    this.#settings = settings;
  }

  /** The pool of a service's own host and port. */
  target(s: Service, material: UpstreamTls | null = null): UpstreamTarget {
    return this.targetAt(s, s.host, s.port, null, material);
  }

  /**
   * The pool of one balancer address for a service: `address`/`port` to connect to, and the Host
   * header (and TLS server name) to use there — null: the address itself, as for a plain service
   * host.
   */
  targetAt(s: Service, address: string, port: number, hostHeader: string | null, material: UpstreamTls | null = null): UpstreamTarget {
    const key = keyFor(s, this.#settings, address, port, hostHeader, material);
    let t = this.#pools.get(key);
    if (t !== undefined) return t;
    const secure = s.protocol === 'https' || s.protocol === 'wss' || s.protocol === 'grpcs';
    const scheme = secure ? 'https' : 'http';
    const host = address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
    const origin = `${scheme}://${host}:${port}`;
    const defaultPort = secure ? 443 : 80;
    const nameHost = hostHeader === null ? address : hostHeader.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
    const verify = s.tls_verify ?? this.#settings.tlsVerifyDefault;
    // The service's CA certificates replace the default trust store, as nginx's
    // proxy_ssl_trusted_certificate does; PORTCULLIS_UPSTREAM_CA_FILE is added to either.
    const ca = [...(material?.ca ?? []), ...(this.#settings.ca ? [this.#settings.ca] : [])];
    const secureOptions = {
      rejectUnauthorized: verify,
      servername: /^[\d.]+$|:/.test(nameHost) ? undefined : nameHost,
      ...(ca.length > 0 ? { ca } : {}),
      ...(material?.clientCert ? { cert: material.clientCert.cert, key: material.clientCert.key } : {}),
      ...(verify && s.tls_verify_depth !== null ? { checkServerIdentity: depthCheck(s.tls_verify_depth) } : {}),
    };
    const pool = new Pool(origin, {
      connections: this.#settings.connections ?? 128,
      keepAliveTimeout: this.#settings.keepAliveTimeout ?? 60_000,
      pipelining: 1,
      connect: {
        timeout: s.connect_timeout,
        ...(secure ? secureOptions : {}),
      },
    });
    const grpcProtocol = s.protocol === 'grpc' || s.protocol === 'grpcs';
    const grpc = grpcProtocol
      ? new GrpcClient(origin, {
        connectTimeout: s.connect_timeout,
        ...(secure ? { tls: secureOptions } : {}),
      })
      : null;
    const lean = !secure && !grpcProtocol && h1Available && this.#settings.leanClient !== false;
    const h1 = lean ? new H1Pool(host, port, { connectTimeout: s.connect_timeout, connections: this.#settings.connections ?? 128, keepAliveTimeout: this.#settings.keepAliveTimeout ?? 60_000 }) : null;
    t = { key, origin, pool, hostHeader: hostHeader ?? (port === defaultPort ? host : `${host}:${port}`), secure, h1, grpc };
    this.#pools.set(key, t);
    return t;
  }

  /** Closes (gracefully: in-flight requests finish) every pool not in `keep`. */
  retain(keep: ReadonlySet<string>): void {
    for (const [key, t] of this.#pools) {
      if (keep.has(key)) continue;
      this.#pools.delete(key);
      t.pool.close().catch(() => {});
      t.h1?.close().catch(() => {});
      t.grpc?.close().catch(() => {});
    }
  }

  async close(): Promise<void> {
    const all = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.allSettled(all.flatMap((t) => [t.pool.close(), ...(t.h1 ? [t.h1.close()] : []), ...(t.grpc ? [t.grpc.close()] : [])]));
  }
}
