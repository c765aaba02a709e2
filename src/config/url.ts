/**
 * The service `url` shorthand (Kong: write-only field expanded into protocol, host, port, path).
 */
import type { Protocol } from './types.ts';
import { checkHostname } from './fields.ts';
import { protocols } from './schemas.ts';

export type ParsedServiceUrl = { protocol: Protocol; host: string; port: number | null; path: string | null } | { error: string };

/**
 * Split `scheme://host[:port][/path]` (RFC 3986 §3). `path` is null when the URL has none, so
 * `http://a` and `http://a/` differ, as in Kong. Query strings, fragments and userinfo are refused.
 */
export function parseServiceUrl(url: string): ParsedServiceUrl {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)([?#].*)?$/.exec(url);
  if (!m) return { error: `invalid url '${url}': expected scheme://host[:port][/path]` };
  const scheme = (m[1] ?? '').toLowerCase();
  const authority = m[2] ?? '';
  const rawPath = m[3] ?? '';
  if (m[4] !== undefined) return { error: 'must not contain a query string or fragment' };
  if (!(protocols as readonly string[]).includes(scheme)) return { error: `unsupported protocol '${scheme}'` };
  if (authority.includes('@')) return { error: 'must not contain credentials' };
  const am = /^(\[[^\]]+\]|[^:]*)(?::(\d*))?$/.exec(authority);
  if (!am || (am[1] ?? '') === '') return { error: `invalid url '${url}': missing host` };
  let host = (am[1] ?? '').toLowerCase();
  if (host.startsWith('[')) host = host.slice(1, -1);
  const hostError = checkHostname(host);
  if (hostError) return { error: hostError };
  let port: number | null = null;
  if (am[2] !== undefined && am[2] !== '') {
    port = Number(am[2]);
    if (port > 65535) return { error: 'port must be between 0 and 65535' };
  }
  return { protocol: scheme as Protocol, host, port, path: rawPath === '' ? null : rawPath };
}
