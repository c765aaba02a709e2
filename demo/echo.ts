/**
 * An httpbin-style echo upstream: every request is answered with a JSON description of what
 * arrived (method, url, path, args, headers, body). Used by the demo and by the tests.
 * `/status/{code}` answers with that status; `/bytes/{n}` streams n bytes; `/delay/{ms}` waits.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface EchoServer {
  readonly url: string;
  readonly port: number;
  /** Requests received so far (method, path with query, headers). */
  readonly received: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders }>;
  close(): Promise<void>;
}

export interface EchoOptions {
  port?: number;
  host?: string;
}

function handle(req: http.IncomingMessage, res: http.ServerResponse, received: EchoServer['received']): void {
  received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
  const url = new URL(req.url ?? '/', 'http://echo.local');
  const status = /^\/(?:anything\/)?status\/(\d{3})$/.exec(url.pathname);
  if (status) {
    req.resume();
    res.writeHead(Number(status[1]), { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: Number(status[1]) }));
    return;
  }
  const bytes = /^\/bytes\/(\d+)$/.exec(url.pathname);
  if (bytes) {
    req.resume();
    let left = Number(bytes[1]);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(left) });
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
    return;
  }
  if (url.pathname === '/upload-count') {
    // Counts body bytes without keeping them: proves streaming uploads.
    let count = 0;
    req.on('data', (c: Buffer) => { count += c.length; });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ bytes: count }));
    });
    return;
  }
  const delay = /^\/delay\/(\d+)$/.exec(url.pathname);
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const reply = (): void => {
      const body = Buffer.concat(chunks).toString('utf8');
      const args: Record<string, string | string[]> = {};
      for (const [k, v] of url.searchParams) {
        const prev = args[k];
        args[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
      }
      let json: unknown = null;
      if (String(req.headers['content-type'] ?? '').includes('json')) {
        try { json = JSON.parse(body); } catch { json = null; }
      }
      const payload = JSON.stringify({
        method: req.method,
        url: req.url,
        path: url.pathname,
        args,
        headers: req.headers,
        data: body,
        json,
        origin: req.socket.remoteAddress,
      });
      if (res.destroyed) return;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) });
      res.end(payload);
    };
    if (delay) setTimeout(reply, Number(delay[1]));
    else reply();
  });
}

/** Start the echo upstream (port 0 = any free port). */
export async function startEcho(options: EchoOptions = {}): Promise<EchoServer> {
  const received: EchoServer['received'] = [];
  const server = http.createServer((req, res) => handle(req, res, received));
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

if (import.meta.main) {
  const port = Number(process.env.ECHO_PORT ?? 9000);
  const echo = await startEcho({ port });
  console.log(`echo upstream listening on ${echo.url}`);
}
