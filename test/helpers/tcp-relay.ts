/**
 * A TCP relay to a real server (PostgreSQL, Redis) that can be cut (every socket destroyed, the
 * port closed: connections refused) and restored on the same port: an outage on demand, without
 * stopping the server other tests use.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * Connects `client`'s counterpart to 127.0.0.1:`target`: both sockets are tracked in `sockets`
 * and torn down together when either ends. The caller wires the data flow.
 */
export function linkTo(client: Socket, target: number, sockets: Set<Socket>): Socket {
  const upstream = connect(target, '127.0.0.1');
  sockets.add(client);
  sockets.add(upstream);
  const drop = (): void => {
    client.destroy();
    upstream.destroy();
    sockets.delete(client);
    sockets.delete(upstream);
  };
  client.on('error', drop).on('close', drop);
  upstream.on('error', drop).on('close', drop);
  return upstream;
}

/** A relay to 127.0.0.1:`target` that can be cut (all sockets destroyed) and restored on the same port. */
export function relay(target = 5432) {
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  let port = 0;
  let accepted = 0;
  const start = () =>
    new Promise<number>((resolve, reject) => {
      server = createServer((client) => {
        accepted += 1;
        const upstream = linkTo(client, target, sockets);
        client.pipe(upstream).pipe(client);
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        port = (server!.address() as { port: number }).port;
        resolve(port);
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      sockets.clear();
      if (server) server.close(() => resolve());
      else resolve();
      server = null;
    });
  /** Connections accepted so far. */
  const connections = () => accepted;
  return { start, stop, connections };
}
