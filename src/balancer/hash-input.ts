/**
 * The consistent-hashing input of a request, per the upstream's `hash_on` and then
 * `hash_fallback` (Kong's balancer/init.lua): consumer id (else credential id), client IP,
 * a header value, a cookie (generated and set on the response when missing), the normalised
 * path, a query argument (several values sorted and comma-joined) or a route regex capture.
 * Nothing found → the empty string (so all such requests share one address, as in Kong).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { HashOn, Upstream } from '../config/upstreams.ts';

/** What the hash needs from a request (the kernel's Context has this shape). */
export interface HashSource {
  readonly request: {
    readonly clientIp: string;
    readonly headers: IncomingHttpHeaders;
    readonly cookies: ReadonlyMap<string, string>;
    readonly query: URLSearchParams;
  };
  readonly consumer: { readonly id: string } | null;
  readonly credential: { readonly id: string } | null;
  readonly downstreamHeaders: { add(name: string, value: string): void };
}

export interface HashExtras {
  /** The normalised request path. */
  path: string;
  /** Regex captures of the matched route (numbered `1`… and named). */
  captures: { readonly unnamed: readonly (string | undefined)[]; readonly named: Readonly<Record<string, string | undefined>> } | null;
}

function one(u: Upstream, mode: HashOn, fallback: boolean, src: HashSource, extra: HashExtras): string | null {
  switch (mode) {
    case 'none':
      return null;
    case 'consumer':
      return src.consumer?.id ?? src.credential?.id ?? null;
    case 'ip':
      return src.request.clientIp || null;
    case 'header': {
      const name = (fallback ? u.hash_fallback_header : u.hash_on_header)!.toLowerCase();
      const v = src.request.headers[name];
      if (v === undefined) return null;
      return Array.isArray(v) ? v.join(',') : v;
    }
    case 'cookie': {
      const name = u.hash_on_cookie!;
      const v = src.request.cookies.get(name);
      if (v !== undefined) return v;
      // Kong: a new random value, sent to the client so its next requests stick to one target.
      const fresh = randomUUID();
      src.downstreamHeaders.add('set-cookie', `${name}=${fresh}; Path=${u.hash_on_cookie_path}; Same-Site=Lax; HttpOnly`);
      return fresh;
    }
    case 'path':
      return extra.path;
    case 'query_arg': {
      const values = src.request.query.getAll((fallback ? u.hash_fallback_query_arg : u.hash_on_query_arg)!);
      if (values.length === 0) return null;
      return values.length === 1 ? values[0] : [...values].sort().join(',');
    }
    case 'uri_capture': {
      const name = (fallback ? u.hash_fallback_uri_capture : u.hash_on_uri_capture)!;
      const c = extra.captures;
      if (c === null) return null;
      const n = /^\d+$/.test(name) ? Number(name) : NaN;
      const v = Number.isNaN(n) ? c.named[name] : n === 0 ? undefined : c.unnamed[n - 1];
      return v ?? null;
    }
  }
}

export function hashKey(u: Upstream, src: HashSource, extra: HashExtras): string {
  return one(u, u.hash_on, false, src, extra) ?? one(u, u.hash_fallback, true, src, extra) ?? '';
}
