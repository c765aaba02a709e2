/**
 * GET /status in Kong's shape: database.reachable, server.connections_* and total_requests
 * (nginx stub_status names), memory.workers_lua_vms (one item per proxy process).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho } from '../demo/echo.ts';
import { startGateway } from './helpers/gateway.ts';
import { startGatewayProcess } from './helpers/process.ts';

const counters = ['connections_accepted', 'connections_active', 'connections_handled', 'connections_reading', 'connections_writing', 'connections_waiting', 'total_requests'];

test('single process: counters follow the proxied requests', async () => {
  const echo = await startEcho();
  const gw = await startGateway({ config: { services: [{ name: 'e', url: echo.url, routes: [{ name: 'r', paths: ['/e'] }] }] } });
  try {
    const before = await (await fetch(`${gw.adminUrl}/status`)).json() as any;
    for (const k of counters) assert.equal(typeof before.server[k], 'number', k);
    for (let i = 0; i < 5; i++) assert.equal((await fetch(`${gw.proxyUrl}/e`)).status, 200);
    const after = await (await fetch(`${gw.adminUrl}/status`)).json() as any;
    assert.equal(after.server.total_requests - before.server.total_requests, 5);
    assert.ok(after.server.connections_accepted >= 1);
    assert.equal(after.server.connections_handled, after.server.connections_accepted);
    assert.equal(after.server.connections_writing, 0, 'nothing in flight');
    assert.deepEqual(after.database, { reachable: true });
    assert.equal(after.memory.workers_lua_vms.length, 1);
    assert.match(after.memory.workers_lua_vms[0].http_allocated_gc, /^\d+\.\d{2} MiB$/);
  } finally {
    await gw.close();
    await echo.close();
  }
});

test('two workers: the primary adds up both workers\' counters', async () => {
  const gw = await startGatewayProcess({ workers: 2, config: '_format_version: "3.0"\n' });
  try {
    const before = await (await fetch(`${gw.adminUrl}/status`)).json() as any;
    for (let i = 0; i < 6; i++) assert.equal((await fetch(`${gw.proxyUrl}/nothing`)).status, 404);
    const after = await (await fetch(`${gw.adminUrl}/status`)).json() as any;
    assert.equal(after.server.workers, 2);
    assert.equal(after.server.total_requests - before.server.total_requests, 6);
    assert.equal(after.memory.workers_lua_vms.length, 2);
    assert.notEqual(after.memory.workers_lua_vms[0].pid, after.memory.workers_lua_vms[1].pid);
  } finally {
    await gw.stop();
  }
});
