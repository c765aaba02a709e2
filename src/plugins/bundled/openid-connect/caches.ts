/**
 * A bounded, TTL-aware LRU cache for remote data (introspection results, user info, token-endpoint
 * responses, verified tokens). Bounded so that a flood of distinct inputs cannot grow memory
 * without limit; per-entry expiry so nothing outlives the data it caches.
 */

export { memoKey, TailMemo } from '../../../tail-memo.ts';

export interface TtlCacheOptions {
  /** Maximum number of entries; the least recently used entry is evicted first. */
  maxEntries: number;
  /** Clock in ms (injectable for tests). */
  now?: () => number;
}

interface Entry<V> {
  value: V;
  expiresAt: number;
  /** Kept (for `getStale`) until then: `cache_ttl_resurrect` past the expiry. */
  keepUntil: number;
  /** `#tick` when the entry last moved to the recent end. */
  tick: number;
}

/**
 * A bounded, TTL-aware cache with least-recently-used eviction, approximated so that a hit is
 * usually read-only: a hit moves the entry to the recent end only when at least half the capacity
 * of (re)insertions happened since it last moved. A hit entry thus survives at least `maxEntries / 2`
 * later insertions (exact LRU: `maxEntries`), and a hot entry costs one Map lookup per hit instead
 * of a delete and an insert.
 */
export class TtlCache<V> {
  readonly #entries = new Map<string, Entry<V>>();
  readonly #max: number;
  readonly #now: () => number;
  #tick = 0;

  constructor(options: TtlCacheOptions) {
    if (!(options.maxEntries > 0)) throw new RangeError('maxEntries must be positive');
    this.#max = options.maxEntries;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The live value for `key`, refreshing its LRU position; undefined when absent or expired.
   * `nowMs`: the caller's reading of this cache's clock, when it has one (a clock read costs
   * ~45 ns here, as much as the rest of a hit).
   */
  get(key: string, nowMs: number = this.#now()): V | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= nowMs) {
      if (entry.keepUntil <= nowMs) this.#entries.delete(key);
      return undefined;
    }
    if (this.#tick - entry.tick >= this.#max >> 1) {
      // Map iteration order is insertion order: re-inserting marks the entry most recently used.
      this.#entries.delete(key);
      this.#entries.set(key, entry);
      entry.tick = ++this.#tick;
    }
    return entry.value;
  }

  /**
   * An expired value still kept for resurrection (`cache_ttl_resurrect`): what the cache knew
   * last, for when the IdP cannot be reached to refresh it. Undefined when none is kept.
   */
  getStale(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.keepUntil <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /**
   * Store `value` for `ttlMs` milliseconds (then kept `staleMs` longer for `getStale`); a TTL of
   * zero or less stores nothing.
   */
  set(key: string, value: V, ttlMs: number, staleMs = 0): void {
    this.#entries.delete(key);
    if (!(ttlMs > 0)) return;
    const expiresAt = this.#now() + ttlMs;
    this.#entries.set(key, { value, expiresAt, keepUntil: expiresAt + Math.max(0, staleMs), tick: ++this.#tick });
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** TTL settings of the plugin (`cache_ttl*`, seconds). */
export interface CacheTtlConfig {
  cache_ttl: number;
  cache_ttl_min: number | null;
  cache_ttl_max: number | null;
}

/**
 * Lifetime in ms for a cached object that expires at `expiresAtSec` (Unix seconds, or null when
 * unknown): the remaining lifetime, else `cache_ttl`, clamped to `cache_ttl_min`/`cache_ttl_max`,
 * and never past the object's own expiry. `earlyMs` shortens it so a cached token is not handed
 * out in its last moments. A remaining lifetime of zero or less gives 0 (do not cache), so an
 * `expires_in <= 0` never yields an immortal entry.
 */
export function cacheTtlMs(cfg: CacheTtlConfig, nowMs: number, expiresAtSec: number | null, earlyMs = 0): number {
  let ttl = expiresAtSec === null ? cfg.cache_ttl * 1000 : expiresAtSec * 1000 - nowMs - earlyMs;
  if (expiresAtSec !== null && ttl <= 0) return 0;
  if (cfg.cache_ttl_max !== null) ttl = Math.min(ttl, cfg.cache_ttl_max * 1000);
  if (cfg.cache_ttl_min !== null) ttl = Math.max(ttl, cfg.cache_ttl_min * 1000);
  // The minimum may not stretch an entry past the data's own expiry.
  if (expiresAtSec !== null) ttl = Math.min(ttl, expiresAtSec * 1000 - nowMs);
  return Math.max(0, Math.floor(ttl));
}

/**
 * Coalesces concurrent identical IdP calls (same token, same credentials) into one, so that a
 * burst of requests cannot multiply into a burst of IdP calls before the first result is cached.
 * A follower whose leader was aborted (the leader's client went away) runs the call itself.
 */
export class SingleFlight<V> {
  readonly #inFlight = new Map<string, Promise<V>>();

  async run(key: string, signal: AbortSignal | null, fn: () => Promise<V>): Promise<V> {
    const existing = this.#inFlight.get(key);
    if (existing) {
      return existing.catch((err: unknown) => {
        if (isAbort(err) && !signal?.aborted) return fn();
        throw err;
      });
    }
    const p = fn();
    this.#inFlight.set(key, p);
    try {
      return await p;
    } finally {
      this.#inFlight.delete(key);
    }
  }
}

/** Was this failure (or one of its causes) an abort? */
function isAbort(err: unknown, depth = 0): boolean {
  if (!(err instanceof Error) || depth > 4) return false;
  return err.name === 'AbortError' || isAbort(err.cause, depth + 1);
}
