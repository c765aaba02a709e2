/**
 * The path sent upstream: Kong's joining of `service.path`, the request path and the part of it
 * the route matched, for both `path_handling` algorithms.
 *
 * - `v0` (default): service path and the rest of the request path are joined by exactly one
 *   slash: service `/s`, route `/tv0`, request `/tv0req` → `/s/req`.
 * - `v1` (deprecated in Kong 3): the service path is a plain string prefix: same input → `/sreq`.
 * Both collapse the double slash that a `/`-terminated service path and a `/`-started rest create.
 */
import type { Route, Service } from '../config/types.ts';

const SLASH = 0x2f;

/**
 * Kong trims a leading `.`/`..` segment from the rest of the path so stripping a prefix can never
 * leave a dot segment that the upstream would resolve upwards.
 */
function sanitizePostfix(postfix: string): string {
  if (postfix === '') return postfix;
  if (postfix === '.' || postfix === '..') return '';
  if (postfix.startsWith('./')) return postfix.slice(2);
  if (postfix.startsWith('../')) return postfix.slice(3);
  return postfix;
}

/**
 * Compute the upstream path for a matched request.
 *
 * @param route          the matched route (`strip_path`, `path_handling` are read)
 * @param service        the route's service, or null (then the base path is `/`)
 * @param requestPath    the normalised request path, without the query string
 * @param matchedPrefix  the part of `requestPath` matched by the route's path (the prefix itself,
 *                       or the whole regex match); null when the route matched without a path
 */
export function upstreamPathFor(
  route: Pick<Route, 'strip_path' | 'path_handling'>,
  service: Pick<Service, 'path'> | null,
  requestPath: string,
  matchedPrefix: string | null,
): string {
  const base = service?.path || '/';
  const strip = route.strip_path;
  // Without a path match (or without stripping) the "rest" is the whole path minus its slash.
  const postfix = sanitizePostfix(
    strip && matchedPrefix !== null ? requestPath.slice(matchedPrefix.length) : requestPath.slice(1),
  );
  const baseEndsWithSlash = base.charCodeAt(base.length - 1) === SLASH;

  if (route.path_handling === 'v1') {
    if (!strip) return base + requestPath.slice(1);
    if (baseEndsWithSlash && postfix.charCodeAt(0) === SLASH) return base.slice(0, -1) + postfix;
    return base + postfix;
  }

  if (baseEndsWithSlash) {
    if (!strip) return base + requestPath.slice(1);
    if (postfix === '') {
      if (base === '/') return '/';
      // Keep the service path's trailing slash only when the client sent one.
      return requestPath.charCodeAt(requestPath.length - 1) === SLASH ? base : base.slice(0, -1);
    }
    if (postfix.charCodeAt(0) === SLASH) return base.slice(0, -1) + postfix;
    return base + postfix;
  }

  if (!strip) return requestPath === '/' ? base : base + requestPath;
  if (postfix === '') {
    return requestPath.length > 1 && requestPath.charCodeAt(requestPath.length - 1) === SLASH ? `${base}/` : base;
  }
  if (postfix.charCodeAt(0) === SLASH) return base + postfix;
  return `${base}/${postfix}`;
}
