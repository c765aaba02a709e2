/**
 * Upstreams and targets end to end: a real gateway (DB-less, decK file) in front of three real
 * echo servers on port 0. Balancing shares, consistent hashing, least-connections, retries
 * across targets, active and passive health checks, manual overrides, 503 with no peer, reloads.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { waitFor } from './helpers/process.ts';

const agent = new Agent({ connections: 64 });
after(() => agent.close());

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  const res = await request(url, { headers, dispatcher: agent });
  return { status: res.statusCode, body: await res.body.text(), headers: res.headers };
}

/** Which echo answered (by port): the echo reports the Host header the gateway sent. */
function servedBy(echos: EchoServer[], before: number[]): number {
  for (let i = 0; i < echos.length; i++) if (echos[i].received.length > before[i]) return i;
  return -1;
}

function upstreamDoc(name: string, ports: number[], extra: Record<string, unknown> = {}, weights: number[] = []) {
  return {
    _format_version: '3.0',
    services: [{ name: 'svc', host: name, port: 80, protocol: 'http', routes: [{ name: 'r', paths: ['/'] }] }],
    upstreams: [{ name, ...extra, targets: ports.map((p, i) => ({ target: `127.0.0.1:${p}`, weight: weights[i] ?? 100 })) }],
  };
}

describe('balancing over real echo targets', () => {
  let echos: EchoServer[] = [];
  before(async () => {
    echos = await Promise.all([startEcho(), startEcho(), startEcho()]);
  });
  after(async () => {
    await Promise.all(echos.map((e) => e.close().catch(() => {})));
  });

  test('weighted round-robin: each target gets its weighted share of 3,000 requests within ±5 %', async () => {
    const gw = await startGateway({ config: upstreamDoc('shares.internal', echos.map((e) => e.port), {}, [100, 200, 300]) });
    try {
      const start = echos.map((e) => e.received.length);
      for (let i = 0; i < 3000; i += 50) {
        const batch = await Promise.all(Array.from({ length: 50 }, () => get(`${gw.proxyUrl}/rr`)));
        for (const r of batch) assert.equal(r.status, 200);
      }
      const got = echos.map((e, i) => e.received.length - start[i]);
      const want = [500, 1000, 1500];
      for (let i = 0; i < 3; i++) assert.ok(Math.abs(got[i] - want[i]) <= want[i] * 0.05, `target ${i}: ${got[i]} vs ${want[i]}`);
      // Host header: the target's host and port (no host_header set).
      const last = echos[2].received.at(-1)!;
      assert.equal(last.headers.host, `127.0.0.1:${echos[2].port}`);
    } finally {
      await gw.close();
    }
  });

  test('consistent hashing on a header: each key stays on one target; adding a target moves at most 1.5/(N+1) of 1,000 keys', async () => {
    const two = echos.slice(0, 2);
    const doc = upstreamDoc('hash.internal', echos.map((e) => e.port), { hash_on: 'header', hash_on_header: 'X-User' });
    const gw = await startGateway({ config: doc });
    try {
      const owner = async (key: string): Promise<number> => {
        const before = echos.map((e) => e.received.length);
        const r = await get(`${gw.proxyUrl}/h`, { 'x-user': key });
        assert.equal(r.status, 200);
        return servedBy(echos, before);
      };
      const first = new Map<string, number>();
      for (let i = 0; i < 1000; i++) first.set(`user-${i}`, await owner(`user-${i}`));
      for (let i = 0; i < 1000; i += 97) assert.equal(await owner(`user-${i}`), first.get(`user-${i}`));
      // A fourth target: a new echo server.
      const fourth = await startEcho();
      echos.push(fourth);
      try {
        assert.equal(await gw.reload(upstreamDoc('hash.internal', echos.map((e) => e.port), { hash_on: 'header', hash_on_header: 'X-User' })), true);
        let moved = 0;
        for (const [k, v] of first) if ((await owner(k)) !== v) moved++;
        assert.ok(moved <= (1000 * 1.5) / 4, `moved ${moved} of 1000`);
        assert.ok(moved > 0);
      } finally {
        echos.pop();
        await fourth.close();
      }
      void two;
    } finally {
      await gw.close();
    }
  });

  test('least-connections prefers the target with fewer open requests', async () => {
    const gw = await startGateway({ config: upstreamDoc('lc.internal', echos.map((e) => e.port), { algorithm: 'least-connections' }) });
    try {
      // Five slow requests in flight: two targets hold two each, one holds one.
      const before = echos.map((e) => e.received.length);
      const slow = Array.from({ length: 5 }, () => get(`${gw.proxyUrl}/delay/1500`));
      await waitFor(() => echos.reduce((n, e, i) => n + e.received.length - before[i], 0) === 5, 5000, 'slow requests');
      const busy = echos.map((e, i) => e.received.length - before[i]);
      assert.deepEqual([...busy].sort(), [1, 2, 2]);
      const idle = busy.indexOf(Math.min(...busy));
      const mark = echos.map((e) => e.received.length);
      const r = await get(`${gw.proxyUrl}/fast`);
      assert.equal(r.status, 200);
      assert.equal(servedBy(echos, mark), idle);
      await Promise.all(slow);
    } finally {
      await gw.close();
    }
  });
});

describe('failover and health checks', () => {
  test('a target killed under steady load: no failed idempotent request; active checks mark it unhealthy in time and it comes back', async () => {
    const healthy = await Promise.all([startEcho(), startEcho()]);
    // The victim: a plain server we can stop and start again on the same port.
    let victimServer = http.createServer((req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('victim'));
    await new Promise<void>((r) => victimServer.listen(0, '127.0.0.1', r));
    const victimPort = (victimServer.address() as AddressInfo).port;
    const interval = 0.5, threshold = 2;
    const doc = upstreamDoc('failover.internal', [...healthy.map((e) => e.port), victimPort], {
      healthchecks: {
        active: { healthy: { interval, successes: 1 }, unhealthy: { interval, tcp_failures: threshold, http_failures: threshold, timeouts: threshold } },
      },
    });
    const gw = await startGateway({ config: doc });
    let failures = 0, total = 0, running = true;
    const load = (async () => {
      while (running) {
        const batch = await Promise.all(Array.from({ length: 8 }, () => get(`${gw.proxyUrl}/steady`).catch(() => ({ status: 0, body: '', headers: {} }))));
        for (const r of batch) {
          total++;
          if (r.status !== 200) failures++;
        }
      }
    })();
    const health = async (): Promise<string | undefined> => {
      const r = await get(`${gw.adminUrl}/upstreams/failover.internal/health`);
      return (JSON.parse(r.body) as { data: { target: string; health: string }[] }).data.find((t) => t.target === `127.0.0.1:${victimPort}`)?.health;
    };
    try {
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await health(), 'HEALTHY');
      victimServer.closeAllConnections();
      await new Promise<void>((r) => victimServer.close(() => r()));
      const killedAt = Date.now();
      await waitFor(async () => (await health()) === 'UNHEALTHY', (interval * threshold + 1) * 1000 + 2000, 'victim unhealthy');
      const took = Date.now() - killedAt;
      assert.ok(took <= (interval * threshold + 1) * 1000 + 2000, `took ${took} ms`);
      await new Promise((r) => setTimeout(r, 300));
      // Back on the same port: active checks restore it.
      victimServer = http.createServer((req, res) => res.writeHead(200).end('victim again'));
      await new Promise<void>((r) => victimServer.listen(victimPort, '127.0.0.1', r));
      await waitFor(async () => (await health()) === 'HEALTHY', 10_000, 'victim healthy again');
      running = false;
      await load;
      assert.ok(total > 50, `only ${total} requests`);
      assert.equal(failures, 0, `${failures} of ${total} requests failed`);
    } finally {
      running = false;
      await load;
      await gw.close();
      victimServer.closeAllConnections();
      victimServer.close();
      await Promise.all(healthy.map((e) => e.close()));
    }
  });

  test('passive checks: after the configured failures a target stops getting traffic; manual healthy/unhealthy; all unhealthy → 503', async () => {
    const good = await startEcho();
    const bad = http.createServer((req, res) => res.writeHead(500).end('broken'));
    await new Promise<void>((r) => bad.listen(0, '127.0.0.1', r));
    const badPort = (bad.address() as AddressInfo).port;
    const doc = upstreamDoc('passive.internal', [good.port, badPort], { healthchecks: { passive: { unhealthy: { http_failures: 3 } } } });
    const gw = await startGateway({ config: doc });
    try {
      let fivehundreds = 0;
      for (let i = 0; i < 40; i++) if ((await get(`${gw.proxyUrl}/p`)).status === 500) fivehundreds++;
      assert.equal(fivehundreds, 3);
      const h = JSON.parse((await get(`${gw.adminUrl}/upstreams/passive.internal/health`)).body) as { data: { target: string; health: string; data: { addresses: { health: string }[] } }[]; node_id: string };
      assert.equal(h.data.find((t) => t.target === `127.0.0.1:${badPort}`)!.health, 'UNHEALTHY');
      assert.equal(h.data.find((t) => t.target === `127.0.0.1:${good.port}`)!.health, 'HEALTHY');
      assert.equal(typeof h.node_id, 'string');
      // Manual override: the good one unhealthy too → no peer at all.
      const put = await request(`${gw.adminUrl}/upstreams/passive.internal/targets/127.0.0.1:${good.port}/unhealthy`, { method: 'PUT', dispatcher: agent });
      await put.body.text();
      assert.equal(put.statusCode, 204);
      const before = good.received.length;
      const none = await get(`${gw.proxyUrl}/p`);
      assert.equal(none.status, 503);
      assert.equal(JSON.parse(none.body).message, 'failure to get a peer from the ring-balancer');
      assert.equal(good.received.length, before);
      const bh = JSON.parse((await get(`${gw.adminUrl}/upstreams/passive.internal/health?balancer_health=1`)).body) as { data: { balancer_health: string } };
      assert.equal(bh.data.balancer_health, 'UNHEALTHY');
      const post = await request(`${gw.adminUrl}/upstreams/passive.internal/targets/127.0.0.1:${good.port}/healthy`, { method: 'POST', dispatcher: agent });
      await post.body.text();
      assert.equal(post.statusCode, 204);
      assert.equal((await get(`${gw.proxyUrl}/p`)).status, 200);
      // Unknown target → 404; an upstream without checks → 400.
      assert.equal((await request(`${gw.adminUrl}/upstreams/passive.internal/targets/10.9.9.9:1/healthy`, { method: 'PUT', dispatcher: agent })).statusCode, 404);
    } finally {
      await gw.close();
      await good.close();
      bad.close();
    }
  });

  test('health checks off: HEALTHCHECKS_OFF, manual override refused with 400, weight 0 only → 503', async () => {
    const echo = await startEcho();
    const doc = upstreamDoc('off.internal', [echo.port], {}, [0]);
    const gw = await startGateway({ config: doc });
    try {
      const h = JSON.parse((await get(`${gw.adminUrl}/upstreams/off.internal/health`)).body) as { data: { health: string }[] };
      assert.equal(h.data[0].health, 'HEALTHCHECKS_OFF');
      const res = await request(`${gw.adminUrl}/upstreams/off.internal/targets/127.0.0.1:${echo.port}/unhealthy`, { method: 'PUT', dispatcher: agent });
      assert.equal(res.statusCode, 400);
      assert.equal((await res.body.json() as { message: string }).message, 'no healthchecker found for off.internal');
      const r = await get(`${gw.proxyUrl}/x`);
      assert.equal(r.status, 503);
      assert.equal(echo.received.length, 0);
    } finally {
      await gw.close();
      await echo.close();
    }
  });

  test('reload: a target added and a weight changed take effect without restart; in-flight requests finish; health of unchanged targets survives', async () => {
    const a = await startEcho(), b = await startEcho();
    const hc = { healthchecks: { passive: { unhealthy: { http_failures: 1 } } } };
    const gw = await startGateway({ config: upstreamDoc('reload.internal', [a.port], hc) });
    try {
      const inflight = get(`${gw.proxyUrl}/delay/800`);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(await gw.reload(upstreamDoc('reload.internal', [a.port, b.port], hc, [100, 300])), true);
      assert.equal((await inflight).status, 200);
      const start = [a.received.length, b.received.length];
      for (let i = 0; i < 40; i++) assert.equal((await get(`${gw.proxyUrl}/x`)).status, 200);
      assert.equal(a.received.length - start[0], 10);
      assert.equal(b.received.length - start[1], 30);
      // Mark b unhealthy by hand; a reload that only changes a's weight keeps b's state.
      const put = await request(`${gw.adminUrl}/upstreams/reload.internal/targets/127.0.0.1:${b.port}/unhealthy`, { method: 'PUT', dispatcher: agent });
      assert.equal(put.statusCode, 204);
      assert.equal(await gw.reload(upstreamDoc('reload.internal', [a.port, b.port], hc, [50, 300])), true);
      const mark = b.received.length;
      for (let i = 0; i < 10; i++) assert.equal((await get(`${gw.proxyUrl}/x`)).status, 200);
      assert.equal(b.received.length, mark);
    } finally {
      await gw.close();
      await a.close();
      await b.close();
    }
  });
});

describe('names and formats', () => {
  test('a service host that is not an upstream name is used directly, as before', async () => {
    const echo = await startEcho();
    const gw = await startGateway({
      config: {
        services: [{ name: 'plain', url: `http://127.0.0.1:${echo.port}`, routes: [{ paths: ['/'] }] }],
        upstreams: [{ name: 'other.internal', targets: [{ target: '127.0.0.1:1' }] }],
      },
    });
    try {
      assert.equal((await get(`${gw.proxyUrl}/x`)).status, 200);
      assert.equal(echo.received.length, 1);
    } finally {
      await gw.close();
      await echo.close();
    }
  });

  test('a Kong format 1.1 file with upstreams and old-style regex paths loads, routes, and warns about each migrated path', async () => {
    const echos = await Promise.all([startEcho(), startEcho()]);
    const yaml = `_format_version: "1.1"
services:
- name: legacy
  host: legacy.upstream
  routes:
  - name: items
    paths:
    - /items/\\d+$
  - name: plain
    paths:
    - /plain
upstreams:
- name: legacy.upstream
  targets:
  - target: 127.0.0.1:${echos[0].port}
  - target: 127.0.0.1:${echos[1].port}
`;
    const gw = await startGateway({ config: yaml });
    try {
      assert.equal((await get(`${gw.proxyUrl}/items/42`)).status, 200);
      assert.equal((await get(`${gw.proxyUrl}/items/abc`)).status, 404);
      assert.equal((await get(`${gw.proxyUrl}/plain/x`)).status, 200);
      assert.equal(echos[0].received.length + echos[1].received.length, 2);
      const warned = gw.logs.filter((l) => typeof l.msg === 'string' && (l.msg as string).includes("migrated to '~/items/\\d+$'"));
      assert.equal(warned.length, 1);
    } finally {
      await gw.close();
      await Promise.all(echos.map((e) => e.close()));
    }
  });
});

export { type TestGateway };
