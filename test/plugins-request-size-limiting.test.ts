import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { configIssue as issue } from './helpers/http.ts';
import requestSizeLimiting from '../src/plugins/bundled/request-size-limiting/index.ts';

const plugins = [requestSizeLimiting];
// This file's own temporary directory (the gateway runs in this process): the spill-file check
// below sees only this file's bodies.
process.env.TMPDIR = mkdtempSync(join(tmpdir(), 'rsl-test-'));

interface Sent {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/**
 * One request on its own connection: `body` goes with a Content-Length, `chunks` chunked (no
 * Content-Length), neither = no body at all.
 */
function send(base: string, path: string, o: { method?: string; headers?: Record<string, string>; body?: Buffer | string; chunks?: (Buffer | string)[] } = {}): Promise<Sent> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.body !== undefined) headers['content-length'] = String(Buffer.byteLength(o.body));
    if (o.chunks !== undefined) headers['transfer-encoding'] = 'chunked';
    const req = http.request(`${base}${path}`, { method: o.method ?? 'POST', headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    // A refused body may be cut short by the gateway closing: the answer is what counts.
    req.on('error', (err) => setTimeout(() => reject(err), 200));
    if (o.chunks !== undefined) {
      for (const c of o.chunks) req.write(c);
      req.end();
    } else req.end(o.body);
  });
}

const KB = 1024;
const bytes = (n: number): Buffer => Buffer.alloc(n, 0x61);

let echo: EchoServer;
let gw: TestGateway;
/** A gateway whose plugin buffering is capped at 4 KiB (client_body_buffer_size) and bodies at 64 KiB. */
let capped: TestGateway;

const service = (port: number, routes: object[]) => ({
  _format_version: '3.0',
  services: [{ name: 'echo', protocol: 'http', host: '127.0.0.1', port, routes }],
});

before(async () => {
  echo = await startEcho();
  gw = await startGateway({
    plugins,
    config: service(echo.port, [
      { name: 'kb', paths: ['/kb'], plugins: [{ name: 'request-size-limiting', config: { allowed_payload_size: 1, size_unit: 'kilobytes' } }] },
      { name: 'bytes', paths: ['/bytes10'], plugins: [{ name: 'request-size-limiting', config: { allowed_payload_size: 10, size_unit: 'bytes' } }] },
      { name: 'mb', paths: ['/mb'], plugins: [{ name: 'request-size-limiting', config: { allowed_payload_size: 1 } }] },
      { name: 'cl', paths: ['/need-length'], plugins: [{ name: 'request-size-limiting', config: { allowed_payload_size: 10, size_unit: 'bytes', require_content_length: true } }] },
      { name: 'default', paths: ['/default'], plugins: [{ name: 'request-size-limiting' }] },
    ]),
  });
  capped = await startGateway({
    plugins,
    env: { PORTCULLIS_CLIENT_BODY_BUFFER_SIZE: '4k', PORTCULLIS_CLIENT_MAX_BODY_SIZE: '64k' },
    config: service(echo.port, [
      { name: 'big', paths: ['/big'], plugins: [{ name: 'request-size-limiting', config: { allowed_payload_size: 32, size_unit: 'kilobytes' } }] },
      { name: 'huge', paths: ['/huge'], plugins: [{ name: 'request-size-limiting', config: { allowed_payload_size: 1 } }] },
    ]),
  });
});

after(async () => {
  await gw?.close();
  await capped?.close();
  await echo?.close();
});

test('Content-Length at the limit passes (body proxied whole), one byte over → 413 with Kong\'s message', async () => {
  const ok = await send(gw.proxyUrl, '/kb', { body: bytes(KB) });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(JSON.parse(ok.text).data.length, KB);
  const over = await send(gw.proxyUrl, '/kb', { body: bytes(KB + 1) });
  assert.equal(over.status, 413);
  assert.deepEqual(JSON.parse(over.text), { message: 'Request size limit exceeded' });
  assert.match(String(over.headers['content-type']), /application\/json/);
});

test('size units multiply by 1, 1024 and 1048576', async () => {
  assert.equal((await send(gw.proxyUrl, '/bytes10', { body: bytes(10) })).status, 200);
  assert.equal((await send(gw.proxyUrl, '/bytes10', { body: bytes(11) })).status, 413);
  assert.equal((await send(gw.proxyUrl, '/mb', { body: bytes(1048576) })).status, 200);
  assert.equal((await send(gw.proxyUrl, '/mb', { body: bytes(1048577) })).status, 413);
});

test('chunked bodies are measured: at the limit proxied as sent, one byte over → 413', async () => {
  const ok = await send(gw.proxyUrl, '/kb', { chunks: [bytes(500), bytes(524)] });
  assert.equal(ok.status, 200, ok.text);
  const echoed = JSON.parse(ok.text);
  assert.equal(echoed.data.length, KB);
  assert.equal(echoed.headers['content-length'], String(KB));
  const over = await send(gw.proxyUrl, '/kb', { chunks: [bytes(500), bytes(525)] });
  assert.equal(over.status, 413);
  assert.deepEqual(JSON.parse(over.text), { message: 'Request size limit exceeded' });
});

test('Expect: 100-continue turns the refusal into 417, with Content-Length and chunked', async () => {
  const cl = await send(gw.proxyUrl, '/bytes10', { headers: { expect: '100-continue' }, body: bytes(11) });
  assert.equal(cl.status, 417);
  assert.deepEqual(JSON.parse(cl.text), { message: 'Request size limit exceeded' });
  const chunked = await send(gw.proxyUrl, '/bytes10', { headers: { expect: '100-continue' }, chunks: [bytes(6), bytes(6)] });
  assert.equal(chunked.status, 417);
  // Under the limit the expectation is no refusal.
  assert.equal((await send(gw.proxyUrl, '/bytes10', { headers: { expect: '100-continue' }, body: bytes(10) })).status, 200);
});

test('require_content_length: no Content-Length → 411; chunked is still measured', async () => {
  const none = await send(gw.proxyUrl, '/need-length', { method: 'GET' });
  assert.equal(none.status, 411);
  assert.deepEqual(JSON.parse(none.text), { message: 'A valid Content-Length header is required' });
  assert.equal((await send(gw.proxyUrl, '/need-length', { body: 'small' })).status, 200);
  assert.equal((await send(gw.proxyUrl, '/need-length', { chunks: ['small'] })).status, 200);
  assert.equal((await send(gw.proxyUrl, '/need-length', { chunks: ['0123456789', 'x'] })).status, 413);
});

test('a request without a body passes untouched (no Content-Length added upstream)', async () => {
  const r = await send(gw.proxyUrl, '/bytes10', { method: 'GET' });
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.text).headers['content-length'], undefined);
  assert.equal((await send(gw.proxyUrl, '/default', { body: bytes(64 * KB) })).status, 200);
});

test('with the node\'s buffer cap below the limit: chunked bodies past the cap are measured from a temporary file and proxied whole', async () => {
  // 8 KiB declared: under the plugin's 32 KiB, never read by the plugin, spilled by the proxy.
  const declared = await send(capped.proxyUrl, '/big', { body: bytes(8 * KB) });
  assert.equal(declared.status, 200, declared.text);
  assert.equal(JSON.parse(declared.text).data.length, 8 * KB);
  // Chunked under the cap: measured in memory and proxied.
  assert.equal((await send(capped.proxyUrl, '/big', { chunks: [bytes(3 * KB)] })).status, 200);
  // Chunked past the 4 KiB cap, under the plugin's 32 KiB: held in a temporary file (as nginx
  // does), measured, and proxied with its Content-Length, byte for byte.
  const parts = [Buffer.alloc(10 * KB, 0x62), Buffer.alloc(10 * KB, 0x63), Buffer.alloc(12 * KB, 0x64)];
  const spilled = await send(capped.proxyUrl, '/big', { chunks: parts });
  assert.equal(spilled.status, 200, spilled.text);
  const echoed = JSON.parse(spilled.text);
  assert.equal(echoed.headers['content-length'], String(32 * KB));
  assert.equal(echoed.data, Buffer.concat(parts).toString('latin1'));
  // One byte over the plugin's limit: refused as soon as it is passed, the connection closed.
  const over = await send(capped.proxyUrl, '/big', { chunks: [...parts, 'x'] });
  assert.equal(over.status, 413);
  assert.deepEqual(JSON.parse(over.text), { message: 'Request size limit exceeded' });
  assert.equal(over.headers.connection, 'close');
});

test('a chunked body measured into a temporary file leaves no file behind', async () => {
  const before = new Set(readdirSync(tmpdir()));
  for (let i = 0; i < 3; i++) assert.equal((await send(capped.proxyUrl, '/big', { chunks: [bytes(20 * KB)] })).status, 200);
  assert.equal((await send(capped.proxyUrl, '/big', { chunks: [bytes(20 * KB), bytes(20 * KB)] })).status, 413);
  // Files go when each response closes: give a busy machine a moment.
  const left = () => readdirSync(tmpdir()).filter((f) => !before.has(f) && f.startsWith('portcullis-body-'));
  for (let i = 0; i < 40 && left().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(left(), []);
});

test('client_max_body_size is the node\'s own limit, answered before the plugin', async () => {
  const r = await send(capped.proxyUrl, '/huge', { body: bytes(64 * KB + 1) });
  assert.equal(r.status, 413);
  assert.deepEqual(JSON.parse(r.text), { message: 'Payload too large' });
});

test('request-size-limiting config errors are rejected when the file is loaded', async () => {
  await assert.rejects(
    startGateway({ plugins, config: { plugins: [{ name: 'request-size-limiting', config: { size_unit: 'gigabytes' } }] } }),
    issue(/size_unit/),
  );
  await assert.rejects(
    startGateway({ plugins, config: { plugins: [{ name: 'request-size-limiting', config: { allowed_payload_size: 1.5 } }] } }),
    issue(/allowed_payload_size/),
  );
  await assert.rejects(
    startGateway({ plugins, config: { plugins: [{ name: 'request-size-limiting', protocols: ['tcp'], config: {} }] } }),
    issue(/protocols/),
  );
});

test('HTTP/2 (h2c): a body without Content-Length is measured; too large → 413, within the limit proxied', async () => {
  const h2gw = await startGateway({
    plugins,
    proxyListen: '127.0.0.1:0 http2',
    config: service(echo.port, [{ name: 'h2', paths: ['/h2'], plugins: [{ name: 'request-size-limiting', config: { allowed_payload_size: 10, size_unit: 'bytes' } }] }]),
  });
  const session = http2.connect(h2gw.proxyUrl);
  const post = (body: string) => new Promise<{ status: number; text: string }>((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': '/h2' });
    let status = 0;
    const parts: Buffer[] = [];
    stream.on('response', (h) => { status = Number(h[':status']); });
    stream.on('data', (c: Buffer) => parts.push(c));
    stream.on('end', () => resolve({ status, text: Buffer.concat(parts).toString('utf8') }));
    stream.on('error', reject);
    stream.write(body.slice(0, 5));
    stream.end(body.slice(5));
  });
  try {
    const ok = await post('0123456789');
    assert.equal(ok.status, 200, ok.text);
    assert.equal(JSON.parse(ok.text).data, '0123456789');
    const over = await post('0123456789x');
    assert.equal(over.status, 413);
    assert.deepEqual(JSON.parse(over.text), { message: 'Request size limit exceeded' });
  } finally {
    session.close();
    await h2gw.close();
  }
});
