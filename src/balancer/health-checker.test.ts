import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { LocalBalancing } from './balancing.ts';
import { defaultHealthchecks, type Healthchecks, type Target, type Upstream } from '../config/upstreams.ts';
import { TCP_FAILURE, TIMEOUT } from './health-checker.ts';

function upstream(name: string, hc: Healthchecks): Upstream {
  return {
    id: `id-${name}`, name, algorithm: 'round-robin', hash_on: 'none', hash_fallback: 'none', hash_on_header: null, hash_fallback_header: null,
    hash_on_cookie: null, hash_on_cookie_path: '/', hash_on_query_arg: null, hash_fallback_query_arg: null, hash_on_uri_capture: null,
    hash_fallback_uri_capture: null, slots: 10000, healthchecks: hc, host_header: null, client_certificate: null, use_srv_name: false,
    tags: null, created_at: 0, updated_at: 0,
  };
}
const target = (u: Upstream, t: string, weight = 100): Target => ({ id: `${u.name}-${t}`, upstream: { id: u.id }, target: t, weight, tags: null, created_at: 0, updated_at: 0 });
const silent = pino({ level: 'silent' });

test('passive: failures up to the threshold mark an address unhealthy; successes reset only when counted; manual override restores', async () => {
  const hc = defaultHealthchecks();
  hc.passive.unhealthy.http_failures = 3;
  hc.passive.unhealthy.tcp_failures = 2;
  hc.passive.unhealthy.timeouts = 2;
  const u = upstream('passive', hc);
  const lb = new LocalBalancing({ servers: [], hostsFile: '' }, silent);
  try {
    await lb.apply([u], [target(u, '127.0.0.1:1001'), target(u, '127.0.0.1:1002')]);
    const key = '127.0.0.1:1001|127.0.0.1:1001';
    lb.report('passive', key, 500);
    lb.report('passive', key, 500);
    lb.report('passive', key, 200); // healthy.successes = 0: not counted, does not reset
    assert.equal(lb.states.isHealthy('passive', key), true);
    lb.report('passive', key, 503);
    assert.equal(lb.states.isHealthy('passive', key), false);
    const b = lb.balancers.get('passive')!;
    assert.deepEqual(b.weights, { total: 200, available: 100, unavailable: 100 });
    for (let i = 0; i < 5; i++) assert.equal(b.pick('', null)!.port, 1002);
    // Passive checks never restore; the manual endpoint does.
    for (let i = 0; i < 10; i++) lb.report('passive', key, 200);
    assert.equal(lb.states.isHealthy('passive', key), false);
    assert.equal(lb.checker.setManual('passive', '127.0.0.1:1001', null, true), true);
    assert.equal(lb.states.isHealthy('passive', key), true);
    const other = '127.0.0.1:1002|127.0.0.1:1002';
    lb.report('passive', other, TCP_FAILURE);
    lb.report('passive', other, TIMEOUT);
    assert.equal(lb.states.isHealthy('passive', other), true);
    lb.report('passive', other, TIMEOUT);
    assert.equal(lb.states.isHealthy('passive', other), false);
    // Every address unhealthy → no peer.
    lb.checker.setManual('passive', '127.0.0.1:1001', null, false);
    assert.equal(b.pick('', null), null);
    assert.equal(b.healthy, false);
  } finally {
    lb.close();
  }
});

test('no checks configured: no checker, manual override refused, states dropped', async () => {
  const u = upstream('off', defaultHealthchecks());
  const lb = new LocalBalancing({ servers: [], hostsFile: '' }, silent);
  try {
    await lb.apply([u], [target(u, '127.0.0.1:1001')]);
    assert.equal(lb.checker.setManual('off', '127.0.0.1:1001', null, false), false);
    lb.report('off', '127.0.0.1:1001|127.0.0.1:1001', 500);
    assert.equal(lb.states.entries().length, 0);
  } finally {
    lb.close();
  }
});

test('active HTTP probes: an address failing its probes is marked unhealthy within interval × threshold + 1 s and comes back', async () => {
  let failing = false;
  const server = http.createServer((req, res) => {
    res.writeHead(failing ? 500 : req.url === '/health' ? 200 : 404).end('x');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const hc = defaultHealthchecks();
  hc.active.http_path = '/health';
  hc.active.healthy.interval = 0.5;
  hc.active.unhealthy.interval = 0.5;
  hc.active.healthy.successes = 2;
  hc.active.unhealthy.http_failures = 2;
  const u = upstream('active', hc);
  const lb = new LocalBalancing({ servers: [], hostsFile: '' }, silent);
  const key = `127.0.0.1:${port}|127.0.0.1:${port}`;
  const waitFor = async (healthy: boolean, ms: number): Promise<number> => {
    const t0 = Date.now();
    while (Date.now() - t0 < ms) {
      if (lb.states.isHealthy('active', key) === healthy) return Date.now() - t0;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`not ${healthy ? 'healthy' : 'unhealthy'} after ${ms} ms`);
  };
  try {
    await lb.apply([u], [target(u, `127.0.0.1:${port}`)]);
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(lb.states.isHealthy('active', key), true);
    failing = true;
    await waitFor(false, 0.5 * 2 * 1000 + 1000 + 1500); // generous margin for a busy machine
    failing = false;
    await waitFor(true, 0.5 * 2 * 1000 + 1000 + 1500);
  } finally {
    lb.close();
    server.closeAllConnections();
    server.close();
  }
});

test('active.concurrency: at most that many probes are in flight at once', async () => {
  let inFlight = 0;
  let most = 0;
  let answered = 0;
  const server = http.createServer((_req, res) => {
    inFlight++;
    most = Math.max(most, inFlight);
    // Each probe takes a while, so probes of one round overlap unless the checker holds them back.
    setTimeout(() => {
      inFlight--;
      answered++;
      res.writeHead(200).end('ok');
    }, 100);
  });
  await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
  const port = (server.address() as AddressInfo).port;
  const hc = defaultHealthchecks();
  hc.active.healthy.interval = 1;
  hc.active.unhealthy.interval = 1;
  hc.active.healthy.successes = 2;
  hc.active.unhealthy.http_failures = 2;
  hc.active.concurrency = 2;
  const u = upstream('concurrency', hc);
  const lb = new LocalBalancing({ servers: [], hostsFile: '' }, silent);
  try {
    // Eight addresses (all of 127/8 is loopback), one listening server.
    await lb.apply([u], Array.from({ length: 8 }, (_, i) => target(u, `127.0.0.${i + 1}:${port}`)));
    for (let i = 0; i < 60 && answered < 8; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(answered >= 8, `a round of probes was answered (${answered})`);
    assert.equal(most, 2, 'two probes at a time, never more');
  } finally {
    lb.close();
    server.closeAllConnections();
    server.close();
  }
});

test('active HTTP probes: a configured Host header (any case) replaces the default one, sent once', async () => {
  const seen: string[][] = [];
  const server = http.createServer((req, res) => {
    const hosts: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === 'host') hosts.push(req.rawHeaders[i + 1]!);
    seen.push(hosts);
    res.writeHead(200).end('x');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const hc = defaultHealthchecks();
  hc.active.healthy.interval = 0.2;
  hc.active.healthy.successes = 1;
  hc.active.headers = { Host: ['probe.internal'], 'X-Probe': ['1'] };
  const u = upstream('probe-host', hc);
  const lb = new LocalBalancing({ servers: [], hostsFile: '' }, silent);
  try {
    await lb.apply([u], [target(u, `127.0.0.1:${port}`)]);
    const t0 = Date.now();
    while (seen.length === 0 && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(seen[0], ['probe.internal']);
  } finally {
    lb.close();
    server.closeAllConnections();
    server.close();
  }
});
