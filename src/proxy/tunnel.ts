/**
 * The WebSocket (and any HTTP/1.1 Upgrade) tunnel: the upgrade request goes upstream through
 * undici; once the upstream switched protocols, the client gets the 101 and both sockets are
 * spliced until either side closes.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';

/** The client side of an upgrade, as node:http's 'upgrade' event hands it over. */
export interface ClientUpgrade {
  readonly socket: Duplex;
  /** Bytes the client sent after its request head (the first frames, if any). */
  readonly head: Buffer;
}

/** Sends the upgrade request upstream; resolves once the upstream answered 101. */
export function openTunnel(
  pool: Dispatcher, path: string, method: string, headers: Record<string, string | string[] | undefined>, protocol: string, signal: AbortSignal,
): Promise<Dispatcher.UpgradeData> {
  return pool.upgrade({ path, method, headers, protocol, signal });
}

/**
 * Writes the 101 head (`headers` as the response phase left them) to the client and splices the
 * two sockets. `res` is the client's ServerResponse: it gives its socket up and emits 'close'
 * when the tunnel ends (the kernel's log phase hangs on that).
 */
export function spliceTunnel(res: ServerResponse, client: ClientUpgrade, upstream: Duplex, headers: Record<string, string | string[] | number>): void {
  res.statusCode = 101;
  let head = 'HTTP/1.1 101 Switching Protocols\r\n';
  for (const [k, v] of Object.entries(headers)) {
    for (const one of Array.isArray(v) ? v : [v]) head += `${k}: ${one}\r\n`;
  }
  const socket = client.socket;
  res.detachSocket(socket as Socket);
  socket.write(`${head}\r\n`);
  if (client.head.length > 0) upstream.write(client.head);
  upstream.on('error', () => socket.destroy());
  socket.on('error', () => upstream.destroy());
  upstream.on('close', () => socket.destroy());
  socket.on('close', () => {
    upstream.destroy();
    res.emit('close');
  });
  upstream.pipe(socket);
  socket.pipe(upstream);
}
