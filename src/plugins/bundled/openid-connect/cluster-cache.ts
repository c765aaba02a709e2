/**
 * `cluster_cache_strategy: redis`: introspection results and/or token endpoint responses
 * (`cluster_cache_items`) shared through Redis (`cluster_cache_redis`) by every node and worker
 * that uses the same Redis database, behind each instance's own in-memory cache.
 *
 * - Keys: `portcullis:oidc:<issuer and clients hash>:<item>:<cache key>`; the cache keys are the in-memory
 *   ones (a hash of the token, or the salted hash of the grant's credentials: token entries are
 *   shared only by instances with the same `cache_tokens_salt`).
 * - Token responses are token material: sealed before they are written (JWE `dir` + A256GCM,
 *   jose), with a key derived from `cache_tokens_salt`, so Redis holds no readable token.
 * - Redis entries live as long as the in-memory entry would. Redis being unreachable never fails
 *   a request: the failure is logged and the IdP is asked instead.
 */
import { createHash } from 'node:crypto';
import { CompactEncrypt, compactDecrypt } from 'jose';
import type { Logger } from '../../sdk.ts';
import type { OidcConfig } from './schema.ts';
import { createRedisClient, type RedisClient } from '../../../storage/redis.ts';
import type { RedisRecord } from './browser/config.ts';
import { describe } from './errors.ts';

export type ClusterItem = 'introspection' | 'tokens';

export class ClusterCache {
  readonly #client: RedisClient;
  readonly #items: ReadonlySet<ClusterItem>;
  readonly #prefix: string;
  readonly #key: Uint8Array;
  readonly #log: Logger;

  constructor(cfg: OidcConfig, salt: string, log: Logger) {
    this.#client = createRedisClient((cfg.cluster_cache_redis ?? {}) as RedisRecord);
    this.#items = new Set(cfg.cluster_cache_items);
    // Per issuer and client list: an IdP may answer another client's introspection differently
    // (RFC 7662 §4), so instances with other clients never read each other's entries.
    const scope = JSON.stringify([cfg.issuer, cfg.client_id ?? []]);
    this.#prefix = `portcullis:oidc:${createHash('sha256').update(scope).digest('base64url').slice(0, 16)}`;
    this.#key = createHash('sha256').update('openid-connect cluster cache\0').update(salt).digest();
    this.#log = log;
  }

  /** A cluster cache for this configuration, or null (`off`, or no items). */
  static for(cfg: OidcConfig, salt: string, log: Logger): ClusterCache | null {
    if (cfg.cluster_cache_strategy !== 'redis' || cfg.cluster_cache_items.length === 0) return null;
    return new ClusterCache(cfg, salt, log);
  }

  holds(item: ClusterItem): boolean {
    return this.#items.has(item);
  }

  async get<T>(item: ClusterItem, key: string): Promise<{ value: T; ttlMs: number } | undefined> {
    if (!this.#items.has(item)) return undefined;
    try {
      const name = `${this.#prefix}:${item}:${key}`;
      const [raw, ttlMs] = await Promise.all([this.#client.get(name), this.#client.pttl(name)]);
      if (raw === null || ttlMs <= 0) return undefined;
      const text = item === 'tokens' ? new TextDecoder().decode((await compactDecrypt(raw, this.#key)).plaintext) : raw;
      return { value: JSON.parse(text) as T, ttlMs };
    } catch (err) {
      this.#log.warn({ err: describe(err), item }, 'openid-connect: cluster cache read failed; asking the IdP');
      return undefined;
    }
  }

  /** Written in the background; a failure is logged. */
  set(item: ClusterItem, key: string, value: unknown, ttlMs: number): void {
    if (!this.#items.has(item) || !(ttlMs > 0)) return;
    void (async () => {
      const text = JSON.stringify(value);
      const stored = item === 'tokens'
        ? await new CompactEncrypt(new TextEncoder().encode(text)).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).encrypt(this.#key)
        : text;
      await this.#client.set(`${this.#prefix}:${item}:${key}`, stored, 'PX', Math.ceil(ttlMs));
    })().catch((err: unknown) => this.#log.warn({ err: describe(err), item }, 'openid-connect: cluster cache write failed'));
  }

  async close(): Promise<void> {
    this.#client.disconnect();
  }
}
