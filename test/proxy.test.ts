import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { startGatewayProcess, type GatewayProcess } from './helpers/process.ts';

interface Echoed {
  method: string;
  url: string;
  path: string;
  headers: Record<string, string>;
  data: string;
}

/** GET with full control of headers (fetch forbids setting Host). */
function get(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('proxying to a real upstream', () => {
  let echo: EchoServer;
  let gw: TestGateway;

  before(async () => {
    echo = await startEcho();
    gw = await startGateway({
      config: `
_format_version: "3.0"
services:
  - name: example-service
    url: ${echo.url}/anything
    routes:
      - name: example-route
        paths: [/anything]
      - name: keep-path
        paths: [/keep]
        strip_path: false
      - name: host-route
        hosts: [api.example.com]
        preserve_host: true
        paths: [/h]
  - name: root-service
    url: ${echo.url}
    routes:
      - name: root-route
        paths: [/root]
  - name: slow
    url: ${echo.url}
    read_timeout: 300
    routes:
      - name: slow-route
        paths: [/slow]
        strip_path: true
  - name: dead
    url: http://127.0.0.1:1
    routes:
      - name: dead-route
        paths: [/dead]
  - name: unresolvable
    url: http://no-such-host.invalid
    routes:
      - name: unresolvable-route
        paths: [/nxdomain]
`,
    });
  });
  after(async () => {
    await gw.close();
    await echo.close();
  });

  test('strip_path joins the rest of the path to the service path, query string untouched', async () => {
    const r = await fetch(`${gw.proxyUrl}/anything/a/b?x=1&y=%20z&x=2`);
    assert.equal(r.status, 200);
    const body = (await r.json()) as Echoed;
    assert.equal(body.url, '/anything/a/b?x=1&y=%20z&x=2');
    const r2 = await fetch(`${gw.proxyUrl}/anything?access=1`);
    assert.equal(((await r2.json()) as Echoed).url, '/anything?access=1');
  });

  test('strip_path false keeps the whole request path', async () => {
    const body = (await (await fetch(`${gw.proxyUrl}/keep/me`)).json()) as Echoed;
    assert.equal(body.path, '/anything/keep/me');
  });

  test('service without path: stripped request path goes as is', async () => {
    const body = (await (await fetch(`${gw.proxyUrl}/root/status-free`)).json()) as Echoed;
    assert.equal(body.path, '/status-free');
  });

  test('Host is the service host unless preserve_host', async () => {
    const plain = await get(`${gw.proxyUrl}/anything`, { host: 'client.example' });
    assert.equal(plain.status, 200);
    assert.equal((JSON.parse(plain.body) as Echoed).headers.host, `127.0.0.1:${echo.port}`);
    const kept = await get(`${gw.proxyUrl}/h/x`, { host: 'api.example.com' });
    assert.equal(kept.status, 200);
    assert.equal((JSON.parse(kept.body) as Echoed).headers.host, 'api.example.com');
    const otherHost = await get(`${gw.proxyUrl}/h/x`, { host: 'other.example.com' });
    assert.equal(otherHost.status, 404);
  });

  test('X-Forwarded-* and X-Real-IP are set and client-sent values are not trusted by default', async () => {
    const body = (await (await fetch(`${gw.proxyUrl}/anything/p?q=1`, {
      headers: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', 'x-real-ip': '6.6.6.6', 'x-forwarded-host': 'evil' },
    })).json()) as Echoed;
    assert.equal(body.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(body.headers['x-forwarded-proto'], 'http');
    assert.equal(body.headers['x-forwarded-host'], '127.0.0.1');
    assert.equal(body.headers['x-forwarded-port'], String(gw.proxyPort));
    assert.equal(body.headers['x-forwarded-path'], '/anything/p');
    assert.equal(body.headers['x-forwarded-prefix'], '/anything');
    assert.equal(body.headers['x-real-ip'], '127.0.0.1');
  });

  test('hop-by-hop headers and the ones named in Connection are not forwarded', async () => {
    const body = await new Promise<Echoed>((resolve, reject) => {
      const req = http.request(`${gw.proxyUrl}/anything`, {
        headers: { connection: 'keep-alive, x-secret-hop', 'x-secret-hop': '1', 'keep-alive': 'timeout=5', te: 'trailers', 'x-end-to-end': 'yes' },
      }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(JSON.parse(text) as Echoed));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(body.headers['x-secret-hop'], undefined);
    assert.equal(body.headers['keep-alive'], undefined);
    assert.equal(body.headers.te, undefined);
    assert.equal(body.headers['x-end-to-end'], 'yes');
  });

  test('X-Request-Id is generated, or propagated when the client sends one', async () => {
    const r = await fetch(`${gw.proxyUrl}/anything`);
    const id = r.headers.get('x-request-id');
    assert.match(id ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(((await r.json()) as Echoed).headers['x-request-id'], id);
    const r2 = await fetch(`${gw.proxyUrl}/anything`, { headers: { 'x-request-id': 'abc-123' } });
    assert.equal(r2.headers.get('x-request-id'), 'abc-123');
    assert.equal(((await r2.json()) as Echoed).headers['x-request-id'], 'abc-123');
  });

  test('no route → 404 with Kong\'s message', async () => {
    const r = await fetch(`${gw.proxyUrl}/nothing-here`);
    assert.equal(r.status, 404);
    assert.deepEqual(await r.json(), { message: 'no Route matched with those values' });
  });

  test('unreachable upstream → 502 JSON without internal detail', async () => {
    const r = await fetch(`${gw.proxyUrl}/dead`);
    assert.equal(r.status, 502);
    const text = await r.text();
    assert.deepEqual(JSON.parse(text), { message: 'An invalid response was received from the upstream server' });
    assert.doesNotMatch(text, /ECONNREFUSED|127\.0\.0\.1:1/);
  });

  test('upstream host that does not resolve → 503 "name resolution failed", as Kong (both upstream clients)', async () => {
    for (const method of ['GET', 'POST']) {
      const r = await fetch(`${gw.proxyUrl}/nxdomain`, { method, body: method === 'POST' ? 'x' : undefined });
      assert.equal(r.status, 503, method);
      assert.deepEqual(await r.json(), { message: 'name resolution failed' });
    }
  });

  test('read timeout → 504', async () => {
    const r = await fetch(`${gw.proxyUrl}/slow/delay/2000`);
    assert.equal(r.status, 504);
    assert.deepEqual(await r.json(), { message: 'The upstream server is timing out' });
  });

  test('request bodies are forwarded (POST JSON)', async () => {
    const r = await fetch(`${gw.proxyUrl}/anything`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    const body = (await r.json()) as Echoed;
    assert.equal(body.method, 'POST');
    assert.equal(body.data, '{"a":1}');
  });

  test('Expect: 100-continue (what curl sends for larger uploads): the gateway answers 100, the body reaches the upstream', async () => {
    const payload = 'z'.repeat(4096);
    const result = await new Promise<{ status: number; body: string; continued: boolean }>((resolve, reject) => {
      let continued = false;
      const req = http.request(`${gw.proxyUrl}/anything/upload`, {
        method: 'POST',
        headers: { expect: '100-continue', 'content-type': 'text/plain', 'content-length': String(payload.length) },
      }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, continued }));
      });
      req.on('continue', () => {
        continued = true;
        req.end(payload);
      });
      req.on('error', reject);
    });
    assert.equal(result.status, 200, result.body);
    assert.ok(result.continued, '100 Continue sent to the client');
    const body = JSON.parse(result.body) as Echoed;
    assert.equal(body.data, payload);
    // The expectation was met by the gateway: it is a hop-by-hop matter, not forwarded.
    assert.equal(body.headers.expect, undefined);
  });

  test('access log: one line per request, path without query string, no credentials', async () => {
    await fetch(`${gw.proxyUrl}/anything/logged?access_token=SECRET-TOKEN-VALUE`, {
      headers: { authorization: 'Bearer SECRET-BEARER', cookie: 'session=SECRET-COOKIE' },
    });
    await new Promise((r) => setTimeout(r, 50));
    const line = gw.logs.find((l) => l.type === 'access' && l.path === '/anything/logged');
    assert.ok(line, 'access log line written');
    assert.equal(line.method, 'GET');
    assert.equal(line.status, 200);
    assert.equal(line.route, 'example-route');
    assert.equal(line.service, 'example-service');
    assert.equal(typeof line.latency_ms, 'number');
    assert.equal(typeof line.request_id, 'string');
    assert.doesNotMatch(gw.logText(), /SECRET-TOKEN-VALUE|SECRET-BEARER|SECRET-COOKIE/);
  });
});

describe('streaming 50 MB both ways through a gateway process', () => {
  let echo: EchoServer;
  let gw: GatewayProcess;
  // 50 MB as the issue asks, and 200 MB to show memory does not grow with the payload: a
  // buffering proxy would need at least the payload size (200 MB); GC slack (heap sizing) stays
  // far under it and does not grow with the payload.
  const sizes = [50 * 1024 * 1024, 200 * 1024 * 1024];
  const limit = 100 * 1024 * 1024;
  before(async () => {
    echo = await startEcho();
    gw = await startGatewayProcess({
      config: `_format_version: "3.0"\nservices:\n  - name: e\n    url: ${echo.url}\n    routes:\n      - { name: r, paths: [/], strip_path: false }\n`,
      env: { PORTCULLIS_PROXY_ACCESS_LOG: 'off' },
    });
    // Warm up so the baseline includes code paths already loaded.
    await (await fetch(`${gw.proxyUrl}/bytes/1000000`)).arrayBuffer();
  });
  after(async () => {
    await gw.stop();
    await echo.close();
  });

  test('download: the gateway\'s peak memory stays flat', async () => {
    const base = await gw.peakRss();
    for (const size of sizes) {
      const r = await fetch(`${gw.proxyUrl}/bytes/${size}`);
      let n = 0;
      for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) n += chunk.length;
      assert.equal(n, size);
    }
    const grew = (await gw.peakRss()) - base;
    assert.ok(grew < limit, `gateway peak memory grew by ${Math.round(grew / 1048576)} MB`);
  });

  test('upload: the gateway\'s peak memory stays flat', async () => {
    const base = await gw.peakRss();
    for (const size of sizes) await upload(size);
    const grew = (await gw.peakRss()) - base;
    assert.ok(grew < limit, `gateway peak memory grew by ${Math.round(grew / 1048576)} MB`);
  });

  async function upload(size: number): Promise<void> {
    let left = size;
    const chunk = Buffer.alloc(64 * 1024, 0x62);
    const body = new Readable({
      read() {
        if (left <= 0) return this.push(null);
        const n = Math.min(left, chunk.length);
        left -= n;
        this.push(n === chunk.length ? chunk : chunk.subarray(0, n));
      },
    });
    const result = await new Promise<{ bytes: number }>((resolve, reject) => {
      const req = http.request(`${gw.proxyUrl}/upload-count`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(JSON.parse(text) as { bytes: number }));
      });
      req.on('error', reject);
      body.pipe(req);
    });
    assert.equal(result.bytes, size);
  }
});

describe('retries', () => {
  test('idempotent requests are retried on connection failure, POST is not', async () => {
    let connections = 0;
    let failNext = 0;
    const upstream = net.createServer((socket) => {
      connections++;
      if (failNext > 0) {
        failNext--;
        socket.destroy();
        return;
      }
      socket.once('data', () => {
        socket.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    const port = (upstream.address() as net.AddressInfo).port;
    const gw = await startGateway({ config: { services: [{ name: 'flaky', url: `http://127.0.0.1:${port}`, retries: 3, routes: [{ name: 'r', paths: ['/'] }] }] } });
    try {
      failNext = 2;
      connections = 0;
      const ok = await fetch(`${gw.proxyUrl}/x`);
      assert.equal(ok.status, 200);
      assert.equal(await ok.text(), 'ok');
      assert.equal(connections, 3);

      failNext = 1;
      connections = 0;
      const post = await fetch(`${gw.proxyUrl}/x`, { method: 'POST', body: 'data' });
      assert.equal(post.status, 502);
      assert.equal(connections, 1);
    } finally {
      await gw.close();
      upstream.close();
    }
  });
});

describe('client aborts', () => {
  test('a client that goes away before the response aborts the upstream request', async () => {
    let upstreamClosedEarly = false;
    const upstream = http.createServer((req, res) => {
      // Never answers on its own: only the gateway hanging up ends this request.
      res.on('close', () => {
        if (!res.writableEnded) upstreamClosedEarly = true;
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    const port = (upstream.address() as net.AddressInfo).port;
    const gw = await startGateway({ config: { services: [{ name: 'slow', url: `http://127.0.0.1:${port}`, routes: [{ name: 'r', paths: ['/'] }] }] } });
    try {
      const controller = new AbortController();
      const pending = fetch(`${gw.proxyUrl}/wait`, { signal: controller.signal }).catch(() => 'aborted');
      await new Promise((r) => setTimeout(r, 200));
      controller.abort();
      assert.equal(await pending, 'aborted');
      const deadline = Date.now() + 3000;
      while (!upstreamClosedEarly && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok(upstreamClosedEarly, 'the upstream request was cancelled');
    } finally {
      await gw.close();
      upstream.closeAllConnections();
      upstream.close();
    }
  });
});
