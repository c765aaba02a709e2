/**
 * rate-limiting — Kong's fixed-window limiter: up to `second` / `minute` / `hour` / `day` /
 * `month` / `year` requests per window per identifier (`limit_by`). Over the limit →
 * `error_code` (429) `{"message": error_message}` with `Retry-After`.
 *
 * Headers (unless `hide_client_headers`), on every response: `X-RateLimit-Limit-<Period>`,
 * `X-RateLimit-Remaining-<Period>`, and the IETF draft headers `RateLimit-Limit`,
 * `RateLimit-Remaining`, `RateLimit-Reset` (draft-ietf-httpapi-ratelimit-headers) for the window
 * closest to its limit.
 *
 * `policy: local`: counts are held in memory by the plugin instance, i.e. per worker process, as
 * with Kong's `local` policy. `policy: redis`: counts are shared through Redis (redis-policy.ts),
 * with Kong's keys, so every worker and node on that Redis counts together. `policy: cluster`:
 * counts are shared through the node's database (cluster-policy.ts: the shared key-value store,
 * SQLite or PostgreSQL), so every worker (and, on PostgreSQL, every node) counts together; as
 * Kong's, it is not offered in DB-less mode. Both shared policies go through one check path
 * (`sharedHandlers`).
 */
import { z } from 'zod';
import { between, definePlugin, HTTP_PROTOCOLS, PLUGIN_ENTITY_CHECK } from '../../sdk.ts';
import { kongHeaderName, kongPath } from '../../kong-typedefs.ts';
import type { NodeFacts, PluginDeps, PluginHandlers, Reply, RequestContext } from '../../sdk.ts';
import type { ValidationIssue } from '../../../errors.ts';
import { CounterStore, periods, windowBounds, type Period } from './counters.ts';
import { RedisCounters, redisKey, SYNC_RATE_REALTIME, type RedisPolicySettings, type RedisWindow } from './redis-policy.ts';
import { ClusterCounters } from './cluster-policy.ts';

const limit = z.number().positive().nullable().default(null);

/** Kong's shared Redis record; used by `policy: redis`, left at its defaults with `policy: local`. */
const redisSchema = z.strictObject({
  host: z.string().nullable().default(null),
  port: between(z.int(), 0, 65535).nullable().default(6379),
  timeout: z.int().nullable().default(2000),
  connect_timeout: z.int().nullable().default(2000),
  send_timeout: z.int().nullable().default(2000),
  read_timeout: z.int().nullable().default(2000),
  username: z.string().nullable().default(null),
  password: z.string().nullable().default(null),
  database: z.int().nullable().default(0),
  ssl: z.boolean().nullable().default(false),
  ssl_verify: z.boolean().nullable().default(false),
  server_name: z.string().nullable().default(null),
  keepalive_pool_size: z.int().nullable().default(256),
  keepalive_backlog: z.int().nullable().default(null),
});

/**
 * Kong < 3.6 spelled the Redis settings as flat `redis_*` fields (still accepted by Kong as
 * deprecated aliases, and present in older decK dumps). As Kong's shorthand fields, a value set
 * here is copied into the `redis` record (`redis_host` → `redis.host`, ...), overriding it.
 */
const legacyRedisFields = {
  redis_host: z.string().nullable().optional(),
  redis_port: z.int().nullable().optional(),
  redis_password: z.string().nullable().optional(),
  redis_username: z.string().nullable().optional(),
  redis_ssl: z.boolean().nullable().optional(),
  redis_ssl_verify: z.boolean().nullable().optional(),
  redis_server_name: z.string().nullable().optional(),
  redis_timeout: z.number().nullable().optional(),
  redis_database: z.int().nullable().optional(),
};
/** The `redis` record's defaults (Kong's). */
const redisDefaults: Readonly<Record<string, unknown>> = redisSchema.parse({});
const legacyRedisTarget: Readonly<Record<keyof typeof legacyRedisFields, keyof z.infer<typeof redisSchema>>> = {
  redis_host: 'host', redis_port: 'port', redis_password: 'password', redis_username: 'username', redis_ssl: 'ssl',
  redis_ssl_verify: 'ssl_verify', redis_server_name: 'server_name', redis_timeout: 'timeout', redis_database: 'database',
};
/**
 * Fields of the record that have no meaning for the ioredis client (lua-resty-redis connection
 * pool settings: ioredis keeps one multiplexed connection per Redis config): only their defaults
 * are accepted, with any policy.
 */
const poolOnlyFields = ['keepalive_pool_size', 'keepalive_backlog'] as const;

/** The `redis` record with the legacy `redis_*` fields copied in (Kong's shorthand fields). */
function effectiveRedis<R extends Record<string, unknown>>(redis: R, conf: Partial<Record<keyof typeof legacyRedisFields, unknown>>): R {
  let out = redis;
  for (const [flat, field] of Object.entries(legacyRedisTarget) as Array<[keyof typeof legacyRedisFields, string]>) {
    const v = conf[flat];
    if (v !== undefined && v !== null) out = { ...out, [field]: v };
  }
  return out;
}

export const limitByValues = ['consumer', 'credential', 'ip', 'service', 'header', 'path'] as const;

export const rateLimitingSchema = z
  .strictObject({
    second: limit,
    minute: limit,
    hour: limit,
    day: limit,
    month: limit,
    year: limit,
    limit_by: z.enum(limitByValues).default('consumer'),
    header_name: kongHeaderName.nullable().default(null),
    path: kongPath.nullable().default(null),
    policy: z.enum(['local', 'cluster', 'redis']).default('local'),
    fault_tolerant: z.boolean().default(true),
    redis: redisSchema.default(() => redisSchema.parse({})),
    hide_client_headers: z.boolean().default(false),
    // Kong only asks for a number > 0; a status Node cannot send would turn into a 500.
    error_code: between(z.int(), 100, 599).default(429),
    error_message: z.string().min(1, { message: 'length must be at least 1' }).default('API rate limit exceeded'),
    sync_rate: z.number().default(-1),
    ...legacyRedisFields,
  })
  .superRefine((conf, issues) => {
    const set = periods.filter((p) => conf[p] !== null);
    if (set.length === 0) {
      issues.addIssue({
        code: 'custom',
        path: [],
        message: "at least one of these fields must be non-empty: 'second', 'minute', 'hour', 'day', 'month', 'year'",
      });
    }
    // A shorter window may not allow more than a longer one (Kong's ordering check).
    for (let i = 0; i < set.length; i++) {
      for (let j = i + 1; j < set.length; j++) {
        const shorter = conf[set[i]] as number;
        const longer = conf[set[j]] as number;
        if (shorter > longer) {
          issues.addIssue({
            code: 'custom',
            path: [set[j]],
            message: `The limit for ${set[j]}(${longer.toFixed(1)}) cannot be lower than the limit for ${set[i]}(${shorter.toFixed(1)})`,
          });
        }
      }
    }
    if (conf.limit_by === 'header' && conf.header_name === null) {
      issues.addIssue({ code: 'custom', path: ['header_name'], message: "required field missing (limit_by is 'header')" });
    }
    if (conf.limit_by === 'path' && conf.path === null) {
      issues.addIssue({ code: 'custom', path: ['path'], message: "required field missing (limit_by is 'path')" });
    }
    // policy 'cluster' needs a database: refused in DB-less mode by `check` (the node's database is
    // not known here).
    // The Redis settings (and Kong's flat redis_* spellings) apply to policy 'redis' only: with the
    // local or database counters they would be ignored, so anything but their defaults is refused.
    if (conf.policy !== 'redis') {
      const message = `the Redis settings apply to policy 'redis' only; leave them at their defaults with '${conf.policy}'`;
      for (const [field, dflt] of Object.entries(redisDefaults)) {
        const v = (conf.redis as Record<string, unknown>)[field];
        if (v !== dflt) issues.addIssue({ code: 'custom', path: ['redis', field], message });
      }
      for (const [flat, field] of Object.entries(legacyRedisTarget) as Array<[keyof typeof legacyRedisFields, keyof typeof redisDefaults]>) {
        const v = conf[flat];
        if (v !== undefined && v !== null && v !== redisDefaults[field]) issues.addIssue({ code: 'custom', path: [flat], message });
      }
    }
    if (conf.policy === 'redis') {
      // Kong's entity checks: host, port and timeout are required with policy 'redis' (the legacy
      // redis_* fields count, being copied into the record).
      const redis = effectiveRedis(conf.redis, conf);
      for (const field of ['host', 'port', 'timeout'] as const) {
        const v = redis[field];
        if (v === null || v === undefined || v === '') {
          issues.addIssue({ code: 'custom', path: ['redis', field], message: 'required field missing' });
          issues.addIssue({ code: 'custom', path: [PLUGIN_ENTITY_CHECK], message: "failed conditional validation given value of field 'config.policy'" });
        }
      }
      for (const field of poolOnlyFields) {
        if (redis[field] !== redisDefaults[field]) {
          issues.addIssue({
            code: 'custom',
            path: ['redis', field],
            message: `not supported: ${field} sizes lua-resty-redis's connection pool; here one multiplexed connection serves each Redis config, so leave it at its default (${String(redisDefaults[field])})`,
          });
        }
      }
      if (conf.sync_rate !== SYNC_RATE_REALTIME && conf.sync_rate < 0.02) {
        issues.addIssue({ code: 'custom', path: ['sync_rate'], message: 'sync_rate must be greater than 0.02, or -1 to disable' });
      }
    }
    // sync_rate paces writes to the Redis counters; Kong refuses it with any other policy.
    if (conf.sync_rate !== -1 && conf.policy !== 'redis') {
      issues.addIssue({ code: 'custom', path: ['sync_rate'], message: 'sync_rate can only be used with the redis policy' });
    }
  })
  .transform((conf) => {
    const redis = effectiveRedis(conf.redis, conf);
    return redis === conf.redis ? conf : { ...conf, redis };
  });

export type RateLimitingConfig = z.infer<typeof rateLimitingSchema>;

/**
 * Kong's schema offers `policy` one_of local, cluster, redis with a database, and only local,
 * redis in DB-less mode (database = off) or on a control plane: `cluster` is refused there with
 * Kong's one_of message.
 */
export function checkRateLimiting(conf: RateLimitingConfig, node: NodeFacts): ValidationIssue[] {
  if (conf.policy === 'cluster' && (node.database ?? 'off') === 'off') {
    return [{ path: 'policy', message: 'expected one of: local, redis' }];
  }
  return [];
}

const capitalized: Readonly<Record<Period, string>> = {
  second: 'Second', minute: 'Minute', hour: 'Hour', day: 'Day', month: 'Month', year: 'Year',
};

/** Who the request counts against; falls back to the client IP, as Kong. */
function identify(conf: RateLimitingConfig, ctx: RequestContext): string {
  let id: string | null | undefined;
  switch (conf.limit_by) {
    case 'service':
      id = ctx.service?.id;
      break;
    case 'consumer':
      id = ctx.consumer?.id ?? ctx.credential?.id;
      break;
    case 'credential':
      id = ctx.credential?.id;
      break;
    case 'header':
      id = conf.header_name === null ? undefined : ctx.request.header(conf.header_name);
      break;
    case 'path':
      id = ctx.request.path === conf.path ? conf.path : undefined;
      break;
    case 'ip':
      break;
  }
  return id || ctx.request.clientIp;
}

export interface RateLimitingOptions {
  /** Bound on the number of live counters per plugin instance. */
  maxCounters?: number;
}

/** Build the plugin definition; `options` lets tests shrink the counter bound. */
export function createRateLimitingPlugin(options: RateLimitingOptions = {}) {
  return definePlugin<RateLimitingConfig>({
    name: 'rate-limiting',
    version: '0.1.0',
    priority: 910,
    // Kong's schema: protocols_http.
    protocols: HTTP_PROTOCOLS,
    schema: rateLimitingSchema,
    // Kong: rate-limiting accepts a consumer-group scope (different limits per group).
    scopes: { consumer_group: true },
    // Kong: kong/plugins/rate-limiting/schema.lua, all six as Kong declares them. rateLimitingSchema
    // enforces all of them (the Redis ones with Kong's messages).
    kongEntityChecks: [
      { at_least_one_of: ['config.second', 'config.minute', 'config.hour', 'config.day', 'config.month', 'config.year'] },
      { conditional: { if_field: 'config.policy', if_match: { eq: 'redis' }, then_field: 'config.redis.host', then_match: { required: true } } },
      { conditional: { if_field: 'config.policy', if_match: { eq: 'redis' }, then_field: 'config.redis.port', then_match: { required: true } } },
      { conditional: { if_field: 'config.policy', if_match: { eq: 'redis' }, then_field: 'config.redis.timeout', then_match: { required: true } } },
      { conditional: { if_field: 'config.limit_by', if_match: { eq: 'header' }, then_field: 'config.header_name', then_match: { required: true } } },
      { conditional: { if_field: 'config.limit_by', if_match: { eq: 'path' }, then_field: 'config.path', then_match: { required: true } } },
    ],
    check: checkRateLimiting,
    create(conf, deps) {
      const limits = periods.filter((p) => conf[p] !== null).map((p) => ({ period: p, limit: conf[p] as number }));
      if (conf.policy === 'redis') return sharedHandlers(conf, deps, limits, new RedisCounters(conf.redis as RedisPolicySettings, conf.sync_rate, deps.log));
      if (conf.policy === 'cluster') {
        const database = deps.database ?? 'off';
        // `check` refuses this wherever a config is validated; a node built without it still must not
        // silently count per process.
        if (database === 'off') throw new Error("config.policy: 'cluster' needs a database (database = sqlite or postgres); in DB-less mode use 'local' or 'redis'");
        return sharedHandlers(conf, deps, limits, new ClusterCounters(deps.sharedKv, database, deps.log));
      }
      const store = new CounterStore(options.maxCounters);

      return {
        access(ctx) {
          const now = ctx.now();
          // Kong keys a counter by the plugin's own route and service (not the request's): a
          // global or service-wide instance counts all the routes it covers together. The store
          // is this instance's, so the identifier is the key.
          const identifier = identify(conf, ctx);
          const windows = limits.map(({ period, limit }) => {
            const bounds = windowBounds(period, now);
            return { period, limit, ...bounds, key: `${identifier}:${bounds.start}:${period}` };
          });

          let usage: number[];
          try {
            usage = windows.map((w) => store.get(w.key, now));
          } catch (err) {
            if (!conf.fault_tolerant) throw err;
            deps.log.error({ err }, 'rate-limiting: failed to get usage; letting the request through');
            return;
          }

          const reply = decide(conf, ctx, windows, usage, now);
          if (reply !== undefined) return reply;
          // Counted synchronously (Kong defers it to a timer): the check and the increment cannot
          // interleave with another request in this process, so bursts cannot overshoot.
          for (const w of windows) store.increment(w.key, 1, w.end, now);
        },
        close() {
          store.clear();
        },
      };
    },
  });
}

interface CheckedWindow {
  period: Period;
  limit: number;
  start: number;
  end: number;
}

/**
 * Kong's check (handler.lua): sets the rate-limit headers and returns the rejection when a window
 * is used up; undefined = admit (the caller then counts the request).
 */
function decide(conf: RateLimitingConfig, ctx: RequestContext, windows: readonly CheckedWindow[], usage: readonly number[], now: number): Reply | undefined {
  let stop: Period | null = null;
  for (let i = 0; i < windows.length; i++) if (windows[i].limit - usage[i] <= 0) stop = windows[i].period;

  const headers: Record<string, string> = {};
  let reset: number | null = null;
  if (!conf.hide_client_headers) {
    // The window reported in RateLimit-*: lowest remaining, ties → the longer window.
    let best: { limit: number; remaining: number; span: number } | null = null;
    for (let i = 0; i < windows.length; i++) {
      const w = windows[i];
      let remaining = w.limit - usage[i];
      if (stop === null || stop === w.period) remaining -= 1;
      remaining = Math.max(0, remaining);
      const span = w.end - w.start;
      if (best === null || remaining < best.remaining || (remaining === best.remaining && span > best.span)) {
        best = { limit: w.limit, remaining, span };
        reset = Math.max(1, Math.ceil((w.end - now) / 1000));
      }
      headers[`X-RateLimit-Limit-${capitalized[w.period]}`] = String(w.limit);
      headers[`X-RateLimit-Remaining-${capitalized[w.period]}`] = String(remaining);
    }
    if (best !== null) {
      headers['RateLimit-Limit'] = String(best.limit);
      headers['RateLimit-Remaining'] = String(best.remaining);
      headers['RateLimit-Reset'] = String(reset);
    }
  }

  if (stop !== null) {
    if (reset !== null) headers['Retry-After'] = String(reset);
    for (const [k, v] of Object.entries(headers)) ctx.downstreamHeaders.set(k, v);
    return ctx.reply(conf.error_code, { message: conf.error_message }, headers);
  }

  for (const [k, v] of Object.entries(headers)) ctx.downstreamHeaders.set(k, v);
  return undefined;
}

/** Counters shared beyond this process: Redis (`policy: redis`) or the database (`policy: cluster`). */
interface SharedCounters {
  /** Current count of each window, in order; rejects when the store fails. */
  usage(windows: readonly RedisWindow[]): Promise<number[]>;
  /** Counts one admitted request in every window; never throws. */
  increment(windows: readonly RedisWindow[]): void;
  /** Logs a store failure, rate-limited. */
  logFailure(what: string, err: unknown, consequence: string): void;
  close(): Promise<void>;
}

/**
 * `policy: redis` and `policy: cluster`: the same check over shared counters (redis-policy.ts,
 * cluster-policy.ts). Keys are Kong's and carry the plugin's own route and service ids: a global
 * or service-wide instance counts all its routes together (as `local` does).
 */
function sharedHandlers(conf: RateLimitingConfig, deps: PluginDeps, limits: ReadonlyArray<{ period: Period; limit: number }>, counters: SharedCounters): PluginHandlers {
  const routeId = deps.entity.route?.id;
  const serviceId = deps.entity.service?.id;
  return {
    async access(ctx) {
      const now = ctx.now();
      const identifier = identify(conf, ctx);
      const windows: Array<CheckedWindow & RedisWindow> = limits.map(({ period, limit }) => {
        const { start, end } = windowBounds(period, now);
        return { period, limit, start, end, key: redisKey(routeId, serviceId, identifier, start, period) };
      });

      let usage: number[];
      try {
        usage = await counters.usage(windows);
      } catch (err) {
        // Kong: fault_tolerant false → the error reaches the client as a 500; true → log and proxy
        // without limiting (and without rate-limit headers: there is no count to report).
        if (!conf.fault_tolerant) throw err;
        counters.logFailure('usage read', err, 'letting requests through unlimited (fault_tolerant)');
        return;
      }

      const reply = decide(conf, ctx, windows, usage, now);
      if (reply !== undefined) return reply;
      counters.increment(windows);
    },
    close() {
      return counters.close();
    },
  };
}

export default createRateLimitingPlugin();
