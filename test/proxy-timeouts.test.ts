/**
 * Timeouts on the request body: client_body_timeout (PORTCULLIS_CLIENT_BODY_TIMEOUT, Kong's
 * default 60 s between two reads → 408, connection closed) for buffered and streamed bodies, and
 * the service's `write_timeout` (ms between two successive writes to the upstream → 504) when the
 * upstream stops reading the request body.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { readSettings, SettingsError } from '../src/kernel/settings.ts';

/** Sends a request head announcing `length` bytes, then only `sent` of them, and waits for the answer. */
function stalledBody(port: number, path: string, length: number, sent: number): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, 20_000);
    socket.on('data', (c) => (text += c.toString('latin1')));
    socket.on('end', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed: true });
    });
    socket.on('error', reject);
    socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: ${length}\r\n\r\n${'a'.repeat(sent)}`);
  });
}

describe('client_body_timeout', () => {
  let echo: EchoServer;
  let gw: TestGateway;
  before(async () => {
    echo = await startEcho();
    gw = await startGateway({
      env: { PORTCULLIS_CLIENT_BODY_TIMEOUT: '500ms' },
      config: {
        services: [{ name: 'echo', url: echo.url, routes: [
          { name: 'buffered', paths: ['/buffered'] },
          { name: 'streamed', paths: ['/streamed'], request_buffering: false },
        ] }],
      },
    });
  });
  after(async () => {
    await gw.close();
    await echo.close();
  });

  for (const path of ['/buffered', '/streamed']) {
    test(`a body that stops arriving → 408, connection closed (${path === '/buffered' ? 'request_buffering: true' : 'request_buffering: false'})`, async () => {
      const before = echo.received.length;
      const { text, closed } = await stalledBody(gw.proxyPort, `${path}/slow`, 100, 10);
      assert.match(text, /^HTTP\/1\.1 408 /);
      assert.match(text, /connection: close/i);
      assert.match(text, /"message":"Request timeout"/);
      assert.ok(closed, 'connection closed');
      // A buffered body never reached the upstream.
      if (path === '/buffered') assert.equal(echo.received.length, before);
    });
  }

  test('a body that keeps arriving (slower than the whole timeout, but within it between reads) is served', async () => {
    const r = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${gw.proxyUrl}/buffered/ok`, { method: 'POST' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      let n = 0;
      const tick = setInterval(() => {
        if (++n < 5) req.write('x'.repeat(10));
        else {
          clearInterval(tick);
          req.end();
        }
      }, 200);
    });
    assert.equal(r, 200);
  });

  test('PORTCULLIS_CLIENT_BODY_TIMEOUT: 60 s by default; nginx durations; nonsense refused naming the setting', () => {
    assert.equal(readSettings({}, {}).clientBodyTimeout, 60_000);
    assert.equal(readSettings({}, { PORTCULLIS_CLIENT_BODY_TIMEOUT: '15' }).clientBodyTimeout, 15_000);
    assert.equal(readSettings({}, { PORTCULLIS_CLIENT_BODY_TIMEOUT: '250ms' }).clientBodyTimeout, 250);
    assert.equal(readSettings({}, { PORTCULLIS_CLIENT_BODY_TIMEOUT: '2m' }).clientBodyTimeout, 120_000);
    assert.throws(() => readSettings({}, { PORTCULLIS_CLIENT_BODY_TIMEOUT: 'soon' }), (err: Error) => err instanceof SettingsError && /PORTCULLIS_CLIENT_BODY_TIMEOUT/.test(err.message));
  });
});

describe('service write_timeout', () => {
  // An upstream that accepts connections and never reads a byte: the request body piles up in
  // the socket buffers until nothing more can be written.
  let stuck: net.Server;
  let port = 0;
  const sockets = new Set<net.Socket>();
  let gw: TestGateway;
  before(async () => {
    stuck = net.createServer((s) => {
      sockets.add(s);
      s.pause();
      s.on('error', () => {});
    });
    await new Promise<void>((r) => stuck.listen(0, '127.0.0.1', () => r()));
    port = (stuck.address() as net.AddressInfo).port;
    gw = await startGateway({
      config: {
        services: [{
          // read_timeout is long: only write_timeout can end these requests in time.
          name: 'stuck', url: `http://127.0.0.1:${port}`, write_timeout: 500, read_timeout: 120_000, retries: 0, routes: [
            { name: 'buffered', paths: ['/buffered'] },
            { name: 'streamed', paths: ['/streamed'], request_buffering: false },
          ],
        }],
      },
    });
  });
  after(async () => {
    await gw.close();
    for (const s of sockets) s.destroy();
    stuck.close();
  });

  for (const path of ['/buffered', '/streamed']) {
    test(`an upstream that stops reading the request body → 504 after write_timeout (${path === '/buffered' ? 'request_buffering: true' : 'request_buffering: false'})`, { timeout: 60_000 }, async () => {
      const body = Buffer.alloc(48 * 1024 * 1024, 0x62);
      const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request(`${gw.proxyUrl}${path}/upload`, { method: 'POST', headers: { 'content-length': String(body.length) } }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        // The gateway may answer and close before taking the whole body.
        req.on('error', (err) => reject(err));
        req.end(body);
      });
      assert.equal(r.status, 504);
      assert.deepEqual(JSON.parse(r.body), { message: 'The upstream server is timing out' });
    });
  }
});
