/**
 * Lets a kind of log line through at most once per interval and counts the ones held back in
 * between: a problem that repeats on every request (a collector down, a counter store unreachable,
 * a response body over the buffer cap) is logged once per interval, never per request. Used by
 * the kernel's body hook, the log plugins' queue, rate-limiting's counter stores and the
 * opentelemetry exporter.
 */
export class LogThrottle {
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #last = new Map<string, number>();
  readonly #held = new Map<string, number>();

  constructor(intervalMs: number, now: () => number = Date.now) {
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  /**
   * Whether a line of `kind` may be logged now: the number of lines of that kind held back since
   * the last one went through (0 or more), or null to hold this one back.
   */
  admit(kind = ''): number | null {
    const now = this.#now();
    const last = this.#last.get(kind);
    if (last !== undefined && now - last < this.#intervalMs) {
      this.#held.set(kind, (this.#held.get(kind) ?? 0) + 1);
      return null;
    }
    this.#last.set(kind, now);
    const held = this.#held.get(kind) ?? 0;
    this.#held.set(kind, 0);
    return held;
  }
}
