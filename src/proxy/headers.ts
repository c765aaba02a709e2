/**
 * Header hygiene between client, gateway and upstream (RFC 9110 §7.6.1: hop-by-hop fields are
 * meaningful only for one connection and must not be forwarded, nor any field the Connection
 * header names).
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';

// undici's own lower-cased lookup of well-known header names (a ternary search tree over the raw
// bytes: no string is built for names it knows). Not a documented export, hence the fallback.
const undiciUtil = createRequire(import.meta.url)('undici/lib/core/util.js') as { headerNameToString?: (name: Buffer | string) => string };
const headerName: (name: Buffer | string) => string = typeof undiciUtil.headerNameToString === 'function'
  ? undiciUtil.headerNameToString
  : (name) => name.toString('latin1').toLowerCase();

const hopByHop = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'http2-settings',
]);

export type HeaderMap = Record<string, string | string[]>;

/** Field names listed in the Connection header(s), lower-cased. */
function connectionListed(value: string | string[] | undefined): Set<string> | null {
  // The usual values name no header: skip the split on every request and response.
  if (value === undefined || value === 'keep-alive' || value === 'close') return null;
  const text = Array.isArray(value) ? value.join(',') : value;
  let out: Set<string> | null = null;
  for (const part of text.split(',')) {
    const name = part.trim().toLowerCase();
    if (name === '' || name === 'close' || name === 'keep-alive') continue;
    (out ??= new Set()).add(name);
  }
  return out;
}

/**
 * Copy of the client's headers that may go upstream: hop-by-hop fields and the ones named in
 * Connection removed; `host` removed too (the proxy sets it per `preserve_host`); `expect` too:
 * node:http has already answered `100 Continue` to the client (RFC 9110 §10.1.1 lets a proxy meet
 * the expectation itself), and undici refuses any request carrying it (UND_ERR_NOT_SUPPORTED),
 * which turned every `curl --data @file` over 1 KB into a 502.
 */
export function upstreamHeadersFrom(headers: IncomingHttpHeaders): HeaderMap {
  const listed = connectionListed(headers.connection);
  const out: HeaderMap = {};
  for (const name in headers) {
    if (hopByHop.has(name) || name === 'host' || name === 'expect') continue;
    // h2 pseudo-headers (:method, :path, :authority, :scheme) are not fields to forward.
    if (name.charCodeAt(0) === 58) continue;
    if (listed !== null && listed.has(name)) continue;
    const v = headers[name];
    if (v !== undefined) out[name] = v;
  }
  return out;
}

/**
 * Response headers straight from undici's raw list ([name, value, name, value, ...] as Buffers):
 * one pass that lower-cases names, joins repeated fields into arrays and drops hop-by-hop fields
 * and the ones named in Connection (a second pass only when Connection names something).
 */
export function downstreamHeadersFromRaw(raw: ReadonlyArray<Buffer | string>): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = headerName(raw[i]);
    const value = raw[i + 1].toString('latin1');
    if (hopByHop.has(name)) {
      if (name === 'connection') connection = connection === undefined ? value : `${connection},${value}`;
      continue;
    }
    if (name === '__proto__') continue;
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [String(prev), value];
  }
  const listed = connectionListed(connection);
  if (listed !== null) for (const name of listed) delete out[name];
  return out;
}

export function isHopByHop(name: string): boolean {
  return hopByHop.has(name);
}
