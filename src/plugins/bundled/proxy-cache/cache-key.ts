/**
 * proxy-cache's cache key, Kong's algorithm (kong/plugins/proxy-cache/cache_key.lua and the
 * handler's `uri`): the SHA-256, in lower-case hex, of
 *
 *     <prefix>|<method>|<request line without its query>|<query part>|<header part>
 *
 * - prefix: `<consumer id>:<route id>` when a consumer is known, `<route id>` otherwise,
 *   `default` without a route;
 * - the request line is nginx's `$request` (`GET /path HTTP/1.1`) with everything from the first
 *   `?` removed, so a request with a query contributes `GET /path` and one without contributes
 *   `GET /path HTTP/1.1`; lower-cased whole with `ignore_uri_case`;
 * - query part: `name=value` items joined by `:` for `vary_query_params` in the configured order
 *   (every argument, names sorted, when the list is unset or empty); a repeated argument gives
 *   its values sorted and joined by `,`, a flag without `=` gives the bare name;
 * - header part: the same for `vary_headers` (nothing when unset or empty); names are looked up
 *   as Kong's header table does (case-insensitive, `_` read as `-`).
 *
 * Deviations: the HTTP version of the request line is not in the plugin SDK: HTTP/2 requests
 * (seen by their `:method` pseudo-header) count as `HTTP/2.0` and every other as `HTTP/1.1`
 * (an HTTP/1.0 request keys as HTTP/1.1). A bare `?` with nothing after it cannot be told from no
 * query. node:http joins repeated request headers with `, ` (Kong sorts them and joins with `,`),
 * so a repeated varied header keys on its values in arrival order.
 */
import { createHash } from 'node:crypto';

/** One query argument as Kong's `kong.request.get_query()` gives it. */
export type QueryValue = string | true | Array<string | true>;

/** Kong reads at most this many query arguments (`kong.request.get_query()` default). */
const MAX_ARGS = 100;

/** Byte order (Lua's string comparison in the C locale). */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** nginx's argument decoding: `+` is a space, `%XX` decoded, a malformed escape kept as is. */
function decodeArg(s: string): string {
  const spaced = s.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced.replace(/(?:%[0-9a-fA-F]{2})+/g, (run) => {
      try {
        return decodeURIComponent(run);
      } catch {
        return run;
      }
    });
  }
}

/** The raw query parsed as `ngx.req.get_uri_args()` does (empty names skipped). */
export function kongQueryArgs(rawQuery: string): Map<string, QueryValue> {
  const out = new Map<string, QueryValue>();
  if (rawQuery === '') return out;
  let count = 0;
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    if (++count > MAX_ARGS) break;
    const eq = part.indexOf('=');
    const name = decodeArg(eq < 0 ? part : part.slice(0, eq));
    if (name === '') continue;
    const value: string | true = eq < 0 ? true : decodeArg(part.slice(eq + 1));
    const prev = out.get(name);
    if (prev === undefined) out.set(name, value);
    else out.set(name, Array.isArray(prev) ? [...prev, value] : [prev, value]);
  }
  return out;
}

/** Kong's `generate_key_from`: `field=value` items, for the fields that are present, joined by `:`. */
function keyFrom(lookup: (field: string) => QueryValue | string | string[] | undefined, fields: readonly string[]): string {
  const items: string[] = [];
  for (const field of fields) {
    const v = lookup(field);
    if (v === undefined) continue;
    if (Array.isArray(v)) {
      // Lua cannot sort a list holding `true` (Kong errors there): a flag counts as ''.
      items.push(`${field}=${v.map((x) => (x === true ? '' : x)).sort(byteOrder).join(',')}`);
    } else if (v === true) {
      items.push(field);
    } else {
      items.push(`${field}=${v}`);
    }
  }
  return items.join(':');
}

/** Kong's `params_key`: the varied query arguments, or all of them (names sorted) when none are configured. */
export function paramsKey(args: ReadonlyMap<string, QueryValue>, vary: readonly string[] | null): string {
  const fields = vary !== null && vary.length > 0 ? vary : [...args.keys()].sort(byteOrder);
  return keyFrom((f) => args.get(f), fields);
}

/** Kong's `headers_key`: the varied request headers ('' when none are configured). */
export function headersKey(headers: Readonly<Record<string, string | string[] | undefined>>, vary: readonly string[] | null): string {
  if (vary === null || vary.length === 0) return '';
  return keyFrom((f) => headers[f.toLowerCase().replace(/_/g, '-')], vary);
}

/** Kong's `prefix_uuid`. */
export function prefixUuid(consumerId: string | null, routeId: string | null): string {
  if (consumerId !== null && routeId !== null) return `${consumerId}:${routeId}`;
  if (routeId !== null) return routeId;
  return 'default';
}

/** nginx's `$request` with everything from the first `?` removed (see the module comment). */
export function requestLineUri(method: string, path: string, rawQuery: string, http2: boolean, ignoreCase: boolean): string {
  const line = rawQuery !== '' || path.includes('?') ? `${method} ${path.split('?')[0]}` : `${method} ${path} ${http2 ? 'HTTP/2.0' : 'HTTP/1.1'}`;
  return ignoreCase ? line.toLowerCase() : line;
}

export interface CacheKeyParts {
  consumerId: string | null;
  routeId: string | null;
  method: string;
  uri: string;
  query: ReadonlyMap<string, QueryValue>;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  varyQueryParams: readonly string[] | null;
  varyHeaders: readonly string[] | null;
}

/** Kong's `build_cache_key`: 64 lower-case hex digits. */
export function buildCacheKey(p: CacheKeyParts): string {
  const text = `${prefixUuid(p.consumerId, p.routeId)}|${p.method}|${p.uri}|${paramsKey(p.query, p.varyQueryParams)}|${headersKey(p.headers, p.varyHeaders)}`;
  return createHash('sha256').update(text).digest('hex');
}
