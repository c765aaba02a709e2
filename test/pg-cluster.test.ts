/**
 * Two gateway nodes sharing one PostgreSQL (fresh schema per run):
 *   - a route created on node A's Admin API serves on node B within 1 s;
 *   - every PostgreSQL connection of the cluster is killed while B serves traffic: no proxied
 *     request fails, and changes propagate again once the connections are back.
 * The nodes run in this process (each with its own store, pool and LISTEN connection, exactly as
 * separate processes would have).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { createRegistry } from '../src/plugins/registry.ts';
import { bundledPlugins } from '../src/plugins/bundled/index.ts';
import { readSettings, startSingle, type RunningNode } from '../src/kernel/index.ts';

const pgBase = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };
const schema = `e2e_${randomUUID().replaceAll('-', '')}`;

async function startNode(): Promise<{ node: RunningNode; proxy: string; admin: string }> {
  const env = {
    ...process.env,
    PORTCULLIS_PG_HOST: pgBase.host, PORTCULLIS_PG_PORT: String(pgBase.port), PORTCULLIS_PG_USER: pgBase.user,
    PORTCULLIS_PG_DATABASE: pgBase.database, PORTCULLIS_PG_SCHEMA: schema, PORTCULLIS_DRAIN_TIMEOUT: '2',
  };
  const settings = readSettings({ database: 'postgres', workers: '1', proxyListen: '127.0.0.1:0', adminListen: '127.0.0.1:0', logLevel: 'silent' }, env);
  const node = await startSingle(settings, createRegistry(bundledPlugins), pino({ level: 'silent' }));
  return { node, proxy: `http://127.0.0.1:${node.proxyPorts()[0]}`, admin: `http://127.0.0.1:${node.adminPorts()[0]}` };
}

async function post(url: string, body: unknown): Promise<any> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = await res.json();
  assert.equal(res.status, 201, JSON.stringify(json));
  return json;
}

describe('two nodes on one PostgreSQL', () => {
  let upstream: Server;
  let upstreamUrl: string;
  let a: Awaited<ReturnType<typeof startNode>>;
  let b: Awaited<ReturnType<typeof startNode>>;

  before(async () => {
    upstream = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ path: req.url }));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const addr = upstream.address() as { port: number };
    upstreamUrl = `http://127.0.0.1:${addr.port}`;
    a = await startNode();
    b = await startNode();
  });

  after(async () => {
    await a?.node.close();
    await b?.node.close();
    await new Promise<void>((r) => upstream.close(() => r()));
    const c = new pg.Client(pgBase);
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  });

  test('a route created on node A serves on node B within 1 s', async () => {
    assert.equal((await fetch(`${b.proxy}/prop`)).status, 404);
    await post(`${a.admin}/services`, { name: 'prop-svc', url: upstreamUrl });
    const started = Date.now();
    await post(`${a.admin}/services/prop-svc/routes`, { name: 'prop-route', paths: ['/prop'] });
    let status = 0;
    while (Date.now() - started < 1000) {
      status = (await fetch(`${b.proxy}/prop`)).status;
      if (status === 200) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(status, 200, `node B served the new route after ${Date.now() - started} ms`);
    assert.ok(Date.now() - started < 1000);
  });

  test('killing every database connection while serving fails no request; propagation recovers', async () => {
    const admin = new pg.Client(pgBase);
    await admin.connect();
    try {
      let failures = 0;
      let served = 0;
      let running = true;
      const traffic = (async () => {
        while (running) {
          const res = await fetch(`${b.proxy}/prop/x`).catch(() => null);
          if (res && res.status === 200) served++;
          else failures++;
          await res?.arrayBuffer();
        }
      })();
      await new Promise((r) => setTimeout(r, 100));
      const killed = await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [`portcullis_${schema}`]);
      assert.ok((killed.rowCount ?? 0) > 0, 'the nodes had connections to kill');
      await new Promise((r) => setTimeout(r, 500));
      running = false;
      await traffic;
      assert.equal(failures, 0);
      assert.ok(served > 5, `requests kept flowing (${served})`);

      // After the drop: a write on A still reaches B.
      const started = Date.now();
      await post(`${a.admin}/services/prop-svc/routes`, { name: 'after-drop', paths: ['/after-drop'] });
      let status = 0;
      while (Date.now() - started < 3000) {
        status = (await fetch(`${b.proxy}/after-drop`)).status;
        if (status === 200) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      assert.equal(status, 200, 'node B picked up a change made after the reconnect');
    } finally {
      await admin.end();
    }
  });

  test('PUT by name on both nodes at once: every call succeeds (create or replace), never a 409', async () => {
    // Both nodes look the name up, find nothing and insert; the loser hits the database's unique
    // index. PUT is create-or-replace (Kong's upsert), so the loser must replace the winner's row.
    const results: Array<{ status: number; body: string }> = [];
    for (let round = 0; round < 5; round++) {
      const calls = [];
      for (let i = 0; i < 8; i++) {
        const node = i % 2 === 0 ? a : b;
        calls.push(
          fetch(`${node.admin}/services/put-race-${round}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ host: `h${i}.example` }) })
            .then(async (res) => ({ status: res.status, body: await res.text() })),
        );
      }
      results.push(...(await Promise.all(calls)));
    }
    const failed = results.filter((r) => r.status !== 200);
    assert.deepEqual(failed, [], 'no concurrent PUT failed');
    // A POST that loses the same race still names the field that collided.
    const posts = await Promise.all([a, b, a, b].map((n) => fetch(`${n.admin}/consumers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'post-race' }) })
      .then(async (res) => ({ status: res.status, body: (await res.json()) as { fields?: unknown } }))));
    assert.equal(posts.filter((p) => p.status === 201).length, 1);
    for (const p of posts.filter((p) => p.status !== 201)) {
      assert.equal(p.status, 409);
      assert.deepEqual(p.body.fields, { username: 'post-race' }, JSON.stringify(p.body));
    }
  });
});
