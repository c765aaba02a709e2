/**
 * A small forward proxy for tests (node:http): absolute-form requests (`GET http://host/path`)
 * for http targets and CONNECT tunnels for https ones. It records what it was asked for, counts
 * client connections, and, when `authorization` is given, answers 407 to any request whose
 * `Proxy-Authorization` differs. The header is never forwarded to the target.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

export interface ForwardProxy {
  url: string;
  /** `GET http://127.0.0.1:1234/token`, `CONNECT 127.0.0.1:8443`, in arrival order (accepted ones). */
  readonly requests: string[];
  /** Requests refused with 407. */
  readonly refused: number;
  /** Client connections accepted so far. */
  readonly connections: number;
  reset(): void;
  close(): Promise<void>;
}

export async function startForwardProxy(opts: { authorization?: string } = {}): Promise<ForwardProxy> {
  const requests: string[] = [];
  let refused = 0;
  let connections = 0;
  const sockets = new Set<Socket>();
  const authorized = (h: IncomingHttpHeaders): boolean => opts.authorization === undefined || h['proxy-authorization'] === opts.authorization;

  const server = createServer((req, res) => {
    if (!authorized(req.headers)) {
      refused++;
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="test"' }).end();
      return;
    }
    const url = req.url ?? '';
    if (!/^http:\/\//.test(url)) {
      res.writeHead(400).end('absolute-form expected');
      return;
    }
    requests.push(`${req.method} ${url}`);
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    delete headers['proxy-connection'];
    const out = httpRequest(url, { method: req.method, headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    out.on('error', () => res.writeHead(502).end());
    req.pipe(out);
  });
  server.on('connection', (s: Socket) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('connect', (req, client: Socket, head: Buffer) => {
    if (!authorized(req.headers)) {
      refused++;
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    requests.push(`CONNECT ${req.url}`);
    const [host, port] = (req.url ?? '').split(':');
    const target = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) target.write(head);
      target.pipe(client);
      client.pipe(target);
    });
    sockets.add(target);
    target.on('close', () => sockets.delete(target));
    target.on('error', () => client.destroy());
    client.on('error', () => target.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get refused() {
      return refused;
    },
    get connections() {
      return connections;
    },
    reset() {
      requests.length = 0;
      refused = 0;
      connections = 0;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
