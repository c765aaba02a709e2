/**
 * One health state per node: with two worker processes, the primary runs the checks and every
 * worker follows its states (a manual override and passive failures seen by any worker).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { startEcho } from '../demo/echo.ts';
import { startGatewayProcess, waitFor } from './helpers/process.ts';

test('2 workers share one health state: manual and passive changes reach every worker', async () => {
  const good = await startEcho();
  let failing = false;
  let hits = 0;
  const flaky = http.createServer((req, res) => {
    hits++;
    res.writeHead(failing ? 500 : 200).end('flaky');
  });
  await new Promise<void>((r) => flaky.listen(0, '127.0.0.1', r));
  const flakyPort = (flaky.address() as AddressInfo).port;
  const config = JSON.stringify({
    _format_version: '3.0',
    services: [{ name: 'svc', host: 'pool.internal', routes: [{ paths: ['/'] }] }],
    upstreams: [{
      name: 'pool.internal',
      healthchecks: { passive: { unhealthy: { http_failures: 4 } } },
      targets: [{ target: `127.0.0.1:${good.port}` }, { target: `127.0.0.1:${flakyPort}` }],
    }],
  });
  // Generous: a node of three processes loads slowly on a busy machine.
  const gw = await startGatewayProcess({ config, workers: 2, startTimeoutMs: 120_000 });
  // Many fresh connections: the kernel spreads them over both workers.
  const call = async (): Promise<number> => {
    const a = new Agent({ pipelining: 0 });
    try {
      const r = await request(`${gw.proxyUrl}/x`, { dispatcher: a, headers: { connection: 'close' } });
      await r.body.text();
      return r.statusCode;
    } finally {
      await a.close();
    }
  };
  const health = async (): Promise<string> => {
    const r = await fetch(`${gw.adminUrl}/upstreams/pool.internal/health`);
    const body = await r.json() as { data: { target: string; health: string }[] };
    return body.data.find((t) => t.target === `127.0.0.1:${flakyPort}`)!.health;
  };
  try {
    for (let i = 0; i < 20; i++) assert.equal(await call(), 200);
    assert.ok(hits > 0);
    // Manual: set in the primary, followed by both workers.
    const put = await fetch(`${gw.adminUrl}/upstreams/pool.internal/targets/127.0.0.1:${flakyPort}/unhealthy`, { method: 'PUT' });
    assert.equal(put.status, 204);
    await new Promise((r) => setTimeout(r, 300));
    let mark = hits;
    for (let i = 0; i < 30; i++) assert.equal(await call(), 200);
    assert.equal(hits, mark, 'a worker still sent traffic to the target marked unhealthy');
    await fetch(`${gw.adminUrl}/upstreams/pool.internal/targets/127.0.0.1:${flakyPort}/healthy`, { method: 'PUT' });
    await new Promise((r) => setTimeout(r, 300));
    // Passive: failures seen by both workers add up in the primary (threshold 4 over the node).
    failing = true;
    let fails = 0;
    for (let i = 0; i < 40 && fails < 4; i++) if ((await call()) === 500) fails++;
    assert.equal(fails, 4);
    await waitFor(async () => (await health()) === 'UNHEALTHY', 5000, 'flaky unhealthy');
    await new Promise((r) => setTimeout(r, 200));
    mark = hits;
    for (let i = 0; i < 30; i++) assert.equal(await call(), 200);
    assert.equal(hits, mark);
  } finally {
    await gw.stop();
    await good.close();
    flaky.closeAllConnections();
    flaky.close();
  }
});
