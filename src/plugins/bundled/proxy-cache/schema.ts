/**
 * proxy-cache's config schema: Kong's fields, defaults and checks (kong/plugins/proxy-cache/schema.lua).
 *
 * `memory.dictionary_name`: Kong checks that the nginx shared dict exists (its entity check,
 * `missing shared dict '<name>'`). Here every entry lives in the node's shared key-value store
 * whatever the name, so the names a default Kong defines (its nginx template's `lua_shared_dict`s)
 * are accepted and any other is refused with Kong's message, under the field (Kong reports it
 * under `@entity`).
 *
 * Deviation: Kong takes any integer for `storage_ttl`; a negative one makes every store fail in
 * Kong (the shared dict refuses the expiry), so it is refused here ("value should be at least 0").
 * `0` keeps entries with no expiry, as a shared dict does with exptime 0.
 */
import { z } from 'zod';
import { between } from '../../sdk.ts';

/** The shared dicts of Kong's default nginx template (kong/templates/nginx_kong.lua). */
export const KONG_SHARED_DICTS: readonly string[] = [
  'kong', 'kong_locks', 'kong_healthchecks', 'kong_cluster_events', 'kong_rate_limiting_counters',
  'kong_core_db_cache', 'kong_core_db_cache_miss', 'kong_db_cache', 'kong_db_cache_miss', 'kong_secrets',
];

/** Kong's `strategies.STRATEGY_TYPES` (OSS: memory only). */
export const STRATEGIES = ['memory'] as const;

/** Kong's `request_method` elements (`one_of`). */
export const CACHEABLE_METHODS = ['HEAD', 'GET', 'POST', 'PATCH', 'PUT'] as const;

const memorySchema = z.strictObject({
  dictionary_name: z.string().superRefine((name, ctx) => {
    if (!KONG_SHARED_DICTS.includes(name)) ctx.addIssue({ code: 'custom', message: `missing shared dict '${name}'`, input: name });
  }).default('kong_db_cache'),
});

const responseHeadersSchema = z.strictObject({
  age: z.boolean().default(true),
  'X-Cache-Status': z.boolean().default(true),
  'X-Cache-Key': z.boolean().default(true),
});

export const proxyCacheSchema = z.strictObject({
  response_code: z.array(between(z.int(), 100, 900)).min(1).default(() => [200, 301, 404]),
  request_method: z.array(z.enum(CACHEABLE_METHODS)).default(() => ['GET' as const, 'HEAD' as const]),
  content_type: z.array(z.string()).default(() => ['text/plain', 'application/json']),
  cache_ttl: z.int().gt(0).default(300),
  // Kong's one_of message, also for the single strategy (zod would say `value must be memory`).
  strategy: z.enum(STRATEGIES, { error: (iss) => (iss.input === undefined ? 'required field missing' : `expected one of: ${STRATEGIES.join(', ')}`) }),
  cache_control: z.boolean().default(false),
  ignore_uri_case: z.boolean().default(false),
  storage_ttl: z.int().min(0).nullable().default(null),
  memory: memorySchema.prefault({}),
  vary_query_params: z.array(z.string()).nullable().default(null),
  vary_headers: z.array(z.string()).nullable().default(null),
  response_headers: responseHeadersSchema.prefault({}),
});

export type ProxyCacheConfig = z.infer<typeof proxyCacheSchema>;

/** The headers `response_headers` switches on and off (Kong's names). */
export type CacheHeader = keyof ProxyCacheConfig['response_headers'];
