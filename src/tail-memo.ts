/**
 * Memos keyed by long, secret-bearing strings (tokens, sealed cookies, Cookie headers): shared by
 * the kernel (parsed Cookie headers) and plugins (openid-connect's opened cookies and tokens).
 */

/**
 * A short Map key for a long, secret-bearing string (a token, a sealed cookie): its last 32
 * characters. V8 hashes a string key in full, about 2 ns per character, and the value of each
 * request is a fresh string whose hash is not cached yet: keying by a 1–4 KB value cost more than
 * the rest of a warm request (a Map lookup by an 800-byte token took longer than hashing it with
 * SHA-256). The tail of a signed or sealed value is its signature or authentication tag, unique in
 * practice; callers still compare the full value on a hit, so a collision is only a miss.
 */
export function memoKey(value: string): string {
  return value.length <= 32 ? value : value.slice(-32);
}

/**
 * A bounded memo of values derived from long, secret-bearing strings (a sealed cookie, a token):
 * looked up by `memoKey` and compared in full, so a tail collision is only a miss. Eviction is
 * the same approximate LRU as TtlCache's: a hit moves to the recent end only when it is in the
 * older half, so a hot entry costs one Map lookup.
 */
export class TailMemo<V> {
  readonly #entries = new Map<string, { full: string; value: V; tick: number }>();
  readonly #max: number;
  #tick = 0;

  constructor(maxEntries: number) {
    if (!(maxEntries > 0)) throw new RangeError('maxEntries must be positive');
    this.#max = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The value remembered for exactly `full`, or undefined. */
  get(full: string): V | undefined {
    const key = memoKey(full);
    const hit = this.#entries.get(key);
    if (hit === undefined || hit.full !== full) return undefined;
    if (this.#tick - hit.tick >= this.#max >> 1) {
      this.#entries.delete(key);
      this.#entries.set(key, hit);
      hit.tick = ++this.#tick;
    }
    return hit.value;
  }

  set(full: string, value: V): void {
    const key = memoKey(full);
    this.#entries.delete(key);
    this.#entries.set(key, { full, value, tick: ++this.#tick });
    if (this.#entries.size > this.#max) this.#entries.delete(this.#entries.keys().next().value as string);
  }
}
