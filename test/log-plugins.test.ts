/**
 * file-log and http-log: Kong's log record with credentials redacted, delivery to a real HTTP
 * collector (single entries and batches), a collector outage with bounded memory (oldest
 * entries dropped and counted, one log line per interval, not per request) and recovery, an
 * unwritable file that never fails requests, and the refused Kong fields.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startGateway, adminJson } from './helpers/gateway.ts';
import { freePort, waitFor } from './helpers/process.ts';
import { parseExposition } from './helpers/prometheus.ts';
import { selfSigned } from './helpers/certs.ts';

interface Collector {
  url: string;
  bodies: unknown[];
  /** Status to answer with (200 = healthy). */
  status: number;
  /** TCP connections accepted so far. */
  connections: number;
  close(): Promise<void>;
}

async function startCollector(maxRequestsPerSocket = 0): Promise<Collector> {
  const c = { bodies: [] as unknown[], status: 200, connections: 0 } as Collector;
  const server = http.createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('end', () => {
      if (c.status === 200) c.bodies.push({ method: req.method, type: req.headers['content-type'], auth: req.headers.authorization, custom: req.headers['x-custom'], body: JSON.parse(text) });
      res.writeHead(c.status);
      res.end();
    });
  });
  server.maxRequestsPerSocket = maxRequestsPerSocket;
  server.on('connection', () => c.connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  c.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  c.close = () => new Promise<void>((r) => {
    server.close(() => r());
    server.closeAllConnections();
  });
  return c;
}

const secretHeaders = { authorization: 'Bearer SECRET-BEARER-VALUE', cookie: 'session=SECRET-COOKIE-VALUE', 'proxy-authorization': 'Basic SECRET-PROXY' };

function assertKongRecord(rec: Record<string, any>, path: string): void {
  assert.equal(typeof rec.request.id, 'string');
  assert.equal(rec.request.method, 'GET');
  assert.equal(rec.request.uri, `${path}?access_token=REDACTED&page=2`);
  assert.match(rec.request.url, new RegExp(`^http://127\\.0\\.0\\.1:\\d+${path.replace(/\//g, '\\/')}\\?access_token=REDACTED&page=2$`));
  assert.deepEqual(rec.request.querystring, { access_token: 'REDACTED', page: '2' });
  assert.equal(rec.request.headers.authorization, 'REDACTED');
  assert.equal(rec.request.headers['proxy-authorization'], 'REDACTED');
  assert.equal(rec.request.headers.cookie, 'REDACTED');
  assert.ok(rec.request.size > 50);
  assert.equal(rec.response.status, 200);
  assert.ok(rec.response.size > 0);
  assert.equal(typeof rec.response.headers, 'object');
  assert.deepEqual(Object.keys(rec.latencies).sort(), ['kong', 'proxy', 'receive', 'request']);
  assert.ok(rec.latencies.proxy >= 0);
  assert.ok(rec.latencies.request >= rec.latencies.proxy);
  assert.equal(rec.route.name, 'r');
  assert.equal(rec.service.name, 's');
  assert.equal(rec.client_ip, '127.0.0.1');
  assert.equal(typeof rec.started_at, 'number');
  assert.ok(Math.abs(rec.started_at - Date.now()) < 60_000);
  assert.equal(rec.source, 'upstream');
  assert.equal(rec.upstream_status, '200');
  assert.match(rec.upstream_uri, /access_token=REDACTED/);
  assert.equal(rec.tries.length, 1);
  // Kong's try entry: the address and start of the attempt, the balancer's time, no failure.
  const [first] = rec.tries;
  assert.deepEqual(Object.keys(first).sort(), ['balancer_latency', 'balancer_latency_ns', 'balancer_start', 'balancer_start_ns', 'ip', 'port']);
  assert.equal(first.ip, '127.0.0.1');
  assert.equal(typeof first.port, 'number');
  assert.ok(first.balancer_start >= rec.started_at && first.balancer_start <= rec.started_at + rec.latencies.request + 1, 'the try starts within the request');
  assert.equal(first.balancer_start_ns, first.balancer_start * 1_000_000);
  assert.equal(rec.workspace_name, 'default');
}

describe('file-log', () => {
  let echo: EchoServer;
  let dir: string;
  before(async () => {
    echo = await startEcho();
    dir = await mkdtemp(join(tmpdir(), 'portcullis-file-log-'));
  });
  after(async () => {
    await echo.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('each line parses as Kong\'s record; credentials are redacted', async () => {
    const file = join(dir, 'requests.log');
    const gw = await startGateway({ config: { services: [{ name: 's', url: echo.url, routes: [{ name: 'r', paths: ['/f'], plugins: [{ name: 'file-log', config: { path: file } }] }] }] } });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await fetch(`${gw.proxyUrl}/f/x?access_token=SECRET-QUERY-TOKEN&page=2`, { headers: secretHeaders })).status, 200);
      await waitFor(async () => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean).length === 3, 10_000, 'three lines');
      const text = await readFile(file, 'utf8');
      assert.doesNotMatch(text, /SECRET-/);
      const lines = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
      for (const rec of lines) assertKongRecord(rec, '/f/x');
      assert.equal(new Set(lines.map((l) => l.request.id)).size, 3);
    } finally {
      await gw.close();
    }
  });

  test('tries: an attempt that failed before a retry is "failed" with code 502, the next one has the address that answered', async () => {
    const file = join(dir, 'tries.log');
    const dead = await freePort();
    const echoPort = Number(new URL(echo.url).port);
    const gw = await startGateway({ config: {
      upstreams: [{ name: 'two', targets: [{ target: `127.0.0.1:${dead}` }, { target: `127.0.0.1:${echoPort}` }] }],
      services: [{ name: 's', host: 'two', port: 80, protocol: 'http', routes: [{ name: 'r', paths: ['/t'], plugins: [{ name: 'file-log', config: { path: file } }] }] }],
    } });
    try {
      // Round-robin over the two targets: one of the first two requests tries the dead one first.
      for (let i = 0; i < 2; i++) assert.equal((await fetch(`${gw.proxyUrl}/t/x`)).status, 200);
      await waitFor(async () => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean).length === 2, 10_000, 'two lines');
      const recs = (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
      const retried = recs.find((r) => r.tries.length === 2);
      assert.ok(retried, JSON.stringify(recs.map((r) => r.tries)));
      assert.equal(retried.tries[0].state, 'failed');
      assert.equal(retried.tries[0].code, 502);
      assert.equal(retried.tries[0].port, dead);
      assert.equal(retried.tries[1].port, echoPort);
      assert.equal(retried.tries[1].state, undefined, 'the last try has no failure');
      assert.ok(retried.tries[1].balancer_start >= retried.tries[0].balancer_start);
    } finally {
      await gw.close();
    }
  });

  test('over TLS the record has request.tls (version, cipher, client_verify NONE) and the https URL with its port', async () => {
    const file = join(dir, 'tls.log');
    const cert = selfSigned();
    const gw = await startGateway({
      proxyListen: '127.0.0.1:0 ssl',
      env: { PORTCULLIS_SSL_CERT: cert.certFile, PORTCULLIS_SSL_CERT_KEY: cert.keyFile },
      config: { services: [{ name: 's', url: echo.url, routes: [{ name: 'r', paths: ['/s'], plugins: [{ name: 'file-log', config: { path: file } }] }] }] },
    });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        https.get({ host: '127.0.0.1', port: gw.proxyPort, path: '/s/x', ca: cert.cert, servername: 'localhost', minVersion: 'TLSv1.3' }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        }).on('error', reject);
      });
      assert.equal(status, 200);
      await waitFor(async () => (await readFile(file, 'utf8').catch(() => '')).includes('\n'), 10_000, 'the line');
      const rec = JSON.parse((await readFile(file, 'utf8')).split('\n')[0]) as Record<string, any>;
      assert.equal(rec.request.tls.version, 'TLSv1.3');
      assert.match(rec.request.tls.cipher, /^TLS_(AES|CHACHA20)_/);
      assert.equal(rec.request.tls.client_verify, 'NONE');
      assert.equal(rec.request.url, `https://127.0.0.1:${gw.proxyPort}/s/x`);
    } finally {
      await gw.close();
    }
  });

  test('correlation_id and trace_id (by injected format) are in the record when correlation-id and opentelemetry ran, as in Kong', async () => {
    const file = join(dir, 'ids.log');
    const otel = (extra: Record<string, unknown>) => ({ name: 'opentelemetry', config: { traces_endpoint: 'http://127.0.0.1:9/v1/traces', sampling_rate: 0, ...extra } });
    const gw = await startGateway({ config: { services: [{ name: 's', url: echo.url, routes: [
      { name: 'w3c', paths: ['/w3c'], plugins: [{ name: 'correlation-id', config: {} }, otel({}), { name: 'file-log', config: { path: file } }] },
      { name: 'both', paths: ['/both'], plugins: [otel({ propagation: { extract: ['w3c'], inject: ['b3', 'w3c'] } }), { name: 'file-log', config: { path: file } }] },
      { name: 'none', paths: ['/none'], plugins: [{ name: 'file-log', config: { path: file } }] },
    ] }] } });
    try {
      const sent = async (path: string) => ((await (await fetch(`${gw.proxyUrl}${path}`)).json()) as { headers: Record<string, string> }).headers;
      const w3c = await sent('/w3c/x');
      const both = await sent('/both/x');
      await sent('/none/x');
      await waitFor(async () => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean).length === 3, 10_000, 'three lines');
      const recs = (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
      const byRoute = (name: string) => recs.find((r) => r.route.name === name)!;
      assert.equal(byRoute('w3c').correlation_id, w3c['kong-request-id'], 'the id sent upstream');
      assert.deepEqual(byRoute('w3c').trace_id, { w3c: w3c.traceparent.split('-')[1] });
      assert.deepEqual(byRoute('both').trace_id, { b3: both['x-b3-traceid'], w3c: both.traceparent.split('-')[1] });
      assert.equal('correlation_id' in byRoute('both'), false);
      assert.equal('trace_id' in byRoute('none'), false);
    } finally {
      await gw.close();
    }
  });

  test('latencies.kong is the time until the upstream request went out (Kong\'s KONG_PROXY_LATENCY), not the body\'s transfer', async () => {
    const file = join(dir, 'latency.log');
    // Headers at once, the body 300 ms later.
    const slow = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('a');
      setTimeout(() => res.end('b'), 300);
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', () => r()));
    const port = (slow.address() as AddressInfo).port;
    const gw = await startGateway({ config: { services: [{ name: 's', url: `http://127.0.0.1:${port}`, routes: [{ name: 'r', paths: ['/l'], plugins: [{ name: 'file-log', config: { path: file } }] }] }] } });
    try {
      assert.equal(await (await fetch(`${gw.proxyUrl}/l/x`)).text(), 'ab');
      await waitFor(async () => (await readFile(file, 'utf8').catch(() => '')).includes('\n'), 10_000, 'the line');
      const rec = JSON.parse((await readFile(file, 'utf8')).split('\n')[0]) as Record<string, any>;
      assert.ok(rec.latencies.request >= 290, `request ${rec.latencies.request}`);
      assert.ok(rec.latencies.kong < 100, `kong ${rec.latencies.kong}`);
      assert.ok(rec.latencies.proxy < 100, `proxy ${rec.latencies.proxy}`);
    } finally {
      await gw.close();
      await new Promise<void>((r) => slow.close(() => r()));
    }
  });

  test('reopen: false keeps writing to the open (rotated) file; reopen: true opens the path again for each write', async () => {
    const kept = join(dir, 'kept.log');
    const reopened = join(dir, 'reopened.log');
    const gw = await startGateway({ config: { services: [{ name: 's', url: echo.url, routes: [
      { name: 'kept', paths: ['/kept'], plugins: [{ name: 'file-log', config: { path: kept } }] },
      { name: 'reopened', paths: ['/reopened'], plugins: [{ name: 'file-log', config: { path: reopened, reopen: true } }] },
    ] }] } });
    const lines = async (f: string): Promise<number> => (await readFile(f, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
    try {
      assert.equal((await fetch(`${gw.proxyUrl}/kept/1`)).status, 200);
      assert.equal((await fetch(`${gw.proxyUrl}/reopened/1`)).status, 200);
      await waitFor(async () => (await lines(kept)) === 1 && (await lines(reopened)) === 1, 10_000, 'one line in each file');
      // logrotate's default: rename the file, the writer is expected to notice (or not).
      await rename(kept, `${kept}.1`);
      await rename(reopened, `${reopened}.1`);
      assert.equal((await fetch(`${gw.proxyUrl}/kept/2`)).status, 200);
      assert.equal((await fetch(`${gw.proxyUrl}/reopened/2`)).status, 200);
      await waitFor(async () => (await lines(`${kept}.1`)) === 2 && (await lines(reopened)) === 1, 10_000, 'second lines written');
      assert.equal(await lines(kept), 0, 'reopen false: nothing at the path again, the line went to the renamed file');
      assert.equal(await lines(`${reopened}.1`), 1, 'reopen true: the renamed file got no new line');
    } finally {
      await gw.close();
    }
  });

  test('an unwritable file never fails a request and is reported once, not per request', async () => {
    const gw = await startGateway({ config: { services: [{ name: 's', url: echo.url, routes: [{ name: 'r', paths: ['/f'], plugins: [{ name: 'file-log', config: { path: join(dir, 'missing-dir', 'x.log') } }] }] }] } });
    try {
      for (let i = 0; i < 10; i++) assert.equal((await fetch(`${gw.proxyUrl}/f/x`)).status, 200);
      await waitFor(() => gw.logs.some((l) => String(l.msg).startsWith('file-log cannot write')), 10_000, 'the error line');
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(gw.logs.filter((l) => String(l.msg).startsWith('file-log cannot write')).length, 1);
    } finally {
      await gw.close();
    }
  });
});

describe('http-log', () => {
  let echo: EchoServer;
  let collector: Collector;
  before(async () => {
    echo = await startEcho();
    collector = await startCollector();
  });
  after(async () => {
    await echo.close();
    await collector.close();
  });

  test('delivers one JSON object per request (batch size 1) with the configured method and headers', async () => {
    collector.bodies = [];
    const endpoint = collector.url.replace('http://', 'http://user:pa%20ss@') + '/logs';
    const gw = await startGateway({ config: { services: [{ name: 's', url: echo.url, routes: [{ name: 'r', paths: ['/h'], plugins: [{ name: 'http-log', config: { http_endpoint: endpoint, method: 'PUT', headers: { 'X-Custom': 'yes' } } }] }] }] } });
    try {
      for (let i = 0; i < 2; i++) assert.equal((await fetch(`${gw.proxyUrl}/h/x?access_token=SECRET-QUERY-TOKEN&page=2`, { headers: secretHeaders })).status, 200);
      await waitFor(() => collector.bodies.length === 2, 10_000, 'two deliveries');
      for (const b of collector.bodies as Array<Record<string, any>>) {
        assert.equal(b.method, 'PUT');
        assert.equal(b.type, 'application/json');
        assert.equal(b.custom, 'yes');
        assert.equal(b.auth, `Basic ${Buffer.from('user:pa ss').toString('base64')}`);
        assert.ok(!Array.isArray(b.body));
        assertKongRecord(b.body, '/h/x');
      }
      assert.doesNotMatch(JSON.stringify(collector.bodies.map((b) => (b as { body: unknown }).body)), /SECRET-/);
    } finally {
      await gw.close();
    }
  });

  test('batches: a JSON array of up to max_batch_size entries', async () => {
    collector.bodies = [];
    const gw = await startGateway({ config: { services: [{ name: 's', url: echo.url, routes: [{ name: 'r', paths: ['/h'], plugins: [{ name: 'http-log', config: { http_endpoint: collector.url, queue: { max_batch_size: 3, max_coalescing_delay: 5 } } }] }] }] } });
    try {
      await Promise.all(Array.from({ length: 3 }, () => fetch(`${gw.proxyUrl}/h/x`)));
      await waitFor(() => collector.bodies.length === 1, 10_000, 'one batch');
      const batch = (collector.bodies[0] as { body: unknown[] }).body;
      assert.ok(Array.isArray(batch));
      assert.equal(batch.length, 3);
    } finally {
      await gw.close();
    }
  });

  test('a partial batch is sent once max_coalescing_delay has passed since its first entry', async () => {
    collector.bodies = [];
    const gw = await startGateway({ config: { services: [{ name: 's', url: echo.url, routes: [{ name: 'r', paths: ['/h'], plugins: [{ name: 'http-log', config: { http_endpoint: collector.url, queue: { max_batch_size: 10, max_coalescing_delay: 0.3 } } }] }] }] } });
    try {
      const started = Date.now();
      for (let i = 0; i < 2; i++) assert.equal((await fetch(`${gw.proxyUrl}/h/x`)).status, 200);
      await waitFor(() => collector.bodies.length === 1, 10_000, 'the partial batch');
      assert.ok(Date.now() - started >= 250, 'not before the delay');
      assert.equal((collector.bodies[0] as { body: unknown[] }).body.length, 2);
    } finally {
      await gw.close();
    }
  });

  test('a collector outage: requests unaffected, queue bounded, drops counted and logged once; delivery resumes', async () => {
    collector.bodies = [];
    collector.status = 500;
    const gw = await startGateway({
      config: {
        services: [{ name: 's', url: echo.url, routes: [{ name: 'r', paths: ['/h'], plugins: [{ name: 'http-log', config: {
          http_endpoint: collector.url,
          queue: { max_entries: 5, initial_retry_delay: 0.05, max_retry_delay: 0.2, max_retry_time: 30 },
        } }] }] }],
      },
    });
    try {
      for (let i = 0; i < 40; i++) assert.equal((await fetch(`${gw.proxyUrl}/h/x?i=${i}`)).status, 200);
      const m = parseExposition(await (await fetch(`${gw.adminUrl}/metrics`)).text());
      // 40 entries, at most 5 waiting plus 1 being retried: the rest were dropped.
      assert.ok(m.value('portcullis_log_queue_dropped_total', { plugin: 'http-log', reason: 'queue_full' }) >= 34);
      assert.equal(gw.logs.filter((l) => String(l.msg).startsWith('http-log queue full')).length, 1, 'reported once');
      assert.ok(gw.logs.filter((l) => String(l.msg).startsWith('http-log delivery failed')).length <= 1, 'retries reported once per interval');
      collector.status = 200;
      // The batch being retried and the 5 waiting arrive: the newest entries, bounded.
      await waitFor(() => collector.bodies.length === 6, 15_000, 'the queued entries');
      const seen = (collector.bodies as Array<{ body: { request: { querystring: { i: string } } } }>).map((b) => Number(b.body.request.querystring.i));
      assert.deepEqual(seen.slice(1), [35, 36, 37, 38, 39]);
      // New traffic flows again.
      assert.equal((await fetch(`${gw.proxyUrl}/h/x?i=new`)).status, 200);
      await waitFor(() => collector.bodies.length === 7, 10_000, 'delivery resumed');
    } finally {
      collector.status = 200;
      await gw.close();
    }
  });

  test('keepalive: deliveries reuse one connection for keepalive ms; a short keepalive closes it between them', async () => {
    const gw = await startGateway({ config: { services: [{ name: 's', url: echo.url, routes: [
      { name: 'long', paths: ['/long'], plugins: [{ name: 'http-log', config: { http_endpoint: collector.url, keepalive: 60000 } }] },
      { name: 'short', paths: ['/short'], plugins: [{ name: 'http-log', config: { http_endpoint: collector.url, keepalive: 1 } }] },
    ] }] } });
    try {
      for (const route of ['long', 'short']) {
        collector.bodies = [];
        const before = collector.connections;
        for (let i = 1; i <= 3; i++) {
          assert.equal((await fetch(`${gw.proxyUrl}/${route}/x`)).status, 200);
          await waitFor(() => collector.bodies.length === i, 10_000, `${route}: delivery ${i}`);
          await new Promise((r) => setTimeout(r, 150));
        }
        const used = collector.connections - before;
        if (route === 'long') assert.equal(used, 1, 'keepalive 60000: one connection for three deliveries');
        else assert.equal(used, 3, 'keepalive 1 ms: the idle connection is closed, each delivery opens one');
      }
    } finally {
      await gw.close();
    }
  });

  test('a collector that ends keep-alive connections (keepalive_requests): each new connection is kept for the next deliveries', async () => {
    const closing = await startCollector(2);
    const gw = await startGateway({ config: { services: [{ name: 's', url: echo.url, routes: [
      { name: 'r', paths: ['/r'], plugins: [{ name: 'http-log', config: { http_endpoint: closing.url, keepalive: 60000 } }] },
    ] }] } });
    try {
      // Back to back: the queue delivers one entry after the other.
      const statuses = await Promise.all(Array.from({ length: 8 }, () => fetch(`${gw.proxyUrl}/r/x`).then((r) => r.status)));
      assert.deepEqual(statuses, Array(8).fill(200));
      await waitFor(() => closing.bodies.length === 8, 10_000, 'eight deliveries');
      // Two deliveries per connection: four connections (undici 7's Agent opened one per delivery
      // after the collector's first close).
      assert.equal(closing.connections, 4);
    } finally {
      await gw.close();
      await closing.close();
    }
  });

  test('queue.max_bytes bounds the waiting entries by size while the collector is down', async () => {
    collector.bodies = [];
    collector.status = 500;
    const gw = await startGateway({ config: { services: [{ name: 's', url: echo.url, routes: [{ name: 'r', paths: ['/h'], plugins: [{ name: 'http-log', config: {
      http_endpoint: collector.url,
      queue: { max_entries: 10000, max_bytes: 4000, initial_retry_delay: 0.05, max_retry_delay: 0.2, max_retry_time: 30 },
    } }] }] }] } });
    try {
      for (let i = 0; i < 30; i++) assert.equal((await fetch(`${gw.proxyUrl}/h/x?i=${i}`)).status, 200);
      const m = parseExposition(await (await fetch(`${gw.adminUrl}/metrics`)).text());
      // max_entries (10,000) is never reached: every drop is max_bytes' doing.
      const dropped = m.value('portcullis_log_queue_dropped_total', { plugin: 'http-log', reason: 'queue_full' });
      assert.ok(dropped >= 20, `entries dropped by size: ${dropped}`);
      collector.status = 200;
      await waitFor(() => collector.bodies.length > 0, 15_000, 'the kept entries');
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(collector.bodies.length <= 30 - dropped, `${collector.bodies.length} delivered`);
      const seen = (collector.bodies as Array<{ body: { request: { querystring: { i: string } } } }>).map((b) => Number(b.body.request.querystring.i));
      assert.ok(seen.includes(29), 'the newest entry is kept (the oldest are dropped)');
    } finally {
      collector.status = 200;
      await gw.close();
    }
  });

  test('content_type is sent as configured; timeout bounds a delivery to a collector that never answers', async () => {
    collector.bodies = [];
    const sockets = new Set<import('node:net').Socket>();
    const hanging = net.createServer((sock) => { sockets.add(sock); sock.on('error', () => {}); });
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', () => r()));
    const hangingUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
    const gw = await startGateway({ config: { services: [{ name: 's', url: echo.url, routes: [
      { name: 'typed', paths: ['/typed'], plugins: [{ name: 'http-log', config: { http_endpoint: collector.url, content_type: 'application/json; charset=utf-8' } }] },
      { name: 'slow', paths: ['/slow'], plugins: [{ name: 'http-log', config: { http_endpoint: hangingUrl, timeout: 300, queue: { max_retry_time: 0.5, initial_retry_delay: 0.1, max_retry_delay: 0.1 } } }] },
    ] }] } });
    try {
      assert.equal((await fetch(`${gw.proxyUrl}/typed/x`)).status, 200);
      await waitFor(() => collector.bodies.length === 1, 10_000, 'the typed delivery');
      assert.equal((collector.bodies[0] as { type: string }).type, 'application/json; charset=utf-8');
      const started = Date.now();
      assert.equal((await fetch(`${gw.proxyUrl}/slow/x`)).status, 200, 'the request does not wait for the collector');
      await waitFor(() => gw.logs.some((l) => /^http-log (delivery failed|gave up)/.test(String(l.msg)) && /Headers Timeout/.test(String(l.error))), 10_000, 'the delivery failure');
      assert.ok(Date.now() - started < 5_000, `gave up after ${Date.now() - started} ms (timeout 300 ms; the 10 s default would be far longer)`);
    } finally {
      await gw.close();
      for (const sock of sockets) sock.destroy();
      await new Promise<void>((r) => hanging.close(() => r()));
    }
  });

  test('Kong fields without an equivalent are refused with their name', async () => {
    const gw = await startGateway();
    try {
      const cases: Array<[string, Record<string, unknown>, RegExp]> = [
        ['http-log', { http_endpoint: collector.url, custom_fields_by_lua: { x: 'return 1' } }, /custom_fields_by_lua/],
        ['http-log', { http_endpoint: collector.url.replace('://', '://user:pw@'), headers: { Authorization: 'Bearer x' } }, /Authorization.*user info/],
        ['http-log', { http_endpoint: collector.url, headers: { Host: 'x' } }, /headers/],
        ['http-log', { http_endpoint: 'ftp://x' }, /http_endpoint/],
        ['http-log', { http_endpoint: collector.url, queue: { concurrency_limit: 2 } }, /concurrency_limit/],
        ['file-log', { path: '/tmp/a*b' }, /path/],
        ['file-log', { path: '/tmp/x.log', custom_fields_by_lua: { x: 'return 1' } }, /custom_fields_by_lua/],
      ];
      for (const [name, config, field] of cases) {
        const r = await fetch(`${gw.adminUrl}/plugins`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, config }) });
        assert.ok(r.status === 400 || r.status === 405, `${name} ${JSON.stringify(config)}: ${r.status}`);
        const schema = await fetch(`${gw.adminUrl}/schemas/plugins/validate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, config }) });
        assert.equal(schema.status, 400, `${name} ${JSON.stringify(config)}`);
        assert.match(await schema.text(), field);
      }
      // Deprecated shorthands are rewritten to the queue fields.
      const ok = await fetch(`${gw.adminUrl}/schemas/plugins/validate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'http-log', config: { http_endpoint: collector.url, queue_size: 7, flush_timeout: 3 } }) });
      assert.equal(ok.status, 200, await ok.text());
    } finally {
      await gw.close();
    }
  });

  test('Kong\'s queue record and file-log path rule: no queue.name, max_retry_time -1 (no retries), "not a valid filename"', async () => {
    const gw = await startGateway();
    try {
      const validate = async (name: string, config: Record<string, unknown>) => {
        const r = await fetch(`${gw.adminUrl}/schemas/plugins/validate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, config }) });
        return { status: r.status, text: await r.text() };
      };
      const named = await validate('http-log', { http_endpoint: collector.url, queue: { name: 'shared' } });
      assert.equal(named.status, 400, 'Kong\'s queue record has no name field');
      assert.match(named.text, /queue.*name/);
      const noRetries = await validate('http-log', { http_endpoint: collector.url, queue: { max_retry_time: -1 } });
      assert.equal(noRetries.status, 200, noRetries.text);
      for (const path of ['x', '/tmp/a\\b', ' /tmp/x.log', '/tmp/x.log\t']) {
        const r = await validate('file-log', { path });
        assert.equal(r.status, 400, JSON.stringify(path));
        assert.match(r.text, /not a valid filename/);
      }
      const spaced = await validate('file-log', { path: '/tmp/my file.log' });
      assert.equal(spaced.status, 200, spaced.text);
    } finally {
      await gw.close();
    }
  });

  test('Kong 3.x\'s deprecated retry_count, queue_size and flush_timeout are stored as sent and applied as Kong\'s queue applies them, with Kong\'s warnings', async () => {
    const gw = await startGateway({ database: 'sqlite' });
    try {
      const call = (method: string, path: string, body?: unknown) => adminJson(gw.adminUrl, method, path, body);
      const plain = await call('POST', '/plugins', { name: 'http-log', config: { http_endpoint: collector.url } });
      assert.equal(plain.status, 201, JSON.stringify(plain.body));
      for (const f of ['retry_count', 'queue_size', 'flush_timeout']) assert.equal(plain.body.config[f], null, `Kong stores no ${f} by default`);
      assert.equal((await call('DELETE', `/plugins/${plain.body.id}`)).status, 204);
      assert.ok(!gw.logs.some((l) => /no longer works|is deprecated/.test(String(l.msg))), 'no warning without the deprecated fields');

      assert.equal((await call('POST', '/services', { name: 'legacy', url: echo.url })).status, 201);
      assert.equal((await call('POST', '/services/legacy/routes', { name: 'legacy', paths: ['/legacy'] })).status, 201);
      const created = await call('POST', '/services/legacy/plugins', { name: 'http-log', config: { http_endpoint: collector.url, retry_count: 15, queue_size: 2, flush_timeout: 30 } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      // Stored as sent (decK compares what it reads back with what it sent); the queue record keeps its own values.
      assert.deepEqual([created.body.config.retry_count, created.body.config.queue_size, created.body.config.flush_timeout], [15, 2, 30]);
      assert.equal(created.body.config.queue.max_batch_size, 1);
      const read = await call('GET', `/plugins/${created.body.id}`);
      assert.deepEqual([read.body.config.retry_count, read.body.config.queue_size, read.body.config.flush_timeout], [15, 2, 30]);
      await waitFor(() => ['retry_count no longer works', 'queue_size is deprecated', 'flush_timeout is deprecated'].every((m) => gw.logs.some((l) => String(l.msg).includes(m))), 10_000, 'Kong\'s three deprecation warnings');

      // queue_size 2 batches two entries in one JSON array, long before the 30 s coalescing delay.
      const before = collector.bodies.length;
      await waitFor(async () => (await fetch(`${gw.proxyUrl}/legacy/one`)).status === 200, 10_000, 'the route');
      assert.equal((await fetch(`${gw.proxyUrl}/legacy/two`)).status, 200);
      await waitFor(() => collector.bodies.length > before, 10_000, 'the batch of two');
      const batch = (collector.bodies[before] as { body: unknown }).body;
      assert.ok(Array.isArray(batch) && batch.length === 2, `a JSON array of two records: ${JSON.stringify(batch).slice(0, 200)}`);
    } finally {
      await gw.close();
    }
  });
});
