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
 * Only `policy: local` is implemented: counts are held in memory by the plugin instance, i.e. per
 * worker process, as with Kong's `local` policy.
 */
import { z } from 'zod';
import { definePlugin, HTTP_PROTOCOLS } from '../../sdk.ts';
import { kongHeaderName, kongPath } from '../../kong-typedefs.ts';
import type { RequestContext } from '../../sdk.ts';
import { CounterStore, periods, windowBounds, type Period } from './counters.ts';

const limit = z.number().positive().nullable().default(null);

/** Kong's shared Redis record; accepted so decK dumps load, unused with `policy: local`. */
const redisSchema = z.strictObject({
  host: z.string().nullable().default(null),
  port: z.int().min(0).max(65535).nullable().default(6379),
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
    error_code: z.int().min(100).max(599).default(429),
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
    if (conf.policy !== 'local') {
      issues.addIssue({ code: 'custom', path: ['policy'], message: `policy '${conf.policy}' is not supported yet; use 'local'` });
    }
    // The Redis settings (and Kong's flat redis_* spellings) apply to policy 'redis' only: with the
    // local counters they would be ignored, so anything but their defaults is refused.
    if (conf.policy === 'local') {
      for (const [field, dflt] of Object.entries(redisDefaults)) {
        const v = (conf.redis as Record<string, unknown>)[field];
        if (v !== dflt) issues.addIssue({ code: 'custom', path: ['redis', field], message: "not supported yet: the Redis settings apply to policy 'redis'; leave them at their defaults with 'local'" });
      }
      for (const [flat, field] of Object.entries(legacyRedisTarget) as Array<[keyof typeof legacyRedisFields, keyof typeof redisDefaults]>) {
        const v = conf[flat];
        if (v !== undefined && v !== null && v !== redisDefaults[field]) issues.addIssue({ code: 'custom', path: [flat], message: "not supported yet: the Redis settings apply to policy 'redis'; leave them at their defaults with 'local'" });
      }
    }
    // sync_rate paces writes to the Redis counters; Kong refuses it with any other policy.
    if (conf.sync_rate !== -1 && conf.policy !== 'redis') {
      issues.addIssue({ code: 'custom', path: ['sync_rate'], message: 'sync_rate can only be used with the redis policy' });
    }
  })
  .transform((conf) => {
    let redis = conf.redis;
    for (const [flat, field] of Object.entries(legacyRedisTarget) as Array<[keyof typeof legacyRedisFields, keyof typeof redis]>) {
      const v = conf[flat];
      if (v !== undefined && v !== null) redis = { ...redis, [field]: v };
    }
    return redis === conf.redis ? conf : { ...conf, redis };
  });

export type RateLimitingConfig = z.infer<typeof rateLimitingSchema>;

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
    // enforces the periods and limit_by ones; the Redis ones cannot arise, policy 'redis' being
    // refused (not supported yet).
    kongEntityChecks: [
      { at_least_one_of: ['config.second', 'config.minute', 'config.hour', 'config.day', 'config.month', 'config.year'] },
      { conditional: { if_field: 'config.policy', if_match: { eq: 'redis' }, then_field: 'config.redis.host', then_match: { required: true } } },
      { conditional: { if_field: 'config.policy', if_match: { eq: 'redis' }, then_field: 'config.redis.port', then_match: { required: true } } },
      { conditional: { if_field: 'config.policy', if_match: { eq: 'redis' }, then_field: 'config.redis.timeout', then_match: { required: true } } },
      { conditional: { if_field: 'config.limit_by', if_match: { eq: 'header' }, then_field: 'config.header_name', then_match: { required: true } } },
      { conditional: { if_field: 'config.limit_by', if_match: { eq: 'path' }, then_field: 'config.path', then_match: { required: true } } },
    ],
    create(conf, deps) {
      const store = new CounterStore(options.maxCounters);
      const limits = periods.filter((p) => conf[p] !== null).map((p) => ({ period: p, limit: conf[p] as number }));

      return {
        access(ctx) {
          const now = ctx.now();
          const identifier = identify(conf, ctx);
          // One plugin instance may serve many routes (global or service scope): count per route.
          const prefix = `${ctx.route?.id ?? ''}:${ctx.service?.id ?? ''}:${identifier}`;
          const windows = limits.map(({ period, limit }) => {
            const bounds = windowBounds(period, now);
            return { period, limit, ...bounds, key: `${prefix}:${bounds.start}:${period}` };
          });

          let usage: number[];
          try {
            usage = windows.map((w) => store.get(w.key, now));
          } catch (err) {
            if (!conf.fault_tolerant) throw err;
            deps.log.error({ err }, 'rate-limiting: failed to get usage; letting the request through');
            return;
          }

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

export default createRateLimitingPlugin();
