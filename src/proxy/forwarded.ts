/**
 * The headers a proxy adds about the client (Kong's X-Forwarded-* set and X-Real-IP): from the
 * connection itself, or, when the peer is in trusted_ips, the values it already sent.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** What the gateway knows about the client side of one request (the kernel's `Incoming`). */
export interface ClientSide {
  readonly headers: IncomingHttpHeaders;
  /** The peer is in trusted_ips: its X-Forwarded-* values are kept. */
  readonly trusted: boolean;
  readonly scheme: 'http' | 'https';
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly clientIp: string;
}

/**
 * Sets X-Forwarded-For/-Proto/-Host/-Port/-Path/-Prefix and X-Real-IP on `out`. `remote` is the
 * peer address; `strippedPrefix` the path prefix the route stripped (null: none), sent as
 * X-Forwarded-Prefix unless a trusted peer sent its own.
 */
export function setForwardedHeaders(
  out: Record<string, string | string[] | undefined>, client: ClientSide, remote: string, strippedPrefix: string | null,
): void {
  const raw = client.headers;
  const trusted = client.trusted;
  const xff = raw['x-forwarded-for'];
  out['x-forwarded-for'] = trusted && xff !== undefined ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${remote}` : remote;
  out['x-forwarded-proto'] = trusted && typeof raw['x-forwarded-proto'] === 'string' ? raw['x-forwarded-proto'] : client.scheme;
  out['x-forwarded-host'] = trusted && typeof raw['x-forwarded-host'] === 'string' ? raw['x-forwarded-host'] : client.host;
  out['x-forwarded-port'] = trusted && typeof raw['x-forwarded-port'] === 'string' ? raw['x-forwarded-port'] : String(client.port);
  out['x-forwarded-path'] = trusted && typeof raw['x-forwarded-path'] === 'string' ? raw['x-forwarded-path'] : client.path;
  const prefix = trusted && typeof raw['x-forwarded-prefix'] === 'string' ? raw['x-forwarded-prefix'] : strippedPrefix;
  if (prefix !== null) out['x-forwarded-prefix'] = prefix;
  else if ('x-forwarded-prefix' in out) out['x-forwarded-prefix'] = undefined;
  out['x-real-ip'] = client.clientIp;
}
