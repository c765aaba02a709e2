/**
 * One undici Pool per upstream origin and TLS setting, shared across Snapshots: a reload that
 * keeps a service keeps its warm keep-alive connections.
 */
import { Pool } from 'undici';
import type { Service } from '../config/types.ts';
import { H1Pool, h1Available } from './h1.ts';

export interface UpstreamTarget {
  readonly key: string;
  readonly origin: string;
  readonly pool: Pool;
  /** Host header value when preserve_host is off (port omitted when default for the scheme). */
  readonly hostHeader: string;
  readonly secure: boolean;
  /** The lean HTTP/1.1 client for body-less requests to a plain-HTTP upstream (null: undici only). */
  readonly h1: H1Pool | null;
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

function keyFor(s: Service, settings: PoolSettings, host: string, port: number, hostHeader: string | null): string {
  const verify = s.tls_verify ?? settings.tlsVerifyDefault;
  return `${s.protocol}|${host}|${port}|${hostHeader ?? ''}|${s.connect_timeout}|${verify}|${(s.ca_certificates ?? []).join('\n')}`;
}

export class ProxyPools {
  readonly #pools = new Map<string, UpstreamTarget>();
  readonly #settings: PoolSettings;

  constructor(settings: PoolSettings) {
    this.#settings = settings;
  }

  /** The pool of a service's own host and port. */
  target(s: Service): UpstreamTarget {
    return this.targetAt(s, s.host, s.port, null);
  }

  /**
   * The pool of one balancer address for a service: `ip`/`port` to connect to, and the Host header
   * (and TLS server name) to use there — null: the address itself, as for a plain service host.
   */
  targetAt(s: Service, address: string, port: number, hostHeader: string | null): UpstreamTarget {
    const key = keyFor(s, this.#settings, address, port, hostHeader);
    let t = this.#pools.get(key);
    if (t !== undefined) return t;
    const secure = s.protocol === 'https' || s.protocol === 'wss' || s.protocol === 'grpcs';
    const scheme = secure ? 'https' : 'http';
    const host = address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
    const origin = `${scheme}://${host}:${port}`;
    const defaultPort = secure ? 443 : 80;
    const nameHost = hostHeader === null ? address : hostHeader.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
    const verify = s.tls_verify ?? this.#settings.tlsVerifyDefault;
    const ca = [...(s.ca_certificates ?? []), ...(this.#settings.ca ? [this.#settings.ca] : [])];
    const pool = new Pool(origin, {
      connections: this.#settings.connections ?? 128,
      keepAliveTimeout: this.#settings.keepAliveTimeout ?? 60_000,
      pipelining: 1,
      connect: {
        timeout: s.connect_timeout,
        ...(secure ? { rejectUnauthorized: verify, servername: /^[\d.]+$|:/.test(nameHost) ? undefined : nameHost, ...(ca.length > 0 ? { ca } : {}) } : {}),
      },
    });
    const lean = !secure && h1Available && this.#settings.leanClient !== false;
    const h1 = lean ? new H1Pool(host, port, { connectTimeout: s.connect_timeout, connections: this.#settings.connections ?? 128, keepAliveTimeout: this.#settings.keepAliveTimeout ?? 60_000 }) : null;
    t = { key, origin, pool, hostHeader: hostHeader ?? (port === defaultPort ? host : `${host}:${port}`), secure, h1 };
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
    }
  }

  async close(): Promise<void> {
    const all = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.allSettled(all.flatMap((t) => [t.pool.close(), ...(t.h1 ? [t.h1.close()] : [])]));
  }
}
