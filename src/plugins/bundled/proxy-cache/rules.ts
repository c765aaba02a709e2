/**
 * proxy-cache's cacheability rules, as Kong's handler decides them (kong/plugins/proxy-cache/
 * handler.lua `cacheable_request` / `cacheable_response`, with kong/tools/http.lua
 * `parse_directive_header` and `calculate_resource_ttl`, kong/tools/mime_type.lua
 * `parse_mime_type`). Pure functions of their inputs, times in whole seconds as `ngx.time()`.
 *
 * - Request: its method is one of `request_method`; with `cache_control`, a `Cache-Control:
 *   no-store` or `no-cache` bypasses the cache. (Kong's code also tests `ngx.var.authorization`,
 *   an nginx variable Kong never defines, so an Authorization header does not bypass in Kong:
 *   nor here.)
 * - Response: its status is one of `response_code`; its Content-Type (a single, non-empty value)
 *   matches one of `content_type`: same type (or `*`) and subtype (or `*`), and exactly the same
 *   parameters — `application/json; charset=utf-8` does not match `application/json`; with
 *   `cache_control`, no `private`, `no-store` or `no-cache`, and a positive TTL from
 *   `s-maxage`, else `max-age`, else `Expires`.
 *
 * Deviation: where Kong's Lua would raise an error on a directive with a non-numeric value
 * (`max-age=abc`, a bare `max-age`), the value counts as 0 (the response is not cacheable) or the
 * request directive is ignored.
 */

/** A parsed directive header: lower-case names; a number, a string, or `true` for a bare token. */
export type Directives = Readonly<Record<string, number | string | true>>;

const luaNumber = /^\s*[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|0[xX][0-9a-fA-F]+)\s*$/;

/** Lua's `tonumber` on a directive value (decimal, exponent, hex; surrounding spaces allowed). */
function toNumber(s: string): number | null {
  if (!luaNumber.test(s)) return null;
  const t = s.trim();
  const neg = t.startsWith('-');
  const body = t.replace(/^[-+]/, '');
  const n = /^0[xX]/.test(body) ? parseInt(body.slice(2), 16) : Number(body);
  return neg ? -n : n;
}

/** Kong's `parse_directive_header` (Cache-Control): comma-separated `name[=value]` items. */
export function parseDirectives(header: string | string[] | undefined): Directives {
  if (header === undefined) return {};
  const text = Array.isArray(header) ? header.join(', ') : header;
  const out: Record<string, number | string | true> = {};
  for (const item of text.match(/[^,]+/g) ?? []) {
    const m = /^\s*([^=]+)(?:=(.+))?/.exec(item);
    if (m === null) continue;
    out[m[1].toLowerCase()] = m[2] === undefined ? true : (toNumber(m[2]) ?? m[2]);
  }
  return out;
}

/** A directive's numeric value, or null (absent or not a number). */
export function numericDirective(d: Directives, name: string): number | null {
  const v = d[name];
  return typeof v === 'number' ? v : null;
}

/**
 * Kong's `calculate_resource_ttl`: `s-maxage`, else `max-age`, else `Expires` minus now; never
 * below 0; 0 when none applies. A directive present without a number counts as 0.
 */
export function resourceTtl(cc: Directives, expires: string | string[] | undefined, nowSec: number): number {
  const given = cc['s-maxage'] ?? cc['max-age'];
  let maxAge: number | null = given === undefined ? null : typeof given === 'number' ? given : 0;
  if (maxAge === null && expires !== undefined) {
    const last = Array.isArray(expires) ? expires[expires.length - 1] : expires;
    const at = Date.parse(last);
    if (!Number.isNaN(at)) maxAge = Math.floor(at / 1000) - nowSec;
  }
  return maxAge === null ? 0 : Math.max(maxAge, 0);
}

/** Kong's `cacheable_request`. */
export function cacheableRequest(method: string, methods: readonly string[], cacheControl: boolean, cc: Directives): boolean {
  if (!methods.includes(method)) return false;
  if (cacheControl && (cc['no-store'] !== undefined || cc['no-cache'] !== undefined)) return false;
  return true;
}

/** A media type as Kong's `parse_mime_type` gives it (type and subtype lower-cased, parameter names too). */
export interface MediaType {
  readonly type: string;
  readonly subtype: string;
  readonly params: ReadonlyMap<string, string>;
}

// RFC 2045 tokens: US-ASCII minus controls and tspecials.
const TOKEN = String.raw`[!#$%&'*+\-.0-9A-Z^_\x60a-z{|}~]+`;
const QUOTED = String.raw`"((?:[^"\\\x00-\x1f\x7f]|\\[\x00-\x7f])*)"`;
const mediaHead = new RegExp(String.raw`^(?:(${TOKEN})/(${TOKEN})|(\*))`);
const mediaParam = new RegExp(String.raw`^[ \t]*;[ \t]*(${TOKEN})=(?:(${TOKEN})|${QUOTED})`);

/** Kong's `parse_mime_type`: null when the whole value does not parse (no spaces allowed around it). */
export function parseMediaType(value: string): MediaType | null {
  const head = mediaHead.exec(value);
  if (head === null) return null;
  const type = head[3] !== undefined ? '*' : head[1].toLowerCase();
  const subtype = head[3] !== undefined ? '*' : head[2].toLowerCase();
  const params = new Map<string, string>();
  let rest = value.slice(head[0].length);
  while (rest !== '') {
    const p = mediaParam.exec(rest);
    if (p === null) return null;
    params.set(p[1].toLowerCase(), p[2] ?? p[3]);
    rest = rest.slice(p[0].length);
  }
  return { type, subtype, params };
}

/**
 * Kong's content-type test: the response's type matches a configured one with `*` wildcards and
 * exactly the same parameters. An unparsable response type has no type, subtype or parameters:
 * only a configured `*` / `*` `/` `*` without parameters matches it (as in Kong).
 */
export function contentTypeMatches(contentType: string, configured: readonly string[]): boolean {
  const got = parseMediaType(contentType);
  for (const c of configured) {
    const want = parseMediaType(c);
    if (want === null) continue;
    if (want.type !== '*' && got?.type !== want.type) continue;
    if (want.subtype !== '*' && got?.subtype !== want.subtype) continue;
    const gotParams = got?.params ?? new Map<string, string>();
    if (want.params.size !== gotParams.size) continue;
    if ([...want.params].every(([k, v]) => gotParams.get(k) === v)) return true;
  }
  return false;
}

export interface ResponseFacts {
  status: number;
  contentType: string | string[] | undefined;
  cacheControl: string | string[] | undefined;
  expires: string | string[] | undefined;
}

export interface ResponseRules {
  response_code: readonly number[];
  content_type: readonly string[];
  cache_control: boolean;
  cache_ttl: number;
}

/**
 * Kong's `cacheable_response`, and the entry's TTL when cacheable (the resource's TTL with
 * `cache_control`, else `cache_ttl`); null when the response is not to be cached.
 */
export function responseTtl(res: ResponseFacts, conf: ResponseRules, nowSec: number): number | null {
  if (!conf.response_code.includes(res.status)) return null;
  const ct = res.contentType;
  if (ct === undefined || Array.isArray(ct) || ct === '') return null;
  if (!contentTypeMatches(ct, conf.content_type)) return null;
  if (!conf.cache_control) return conf.cache_ttl;
  const cc = parseDirectives(res.cacheControl);
  if (cc.private !== undefined || cc['no-store'] !== undefined || cc['no-cache'] !== undefined) return null;
  const ttl = resourceTtl(cc, res.expires, nowSec);
  return ttl > 0 ? ttl : null;
}
