/**
 * proxy-cache — Kong's response cache (priority 100; kong/plugins/proxy-cache/handler.lua).
 *
 * - access: a request that is not cacheable (method not in `request_method`; with
 *   `cache_control`, `Cache-Control: no-store`/`no-cache`) gets `X-Cache-Status: Bypass` and is
 *   proxied. Otherwise its cache key (cache-key.ts) is looked up: a fresh entry is answered from
 *   the cache (stored status, headers and body, plus `Age`, `X-Cache-Status: Hit` and
 *   `X-Cache-Key`); an entry older than `cache_ttl` (with `cache_control`: older than the
 *   client's `max-age`, staler than its `max-stale`, or fresh for less than its `min-fresh`) is a
 *   `Refresh`; no entry is a `Miss` (with `cache_control` and `only-if-cached`: 504). Refresh and
 *   Miss are proxied and their response stored.
 * - response: a cacheable response (rules.ts) asks for its body (`bufferBody`); any other gets
 *   `X-Cache-Status: Bypass`.
 * - body: keeps the final body for the entry, unchanged.
 * - log: writes the entry (storage.ts) with the headers as sent to the client, minus hop-by-hop
 *   headers and the gateway's per-request ones, for `storage_ttl` seconds (else the entry's TTL).
 *
 * `Age`, `X-Cache-Status` and `X-Cache-Key` are sent as `response_headers` says, or always when
 * the request has a `Kong-Debug` header (as Kong).
 *
 * The entry is written when the gateway holds the whole body, before it goes to the client (as
 * Kong's body_filter at the body's end), so the client's next request finds it.
 *
 * Deviations: a response the gateway does not hold (a HEAD answered by the
 * upstream, one larger than the node's body buffer cap, gRPC) is proxied as a Miss but not
 * stored. Kong's memory strategy keeps entries per node; here they are in the node's shared
 * key-value store (shared by the nodes of one database, see storage.ts). A hit is a local reply
 * (`X-Kong-Response-Latency`), where Kong marks it proxied (`X-Kong-Proxy-Latency`, `Via`).
 */
import { definePlugin, HTTP_PROTOCOLS } from '../../sdk.ts';
import type { Reply, RequestContext, ResponseContext } from '../../sdk.ts';
import { proxyCacheSchema, type CacheHeader, type ProxyCacheConfig } from './schema.ts';
import { buildCacheKey, kongQueryArgs, requestLineUri } from './cache-key.ts';
import { cacheableRequest, numericDirective, parseDirectives, responseTtl, type Directives } from './rules.ts';
import { CACHE_VERSION, CacheStore, type CacheEntry, type Lookup } from './storage.ts';
import { proxyCacheAdminRoutes } from './admin.ts';

/** `ctx.state` key of the request's pending store. */
const STATE = 'proxy-cache';

/** A request on its way to being stored: what each phase learnt. */
interface Pending {
  readonly cacheKey: string;
  /** The entry's TTL (seconds), once the response proved cacheable. */
  ttl?: number;
}

/**
 * Not replayed from the cache: hop-by-hop headers and Content-Length (Kong's list), rate-limit
 * counters (Kong: `ratelimit-remaining`), this plugin's own headers, and what the gateway sets
 * per request (its latencies, upstream status, request ids).
 */
const unstored = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailers', 'transfer-encoding', 'upgrade', 'content-length',
  'age', 'x-cache-status', 'x-cache-key',
  'x-kong-upstream-latency', 'x-kong-proxy-latency', 'x-kong-response-latency', 'x-kong-upstream-status', 'x-kong-request-id', 'x-request-id',
]);

function storedHeaders(sent: Readonly<Record<string, string | string[] | number>>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, v] of Object.entries(sent)) {
    const n = name.toLowerCase();
    if (unstored.has(n) || n.includes('ratelimit-remaining')) continue;
    out[n] = typeof v === 'number' ? String(v) : v;
  }
  return out;
}

/** Whole seconds, as `ngx.time()`. */
const seconds = (ms: number): number => Math.floor(ms / 1000);

export default definePlugin<ProxyCacheConfig>({
  name: 'proxy-cache',
  version: '0.1.0',
  priority: 100,
  protocols: HTTP_PROTOCOLS,
  schema: proxyCacheSchema,
  scopes: { global: true, service: true, route: true, consumer: true, consumer_group: false },
  // Kong's schema.lua: the shared-dict check (here on the field itself, schema.ts).
  kongEntityChecks: [{ custom_entity_check: { field_sources: ['config'] } }],
  adminRoutes: proxyCacheAdminRoutes,
  create(conf, deps) {
    const store = new CacheStore(deps.sharedKv, deps.entity.id);

    const shown = (ctx: RequestContext, name: CacheHeader): boolean => conf.response_headers[name] || ctx.request.headers['kong-debug'] !== undefined;
    /** Kong's `set_header` in access: on whatever response the request gets. */
    const announce = (ctx: RequestContext, name: CacheHeader, value: string): void => {
      if (shown(ctx, name)) ctx.downstreamHeaders.set(name, value);
    };
    /** Kong's `signal_cache_req`: proxy, and store the response if it proves cacheable. */
    const proxyAndStore = (ctx: RequestContext, cacheKey: string, status: 'Miss' | 'Refresh' | 'Bypass'): void => {
      ctx.state.set(STATE, { cacheKey } satisfies Pending);
      announce(ctx, 'X-Cache-Status', status);
    };

    const cacheKeyOf = (ctx: RequestContext): string => {
      const req = ctx.request;
      return buildCacheKey({
        consumerId: ctx.consumer?.id ?? null,
        routeId: ctx.route?.id ?? null,
        method: req.method,
        uri: requestLineUri(req.method, req.path, req.rawQuery, req.headers[':method'] !== undefined, conf.ignore_uri_case),
        query: kongQueryArgs(req.rawQuery),
        headers: req.headers,
        varyQueryParams: conf.vary_query_params,
        varyHeaders: conf.vary_headers,
      });
    };

    /** Whether the client accepts an entry this old (Kong's freshness checks). */
    const stale = (entry: CacheEntry, cc: Directives, nowSec: number): boolean => {
      const age = nowSec - entry.timestamp;
      if (!conf.cache_control) return age > conf.cache_ttl;
      const maxAge = numericDirective(cc, 'max-age');
      if (maxAge !== null && age > maxAge) return true;
      const maxStale = numericDirective(cc, 'max-stale');
      if (maxStale !== null && age - entry.ttl > maxStale) return true;
      const minFresh = numericDirective(cc, 'min-fresh');
      return minFresh !== null && entry.ttl - age < minFresh;
    };

    const hit = (ctx: RequestContext, cacheKey: string, entry: CacheEntry, nowSec: number): Reply => {
      const headers: Record<string, string | string[]> = { ...entry.headers };
      if (shown(ctx, 'age')) headers.age = String(Math.floor(nowSec - entry.timestamp));
      if (shown(ctx, 'X-Cache-Status')) headers['x-cache-status'] = 'Hit';
      if (shown(ctx, 'X-Cache-Key')) headers['x-cache-key'] = cacheKey;
      return ctx.reply(entry.status, Buffer.from(entry.body_base64, 'base64'), headers);
    };

    const answer = (ctx: RequestContext, cc: Directives, cacheKey: string, found: Lookup): Reply | undefined => {
      if (found.kind === 'none') {
        // RFC 9111 §5.2.1.7: the client wants a cached answer or none.
        if (conf.cache_control && cc['only-if-cached'] !== undefined) return ctx.reply(504);
        proxyAndStore(ctx, cacheKey, 'Miss');
        return undefined;
      }
      if (found.kind === 'corrupt') {
        ctx.log.error({ plugin: 'proxy-cache' }, 'could not decode the cached response; proxying without caching');
        return undefined;
      }
      const entry = found.entry;
      if (entry.version !== CACHE_VERSION) {
        ctx.log.info({ plugin: 'proxy-cache' }, 'cache format mismatch, purging the entry');
        store.purge(cacheKey).catch((err: unknown) => ctx.log.error({ err: { message: (err as Error).message } }, 'proxy-cache: purging an entry failed'));
        proxyAndStore(ctx, cacheKey, 'Bypass');
        return undefined;
      }
      const nowSec = seconds(ctx.now());
      if (stale(entry, cc, nowSec)) {
        proxyAndStore(ctx, cacheKey, 'Refresh');
        return undefined;
      }
      return hit(ctx, cacheKey, entry, nowSec);
    };

    return {
      access(ctx) {
        const cc = parseDirectives(ctx.request.headers['cache-control']);
        if (!cacheableRequest(ctx.request.method, conf.request_method, conf.cache_control, cc)) {
          announce(ctx, 'X-Cache-Status', 'Bypass');
          return;
        }
        const cacheKey = cacheKeyOf(ctx);
        announce(ctx, 'X-Cache-Key', cacheKey);
        const found = store.fetch(cacheKey);
        if (found instanceof Promise) return found.then((f) => answer(ctx, cc, cacheKey, f));
        return answer(ctx, cc, cacheKey, found);
      },
      response(ctx: ResponseContext) {
        const pending = ctx.state.get(STATE) as Pending | undefined;
        if (pending === undefined) return;
        const res = ctx.response;
        const ttl = responseTtl({
          status: res.status,
          contentType: res.getHeader('content-type'),
          cacheControl: res.getHeader('cache-control'),
          expires: res.getHeader('expires'),
        }, conf, seconds(ctx.now()));
        if (ttl === null) {
          if (shown(ctx, 'X-Cache-Status')) res.setHeader('X-Cache-Status', 'Bypass');
          ctx.state.delete(STATE);
          return;
        }
        pending.ttl = ttl;
        res.bufferBody();
      },
      // As Kong's body_filter at the end of the body: the entry is stored before the body goes
      // to the client, so the client's next request finds it.
      body(ctx, body) {
        const pending = ctx.state.get(STATE) as Pending | undefined;
        if (pending?.ttl === undefined) return undefined;
        const entry: CacheEntry = {
          status: ctx.response.status,
          headers: storedHeaders(ctx.response.headers),
          body_base64: body.toString('base64'),
          body_len: body.length,
          timestamp: seconds(ctx.now()),
          ttl: pending.ttl,
          version: CACHE_VERSION,
        };
        store.store(pending.cacheKey, entry, conf.storage_ttl ?? pending.ttl)
          .catch((err: unknown) => ctx.log.error({ err: { message: (err as Error).message } }, 'proxy-cache: storing a response failed'));
        return undefined;
      },
    };
  },
});
