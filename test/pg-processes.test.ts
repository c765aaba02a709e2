/**
 * Two gateway *processes* (the real CLI, one with two workers) on one PostgreSQL: a route created
 * through node A's Admin API serves on node B — every worker of it — within 1 s.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startGatewayProcess, type GatewayProcess } from './helpers/process.ts';

const schema = `proc_${randomUUID().replaceAll('-', '')}`;
const env = {
  PORTCULLIS_DATABASE: 'postgres', PORTCULLIS_PG_HOST: '127.0.0.1', PORTCULLIS_PG_PORT: '5432', PORTCULLIS_PG_USER: 'postgres',
  PORTCULLIS_PG_DATABASE: 'test', PORTCULLIS_PG_SCHEMA: schema, PORTCULLIS_PROXY_ACCESS_LOG: 'off',
};

describe('two gateway processes sharing PostgreSQL', () => {
  let echo: EchoServer;
  let a: GatewayProcess;
  let b: GatewayProcess;
  before(async () => {
    echo = await startEcho();
    a = await startGatewayProcess({ env, workers: 1 });
    b = await startGatewayProcess({ env, workers: 2 });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await echo?.close();
    const client = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: 'test' });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  test('a route created on node A serves on node B within 1 s', async () => {
    const info = await (await fetch(`${a.adminUrl}/`)).json() as { node_id?: string };
    const infoB = await (await fetch(`${b.adminUrl}/`)).json() as { node_id?: string };
    assert.ok(info.node_id && infoB.node_id && info.node_id !== infoB.node_id, 'distinct node ids');
    const svc = await fetch(`${a.adminUrl}/services`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'echo', url: echo.url }) });
    assert.equal(svc.status, 201);
    assert.equal((await fetch(`${b.proxyUrl}/fresh`)).status, 404);
    const created = Date.now();
    const route = await fetch(`${a.adminUrl}/services/echo/routes`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=fresh&paths=/fresh' });
    assert.equal(route.status, 201);
    // Poll node B with fresh connections so both of its workers are exercised.
    let servedAt = 0;
    while (Date.now() - created < 5000) {
      const statuses = await Promise.all(Array.from({ length: 6 }, async () => {
        const r = await fetch(`${b.proxyUrl}/fresh`, { headers: { connection: 'close' } });
        await r.arrayBuffer();
        return r.status;
      }));
      if (statuses.every((s) => s === 200)) {
        servedAt = Date.now();
        break;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(servedAt > 0, 'node B never served the new route');
    assert.ok(servedAt - created <= 1000, `served on node B after ${servedAt - created} ms`);
  });
});
