/**
 * Redis for `session_storage: redis`: a client built from Kong's `redis` record (§2.21: single
 * node, Unix socket, Sentinel or Cluster; TLS; ACL user) and a small KeyValueStore over it, used
 * for session records, refresh locks and back-channel logout markers so they are shared by every
 * node that talks to the same Redis. The client itself comes from the shared factory
 * (src/storage/redis.ts `createRedisClient`).
 */
import type { KeyValueStore } from '../../../../storage/ports.ts';
import type { RedisClient } from '../../../../storage/redis.ts';

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
