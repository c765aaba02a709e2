/**
 * The lean HTTP/1.1 client against raw TCP upstreams that answer exactly what each case needs:
 * framing (content-length, chunked, close-delimited, HEAD, 1xx), keep-alive reuse and a stale
 * kept-alive socket, header hygiene, timeouts, aborts, the connection cap and garbage.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { Dispatcher } from 'undici';
import { H1Pool, type H1DispatchOptions } from './h1.ts';

interface Upstream {
  port: number;
  /** Every request head received, in order. */
  heads: string[];
  connections: number;
  close(): Promise<void>;
}

/** A TCP server: `answer(head, socket, index)` writes the response for each request head. */
async function upstream(answer: (head: string, socket: net.Socket, index: number) => void): Promise<Upstream> {
  const heads: string[] = [];
  const sockets = new Set<net.Socket>();
  const u: Upstream = { port: 0, heads, connections: 0, close: async () => {} };
  const server = net.createServer((socket) => {
    u.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, end + 4);
        buf = buf.slice(end + 4);
        heads.push(head);
        answer(head, socket, heads.length - 1);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  u.port = (server.address() as net.AddressInfo).port;
  u.close = () => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  });
  return u;
}

interface Result {
  status?: number;
  headers: string[];
  body: string;
  error?: Error & { code?: string };
  abort?: (err?: Error) => void;
}

/** Runs one request; resolves when the handler completes or fails. */
function request(pool: H1Pool, o: Partial<H1DispatchOptions> = {}, onHeaders?: (r: Result) => void): Promise<Result> {
  return new Promise((resolve) => {
    const r: Result = { headers: [], body: '' };
    const handler: Dispatcher.DispatchHandler = {
      onConnect(abort) { r.abort = abort; },
      onHeaders(status, raw) {
        r.status = status;
        r.headers = (raw as unknown as string[]).map(String);
        onHeaders?.(r);
        return true;
      },
      onData(chunk) { r.body += chunk.toString('latin1'); return true; },
      onComplete() { resolve(r); },
      onError(err) { r.error = err; resolve(r); },
    };
    pool.dispatch({ path: '/p', method: 'GET', headers: { host: 'up' }, clientHeaders: {}, readTimeout: 5000, writeTimeout: 5000, ...o }, handler);
  });
}

const pool = (u: Upstream, more: Partial<ConstructorParameters<typeof H1Pool>[2]> = {}) =>
  new H1Pool('127.0.0.1', u.port, { connectTimeout: 2000, connections: 16, keepAliveTimeout: 5000, ...more });

test('content-length, chunked and close-delimited bodies; kept-alive sockets are reused', async () => {
  const u = await upstream((head, s, i) => {
    if (i === 0) s.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: 1\r\n\r\nhello');
    else if (i === 1) s.write('HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n');
    else s.end('HTTP/1.0 200 OK\r\n\r\nuntil close');
  });
  const p = pool(u);
  try {
    const a = await request(p);
    assert.deepEqual([a.status, a.body, a.headers], [200, 'hello', ['content-length', '5', 'x-a', '1']]);
    const b = await request(p);
    assert.deepEqual([b.status, b.body], [201, 'abcde']);
    assert.equal(u.connections, 1, 'the second request reused the kept-alive socket');
    const c = await request(p);
    assert.deepEqual([c.status, c.body, c.error], [200, 'until close', undefined]);
    assert.match(u.heads[0], /^GET \/p HTTP\/1\.1\r\nhost: up\r\n\r\n$/);
  } finally {
    await p.close();
    await u.close();
  }
});

test('HEAD has no body whatever content-length says; 1xx answers are skipped; many headers arrive whole', async () => {
  const many = Array.from({ length: 40 }, (_, i) => `x-h${i}: v${i}\r\n`).join('');
  const u = await upstream((head, s) => {
    if (head.startsWith('HEAD')) s.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n');
    else s.write(`HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\n${many}content-length: 2\r\n\r\nok`);
  });
  const p = pool(u);
  try {
    const h = await request(p, { method: 'HEAD' });
    assert.deepEqual([h.status, h.body, h.error], [200, '', undefined]);
    const g = await request(p);
    assert.equal(g.status, 200);
    assert.equal(g.body, 'ok');
    assert.equal(g.headers.length, 82, '40 x-h headers + content-length, none of the 103');
    assert.deepEqual(g.headers.slice(78), ['x-h39', 'v39', 'content-length', '2']);
    assert.equal(u.connections, 1);
  } finally {
    await p.close();
    await u.close();
  }
});

test('a kept-alive socket the upstream closed meanwhile: the request goes again on a new socket', async () => {
  const u = await upstream((head, s, i) => {
    s.write(`HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n${i}`);
    if (i === 0) setTimeout(() => s.destroy(), 20); // closes its idle keep-alive socket
  });
  const p = pool(u);
  try {
    assert.equal((await request(p)).body, '0');
    await new Promise((r) => setTimeout(r, 100));
    const b = await request(p);
    assert.deepEqual([b.status, b.body, b.error], [200, '1', undefined]);
    assert.equal(u.connections, 2);
  } finally {
    await p.close();
    await u.close();
  }
});

test('header values and paths that could smuggle a request are refused before anything is sent', async () => {
  const u = await upstream((head, s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'));
  const p = pool(u);
  try {
    const bad = await request(p, { headers: { host: 'up', 'x-plugin': 'a\r\nx-injected: 1' } });
    assert.equal(bad.error?.code, 'UND_ERR_INVALID_ARG');
    const badName = await request(p, { headers: { host: 'up', 'x bad': '1' } });
    assert.equal(badName.error?.code, 'UND_ERR_INVALID_ARG');
    // Long values (checked once, then remembered): a clean one passes, a dirty one never does.
    const long = 'Bearer ' + 'x'.repeat(800);
    assert.equal(u.heads.length, 0);
    const dirtyLong = await request(p, { headers: { host: 'up', authorization: `${long}\r\nx-injected: 1` } });
    assert.equal(dirtyLong.error?.code, 'UND_ERR_INVALID_ARG');
    const badPath = await request(p, { path: '/a b HTTP/1.1\r\nx: 1' });
    assert.equal(badPath.error?.code, 'UND_ERR_INVALID_ARG');
    assert.equal(u.heads.length, 0, 'nothing reached the upstream');
    // Values straight from the client (node:http already checked them) and repeated fields.
    const ok = await request(p, { headers: { host: 'up', cookie: ['a=1', 'b=2'], 'x-c': 'é' }, clientHeaders: { 'x-c': 'é' } });
    assert.equal(ok.status, 200);
    assert.match(u.heads[0], /\r\ncookie: a=1\r\ncookie: b=2\r\nx-c: \xe9\r\n/);
    for (let i = 0; i < 2; i++) assert.equal((await request(p, { headers: { host: 'up', authorization: long } })).status, 200);
    assert.equal((await request(p, { headers: { host: 'up', authorization: `${long}\n` } })).error?.code, 'UND_ERR_INVALID_ARG', 'not taken for the clean one');
    assert.equal(u.heads.length, 3);
  } finally {
    await p.close();
    await u.close();
  }
});

test('read timeout before the headers and between body chunks; connect failures; garbage', async () => {
  const u = await upstream((head, s) => {
    if (head.includes('/slow-body')) s.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc');
    else if (head.includes('/garbage')) s.write('NOT HTTP AT ALL\r\n\r\n');
    // /silent: never answers
  });
  const p = pool(u);
  try {
    const silent = await request(p, { path: '/silent', readTimeout: 200 });
    assert.equal(silent.error?.code, 'UND_ERR_HEADERS_TIMEOUT');
    const slow = await request(p, { path: '/slow-body', readTimeout: 200 });
    assert.equal(slow.status, 200);
    assert.equal(slow.error?.code, 'UND_ERR_BODY_TIMEOUT');
    const garbage = await request(p, { path: '/garbage' });
    assert.equal(garbage.error?.code, 'UND_ERR_SOCKET');
  } finally {
    await p.close();
    await u.close();
  }
  const refused = await request(new H1Pool('127.0.0.1', u.port, { connectTimeout: 1000, connections: 4, keepAliveTimeout: 1000 }));
  assert.equal(refused.error?.code, 'ECONNREFUSED');
});

test('an abort mid-response fails the exchange and drops the socket; the connection cap queues requests', async () => {
  const u = await upstream((head, s) => {
    if (head.includes('/stream')) s.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npart');
    else setTimeout(() => s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'), 30);
  });
  const p = pool(u, { connections: 1 });
  try {
    const aborted = await request(p, { path: '/stream' }, (r) => setTimeout(() => r.abort!(new Error('client went away')), 20));
    assert.equal(aborted.error?.message, 'client went away');
    const both = await Promise.all([request(p), request(p)]);
    assert.deepEqual(both.map((r) => r.body), ['ok', 'ok']);
    assert.equal(u.connections, 2, 'the aborted socket was not reused; the two requests shared one socket in turn');
  } finally {
    await p.close();
    await u.close();
  }
});
