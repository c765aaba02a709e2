/**
 * Redis for `session_storage: redis`: a client built from Kong's `redis` record (§2.21: single
 * node, Unix socket, Sentinel or Cluster; TLS; ACL user) and a small KeyValueStore over it, used
 * for session records, refresh locks and back-channel logout markers so they are shared by every
 * node that talks to the same Redis.
 */
import { Cluster, Redis } from 'ioredis';
import type { ClusterOptions, RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'node:tls';
import type { KeyValueStore } from '../../../../storage/ports.ts';
import type { RedisRecord } from './config.ts';

export type RedisClient = Redis | Cluster;

/** Build an ioredis client from Kong's `redis` record. Connects lazily; every command has a timeout. */
export function createRedisClient(r: RedisRecord): RedisClient {
  const tls: ConnectionOptions | undefined = r.ssl
    ? { rejectUnauthorized: r.ssl_verify ?? true, ...(r.server_name ? { servername: r.server_name } : {}) }
    : undefined;
  const common: RedisOptions = {
    username: r.username ?? undefined,
    password: r.password ?? undefined,
    db: r.database ?? 0,
    connectTimeout: r.connect_timeout ?? 2000,
    // one timeout for both directions: ioredis has no separate send timeout
    commandTimeout: Math.max(r.read_timeout ?? 2000, r.send_timeout ?? 2000),
    maxRetriesPerRequest: 1,
    lazyConnect: true,
    // `connection_is_proxied`: proxies (Envoy, twemproxy) route data commands and AUTH only: no
    // RESP3 HELLO (protocol 2), no CLIENT SETINFO, no INFO ready check.
    ...(r.connection_is_proxied ? { protocol: 2, disableClientInfo: true, enableReadyCheck: false } : {}),
    ...(tls ? { tls } : {}),
  };
  if (r.cluster_nodes && r.cluster_nodes.length > 0) {
    const options: ClusterOptions = {
      redisOptions: common,
      maxRedirections: r.cluster_max_redirections ?? 5,
      lazyConnect: true,
    };
    return new Cluster(
      r.cluster_nodes.map((n) => ({ host: n.ip ?? n.host ?? '127.0.0.1', port: n.port ?? 6379 })),
      options,
    );
  }
  if (r.sentinel_master || (r.sentinel_nodes && r.sentinel_nodes.length > 0)) {
    return new Redis({
      ...common,
      name: r.sentinel_master ?? 'mymaster',
      sentinels: (r.sentinel_nodes ?? []).map((n) => ({ host: n.host ?? n.ip ?? '127.0.0.1', port: n.port ?? 26379 })),
      role: r.sentinel_role === 'slave' ? 'slave' : 'master',
      // Sentinel credentials are separate from the data node's (Kong changelog 3.10: NOAUTH mix-ups)
      sentinelUsername: r.sentinel_username ?? undefined,
      sentinelPassword: r.sentinel_password ?? undefined,
    });
  }
  if (r.socket) return new Redis({ ...common, path: r.socket });
  return new Redis({ ...common, host: r.host ?? '127.0.0.1', port: r.port ?? 6379 });
}

/** KeyValueStore over Redis; keys are prefixed with `prefix:` when the record sets one. */
export class RedisKv implements KeyValueStore {
  readonly #client: RedisClient;
  readonly #prefix: string;
  readonly #proxied: boolean;

  constructor(client: RedisClient, prefix: string | null | undefined, proxied = false) {
    this.#client = client;
    this.#proxied = proxied;
    this.#prefix = prefix ? `${prefix}:` : '';
    // ioredis reconnects by itself; a command's error reaches its caller (not an unhandled event).
    client.on('error', () => {});
  }

  async get(key: string): Promise<string | null> {
    return this.#client.get(this.#prefix + key);
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    if (ttlMs !== undefined) await this.#client.set(this.#prefix + key, value, 'PX', Math.max(1, Math.ceil(ttlMs)));
    else await this.#client.set(this.#prefix + key, value);
  }

  async add(key: string, value: string, ttlMs?: number): Promise<boolean> {
    const r =
      ttlMs !== undefined
        ? await this.#client.set(this.#prefix + key, value, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX')
        : await this.#client.set(this.#prefix + key, value, 'NX');
    return r === 'OK';
  }

  async take(key: string): Promise<string | null> {
    // GETDEL is atomic (Redis >= 6.2). Proxies may not know it: GET, then DEL, whose count tells
    // which single caller removed the key (and so may use the value).
    if (!this.#proxied) return this.#client.getdel(this.#prefix + key);
    const value = await this.#client.get(this.#prefix + key);
    if (value === null) return null;
    return (await this.#client.del(this.#prefix + key)) === 1 ? value : null;
  }

  async delete(key: string): Promise<void> {
    await this.#client.del(this.#prefix + key);
  }

  async close(): Promise<void> {
    await this.#client.quit().catch(() => this.#client.disconnect());
  }
}
