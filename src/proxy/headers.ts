/**
 * Header hygiene between client, gateway and upstream (RFC 9110 §7.6.1: hop-by-hop fields are
 * meaningful only for one connection and must not be forwarded, nor any field the Connection
 * header names).
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

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
 * Connection removed; `host` removed too (the proxy sets it per `preserve_host`).
 */
export function upstreamHeadersFrom(headers: IncomingHttpHeaders): HeaderMap {
  const listed = connectionListed(headers.connection);
  const out: HeaderMap = {};
  for (const name in headers) {
    if (hopByHop.has(name) || name === 'host') continue;
    if (listed !== null && listed.has(name)) continue;
    const v = headers[name];
    if (v !== undefined) out[name] = v;
  }
  return out;
}

/** Response headers from the upstream that may go to the client. */
export function downstreamHeadersFrom(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const listed = connectionListed(headers.connection as string | string[] | undefined);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (hopByHop.has(name)) continue;
    if (listed !== null && listed.has(name)) continue;
    const v = headers[name];
    if (v !== undefined) out[name] = v;
  }
  return out;
}

export function isHopByHop(name: string): boolean {
  return hopByHop.has(name);
}
