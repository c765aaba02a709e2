/**
 * rate-limiting's `policy: redis` (Kong's kong/plugins/rate-limiting/policies/init.lua): the
 * counters live in Redis, so every worker and node that points at the same Redis shares them.
 *
 * Keys are Kong's: `ratelimit:<route_id>:<service_id>:<identifier>:<period_start>:<period>`, with
 * the plugin's own route and service ids (Kong's zero UUID when the plugin is not scoped to one),
 * the window's start in ms since the epoch, and the period name; a Kong node and this gateway on
 * the same Redis count together.
 *
 * - Usage: one MGET for every configured window (one round trip).
 * - `sync_rate` -1: each admitted request adds 1 to every window right after the check, in one
 *   MULTI (INCRBY + EXPIRE of Kong's window length), not awaited by the request.
 * - `sync_rate` >= 0.02 s: increments are buffered in the process and flushed every `sync_rate`
 *   seconds (one MULTI for all buffered keys). A window read from Redis is remembered until the
 *   next flush: usage = that Redis value + the increments not flushed yet, so only the first
 *   request per window and flush period reads Redis. As Kong, a flush drops the remembered values
 *   (the next request reads Redis again, now including every node's increments) and a failed flush
 *   loses its increments.
 *
 * Every Redis call is bounded by the record's `timeout` (ms): a Redis that does not answer fails
 * the call after that long, and the caller applies `fault_tolerant`.
 */
import type { Logger } from 'pino';
import { acquireRedisClient, releaseRedisClient, type RedisClient, type RedisRecord } from '../../../storage/redis.ts';
import type { Period } from './counters.ts';
import { LogThrottle } from '../../../observability/log-throttle.ts';

/** Kong's kong/plugins/rate-limiting/expiration.lua: a window's length in seconds (a month is 30 days). */
export const EXPIRATION: Readonly<Record<Period, number>> = {
  second: 1, minute: 60, hour: 3600, day: 86400, month: 2592000, year: 31536000,
};

/** Kong's EMPTY_UUID: the route or service id in a key when the plugin has none. */
export const EMPTY_UUID = '00000000-0000-0000-0000-000000000000';

/** Kong's SYNC_RATE_REALTIME. */
export const SYNC_RATE_REALTIME = -1;

/** Kong's key for one window's counter. */
export function redisKey(routeId: string | null | undefined, serviceId: string | null | undefined, identifier: string, periodStart: number, period: Period): string {
  return `ratelimit:${routeId || EMPTY_UUID}:${serviceId || EMPTY_UUID}:${identifier}:${periodStart}:${period}`;
}

/** One configured window of one request. */
export interface RedisWindow {
  readonly period: Period;
  readonly key: string;
  /** End of the window (ms since the epoch). */
  readonly end: number;
}

/** The Redis settings the policy uses (Kong's `redis` record, after the legacy `redis_*` fields). */
export interface RedisPolicySettings {
  host: string;
  port: number;
  timeout: number;
  connect_timeout: number | null;
  send_timeout: number | null;
  read_timeout: number | null;
  username: string | null;
  password: string | null;
  database: number | null;
  ssl: boolean | null;
  ssl_verify: boolean | null;
  server_name: string | null;
}

/**
 * The client record: `timeout` bounds every step, and connect_timeout / send_timeout /
 * read_timeout may only shorten their own step.
 */
export function clientRecord(s: RedisPolicySettings): RedisRecord {
  const step = (v: number | null): number => (v === null ? s.timeout : Math.min(v, s.timeout));
  return {
    host: s.host,
    port: s.port,
    username: s.username,
    password: s.password,
    database: s.database ?? 0,
    ssl: s.ssl ?? false,
    ssl_verify: s.ssl_verify ?? false,
    server_name: s.server_name,
    connect_timeout: step(s.connect_timeout),
    send_timeout: step(s.send_timeout),
    read_timeout: step(s.read_timeout),
  };
}

/** Rejects when `p` has not settled within `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Redis did not answer the ${what} within ${ms} ms`)), ms);
    p.then(
      (v) => { clearTimeout(timer); resolve(v); },
      (err: unknown) => { clearTimeout(timer); reject(err instanceof Error ? err : new Error(String(err))); },
    );
  });
}

/** ioredis's exec() answer: a MULTI whose commands failed counts as failed. */
function checkExec(result: Array<[Error | null, unknown]> | null): void {
  if (result === null) throw new Error('Redis discarded the transaction');
  for (const [err] of result) if (err) throw err;
}

interface Remembered {
  /** The count Redis gave when it was read (0 when the window was not read yet). */
  usage: number;
  /** Admitted requests not flushed to Redis yet. */
  delta: number;
  /** Kong's window length, for the key's EXPIRE. */
  ttl: number;
}

/** How often a store failure is logged, at most. */
export const ERROR_LOG_INTERVAL_MS = 10_000;

/** A counter store's failure log: one line per ERROR_LOG_INTERVAL_MS at most, `fields` naming the store. */
export type FailureLog = (what: string, err: unknown, consequence: string) => void;

export function failureLog(log: Logger, fields: Readonly<Record<string, string>>, prefix: string): FailureLog {
  const throttle = new LogThrottle(ERROR_LOG_INTERVAL_MS);
  return (what, err, consequence) => {
    if (throttle.admit() === null) return;
    const message = err instanceof Error ? err.message : String(err);
    log.error({ ...fields, error: message }, `${prefix}${what} failed: ${message}; ${consequence}`);
  };
}

/** The Redis counters of one plugin instance. */
export class RedisCounters {
  readonly #client: RedisClient;
  readonly #timeout: number;
  readonly #syncRate: number;
  readonly #where: string;
  /** Logs a Redis failure at most once per ERROR_LOG_INTERVAL_MS (host, port and message only). */
  readonly logFailure: FailureLog;
  /** Buffered mode: what each window's key counts in this process. */
  #remembered = new Map<string, Remembered>();
  #flushTimer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(settings: RedisPolicySettings, syncRate: number, log: Logger) {
    this.#client = acquireRedisClient(clientRecord(settings));
    this.#timeout = settings.timeout;
    this.#syncRate = syncRate;
    this.#where = `${settings.host}:${settings.port}/${settings.database ?? 0}`;
    this.logFailure = failureLog(log, { redis: this.#where }, 'rate-limiting: ');
  }

  #ensureReachable(): void {
    // After a failed connection ioredis keeps reconnecting in the background: fail at once
    // meanwhile instead of holding every request for the timeout.
    if (this.#client.status === 'reconnecting' || this.#client.status === 'end') {
      throw new Error(`Redis at ${this.#where} is unreachable (reconnecting)`);
    }
  }

  /** Current count of each window, in order; rejects on a Redis failure or timeout. */
  async usage(windows: readonly RedisWindow[]): Promise<number[]> {
    const realtime = this.#syncRate === SYNC_RATE_REALTIME;
    const out: number[] = new Array<number>(windows.length);
    const toRead: number[] = [];
    for (let i = 0; i < windows.length; i++) {
      const r = realtime ? undefined : this.#remembered.get(windows[i].key);
      if (r !== undefined) out[i] = r.usage + r.delta;
      else toRead.push(i);
    }
    if (toRead.length === 0) return out;
    this.#ensureReachable();
    const values = await within(this.#client.mget(toRead.map((i) => windows[i].key)), this.#timeout, 'usage read (MGET)');
    for (let j = 0; j < toRead.length; j++) {
      const i = toRead[j];
      const n = values[j] === null ? 0 : Number(values[j]);
      const read = Number.isFinite(n) ? n : 0;
      if (realtime) {
        out[i] = read;
        continue;
      }
      // A request that read the same window concurrently may have remembered it (and counted on
      // it) already: keep its entry.
      const w = windows[i];
      let r = this.#remembered.get(w.key);
      if (r === undefined) {
        r = { usage: read, delta: 0, ttl: EXPIRATION[w.period] };
        this.#remembered.set(w.key, r);
      }
      out[i] = r.usage + r.delta;
    }
    return out;
  }

  /** Count one admitted request in every window. Never throws; failures are logged. */
  increment(windows: readonly RedisWindow[]): void {
    if (this.#syncRate === SYNC_RATE_REALTIME) {
      const fail = (err: unknown): void => this.logFailure('increment', err, 'this request is not counted');
      try {
        this.#ensureReachable();
        const multi = this.#client.multi();
        for (const w of windows) multi.incrby(w.key, 1).expire(w.key, EXPIRATION[w.period]);
        within(multi.exec(), this.#timeout, 'increment (MULTI)').then(checkExec).catch(fail);
      } catch (err) {
        fail(err);
      }
      return;
    }
    for (const w of windows) {
      let r = this.#remembered.get(w.key);
      if (r === undefined) {
        r = { usage: 0, delta: 0, ttl: EXPIRATION[w.period] };
        this.#remembered.set(w.key, r);
      }
      r.delta += 1;
    }
    if (this.#flushTimer === null && !this.#closed) {
      this.#flushTimer = setTimeout(() => {
        this.#flushTimer = null;
        void this.flush();
      }, this.#syncRate * 1000);
      this.#flushTimer.unref();
    }
  }

  /** Buffered mode: send the unflushed increments to Redis and forget the remembered counts. */
  async flush(): Promise<void> {
    const batch = [...this.#remembered].filter(([, r]) => r.delta > 0);
    this.#remembered = new Map();
    if (batch.length === 0) return;
    try {
      this.#ensureReachable();
      const multi = this.#client.multi();
      for (const [key, r] of batch) multi.incrby(key, r.delta).expire(key, r.ttl);
      checkExec(await within(multi.exec(), this.#timeout, 'counter sync (MULTI)'));
    } catch (err) {
      this.logFailure('counter sync', err, `${batch.length} buffered counter(s) dropped`);
    }
  }

  /** Flush what is buffered, then let go of the shared client. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#flushTimer !== null) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    if (this.#syncRate !== SYNC_RATE_REALTIME) await this.flush();
    await releaseRedisClient(this.#client);
  }
}
