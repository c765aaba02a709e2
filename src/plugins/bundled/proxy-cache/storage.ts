/**
 * Where proxy-cache keeps its entries: the node's shared key-value store (`PluginDeps.sharedKv`),
 * read by every worker and by the Admin API.
 *
 * Layout: key `proxy-cache:<cache key>:<plugin id>`, value JSON
 * `{"status","headers","body_base64","body_len","timestamp","ttl","version"}` (`timestamp` in
 * seconds since the epoch, `ttl` in seconds, `version` 1: Kong's CACHE_VERSION), expiring after
 * the storage TTL. The cache key comes first so that the Admin API finds a key's entries across
 * plugins with one prefix scan. The Admin API shows an entry in Kong's shape, the body as text
 * (`body`).
 *
 * Deviations from Kong's memory strategy: Kong keys its shared dict by the cache key alone (two
 * proxy-cache plugins on one dict share entries); here each plugin has its own. With a database
 * (SQLite, PostgreSQL) the store is the database's, so every node using it shares the entries,
 * where Kong's memory strategy is per node (and a purge reaches the other nodes only through
 * Kong's cluster events). Kong keeps the request body with the entry for logging plugins
 * (`kong.ctx.shared.proxy_cache_hit`); nothing reads it here, so it is not stored.
 */
import type { KeyValueStore } from '../../../storage/ports.ts';

/** Kong's CACHE_VERSION: an entry of another version is purged and bypassed. */
export const CACHE_VERSION = 1;

export const KEY_PREFIX = 'proxy-cache:';

/** Kong's cache keys: SHA-256 hex digests. */
const cacheKeyPattern = /^[0-9a-f]{64}$/;

export function isCacheKey(s: string): boolean {
  return cacheKeyPattern.test(s);
}

export function storageKey(cacheKey: string, pluginId: string): string {
  return `${KEY_PREFIX}${cacheKey}:${pluginId}`;
}

/** A stored response. */
export interface CacheEntry {
  status: number;
  /** Lower-case names, as sent to the client (hop-by-hop and per-request headers removed). */
  headers: Record<string, string | string[]>;
  body_base64: string;
  body_len: number;
  /** When it was stored (seconds since the epoch). */
  timestamp: number;
  /** The resource's TTL in seconds (`cache_ttl`, or from Cache-Control with `cache_control`). */
  ttl: number;
  version: number;
}

/** Kong's entry as its Admin API prints it (`GET /proxy-cache/{key}`). */
export function kongView(e: CacheEntry): Record<string, unknown> {
  return { status: e.status, headers: e.headers, body: Buffer.from(e.body_base64, 'base64').toString('utf8'), body_len: e.body_len, timestamp: e.timestamp, ttl: e.ttl, version: e.version };
}

/** The entry in a stored value, or null when it is not one (corrupt or foreign). */
export function decodeEntry(raw: string): CacheEntry | null {
  try {
    const v = JSON.parse(raw) as Partial<CacheEntry> | null;
    if (v === null || typeof v !== 'object' || typeof v.status !== 'number' || typeof v.body_base64 !== 'string' || typeof v.timestamp !== 'number' || typeof v.ttl !== 'number') return null;
    if (v.headers === null || typeof v.headers !== 'object') return null;
    return { status: v.status, headers: v.headers, body_base64: v.body_base64, body_len: v.body_len ?? 0, timestamp: v.timestamp, ttl: v.ttl, version: typeof v.version === 'number' ? v.version : 0 };
  } catch {
    return null;
  }
}

/** What a lookup found: nothing, an entry, or a value that is not an entry. */
export type Lookup = { kind: 'none' } | { kind: 'entry'; entry: CacheEntry } | { kind: 'corrupt' };

function lookupOf(raw: string | null): Lookup {
  if (raw === null) return { kind: 'none' };
  const entry = decodeEntry(raw);
  return entry === null ? { kind: 'corrupt' } : { kind: 'entry', entry };
}

/** One plugin instance's entries. */
export class CacheStore {
  readonly #kv: KeyValueStore;
  readonly #pluginId: string;
  constructor(kv: KeyValueStore, pluginId: string) {
    this.#kv = kv;
    this.#pluginId = pluginId;
  }

  /** Answered synchronously when the store can (`peek`), else a Promise. */
  fetch(cacheKey: string): Lookup | Promise<Lookup> {
    const key = storageKey(cacheKey, this.#pluginId);
    if (this.#kv.peek !== undefined) return lookupOf(this.#kv.peek(key));
    return this.#kv.get(key).then(lookupOf);
  }

  /** `ttlSec` 0 = kept until purged (a shared dict's exptime 0). */
  store(cacheKey: string, entry: CacheEntry, ttlSec: number): Promise<void> {
    return this.#kv.set(storageKey(cacheKey, this.#pluginId), JSON.stringify(entry), ttlSec > 0 ? ttlSec * 1000 : undefined);
  }

  purge(cacheKey: string): Promise<void> {
    return this.#kv.delete(storageKey(cacheKey, this.#pluginId));
  }
}

const PAGE = 500;

/** Every stored entry under `prefix`, page by page (the store must offer `scan`). */
async function* entriesUnder(kv: KeyValueStore, prefix: string): AsyncGenerator<{ key: string; value: string }> {
  if (kv.scan === undefined) throw new Error('the shared key-value store cannot list its entries (no scan)');
  let after: string | null = null;
  for (;;) {
    const page = await kv.scan(prefix, after, PAGE);
    yield* page;
    if (page.length < PAGE) return;
    after = page[page.length - 1].key;
  }
}

/** The entries stored for a cache key, by any plugin: `[plugin id, entry]`, in key order. */
export async function entriesFor(kv: KeyValueStore, cacheKey: string): Promise<Array<{ pluginId: string; entry: CacheEntry }>> {
  const prefix = storageKey(cacheKey, '');
  const out: Array<{ pluginId: string; entry: CacheEntry }> = [];
  for await (const { key, value } of entriesUnder(kv, prefix)) {
    const entry = decodeEntry(value);
    if (entry !== null) out.push({ pluginId: key.slice(prefix.length), entry });
  }
  return out;
}

/** A plugin's entry for a cache key, or null. */
export async function entryOf(kv: KeyValueStore, pluginId: string, cacheKey: string): Promise<CacheEntry | null> {
  const raw = await kv.get(storageKey(cacheKey, pluginId));
  return raw === null ? null : decodeEntry(raw);
}

/** Deletes every entry for a cache key (any plugin); the number deleted. */
export async function purgeKey(kv: KeyValueStore, cacheKey: string): Promise<number> {
  const keys: string[] = [];
  for await (const { key } of entriesUnder(kv, storageKey(cacheKey, ''))) keys.push(key);
  for (const k of keys) await kv.delete(k);
  return keys.length;
}

/** Deletes every proxy-cache entry of the store. */
export async function purgeAll(kv: KeyValueStore): Promise<void> {
  const keys: string[] = [];
  for await (const { key } of entriesUnder(kv, KEY_PREFIX)) keys.push(key);
  for (const k of keys) await kv.delete(k);
}
