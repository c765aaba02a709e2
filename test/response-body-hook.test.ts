/**
 * The plugin SDK's response-body hook: `ctx.response.bufferBody()` in the response phase, then
 * every collected plugin's `body` handler in priority order, before anything reaches the client.
 * A real gateway in front of a real upstream, with two small test plugins.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { definePlugin, type PluginDefinition } from '../src/plugins/sdk.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';

/** What the test plugins' log handlers saw: request path → bytes.sent. */
const sentBytes = new Map<string, number>();

const bodyConfig = z.strictObject({
  /** Call bufferBody() in the response phase. */
  buffer: z.boolean().default(true),
  /** Appended to the body by the body handler. */
  suffix: z.string().default(''),
  throws: z.boolean().default(false),
  /** The body handler answers with a Promise. */
  async: z.boolean().default(false),
  /** The response handler answers with a Promise (bufferBody() called after a pause). */
  asyncResponse: z.boolean().default(false),
});

/** A plugin that appends its suffix to the body and says, in a header, how long the body it saw was. */
function bodyPlugin(name: string, priority: number): PluginDefinition {
  return definePlugin({
    name,
    version: '0.0.0',
    priority,
    schema: bodyConfig,
    create(config: z.infer<typeof bodyConfig>) {
      return {
        response(ctx) {
          if (!config.asyncResponse) {
            if (config.buffer) ctx.response.bufferBody();
            return undefined;
          }
          return new Promise<void>((r) => setTimeout(() => {
            if (config.buffer) ctx.response.bufferBody();
            r();
          }, 5));
        },
        body(ctx, body) {
          if (config.throws) throw new Error('body handler failure');
          ctx.response.setHeader(`x-${name}-saw`, String(body.length));
          const out = Buffer.concat([body, Buffer.from(config.suffix)]);
          return config.async ? new Promise<Buffer>((r) => setTimeout(() => r(out), 5)) : out;
        },
        log(ctx) {
          sentBytes.set(`${name} ${ctx.request.path}`, ctx.bytes.sent);
        },
      };
    },
  });
}

const bodyA = bodyPlugin('body-a', 1000);
const bodyB = bodyPlugin('body-b', 500);

/** /hello: 5 bytes with Content-Length; /chunked: the same without; /big: 3000 bytes; /slow: 10 bytes, the second half on `release()`. */
async function startUpstream() {
  let releaseSlow: (() => void) | null = null;
  const server = http.createServer((req, res) => {
    req.resume();
    const url = req.url ?? '';
    if (url.endsWith('/hello')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' });
      res.end('hello');
    } else if (url.endsWith('/chunked')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('hel');
      setTimeout(() => res.end('lo'), 10);
    } else if (url.endsWith('/big')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '3000' });
      res.end('x'.repeat(3000));
    } else if (url.endsWith('/big-chunked')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      for (let i = 0; i < 3; i++) res.write('y'.repeat(1000));
      res.end();
    } else if (url.endsWith('/slow')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '10' });
      res.write('first');
      releaseSlow = () => res.end('later');
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    release: () => releaseSlow?.(),
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

interface Got { status: number; headers: http.IncomingHttpHeaders; body: string }

function get(url: string, method = 'GET'): Promise<Got> {
  return new Promise((resolve, reject) => {
    http.request(url, { method, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    }).on('error', reject).end();
  });
}

const a = (config: object = {}) => ({ name: 'body-a', config });
const b = (config: object = {}) => ({ name: 'body-b', config });

describe('response body hook (bufferBody / body)', () => {
  let up: Awaited<ReturnType<typeof startUpstream>>;
  let gw: TestGateway;
  const savedTmp = process.env.TMPDIR;
  let tmp = '';
  before(async () => {
    // A response held whole above the cap (response_buffering) spills to a file of this test's own.
    tmp = await mkdtemp(join(tmpdir(), 'body-hook-test-'));
    process.env.TMPDIR = tmp;
    up = await startUpstream();
    gw = await startGateway({
      plugins: [bodyA, bodyB],
      // 1 KiB: the node's in-memory cap for a held body.
      env: { PORTCULLIS_CLIENT_BODY_BUFFER_SIZE: '1k' },
      config: {
        services: [{
          name: 'up', host: '127.0.0.1', port: up.port, routes: [
            { name: 'one', paths: ['/one'], plugins: [a({ suffix: '!!' })] },
            { name: 'grow', paths: ['/grow'], plugins: [a({ suffix: 'z'.repeat(1000) })] },
            { name: 'chain', paths: ['/chain'], plugins: [b({ suffix: '-b', buffer: false, async: true }), a({ suffix: '-a' })] },
            { name: 'async', paths: ['/async'], plugins: [a({ suffix: '!!', asyncResponse: true })] },
            { name: 'throw', paths: ['/throw'], plugins: [a({ throws: true }), b({ suffix: '-b', buffer: false })] },
            { name: 'stream', paths: ['/stream'], plugins: [a({ buffer: false, suffix: '-a' })] },
            { name: 'local', paths: ['/local'], plugins: [{ name: 'request-termination', config: { status_code: 403, body: 'denied', content_type: 'text/plain' } }, a({ suffix: '!!' })] },
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

  test('a body handler replaces the body; Content-Length is the new length (upstream with Content-Length, and chunked; sync and async response phase)', async () => {
    for (const path of ['/one/hello', '/one/chunked', '/async/hello', '/async/chunked']) {
      const r = await get(`${gw.proxyUrl}${path}`);
      assert.equal(r.status, 200, path);
      assert.equal(r.body, 'hello!!', path);
      assert.equal(r.headers['content-length'], '7', path);
      assert.equal(r.headers['transfer-encoding'], undefined, path);
      assert.equal(r.headers['x-body-a-saw'], '5', `${path}: the handler saw the whole body, and could set a header`);
    }
  });

  test('bytes.sent in the log phase counts the body actually sent', async () => {
    const r = await get(`${gw.proxyUrl}/grow/hello`);
    assert.equal(r.body.length, 1005);
    await new Promise((res) => setTimeout(res, 20));
    const sent = sentBytes.get('body-a /grow/hello')!;
    // Head (well under 1000 bytes) plus the 1005 bytes sent: more than the upstream's 5-byte body could make.
    assert.ok(sent > 1005 && sent < 2005, String(sent));
  });

  test('handlers run in priority order, each seeing the previous result, whichever plugin asked (async handler included)', async () => {
    const r = await get(`${gw.proxyUrl}/chain/hello`);
    assert.equal(r.body, 'hello-a-b');
    assert.equal(r.headers['content-length'], '9');
    assert.equal(r.headers['x-body-a-saw'], '5');
    assert.equal(r.headers['x-body-b-saw'], '7', 'body-b (500) ran after body-a (1000), on its result');
  });

  test('a body handler that throws keeps the body as it was and is logged as a plugin failure', async () => {
    const r = await get(`${gw.proxyUrl}/throw/hello`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'hello-b', 'the next handler got the body unchanged');
    assert.equal(r.headers['content-length'], '7');
    const failure = gw.logs.find((l) => l.msg === 'plugin failed' && l.plugin === 'body-a');
    assert.ok(failure, 'the failure is logged');
    assert.equal(failure.phase, 'body');
  });

  test('a body above the buffer cap goes through unchanged, the handlers not called, one warning', async () => {
    for (const path of ['/one/big', '/one/big-chunked', '/one/big']) {
      const r = await get(`${gw.proxyUrl}${path}`);
      assert.equal(r.status, 200, path);
      assert.equal(r.body.length, 3000, path);
      assert.match(r.body, /^(x+|y+)$/, path);
      assert.equal(r.headers['x-body-a-saw'], undefined, path);
    }
    const warnings = gw.logs.filter((l) => typeof l.msg === 'string' && (l.msg as string).startsWith('response body above the buffer cap'));
    assert.equal(warnings.length, 1, 'at most one warning a minute');
    assert.equal(warnings[0].cap, 1024);
    // Small bodies on the same route are still transformed.
    assert.equal((await get(`${gw.proxyUrl}/one/hello`)).body, 'hello!!');
  });

  test('local replies go through the body handlers too; for HEAD only the new length is sent', async () => {
    const r = await get(`${gw.proxyUrl}/local`);
    assert.equal(r.status, 403);
    assert.equal(r.body, 'denied!!');
    assert.equal(r.headers['content-length'], '8');
    const h = await get(`${gw.proxyUrl}/local`, 'HEAD');
    assert.equal(h.status, 403);
    assert.equal(h.body, '');
    assert.equal(h.headers['content-length'], '8');
  });

  test('a response nobody buffers streams: the client has the first chunk before the upstream finishes', async () => {
    const first = await new Promise<{ chunk: string; rest: Promise<string> }>((resolve, reject) => {
      http.request(`${gw.proxyUrl}/stream/slow`, { agent: false }, (res) => {
        let all = '';
        const rest = new Promise<string>((r) => res.on('end', () => r(all)));
        // Held back (the feature broken), the first chunk would never come before the release.
        const timer = setTimeout(() => resolve({ chunk: '', rest }), 2000);
        res.once('data', (c: Buffer) => {
          clearTimeout(timer);
          all += c.toString();
          res.on('data', (d: Buffer) => (all += d.toString()));
          resolve({ chunk: c.toString(), rest });
        });
      }).on('error', reject).end();
    });
    up.release();
    assert.equal(first.chunk, 'first', 'the first chunk arrived while the upstream still held the rest');
    assert.equal(await first.rest, 'firstlater', 'no body handler ran');
  });
});
