/**
 * Redis clients built from Kong's `redis` record, shared by the plugins that talk to Redis
 * (openid-connect's session storage, cluster cache and DPoP nonces; rate-limiting's `redis`
 * policy): one ioredis factory, so every plugin maps the record's fields (single node, Unix
 * socket, Sentinel or Cluster; TLS; ACL user; timeouts) the same way.
 *
 * `acquireRedisClient` / `releaseRedisClient` hand out one client per distinct record, counted by
 * its users, and close it when the last one lets go: plugin instances that point at the same Redis
 * share one connection, and a retired instance leaves no socket behind.
 */
import { Cluster, Redis } from 'ioredis';
import type { ClusterOptions, RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'node:tls';

export interface RedisNode {
  host?: string | null;
  ip?: string | null;
  port?: number | null;
}

/** Kong's `redis` record (§2.21). Unknown fields are ignored here. */
export interface RedisRecord {
  host?: string | null;
  port?: number | null;
  username?: string | null;
  password?: string | null;
  database?: number | null;
  ssl?: boolean | null;
  ssl_verify?: boolean | null;
  server_name?: string | null;
  socket?: string | null;
  sentinel_master?: string | null;
  sentinel_role?: 'any' | 'master' | 'slave' | null;
  sentinel_nodes?: readonly RedisNode[] | null;
  sentinel_username?: string | null;
  sentinel_password?: string | null;
  cluster_nodes?: readonly RedisNode[] | null;
  cluster_max_redirections?: number | null;
  connect_timeout?: number | null;
  read_timeout?: number | null;
  send_timeout?: number | null;
  prefix?: string | null;
  /** Redis reached through a proxy (Envoy, twemproxy): no commands proxies refuse (INFO, GETDEL). */
  connection_is_proxied?: boolean | null;
}

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

interface Shared {
  client: RedisClient;
  users: number;
}

const shared = new Map<string, Shared>();
const keyOf = new WeakMap<RedisClient, string>();

/**
 * The client for `record`, shared with every other user of an identical record (compared field by
 * field, credentials included; kept in memory only). Call `releaseRedisClient` once per acquire.
 * The client connects lazily and reconnects by itself; its `error` events are swallowed here (a
 * command's failure reaches the command's caller).
 */
export function acquireRedisClient(record: RedisRecord): RedisClient {
  const key = JSON.stringify(Object.entries(record).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  let entry = shared.get(key);
  if (entry === undefined) {
    const client = createRedisClient(record);
    client.on('error', () => {});
    entry = { client, users: 0 };
    shared.set(key, entry);
    keyOf.set(client, key);
  }
  entry.users++;
  return entry.client;
}

/** Give back a client from `acquireRedisClient`; the last user's release closes it. */
export async function releaseRedisClient(client: RedisClient): Promise<void> {
  const key = keyOf.get(client);
  const entry = key === undefined ? undefined : shared.get(key);
  if (entry === undefined || entry.client !== client) return;
  entry.users--;
  if (entry.users > 0) return;
  shared.delete(key!);
  keyOf.delete(client);
  // QUIT lets queued replies arrive; a client that never connected (or cannot) is just dropped.
  if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
  else client.disconnect();
}

/** How many distinct shared clients are open (tests: nothing leaks). */
export function sharedRedisClients(): number {
  return shared.size;
}
