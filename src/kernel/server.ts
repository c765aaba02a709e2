/**
 * Proxy listeners: node:http/https servers wired to the request handler, with the edge checks
 * node's parser makes (request smuggling shapes, oversized headers) turned into Kong-style
 * replies, WebSocket upgrades, and a graceful drain.
 */
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import type { ListenSpec } from './settings.ts';
import type { RequestHandler } from './handler.ts';
import type { ConnectionStats } from './stats.ts';

export interface Listener {
  readonly server: http.Server;
  readonly spec: ListenSpec;
  port(): number;
}

function rawReply(socket: Duplex, status: number, reason: string, message: string): void {
  const body = JSON.stringify({ message });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export interface ServerOptions {
  maxHeaderSize: number;
  tls?: { cert: string; key: string };
  /** Bind with SO_REUSEPORT so several worker processes can listen on one port (Linux). */
  reusePort?: boolean;
  /** Counts connections and requests for GET /status. */
  stats?: ConnectionStats;
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
    if (!options.tls) throw new Error(`listener ${spec.host}:${spec.port} is "ssl" but PORTCULLIS_SSL_CERT/PORTCULLIS_SSL_CERT_KEY are not set`);
    server = https.createServer({ ...serverOptions, cert: options.tls.cert, key: options.tls.key }, handler.handle);
  } else {
    server = http.createServer(serverOptions, handler.handle);
  }
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
    server.listen({ host: spec.host, port: spec.port, reusePort: options.reusePort === true, exclusive: options.reusePort === true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, spec, port: () => (server.address() as AddressInfo).port };
}

/**
 * Stops accepting connections, lets in-flight requests finish (idle keep-alive connections are
 * closed at once), and after `timeoutMs` cuts whatever is left.
 */
export async function drain(listeners: readonly Listener[], timeoutMs: number): Promise<void> {
  await Promise.all(listeners.map((l) => new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      l.server.closeAllConnections();
      resolve();
    }, timeoutMs);
    timer.unref();
    l.server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    l.server.closeIdleConnections();
    // Connections that become idle after their last response must not keep the process alive.
    const sweep = setInterval(() => l.server.closeIdleConnections(), 100);
    sweep.unref();
    l.server.once('close', () => clearInterval(sweep));
  })));
}
