/**
 * rate-limiting's `policy: cluster` (Kong's kong/plugins/rate-limiting/policies/cluster.lua): the
 * counters live in the gateway's database, so every worker of the node (SQLite) or every node
 * (PostgreSQL) counts together. Kong keeps them in its `ratelimiting_metrics` table; here they are
 * entries of the node's shared key-value store (`PluginDeps.sharedKv`, the `portcullis_kv` table of
 * that same database), one per window, keyed `rate-limiting:` + Kong's Redis key
 * (`ratelimit:<route_id>:<service_id>:<identifier>:<period_start>:<period>`).
 *
 * - Usage: one read per configured window (`peek` where the store answers synchronously, SQLite).
 * - Each admitted request adds 1 to every window with the store's atomic `incr` (one UPSERT),
 *   creating the entry with Kong's window length as its expiry; not awaited by the request (Kong
 *   increments in a timer). Like Kong's, the check and the increment are separate steps, so a
 *   burst spread over several workers or nodes can overshoot by the requests in flight.
 */
import type { Logger } from 'pino';
import type { KeyValueStore } from '../../../storage/ports.ts';
import { EXPIRATION, failureLog, type FailureLog, type RedisWindow } from './redis-policy.ts';

/** Prepended to Kong's key in the shared store. */
export const CLUSTER_KEY_PREFIX = 'rate-limiting:';

/** The counters of one `policy: cluster` plugin instance, in the node's shared store. */
export class ClusterCounters {
  readonly #kv: KeyValueStore;
  readonly #incr: NonNullable<KeyValueStore['incr']>;
  /** Logs a store failure at most once per ERROR_LOG_INTERVAL_MS. */
  readonly logFailure: FailureLog;

  constructor(kv: KeyValueStore, database: string, log: Logger) {
    if (kv.incr === undefined) throw new Error("config.policy: 'cluster' needs a shared store with atomic increments (the node's database)");
    this.#kv = kv;
    this.#incr = kv.incr.bind(kv);
    this.logFailure = failureLog(log, { database }, 'rate-limiting: cluster ');
  }

  /** Current count of each window, in order; rejects when the store fails. */
  async usage(windows: readonly RedisWindow[]): Promise<number[]> {
    const kv = this.#kv;
    const values = kv.peek !== undefined
      ? windows.map((w) => kv.peek!(CLUSTER_KEY_PREFIX + w.key))
      : await Promise.all(windows.map((w) => kv.get(CLUSTER_KEY_PREFIX + w.key)));
    return values.map((v) => {
      const n = v === null ? 0 : Number(v);
      return Number.isFinite(n) && n > 0 ? n : 0;
    });
  }

  /** Count one admitted request in every window. Never throws; failures are logged. */
  increment(windows: readonly RedisWindow[]): void {
    const fail = (err: unknown): void => this.logFailure('increment', err, 'this request is not counted');
    for (const w of windows) {
      try {
        this.#incr(CLUSTER_KEY_PREFIX + w.key, 1, EXPIRATION[w.period] * 1000).catch(fail);
      } catch (err) {
        fail(err);
      }
    }
  }

  /** The store is the node's: nothing to release. */
  async close(): Promise<void> {}
}
