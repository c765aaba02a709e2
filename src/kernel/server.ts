/**
 * Proxy listeners: node:http/https servers wired to the request handler, with the edge checks
 * node's parser makes (request smuggling shapes, oversized headers) turned into Kong-style
 * replies, WebSocket upgrades, and a graceful drain.
 *
 * TLS listeners take their certificates from the CertificateStore (SNI selection at the
 * handshake). A listener with `http2` hands each connection to a node:http2 server when the
 * client speaks h2 (ALPN on TLS, the connection preface on plain h2c) and to the HTTP/1.1 server
 * otherwise, so both run the same request handler; plain listeners without `http2` are plain
 * node:http servers, untouched.
 */
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ListenSpec } from './settings.ts';
import type { RequestHandler } from './handler.ts';
import type { ConnectionStats } from './stats.ts';
import type { CertificateStore } from '../tls/store.ts';
import type { Logger } from 'pino';
import { installPreamble } from './preamble.ts';

export interface Listener {
  readonly server: http.Server;
  readonly spec: ListenSpec;
  /** The h2 side of an `http2` listener: its open sessions are closed (GOAWAY) on drain. */
  readonly h2: H2Side | null;
  port(): number;
}

/** The node:http2 server behind an `http2` listener and its open sessions. */
export interface H2Side {
  readonly server: http2.Http2Server;
  readonly sessions: Set<http2.ServerHttp2Session>;
}

const h2Preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

function rawReply(socket: Duplex, status: number, reason: string, message: string): void {
  const body = JSON.stringify({ message });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export interface ServerOptions {
  maxHeaderSize: number;
  /** Certificates for `ssl` listeners (SNI selection, default certificate, client certificates). */
  certificates?: CertificateStore;
  /** Bind with SO_REUSEPORT so several worker processes can listen on one port (Linux). */
  reusePort?: boolean;
  /** Counts connections and requests for GET /status. */
  stats?: ConnectionStats;
  /** For connections refused at the PROXY protocol header (debug level). */
  log?: Logger;
}

export async function listen(spec: ListenSpec, handler: RequestHandler, options: ServerOptions): Promise<Listener> {
  const serverOptions: http.ServerOptions = {
    maxHeaderSize: options.maxHeaderSize,
    keepAliveTimeout: 60_000,
    headersTimeout: 60_000,
    requestTimeout: 0,
    // Node ≥ 24.12: a request without Content-Length/Transfer-Encoding gets an already-ended body
    // stream instead of one that ends a tick later (less stream machinery per GET).
    optimizeEmptyRequests: true,
  };
  let server: http.Server;
  if (spec.ssl) {
    if (!options.certificates) throw new Error(`listener ${spec.host}:${spec.port} is "ssl" but no certificate is loaded`);
    const store = options.certificates;
    server = https.createServer({ ...serverOptions, ...store.serverOptions(spec.sslVerifyClient ?? undefined), ALPNProtocols: spec.http2 ? ['h2', 'http/1.1'] : ['http/1.1'] }, handler.handle);
    store.attach(server as unknown as https.Server);
    server.once('close', () => store.detach(server as unknown as https.Server));
    // A handshake that fails (garbage bytes, no shared cipher, a refused client certificate)
    // only ends that connection.
    server.on('tlsClientError', (_err: Error, socket: TLSSocket) => socket.destroy());
  } else {
    server = http.createServer(serverOptions, handler.handle);
  }
  const h2 = spec.http2 ? h2Side(server, spec.ssl, handler, options.maxHeaderSize) : null;
  // Before HTTP, TLS or the h2c sniffer: the PROXY protocol header, and the ClientHello when an
  // RSA + ECDSA certificate pair is served by SNI.
  const store = spec.ssl ? options.certificates : undefined;
  installPreamble(server, {
    tls: spec.ssl,
    proxyProtocol: spec.proxyProtocol,
    sniffHello: store !== undefined ? () => store.needsHello() : null,
    tls13: store?.policy.maxVersion === 'TLSv1.3',
    timeoutMs: 60_000,
    onRefused: (reason) => options.log?.debug({ listener: `${spec.host}:${spec.port}`, reason }, 'connection closed: no valid PROXY protocol header'),
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    if (err.code === 'HPE_HEADER_OVERFLOW') return rawReply(socket, 431, 'Request Header Fields Too Large', 'Request header or cookie too large');
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return rawReply(socket, 408, 'Request Timeout', 'Request timeout');
    // Malformed requests, including Content-Length + Transfer-Encoding together and duplicate or
    // invalid Content-Length (request smuggling shapes): refuse and close, forward nothing.
    rawReply(socket, 400, 'Bad Request', 'Bad request');
  });
  options.stats?.track(server);
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => handler.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const reusePort = options.reusePort === true || spec.reuseport;
    server.listen({ host: spec.host, port: spec.port, reusePort, exclusive: reusePort, ...(spec.backlog !== null ? { backlog: spec.backlog } : {}) }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, spec, h2, port: () => (server.address() as AddressInfo).port };
}

/**
 * Puts a node:http2 server behind `server`: TLS connections that negotiated h2 by ALPN, or plain
 * connections that open with the h2 preface (h2c prior knowledge), go to it; everything else goes
 * to the HTTP/1.1 server's own connection handling, unchanged.
 */
function h2Side(server: http.Server, ssl: boolean, handler: RequestHandler, maxHeaderSize: number): H2Side {
  const h2server = http2.createServer({ maxSendHeaderBlockLength: maxHeaderSize, settings: { maxHeaderListSize: maxHeaderSize } });
  h2server.on('request', handler.handle as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
  const sessions = new Set<http2.ServerHttp2Session>();
  h2server.on('session', (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    session.on('error', () => session.destroy());
  });
  h2server.on('sessionError', () => {});
  const event = ssl ? 'secureConnection' : 'connection';
  const h1Listeners = server.listeners(event) as Array<(socket: Socket) => void>;
  server.removeAllListeners(event);
  const toH1 = (socket: Socket): void => {
    for (const fn of h1Listeners) fn.call(server, socket);
  };
  if (ssl) {
    server.on(event, (socket: TLSSocket) => {
      if (socket.alpnProtocol === 'h2') h2server.emit('connection', socket);
      else toH1(socket);
    });
  } else {
    server.on(event, (socket: Socket) => {
      let seen: Buffer = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
        const n = Math.min(seen.length, h2Preface.length);
        const h2 = seen.subarray(0, n).equals(h2Preface.subarray(0, n));
        // Wait for more bytes only while they could still be either protocol.
        if (h2 && n < 4) return;
        socket.off('data', onData);
        socket.pause();
        socket.unshift(seen);
        // The h2 session reads what is buffered itself; the HTTP/1.1 parser needs the flow back.
        if (h2) h2server.emit('connection', socket);
        else {
          toH1(socket);
          socket.resume();
        }
      };
      socket.on('data', onData);
      socket.on('error', () => socket.destroy());
    });
  }
  return { server: h2server, sessions };
}

/**
 * Stops accepting connections, lets in-flight requests finish (idle keep-alive connections are
 * closed at once), and after `timeoutMs` cuts whatever is left.
 */
export async function drain(listeners: readonly Listener[], timeoutMs: number): Promise<void> {
  await Promise.all(listeners.map((l) => new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      l.server.closeAllConnections();
      if (l.h2 !== null) for (const session of l.h2.sessions) session.destroy();
      resolve();
    }, timeoutMs);
    timer.unref();
    l.server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    l.server.closeIdleConnections();
    // h2 sessions get a GOAWAY: streams in flight finish, no new ones start.
    if (l.h2 !== null) for (const session of l.h2.sessions) session.close();
    // Connections that become idle after their last response must not keep the process alive.
    const sweep = setInterval(() => l.server.closeIdleConnections(), 100);
    sweep.unref();
    l.server.once('close', () => clearInterval(sweep));
  })));
}
