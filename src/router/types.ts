import type { IncomingHttpHeaders } from 'node:http';
import type { Route, Service } from '../config/types.ts';
import type { EscapedSlashes, PathRefusal } from './path-safety.ts';

/** What the router needs to know about a request. Built by the kernel once per request. */
export interface RouterInput {
  /** Request method as sent (HTTP methods are case-sensitive; Node upper-cases the known ones). */
  method: string;
  /** Host header (or :authority) in lower case, without the port. Empty when absent. */
  host: string;
  /**
   * Port from the Host header, when one was given. Only consulted by route hosts that carry a
   * port (`example.com:8000`), which match solely requests naming that port.
   */
  port?: number | undefined;
  /** Raw request path, without the query string. The router normalises it. */
  path: string;
  /** Request headers, names in lower case (Node's `req.headers`). */
  headers: IncomingHttpHeaders;
  /** Scheme the client used (after trusted X-Forwarded-Proto handling, which is the kernel's job). */
  scheme: 'http' | 'https';
  /** TLS SNI server name, lower case, for https requests; routes with `snis` need it. */
  sni?: string | undefined;
}

/** Regex captures of a `~` route path (Kong's `router_matches.uri_captures`). */
export interface UriCaptures {
  /** Numbered groups: index 0 is group 1. Unmatched optional groups are undefined. */
  readonly unnamed: readonly (string | undefined)[];
  /** Named groups (`(?<name>...)`). */
  readonly named: Readonly<Record<string, string | undefined>>;
}

export interface RouteMatch {
  route: Route;
  service: Service | null;
  /** Path to send upstream (query string not included), per `strip_path` and `path_handling`. */
  upstreamPath: string;
  /** Part of the normalised request path the route's path matched (prefix or regex match); for X-Forwarded-Prefix. */
  matchedPath: string | null;
  /** The normalised request path that was matched (Kong proxies the normalised form). */
  normalizedPath: string;
  /** Captures when the route matched on a regex path, else null. */
  uriCaptures: UriCaptures | null;
  /**
   * True when the request came over http and the route only accepts https. Only possible when
   * the router was compiled with `httpsRedirect: true`; the kernel must then answer with
   * `route.https_redirect_status_code` (426 by default) instead of proxying, as Kong does.
   */
  httpsRedirect: boolean;
}

export interface Router {
  /**
   * Best route for the request by Kong's traditional priority rules, or null (→ 404). The path
   * is matched in its normalised form (`%2F`/`%5C` decoded first with `escapedSlashes:
   * 'unescape'`). Callers ask {@link Router.pathRefusal} first when `pathNeedsCheck(path)`.
   */
  match(input: RouterInput): RouteMatch | null;
  /**
   * Why the request's path must be refused with 400 before any plugin runs, or null: invalid
   * percent-encoding or NUL, an escaped slash with `escapedSlashes: 'reject'`, or a reading of
   * the path (decoded `%2F`/`%5C`, `\` as separator, `;` parameters, another decoding round)
   * that matches another route (path-safety.ts). Only paths for which `pathNeedsCheck` is true
   * can be refused.
   */
  pathRefusal(input: RouterInput): PathRefusal | null;
}

export interface CompileRouterOptions {
  /**
   * Kong's behaviour for https-only routes hit over http: the route still matches and the
   * gateway replies with `https_redirect_status_code`. Default false: such routes simply do not
   * match http requests.
   */
  httpsRedirect?: boolean;
  /** `PORTCULLIS_PATH_ESCAPED_SLASHES`: what `%2F`/`%5C` in a request path do (default `keep`). */
  escapedSlashes?: EscapedSlashes;
}
