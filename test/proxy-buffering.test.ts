/**
 * Route `request_buffering` and `response_buffering` (Kong's defaults: true). Buffered requests
 * reach the upstream only once the whole body is in (with a Content-Length, from memory or a
 * temporary file above client_body_buffer_size); unbuffered ones stream. Buffered responses
 * without a Content-Length are held whole and sent with one; unbuffered ones (and
 * `X-Accel-Buffering: no`) reach the client chunk by chunk.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type TestGateway } from './helpers/gateway.ts';

interface Seen { url: string; headers: http.IncomingHttpHeaders; bodyStarted: number; bytes: number; sha256: string }

/** An upstream that records when each request arrived and what body it got; `/sse` answers in two chunks. */
async function startUpstream() {
  const arrived: Array<{ url: string; completeBody: boolean }> = [];
  const seen: Seen[] = [];
  let releaseStream: (() => void) | null = null;
  const server = http.createServer((req, res) => {
    arrived.push({ url: req.url ?? '', completeBody: req.complete });
    if (req.url?.startsWith('/sse')) {
      req.resume();
      const headers: Record<string, string> = { 'content-type': 'text/event-stream' };
      if (req.url.includes('accel=no')) headers['x-accel-buffering'] = 'no';
      res.writeHead(200, headers); // no Content-Length: chunked
      if (req.url.includes('big=1')) {
        // 3 × 100 kB, well over the 1 KiB the gateway keeps in memory.
        for (const c of 'abc') res.write(c.repeat(100_000));
        res.end();
        return;
      }
      res.write('data: first\n\n');
      const end = (): void => void res.end('data: last\n\n');
      if (req.url.includes('wait=1')) releaseStream = end;
      else setTimeout(end, 50);
      return;
    }
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      hash.update(c);
    });
    req.on('end', () => {
      seen.push({ url: req.url ?? '', headers: req.headers, bodyStarted: 0, bytes, sha256: hash.digest('hex') });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ bytes }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrived, seen,
    release: () => releaseStream?.(),
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** A chunked POST whose body is written in two halves with a pause between them. */
function slowPost(url: string, first: Buffer, second: Buffer, pauseMs: number, during?: () => void): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.write(first);
    setTimeout(() => {
      during?.();
      req.end(second);
    }, pauseMs);
  });
}

describe('request_buffering and response_buffering', () => {
  let up: Awaited<ReturnType<typeof startUpstream>>;
  let gw: TestGateway;
  // The gateway runs in this process: its temporary files go to a folder of this test's own.
  const savedTmp = process.env.TMPDIR;
  let tmp = '';
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'buffering-test-'));
    process.env.TMPDIR = tmp;
    up = await startUpstream();
    gw = await startGateway({
      // Bodies over 1 KiB held by the gateway go to a temporary file.
      env: { PORTCULLIS_CLIENT_BODY_BUFFER_SIZE: '1k' },
      config: {
        services: [{
          name: 'up', url: up.url, routes: [
            { name: 'buffered', paths: ['/buffered'], strip_path: false },
            { name: 'streamed', paths: ['/streamed'], strip_path: false, request_buffering: false, response_buffering: false },
            { name: 'sse-default', paths: ['/sse'], strip_path: false },
            { name: 'sse-off', paths: ['/off'], strip_path: true, response_buffering: false },
          ],
        }],
      },
    });
  });
  after(async () => {
    await gw.close();
    await up.close();
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
    await rm(tmp, { recursive: true, force: true });
  });

  test('request_buffering: true (default): the upstream sees the request only once the whole body is in, with a Content-Length; above client_body_buffer_size the body goes through a temporary file intact', async () => {
    const first = Buffer.alloc(200_000, 1);
    const second = Buffer.alloc(100_000, 2);
    let arrivedMidBody = -1;
    const r = await slowPost(`${gw.proxyUrl}/buffered/a`, first, second, 600, () => {
      arrivedMidBody = up.arrived.filter((a) => a.url === '/buffered/a').length;
    });
    assert.equal(r.status, 200);
    assert.equal(arrivedMidBody, 0, 'the upstream was contacted before the body was complete');
    const seen = up.seen.find((s) => s.url === '/buffered/a')!;
    assert.equal(seen.bytes, 300_000);
    assert.equal(seen.sha256, createHash('sha256').update(Buffer.concat([first, second])).digest('hex'));
    assert.equal(seen.headers['content-length'], '300000');
    assert.equal(seen.headers['transfer-encoding'], undefined);
    // The temporary file is gone once the request is over.
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual((await readdir(tmp)).filter((f) => f.startsWith('portcullis-body-')), []);
  });

  test('request_buffering: false: the body streams; the upstream sees the request while the client is still sending', async () => {
    let arrivedMidBody = -1;
    const r = await slowPost(`${gw.proxyUrl}/streamed/b`, Buffer.alloc(5000, 3), Buffer.alloc(5000, 4), 600, () => {
      arrivedMidBody = up.arrived.filter((a) => a.url === '/streamed/b').length;
    });
    assert.equal(r.status, 200, r.body);
    assert.equal(arrivedMidBody, 1, `the upstream got the request before the body was complete ${r.body}`);
    const seen = up.seen.find((s) => s.url === '/streamed/b')!;
    assert.equal(seen.bytes, 10_000);
    assert.equal(seen.headers['transfer-encoding'], 'chunked');
  });

  test('response_buffering: true (default): a chunked upstream response reaches the client whole, with Content-Length', async () => {
    const r = await new Promise<{ headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      http.get(`${gw.proxyUrl}/sse/x`, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ headers: res.headers, body }));
      }).on('error', reject);
    });
    assert.equal(r.body, 'data: first\n\ndata: last\n\n');
    assert.equal(r.headers['content-length'], String(Buffer.byteLength(r.body)));
    assert.equal(r.headers['transfer-encoding'], undefined);
  });

  test('response_buffering: true: a chunked response over client_body_buffer_size is held in a temporary file and arrives intact, with Content-Length', async () => {
    const r = await new Promise<{ headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      http.get(`${gw.proxyUrl}/sse/big?big=1`, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ headers: res.headers, body }));
      }).on('error', reject);
    });
    assert.equal(r.body, 'a'.repeat(100_000) + 'b'.repeat(100_000) + 'c'.repeat(100_000));
    assert.equal(r.headers['content-length'], '300000');
    await new Promise((res) => setTimeout(res, 50));
    assert.deepEqual((await readdir(tmp)).filter((f) => f.startsWith('portcullis-body-')), []);
  });

  for (const [name, path] of [['response_buffering: false', '/off/sse?wait=1'], ['response_buffering: true with X-Accel-Buffering: no', '/sse?wait=1&accel=no']]) {
    test(`${name}: chunks reach the client while the upstream response is still open`, async () => {
      const r = await new Promise<{ headers: http.IncomingHttpHeaders; first: string; body: string }>((resolve, reject) => {
        http.get(`${gw.proxyUrl}${path}`, (res) => {
          let body = '';
          let first = '';
          res.on('data', (c: Buffer) => {
            body += c.toString();
            if (first === '') {
              first = body;
              // Only now may the upstream finish: a buffered response would never get here.
              up.release();
            }
          });
          res.on('end', () => resolve({ headers: res.headers, first, body }));
        }).on('error', reject);
      });
      assert.equal(r.first, 'data: first\n\n');
      assert.equal(r.body, 'data: first\n\ndata: last\n\n');
      assert.equal(r.headers['transfer-encoding'], 'chunked');
    });
  }
});
