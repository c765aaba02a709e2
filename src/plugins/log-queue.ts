/**
 * Kong's plugin queue (kong/tools/queue.lua, the `queue` config record of http-log,
 * opentelemetry, ...): entries are gathered into batches of up to `max_batch_size`, a batch
 * leaves when full or `max_coalescing_delay` seconds after its first entry, a failed batch is
 * retried with exponential back-off from `initial_retry_delay` (doubling, capped at
 * `max_retry_delay`) until `max_retry_time` has passed, and then dropped. At most `max_entries`
 * entries (and `max_bytes` bytes, when set) wait: a full queue drops its oldest entries, so memory
 * stays bounded whatever the collector does. Drops are counted (a metric) and logged at most once
 * per interval, never per request.
 */
import { z } from 'zod';
import { between } from './sdk.ts';
import { LogThrottle } from '../observability/log-throttle.ts';

/**
 * Kong's `queue` record (kong/tools/queue_schema.lua). There is no `name` (Kong 3.3 removed it
 * before release: each plugin instance has its own queue). `max_retry_time` has no lower bound:
 * Kong documents -1 as "no retries" (a failed batch is dropped at once).
 */
export const queueSchema = z.strictObject({
  max_batch_size: between(z.number().int(), 1, 1_000_000).default(1),
  max_coalescing_delay: between(z.number(), 0, 3600).default(1),
  max_entries: between(z.number().int(), 1, 1_000_000).default(10_000),
  max_bytes: z.number().int().min(1).nullable().default(null),
  max_retry_time: z.number().default(60),
  initial_retry_delay: between(z.number(), 0.001, 1_000_000).default(0.01),
  max_retry_delay: between(z.number(), 0.001, 1_000_000).default(60),
  concurrency_limit: z.union([z.literal(1), z.literal(-1)]).default(1),
});

export type QueueConfig = z.infer<typeof queueSchema>;

/** A plugin's deprecated queue field, as Kong's `Queue.get_plugin_params` reads it. */
export interface LegacyQueueField {
  name: string;
  value: number | null | undefined;
  /** Kong's default before the field was deprecated: that value changes nothing and is not warned about. */
  oldDefault: number;
  /** The `queue` field it overrides, or null when it no longer does anything (http-log's `retry_count`). */
  replaces: 'max_batch_size' | 'max_coalescing_delay' | null;
  /** Kong's deprecation warning. */
  message: string;
}

/**
 * The queue an instance runs with: each legacy field set to other than its old default overrides
 * the `queue` field it replaces (Kong lets the legacy value win) and logs Kong's warning.
 */
export function withLegacyQueueFields<Q extends Pick<QueueConfig, 'max_batch_size' | 'max_coalescing_delay'>>(queue: Q, fields: readonly LegacyQueueField[], warn: (field: string, message: string) => void): Q {
  let q = queue;
  for (const f of fields) {
    if (f.value == null || f.value === f.oldDefault) continue;
    if (f.replaces !== null) q = { ...q, [f.replaces]: f.value };
    warn(f.name, f.message);
  }
  return q;
}

export interface QueueHooks<T> {
  /** Sends one batch; resolves on success, rejects (with a message safe to log) on failure. */
  send(batch: T[]): Promise<void>;
  /** Size of one entry in bytes (for max_bytes). */
  size?(entry: T): number;
  /** Called with the number of entries dropped and why; the caller counts them. */
  dropped(count: number, reason: 'queue_full' | 'retries_exhausted'): void;
  /** Rate-limited report of a problem (at most once per `reportIntervalMs` per kind). */
  report(kind: 'queue_full' | 'send_failed' | 'gave_up', detail: Record<string, unknown>): void;
  /** Clock override for tests. */
  now?(): number;
}

const reportIntervalMs = 60_000;

export class LogQueue<T> {
  readonly #c: QueueConfig;
  readonly #h: QueueHooks<T>;
  #entries: T[] = [];
  #head = 0;
  #bytes = 0;
  #timer: NodeJS.Timeout | null = null;
  /** When the batch being gathered started (its first entry, or the end of the previous send). */
  #gatheringSince = 0;
  #sending = false;
  #closed = false;
  #inFlight = new Set<Promise<void>>();
  /** Back-off waits in progress (close() ends them). */
  readonly #wake = new Set<() => void>();
  readonly #reports = new LogThrottle(reportIntervalMs);

  constructor(config: QueueConfig, hooks: QueueHooks<T>) {
    this.#c = config;
    this.#h = hooks;
  }

  /** Entries waiting (not counting a batch being sent). */
  get length(): number {
    return this.#entries.length - this.#head;
  }

  #report(kind: 'queue_full' | 'send_failed' | 'gave_up', detail: Record<string, unknown>): void {
    const held = this.#reports.admit(kind);
    if (held === null) return;
    this.#h.report(kind, held > 0 ? { ...detail, similar_since_last_report: held } : detail);
  }

  add(entry: T): void {
    if (this.#closed) return;
    if (this.#c.concurrency_limit === -1) {
      // Kong: no queue; each entry is sent at once, concurrently.
      this.#track(this.#deliver([entry]));
      return;
    }
    const size = this.#c.max_bytes !== null && this.#h.size ? this.#h.size(entry) : 0;
    let dropped = 0;
    while (this.length >= this.#c.max_entries || (this.#c.max_bytes !== null && this.length > 0 && this.#bytes + size > this.#c.max_bytes)) {
      this.#dropOldest();
      dropped++;
    }
    if (dropped > 0) {
      this.#h.dropped(dropped, 'queue_full');
      this.#report('queue_full', { max_entries: this.#c.max_entries, dropped });
    }
    if (this.length === 0 && !this.#sending) this.#gatheringSince = this.#now();
    this.#entries.push(entry);
    this.#bytes += size;
    if (this.length >= this.#c.max_batch_size) this.#kick();
    else if (this.#timer === null && !this.#sending) this.#timer = setTimeout(() => this.#kick(), this.#c.max_coalescing_delay * 1000);
  }

  #now(): number {
    return this.#h.now?.() ?? Date.now();
  }

  #dropOldest(): void {
    const e = this.#entries[this.#head];
    this.#head++;
    if (this.#c.max_bytes !== null && this.#h.size) this.#bytes -= this.#h.size(e);
    this.#compact();
  }

  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    }
  }

  #take(): T[] {
    const n = Math.min(this.#c.max_batch_size, this.length);
    const batch = this.#entries.slice(this.#head, this.#head + n);
    this.#head += n;
    if (this.#c.max_bytes !== null && this.#h.size) for (const e of batch) this.#bytes -= this.#h.size(e);
    if (this.#head === this.#entries.length) {
      this.#entries = [];
      this.#head = 0;
    } else this.#compact();
    return batch;
  }

  #kick(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#sending || this.length === 0) return;
    this.#sending = true;
    this.#track(this.#drain());
  }

  #track(p: Promise<void>): void {
    this.#inFlight.add(p);
    void p.finally(() => this.#inFlight.delete(p));
  }

  /**
   * One batch at a time (concurrency_limit 1), until the queue is empty. A partial batch leaves
   * once max_coalescing_delay has passed since it started gathering (as Kong's queue: from its
   * first entry, or for entries that came while a batch was being sent, from the end of that send),
   * or at once when the queue is closing.
   */
  async #drain(): Promise<void> {
    try {
      while (this.length > 0) {
        if (this.length < this.#c.max_batch_size && !this.#closed) {
          const wait = this.#c.max_coalescing_delay * 1000 - (this.#now() - this.#gatheringSince);
          if (wait > 0) {
            this.#sending = false;
            this.#timer ??= setTimeout(() => this.#kick(), wait);
            return;
          }
        }
        await this.#deliver(this.#take());
        this.#gatheringSince = this.#now();
      }
    } finally {
      this.#sending = false;
    }
  }

  /** Sends a batch with retries and back-off; drops it after max_retry_time. */
  async #deliver(batch: T[]): Promise<void> {
    const started = Date.now();
    let delay = this.#c.initial_retry_delay * 1000;
    for (;;) {
      try {
        await this.#h.send(batch);
        return;
      } catch (err) {
        const elapsed = Date.now() - started;
        if (this.#closed || elapsed + delay > this.#c.max_retry_time * 1000) {
          let count = batch.length;
          if (this.#closed) {
            // Closing and the collector fails: what still waits is dropped too, not tried one
            // batch at a time (each try could take the whole send timeout).
            count += this.length;
            this.#entries = [];
            this.#head = 0;
            this.#bytes = 0;
          }
          this.#h.dropped(count, 'retries_exhausted');
          this.#report('gave_up', { entries: count, error: (err as Error).message, max_retry_time: this.#c.max_retry_time });
          return;
        }
        this.#report('send_failed', { error: (err as Error).message, retry_in_ms: Math.round(delay) });
        // The back-off ends early when the queue closes (close() wakes it).
        await new Promise<void>((r) => {
          const t = setTimeout(() => {
            this.#wake.delete(wake);
            r();
          }, delay);
          const wake = (): void => {
            clearTimeout(t);
            r();
          };
          this.#wake.add(wake);
        });
        delay = Math.min(delay * 2, this.#c.max_retry_delay * 1000);
      }
    }
  }

  /**
   * Sends what is waiting, then stops: a back-off in progress ends at once, and the first batch
   * that fails from then on is dropped with everything still waiting (no more retries).
   */
  async close(): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#closed = true;
    for (const wake of this.#wake) wake();
    this.#wake.clear();
    if (!this.#sending && this.length > 0) {
      this.#sending = true;
      this.#track(this.#drain());
    }
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }
}

/** The words of a plugin's queue reports (http-log: entries delivered; opentelemetry: spans exported). */
export interface QueueWords {
  /** `http-log queue`, `opentelemetry span queue`. */
  readonly queue: string;
  /** `entries`, `spans`. */
  readonly items: string;
  /** `http-log gave up delivering a batch`. */
  readonly gaveUp: string;
  /** `http-log delivery failed`. */
  readonly failed: string;
}

/**
 * A log plugin's `dropped` and `report` hooks: drops counted in portcullis_log_queue_dropped_total
 * under the plugin's name, problems logged (the queue already holds them to one per interval).
 */
export function pluginQueueHooks(plugin: string, deps: { readonly log: { error(obj: object, msg: string): void }; readonly metrics?: { readonly queueDropped: { labels(...v: string[]): { inc(n: number): void } } } }, endpoint: string, words: QueueWords): Pick<QueueHooks<unknown>, 'dropped' | 'report'> {
  return {
    dropped(count, reason) {
      deps.metrics?.queueDropped.labels(plugin, reason).inc(count);
    },
    report(kind, detail) {
      const msg = kind === 'queue_full' ? `${words.queue} full: the oldest ${words.items} are dropped`
        : kind === 'gave_up' ? `${words.gaveUp}; its ${words.items} are dropped`
        : `${words.failed}; retrying`;
      deps.log.error({ endpoint, ...detail }, msg);
    },
  };
}
