/**
 * Fixed-window counters for the rate-limiting plugin's `local` policy.
 *
 * Windows are calendar-aligned in UTC, as Kong's: a minute window starts at second 0 of the
 * minute, a month window on the 1st at 00:00, and so on. Counts live in a bounded map owned by
 * one plugin instance, so they are per worker process (Kong's `local` policy is per nginx worker
 * too) and vanish on restart.
 */

export const periods = ['second', 'minute', 'hour', 'day', 'month', 'year'] as const;
export type Period = (typeof periods)[number];

/** Start of the window containing `now` and start of the next one (ms since epoch, UTC). */
export function windowBounds(period: Period, now: number): { start: number; end: number } {
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const mo = d.getUTCMonth();
  const day = d.getUTCDate();
  const h = d.getUTCHours();
  const mi = d.getUTCMinutes();
  switch (period) {
    case 'second': {
      const start = Math.floor(now / 1000) * 1000;
      return { start, end: start + 1000 };
    }
    case 'minute':
      return { start: Date.UTC(y, mo, day, h, mi), end: Date.UTC(y, mo, day, h, mi + 1) };
    case 'hour':
      return { start: Date.UTC(y, mo, day, h), end: Date.UTC(y, mo, day, h + 1) };
    case 'day':
      return { start: Date.UTC(y, mo, day), end: Date.UTC(y, mo, day + 1) };
    case 'month':
      return { start: Date.UTC(y, mo, 1), end: Date.UTC(y, mo + 1, 1) };
    case 'year':
      return { start: Date.UTC(y, 0, 1), end: Date.UTC(y + 1, 0, 1) };
  }
}

interface Entry {
  count: number;
  expiresAt: number;
}

/**
 * A bounded map of counters with expiry. When full, expired entries are swept first; if that
 * frees nothing, the oldest entries are dropped (their clients start a fresh window: the limiter
 * fails open rather than growing without bound under a flood of distinct identifiers).
 */
export class CounterStore {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;

  constructor(maxEntries = 100_000) {
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Current count of a live window (0 when absent or expired). */
  get(key: string, now: number): number {
    const e = this.#entries.get(key);
    if (!e) return 0;
    if (e.expiresAt <= now) {
      this.#entries.delete(key);
      return 0;
    }
    return e.count;
  }

  /** Add `by` to a window's count, creating it with the given expiry. Returns the new count. */
  increment(key: string, by: number, expiresAt: number, now: number): number {
    const e = this.#entries.get(key);
    if (e && e.expiresAt > now) {
      e.count += by;
      return e.count;
    }
    if (e) this.#entries.delete(key);
    if (this.#entries.size >= this.#maxEntries) this.#makeRoom(now);
    this.#entries.set(key, { count: by, expiresAt });
    return by;
  }

  #makeRoom(now: number): void {
    for (const [k, e] of this.#entries) if (e.expiresAt <= now) this.#entries.delete(k);
    // Map iteration is insertion order: the first keys are the oldest windows.
    const excess = this.#entries.size - this.#maxEntries + 1;
    if (excess <= 0) return;
    let n = 0;
    for (const k of this.#entries.keys()) {
      if (n++ >= Math.max(excess, Math.ceil(this.#maxEntries / 100))) break;
      this.#entries.delete(k);
    }
  }

  clear(): void {
    this.#entries.clear();
  }
}
