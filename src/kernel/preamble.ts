/**
 * What a proxy listener reads from a new connection before HTTP or TLS sees it:
 *
 * - `proxy_protocol` listeners: the PROXY protocol header (v1 text or v2 binary, parsed by
 *   proxy-protocol-js) a load balancer puts in front of the connection. A connection without a
 *   valid header is closed, as nginx closes it. The carried source address is kept with the socket
 *   (`proxiedPeerOf`); the kernel uses it as the client address when `real_ip_header` is
 *   `proxy_protocol` and the load balancer is in `trusted_ips`.
 * - `ssl` listeners whose certificates include an RSA + ECDSA pair (`cert_alt`): the ClientHello,
 *   to learn which of the pair the client can verify (tls/client-hello.ts); the SNI callback reads
 *   that hint (`helloHintOf`, tls/store.ts).
 *
 * The bytes read are put back (`unshift`) and the connection is handed to the listener's own
 * connection handling (HTTP parser, TLS wrap or the h2c sniffer), which reads them again.
 */
import type { Server } from 'node:net';
import type { Socket } from 'node:net';
import { isIPv4 } from 'node:net';
import { Command, IPv4ProxyAddress, IPv6ProxyAddress, V1ProxyProtocol, V2ProxyProtocol } from 'proxy-protocol-js';
import { markHello, maxHelloBytes, readClientHello } from '../tls/client-hello.ts';

/** The client address a PROXY protocol header carried. */
export interface ProxiedPeer {
  address: string;
  port: number;
}

const proxiedKey = Symbol('portcullis.proxiedPeer');
type Marked = Socket & { [proxiedKey]?: ProxiedPeer | null; _parent?: Marked };

/**
 * The PROXY protocol source of the connection under `socket` (the raw socket, or a TLS socket
 * wrapping it), or null (no header, or a LOCAL/UNKNOWN one).
 */
export function proxiedPeerOf(socket: unknown): ProxiedPeer | null {
  const s = socket as Marked | null | undefined;
  return s?.[proxiedKey] ?? s?._parent?.[proxiedKey] ?? null;
}

const v2Signature = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const v1Prefix = Buffer.from('PROXY ');
/** v1: at most 107 bytes including CRLF (haproxy's proxy-protocol.txt §2.1). */
const v1Max = 107;

/** The RFC 5952 text of 16 address bytes (WHATWG URL hosts are serialized that way). */
function ipv6Text(bytes: readonly number[]): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/**
 * Reads a PROXY protocol header at the start of `buf`: 'more' = incomplete, an Error = not a
 * valid header; otherwise how many bytes it took and the source it carried (null for LOCAL or
 * UNKNOWN: the connection's own peer stands).
 */
export function readProxyHeader(buf: Buffer): { length: number; peer: ProxiedPeer | null } | 'more' | Error {
  if (buf.length === 0) return 'more';
  if (buf[0] === 0x0d) {
    const n = Math.min(buf.length, v2Signature.length);
    if (!buf.subarray(0, n).equals(v2Signature.subarray(0, n))) return new Error('not a PROXY protocol header');
    if (buf.length < 16) return 'more';
    const length = 16 + buf.readUInt16BE(14);
    if (buf.length < length) return 'more';
    if ((buf[12] & 0xf0) !== 0x20) return new Error('unsupported PROXY protocol version');
    if ((buf[12] & 0x0f) === Command.LOCAL) return { length, peer: null };
    const family = buf[13] & 0xf0;
    if (family !== 0x10 && family !== 0x20) return { length, peer: null }; // AF_UNSPEC / AF_UNIX
    try {
      const parsed = V2ProxyProtocol.parse(new Uint8Array(buf.buffer, buf.byteOffset, length));
      const a = parsed.proxyAddress;
      if (a instanceof IPv4ProxyAddress) return { length, peer: { address: a.sourceAddress.address.join('.'), port: a.sourcePort } };
      if (a instanceof IPv6ProxyAddress) return { length, peer: { address: ipv6Text(a.sourceAddress.address), port: a.sourcePort } };
      return { length, peer: null };
    } catch (err) {
      return new Error(`invalid PROXY protocol v2 header: ${(err as { message?: string }).message ?? String(err)}`);
    }
  }
  const n = Math.min(buf.length, v1Prefix.length);
  if (!buf.subarray(0, n).equals(v1Prefix.subarray(0, n))) return new Error('not a PROXY protocol header');
  const end = buf.subarray(0, v1Max).indexOf('\r\n');
  if (end < 0) return buf.length >= v1Max ? new Error('PROXY protocol v1 header longer than 107 bytes') : 'more';
  const line = buf.subarray(0, end + 2).toString('latin1');
  if (/^PROXY UNKNOWN[ \r]/.test(line)) return { length: end + 2, peer: null };
  try {
    const parsed = V1ProxyProtocol.parse(line);
    const address = parsed.source.ipAddress;
    if (parsed.inetProtocol === 'TCP4' && !isIPv4(address)) throw new Error(`'${address}' is not an IPv4 address`);
    return { length: end + 2, peer: { address, port: parsed.source.port } };
  } catch (err) {
    return new Error(`invalid PROXY protocol v1 header: ${(err as { message?: string }).message ?? String(err)}`);
  }
}

export interface PreambleOptions {
  /** The server is a TLS server (its connection handler wraps the socket). */
  tls: boolean;
  /** Expect a PROXY protocol header first. */
  proxyProtocol: boolean;
  /** Read the ClientHello when this says so (checked per connection: certificates can change). */
  sniffHello: (() => boolean) | null;
  /** Whether TLS 1.3 may be negotiated (what the ClientHello hint assumes). */
  tls13: boolean;
  /** Give up on a connection that sends no complete preamble in this time. */
  timeoutMs: number;
  /** A connection closed for a bad PROXY header. */
  onRefused?: (reason: string) => void;
}

/**
 * Puts the preamble reader in front of `server`'s 'connection' handling. Does nothing when
 * neither a PROXY header nor a ClientHello is to be read.
 */
export function installPreamble(server: Server, o: PreambleOptions): void {
  if (!o.proxyProtocol && o.sniffHello === null) return;
  const handlers = server.listeners('connection') as Array<(socket: Socket) => void>;
  server.removeAllListeners('connection');
  const handOver = (socket: Socket): void => {
    for (const fn of handlers) fn.call(server, socket);
  };
  server.on('connection', (socket: Marked) => {
    const sniff = o.sniffHello?.() === true;
    if (!o.proxyProtocol && !sniff) return handOver(socket);
    let seen: Buffer = Buffer.alloc(0);
    let headerDone = !o.proxyProtocol;
    let offset = 0;
    const timer = setTimeout(() => socket.destroy(), o.timeoutMs);
    timer.unref();
    const finish = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.pause();
      const rest = seen.subarray(offset);
      if (rest.length > 0) socket.unshift(rest);
      handOver(socket);
      // A plain HTTP parser (or the h2c sniffer) reads through 'data' events and needs the flow
      // back; a TLS wrap takes the buffered bytes and the handle itself (resuming would lose them).
      if (!o.tls && !socket.destroyed) socket.resume();
    };
    const onError = (): void => {
      clearTimeout(timer);
      socket.destroy();
    };
    const onData = (chunk: Buffer): void => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      if (!headerDone) {
        const h = readProxyHeader(seen);
        if (h === 'more') return;
        if (h instanceof Error) {
          clearTimeout(timer);
          o.onRefused?.(h.message);
          socket.destroy();
          return;
        }
        socket[proxiedKey] = h.peer;
        offset = h.length;
        headerDone = true;
      }
      if (sniff) {
        const hello = readClientHello(seen.subarray(offset), o.tls13);
        if (hello === 'more' && seen.length - offset < maxHelloBytes) return;
        markHello(socket, hello === 'more' ? null : hello);
      }
      finish();
    };
    socket.on('data', onData);
    socket.on('error', onError);
  });
}
