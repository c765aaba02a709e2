/**
 * A Redis proxy for tests, in the manner of Envoy's or twemproxy's: it relays RESP commands to
 * 127.0.0.1:6379 but knows only data commands. A command it does not support (by default HELLO,
 * INFO, SELECT, GETDEL, CLIENT, CLUSTER) closes the client connection, as such proxies do for commands
 * they cannot route. It records the command names it relayed and refused.
 */
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { linkTo } from './tcp-relay.ts';

export interface RedisProxy {
  port: number;
  readonly relayed: string[];
  readonly refused: string[];
  close(): Promise<void>;
}

/** Command names of complete RESP arrays at the start of `buf`; `rest` is what is not complete yet. */
function parseCommands(buf: Buffer): { names: string[]; ends: number[] } {
  const names: string[] = [];
  const ends: number[] = [];
  let i = 0;
  outer: while (i < buf.length) {
    if (buf[i] !== 0x2a /* * */) break;
    let eol = buf.indexOf('\r\n', i);
    if (eol < 0) break;
    const n = Number(buf.subarray(i + 1, eol).toString());
    let p = eol + 2;
    let name = '';
    for (let k = 0; k < n; k++) {
      if (buf[p] !== 0x24 /* $ */) break outer;
      eol = buf.indexOf('\r\n', p);
      if (eol < 0) break outer;
      const len = Number(buf.subarray(p + 1, eol).toString());
      const start = eol + 2;
      if (start + len + 2 > buf.length) break outer;
      if (k === 0) name = buf.subarray(start, start + len).toString().toUpperCase();
      p = start + len + 2;
    }
    names.push(name);
    ends.push(p);
    i = p;
  }
  return { names, ends };
}

export async function startRedisProxy(refuse: readonly string[] = ['HELLO', 'INFO', 'SELECT', 'GETDEL', 'CLIENT', 'CLUSTER']): Promise<RedisProxy> {
  const relayed: string[] = [];
  const refused: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = linkTo(client, 6379, sockets);
    upstream.pipe(client);
    let pending = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      const { names, ends } = parseCommands(pending);
      let sent = 0;
      for (let k = 0; k < names.length; k++) {
        if (refuse.includes(names[k])) {
          refused.push(names[k]);
          if (ends[k - 1] !== undefined) upstream.write(pending.subarray(sent, ends[k - 1]));
          client.destroy(); // linkTo tears the upstream side down with it
          return;
        }
        relayed.push(names[k]);
      }
      if (ends.length > 0) {
        sent = ends[ends.length - 1];
        upstream.write(pending.subarray(0, sent));
        pending = pending.subarray(sent);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    relayed,
    refused,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
