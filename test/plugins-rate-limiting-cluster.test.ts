/**
 * rate-limiting `policy: cluster`: counters in the gateway's database (the node's shared
 * key-value store), shared by every gateway on one SQLite file (as the workers of one node are) and
 * by every node on one PostgreSQL; refused in DB-less mode with Kong's one_of; `fault_tolerant`
 * when the store fails; and `KeyValueStore.incr`, the atomic increment it relies on, across
 * processes and connections (the per-adapter conformance is in test/store-conformance.test.ts).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import pg from 'pg';
import { pino } from 'pino';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { adminJson, startGateway, type TestGateway } from './helpers/gateway.ts';
import { configIssue as issue, testClient } from './helpers/http.ts';
import { waitFor } from './helpers/process.ts';
import { makeCtx, makeDeps } from './helpers/plugin-ctx.ts';
import { MemoryKv } from './helpers/fake-ctx.ts';
import plugin, { rateLimitingSchema } from '../src/plugins/bundled/rate-limiting/index.ts';
import { windowBounds } from '../src/plugins/bundled/rate-limiting/counters.ts';
import { EMPTY_UUID } from '../src/plugins/bundled/rate-limiting/redis-policy.ts';
import { CLUSTER_KEY_PREFIX } from '../src/plugins/bundled/rate-limiting/cluster-policy.ts';
import { openKvStore } from '../src/storage/index.ts';
import type { KeyValueStore } from '../src/storage/ports.ts';
import type { PluginHandlers, Reply } from '../src/plugins/sdk.ts';

const pgBase = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };
const schemas: string[] = [];
const dirs: string[] = [];

after(async () => {
  if (schemas.length > 0) {
    const c = new pg.Client(pgBase);
    await c.connect();
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await c.end();
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'portcullis-rl-cluster-'));
  dirs.push(d);
  return d;
}

function pgEnv(schema: string): Record<string, string> {
  return {
    PORTCULLIS_PG_HOST: pgBase.host, PORTCULLIS_PG_PORT: String(pgBase.port), PORTCULLIS_PG_USER: pgBase.user,
    PORTCULLIS_PG_DATABASE: pgBase.database, PORTCULLIS_PG_SCHEMA: schema,
  };
}

/** Wait out the last seconds of a minute, so a test's requests all fall in one minute window. */
async function notNearMinuteEnd(): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 8000) await new Promise((r) => setTimeout(r, left + 50));
}

/**
 * Through `gw`'s Admin API: service `echo`, route `/r`, and on the route a rate-limiting plugin
 * with `policy: cluster`, minute 3, counted per `x-client` header. Returns the route's id.
 */
async function configure(gw: TestGateway, echo: EchoServer): Promise<string> {
  const svc = await adminJson(gw.adminUrl, 'POST', '/services', { name: 'echo', url: `http://127.0.0.1:${echo.port}` });
  assert.equal(svc.status, 201, JSON.stringify(svc.body));
  const route = await adminJson(gw.adminUrl, 'POST', '/services/echo/routes', { name: 'r', paths: ['/r'] });
  assert.equal(route.status, 201, JSON.stringify(route.body));
  const plug = await adminJson(gw.adminUrl, 'POST', `/routes/${route.body.id}/plugins`, {
    name: 'rate-limiting', config: { minute: 3, policy: 'cluster', limit_by: 'header', header_name: 'x-client' },
  });
  assert.equal(plug.status, 201, JSON.stringify(plug.body));
  assert.equal(plug.body.config.policy, 'cluster');
  return route.body.id as string;
}

async function call(gw: TestGateway, client: string) {
  const c = testClient(() => gw.proxyUrl);
  try {
    return await c.call('/r', { headers: { 'x-client': client } });
  } finally {
    await c.close();
  }
}

/** Until `gw` serves the route with the plugin (probes count under their own identifiers). */
async function serving(gw: TestGateway): Promise<void> {
  await waitFor(async () => (await call(gw, `probe-${randomUUID()}`)).headers['x-ratelimit-limit-minute'] === '3', 15_000, 'the plugin in effect');
}

/** Kong's key of the minute window in the shared store. */
function clusterKey(routeId: string, client: string): string {
  return `${CLUSTER_KEY_PREFIX}ratelimit:${routeId}:${EMPTY_UUID}:${client}:${windowBounds('minute', Date.now()).start}:minute`;
}

/**
 * Requests alternate between the gateways: 3 admitted with Kong's headers counting down, the 4th
 * (on the other gateway) refused; the stored count is 3.
 */
async function sharedCount(gws: TestGateway[], kv: KeyValueStore, routeId: string): Promise<void> {
  const key = clusterKey(routeId, 'alice');
  for (let i = 0; i < 3; i++) {
    const r = await call(gws[i % 2], 'alice');
    assert.equal(r.status, 200, `request ${i + 1}`);
    assert.equal(r.headers['x-ratelimit-limit-minute'], '3');
    assert.equal(r.headers['x-ratelimit-remaining-minute'], String(2 - i));
    assert.equal(r.headers['ratelimit-limit'], '3');
    assert.equal(r.headers['ratelimit-remaining'], String(2 - i));
    // the increment is not awaited by the request: wait until it is stored
    await waitFor(async () => (await kv.get(key)) === String(i + 1), 5000, `count ${i + 1} stored`);
  }
  const blocked = await call(gws[1], 'alice');
  assert.equal(blocked.status, 429);
  assert.deepEqual(JSON.parse(blocked.text), { message: 'API rate limit exceeded' });
  assert.equal(blocked.headers['x-ratelimit-limit-minute'], '3');
  assert.equal(blocked.headers['x-ratelimit-remaining-minute'], '0');
  assert.equal(blocked.headers['ratelimit-remaining'], '0');
  const retry = Number(blocked.headers['retry-after']);
  assert.ok(retry >= 1 && retry <= 60, String(retry));
  assert.equal(blocked.headers['ratelimit-reset'], blocked.headers['retry-after']);
  // refused requests are not counted; another client has its own count
  assert.equal(await kv.get(key), '3');
  assert.equal((await call(gws[0], 'bob')).status, 200);
}

test('rate-limiting cluster: two gateways on one SQLite file (as the workers of a node) share one count; the 4th request is 429 with Kong headers', async () => {
  await notNearMinuteEnd();
  const echo = await startEcho();
  const file = join(tempDir(), 'shared.db');
  const env = { PORTCULLIS_SQLITE_PATH: file };
  const gws: TestGateway[] = [];
  const kv = await openKvStore({ kind: 'sqlite', path: file });
  try {
    gws.push(await startGateway({ database: 'sqlite', env }));
    const routeId = await configure(gws[0], echo);
    gws.push(await startGateway({ database: 'sqlite', env }));
    for (const gw of gws) await serving(gw);
    await sharedCount(gws, kv, routeId);
  } finally {
    for (const gw of gws) await gw.close();
    await kv.close();
    await echo.close();
  }
});

test('rate-limiting cluster: two nodes on one PostgreSQL share one count', async () => {
  await notNearMinuteEnd();
  const echo = await startEcho();
  const schema = `rl_${randomUUID().replaceAll('-', '')}`;
  schemas.push(schema);
  const env = pgEnv(schema);
  const gws: TestGateway[] = [];
  let kv: KeyValueStore | null = null;
  try {
    gws.push(await startGateway({ database: 'postgres', env }));
    const routeId = await configure(gws[0], echo);
    gws.push(await startGateway({ database: 'postgres', env }));
    for (const gw of gws) await serving(gw);
    kv = await openKvStore({ kind: 'postgres', pg: { ...pgBase, schema } });
    await sharedCount(gws, kv, routeId);
    // the entry expires with Kong's window length (60 s for a minute) from its creation
    const c = new pg.Client(pgBase);
    await c.connect();
    try {
      const row = await c.query(`SELECT expires_at FROM "${schema}".portcullis_kv WHERE key = $1`, [clusterKey(routeId, 'alice')]);
      const left = Number(row.rows[0].expires_at) - Date.now();
      assert.ok(left > 0 && left <= 60_000, String(left));
    } finally {
      await c.end();
    }
  } finally {
    for (const gw of gws) await gw.close();
    await kv?.close();
    await echo.close();
  }
});

test('rate-limiting cluster: refused in DB-less mode with Kong\'s one_of, naming config.policy; local stays on offer', async () => {
  // a declarative file
  await assert.rejects(
    startGateway({ config: { plugins: [{ name: 'rate-limiting', config: { minute: 5, policy: 'cluster' } }] } }),
    issue(/plugins\[0\]\.config\.policy: expected one of: local, redis/),
  );
  // POST /config on a DB-less node
  const gw = await startGateway();
  try {
    const r = await adminJson(gw.adminUrl, 'POST', '/config', {
      _format_version: '3.0', plugins: [{ name: 'rate-limiting', config: { minute: 5, policy: 'cluster' } }],
    });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(JSON.stringify(r.body), /expected one of: local, redis/);
    assert.match(JSON.stringify(r.body), /policy/);
    // local and redis stay on offer
    const local = await adminJson(gw.adminUrl, 'POST', '/config', {
      _format_version: '3.0', plugins: [{ name: 'rate-limiting', config: { minute: 5, policy: 'local' } }],
    });
    assert.equal(local.status, 201, JSON.stringify(local.body));
  } finally {
    await gw.close();
  }
  // a node built without the check still refuses to count per process
  await assert.rejects(
    Promise.resolve().then(() => plugin.create(rateLimitingSchema.parse({ minute: 5, policy: 'cluster' }), makeDeps('rate-limiting'))),
    /config\.policy: 'cluster' needs a database/,
  );
});

/** A store whose reads and/or increments fail. */
class FailingKv extends MemoryKv {
  failReads = false;
  failIncr = false;
  override async get(key: string): Promise<string | null> {
    if (this.failReads) throw new Error('database is busy');
    return super.get(key);
  }
  override async incr(key: string, by: number, ttlMs: number): Promise<number> {
    if (this.failIncr) throw new Error('database is busy');
    return super.incr(key, by, ttlMs);
  }
}

function capture(): { log: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const sink = new Writable({ write(chunk: Buffer, _e, cb) { out.push(chunk.toString()); cb(); } });
  return { log: pino({ level: 'info' }, sink), lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

test('rate-limiting cluster: fault_tolerant — a failing store lets requests through (logged once), or fails them; a failed increment is logged', async () => {
  const kv = new FailingKv();
  const { log, lines } = capture();
  const build = async (faultTolerant: boolean): Promise<PluginHandlers> => plugin.create(
    rateLimitingSchema.parse({ minute: 2, policy: 'cluster', limit_by: 'ip', fault_tolerant: faultTolerant }),
    { ...makeDeps('rate-limiting'), sharedKv: kv, database: 'sqlite', log },
  );
  const hit = async (h: PluginHandlers) => {
    const ctx = makeCtx({ clientIp: '10.1.1.1' });
    const reply = (await h.access!(ctx)) as Reply | undefined;
    return { reply, headers: Object.fromEntries(ctx.downstream.map) };
  };
  const tolerant = await build(true);
  const first = await hit(tolerant);
  assert.equal(first.reply, undefined);
  assert.equal(first.headers['x-ratelimit-remaining-minute'], '1');

  kv.failReads = true;
  for (let i = 0; i < 3; i++) {
    const r = await hit(tolerant);
    assert.equal(r.reply, undefined, 'let through');
    assert.equal(r.headers['x-ratelimit-remaining-minute'], undefined, 'without rate-limit headers');
  }
  const failures = lines().filter((l) => String(l.msg).includes('usage read failed'));
  assert.equal(failures.length, 1, 'logged once per interval');
  assert.match(String(failures[0].msg), /rate-limiting: cluster usage read failed: database is busy; letting requests through unlimited/);

  const strict = await build(false);
  await assert.rejects(hit(strict), /database is busy/);

  // a failed increment: the request is admitted, the failure logged
  kv.failReads = false;
  kv.failIncr = true;
  const fresh = await build(true);
  assert.equal((await hit(fresh)).reply, undefined);
  await waitFor(() => lines().some((l) => String(l.msg).includes('cluster increment failed: database is busy; this request is not counted')), 2000, 'increment failure logged');
});

test('KeyValueStore.incr: two processes on one SQLite file, and two connection pools on one PostgreSQL, lose no increment', async () => {
  // SQLite: this process and a child process increment the same key at once
  const file = join(tempDir(), 'kv.db');
  const kv = await openKvStore({ kind: 'sqlite', path: file });
  try {
    const storeModule = new URL('../src/storage/index.ts', import.meta.url).href;
    const script = `
      const { openKvStore } = await import(${JSON.stringify(storeModule)});
      const kv = await openKvStore({ kind: 'sqlite', path: ${JSON.stringify(file)} });
      for (let i = 0; i < 200; i++) await kv.incr('shared', 1, 60000);
      await kv.close();
    `;
    let done = false;
    const child = promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]).finally(() => (done = true));
    // this process keeps incrementing (yielding to the event loop each time) while the child runs
    let mine = 0;
    let childSeen = false;
    while (!done) {
      const n = await kv.incr!('shared', 1, 60_000);
      mine++;
      if (n > mine) childSeen = true;
      await new Promise((r) => setTimeout(r, 1));
    }
    await child;
    assert.ok(childSeen && mine > 1, 'both processes incremented at the same time');
    assert.equal(await kv.get('shared'), String(200 + mine));
  } finally {
    await kv.close();
  }

  // PostgreSQL: two stores (two pools, as two nodes), 5 × 20 concurrent increments each
  const schema = `rlkv_${randomUUID().replaceAll('-', '')}`;
  schemas.push(schema);
  const a = await openKvStore({ kind: 'postgres', pg: { ...pgBase, schema } });
  const b = await openKvStore({ kind: 'postgres', pg: { ...pgBase, schema } });
  try {
    for (let round = 0; round < 5; round++) {
      await Promise.all([a, b].flatMap((kvs) => Array.from({ length: 20 }, () => kvs.incr!('shared', 1, 60_000))));
    }
    assert.equal(await a.get('shared'), '200');
    assert.equal(await b.incr!('shared', 0, 60_000), 200);
  } finally {
    await a.close();
    await b.close();
  }
});
