/**
 * Field-level validators shared by the entity schemas: names, tags, hosts, paths, methods,
 * headers. Rules follow Kong's typedefs (kong/db/schema/typedefs.lua); messages are our own.
 */
import { isIP } from 'node:net';
import { compileRoutePathRegex } from '../router/index.ts';

/** RFC 4122 textual UUID (any version; Kong accepts any). */
export const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Kong's `utf8_name`: ASCII letters and digits, `. - _ ~`, and any non-ASCII character. */
const namePattern = /^[A-Za-z0-9._~\u{80}-\u{10FFFF}-]+$/u;

export function checkName(value: string): string | null {
  return namePattern.test(value) ? null : `invalid value '${value}': the only accepted ascii characters are alphanumerics or ., -, _, and ~`;
}

export function checkTag(value: string): string | null {
  // Kong (typedefs.tag): printable ASCII or UTF-8, never ',' or '/' (they separate tags in
  // `?tags=` filters), with Kong's message.
  const bad = value === '' || value.includes(',') || value.includes('/') || [...value].some((ch) => {
    const c = ch.codePointAt(0) ?? 0;
    return c < 0x20 || c === 0x7f;
  });
  return bad ? `invalid tag '${value}': expected printable ascii (except \`,\` and \`/\`) or valid utf-8 sequences` : null;
}

const labelPattern = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/i;

/** A DNS name or IP literal, as a service host. Underscores are tolerated (container names). */
export function checkHostname(value: string): string | null {
  if (isIP(value) !== 0) return null;
  if (value.startsWith('[') && value.endsWith(']') && isIP(value.slice(1, -1)) === 6) return null;
  const name = value.endsWith('.') ? value.slice(0, -1) : value;
  if (name.length === 0 || name.length > 253) return `invalid hostname: '${value}'`;
  for (const label of name.split('.')) if (!labelPattern.test(label)) return `invalid hostname: '${value}'`;
  return null;
}

/**
 * A route host: a hostname with an optional `:port`, and at most one `*` wildcard that is either
 * the whole leftmost label (`*.example.com`) or the whole rightmost label (`example.*`).
 */
export function checkRouteHost(value: string): string | null {
  let host = value;
  const portMatch = /^(.*[^:\]]|\[[^\]]+\]):(\d{1,5})$/.exec(value);
  if (portMatch && isIP(value) !== 6) {
    host = portMatch[1] ?? '';
    const port = Number(portMatch[2]);
    if (port > 65535) return `invalid port in host '${value}'`;
  }
  const stars = host.split('*').length - 1;
  if (stars === 0) return checkHostname(host);
  // Kong's messages (typedefs.hosts).
  if (stars > 1) return 'invalid wildcard: must have at most one wildcard';
  const labels = host.split('.');
  const first = labels[0];
  const last = labels[labels.length - 1];
  if (labels.length < 2 || (first !== '*' && last !== '*')) {
    return 'invalid wildcard: must be placed at leftmost or rightmost label';
  }
  const rest = first === '*' ? labels.slice(1) : labels.slice(0, -1);
  return checkHostname(rest.join('.')) === null ? null : `invalid hostname: '${value}'`;
}

/** Route paths: `/prefix` or `~regex` (the regex must compile exactly as the router compiles it). */
export function checkRoutePath(value: string): string | null {
  if (value.startsWith('~')) {
    try {
      // Kong compiles with PCRE; the router's own compilation (PCRE group syntax translated,
      // then JavaScript's engine) decides, so the validator and the router cannot disagree.
      compileRoutePathRegex(value.slice(1));
    } catch (err) {
      return `invalid regex '${value.slice(1)}': ${(err as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '')}`;
    }
    return null;
  }
  // Kong's message (typedefs.router_path); Kong also wants `~/`, we accept any `~regex`.
  if (!value.startsWith('/')) return 'should start with: / (fixed path) or ~/ (regex path)';
  if (/[\s]/.test(value)) return 'must not contain whitespace';
  return null;
}

/**
 * A route's SNI (Kong's `wildcard_host` typedef, with its messages): one `*`, as the first or the
 * last character; no IP address, no port.
 */
export function checkWildcardHost(value: string): string | null {
  const at = value.indexOf('*');
  let host = value;
  if (at >= 0) {
    if (at !== 0 && at !== value.length - 1) return 'wildcard must be leftmost or rightmost character';
    if (value.indexOf('*', at + 1) >= 0) return 'only one wildcard must be specified';
    host = value.replace('*', 'wildcard');
  }
  const bare = host.startsWith('[') ? host.replace(/^\[|\](:\d*)?$/g, '') : host.replace(/:\d*$/, '');
  if (isIP(host) !== 0 || isIP(bare) !== 0) return 'must not be an IP';
  if (/^[^:]+:\d*$/.test(host)) return 'must not have a port';
  return checkHostname(host) === null ? null : `invalid value: ${host}`;
}

/** Service path: absolute, no query or fragment. */
export function checkServicePath(value: string): string | null {
  if (!value.startsWith('/')) return 'must start with "/"';
  if (/[?#\s]/.test(value)) return 'must not contain a query, fragment or whitespace';
  return null;
}

/** HTTP methods are upper-case tokens (RFC 9110 §9.1 token, upper-case by Kong's rule). */
export function checkMethod(value: string): string | null {
  return /^[A-Z]+$/.test(value) ? null : `invalid method '${value}': must be an upper-case token such as GET`;
}

/** Header field name (RFC 9110 §5.1 token). */
export function checkHeaderName(value: string): string | null {
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(value)) return `invalid header name '${value}'`;
  if (value.toLowerCase() === 'host') return "cannot contain 'host' header, which must be specified in the 'hosts' attribute";
  return null;
}

/**
 * Kong's `typedefs.header_name` (kong/tools/http.lua `validate_header_name`): letters, digits, `_`
 * and `-` only, narrower than an RFC 9110 token, with Kong's message. An empty name fails Kong's
 * string minimum first. Unlike a route's headers, `Host` is allowed (to hash on, to send with a
 * health check, to name a plugin's header).
 */
export function checkKongHeaderName(value: string): string | null {
  if (value === '') return 'length must be at least 1';
  return isKongHeaderName(value) ? null : `bad header name '${value}', allowed characters are A-Z, a-z, 0-9, '_', and '-'`;
}

/** Kong's `utils.validate_header_name` rule (typedefs.header_name and the transformers' entries). */
export function isKongHeaderName(value: string): boolean {
  return /^[A-Za-z0-9_-]+$/.test(value);
}

/**
 * Kong's `typedefs.path`, its checks in Kong's order and with Kong's messages: a leading `/`, no
 * empty segment, RFC 3986 characters only, `%` only as a valid escape.
 */
export function checkKongPath(value: string): string | null {
  if (!value.startsWith('/')) return 'should start with: /';
  if (value.includes('//')) return 'must not have empty segments';
  if (!/^\/[A-Za-z0-9.\-_~/%:@!$&'()*+,;=]*$/.test(value)) return `invalid path: '${value}' (characters outside of the reserved list of RFC 3986 found)`;
  const bad = /%(?![0-9A-Fa-f]{2}).{0,2}/s.exec(value);
  return bad === null ? null : `invalid url-encoded value: '${bad[0]}'`;
}
