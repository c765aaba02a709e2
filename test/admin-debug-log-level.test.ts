/**
 * Kong's dynamic log level (kong/api/routes/debug.lua) on the real CLI: `GET /debug/node/log-level`,
 * `PUT /debug/node/log-level/{level}` reaching every worker of the node and going back to the
 * configured level after `timeout`, `PUT /debug/cluster/log-level/{level}` reaching the other nodes
 * sharing PostgreSQL, Kong's answers for bad input and DB-less mode; and `GET /timers`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { startGatewayProcess, waitFor, type GatewayProcess } from './helpers/process.ts';

const put = (url: string) => fetch(url, { method: 'PUT' });
const message = async (r: Response) => ((await r.json()) as { message: string }).message;
const levelOf = async (gw: GatewayProcess) => message(await fetch(`${gw.adminUrl}/debug/node/log-level`));

/** Requests on fresh connections, so both workers of the node are reached. */
async function failingRequests(gw: GatewayProcess, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${gw.proxyUrl}/down`, { headers: { connection: 'close' } });
    assert.equal(r.status, 502);
    await r.arrayBuffer();
  }
}

describe('dynamic log level of a node (SQLite, two workers)', () => {
  let gw: GatewayProcess;
  before(async () => {
    gw = await startGatewayProcess({ workers: 2, env: { PORTCULLIS_DATABASE: 'sqlite', PORTCULLIS_PROXY_ACCESS_LOG: 'off' } });
    // A service nobody listens on: every request logs `upstream request failed` at error level in a worker.
    const svc = await fetch(`${gw.adminUrl}/services`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'down', url: 'http://127.0.0.1:1', retries: 0 }) });
    assert.equal(svc.status, 201);
    const route = await fetch(`${gw.adminUrl}/services/down/routes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ paths: ['/down'] }) });
    assert.equal(route.status, 201);
    await waitFor(async () => (await fetch(`${gw.proxyUrl}/down`)).status === 502, 10_000, 'the route');
  });
  after(async () => {
    await gw?.stop();
  });

  test('GET answers the configured level; GET / shows the live one', async () => {
    assert.equal(await levelOf(gw), 'log level: info');
    const root = (await (await fetch(`${gw.adminUrl}/`)).json()) as { configuration: { log_level: string }; timers: { running: number; pending: number } };
    assert.equal(root.configuration.log_level, 'info');
    assert.equal(typeof root.timers.pending, 'number');
  });

  test('PUT crit: the workers stop logging errors; PUT info brings them back', async () => {
    const before = gw.output().length;
    await failingRequests(gw, 4);
    await waitFor(() => gw.output().slice(before).includes('upstream request failed'), 5000, 'error lines at info');

    const r = await put(`${gw.adminUrl}/debug/node/log-level/crit`);
    assert.equal(r.status, 200);
    assert.equal(await message(r), 'log level changed');
    assert.equal(await levelOf(gw), 'log level: crit');
    const root = (await (await fetch(`${gw.adminUrl}/`)).json()) as { configuration: { log_level: string } };
    assert.equal(root.configuration.log_level, 'crit');
    await new Promise((res) => setTimeout(res, 300)); // the workers hear the primary
    const quiet = gw.output().length;
    await failingRequests(gw, 6);
    await new Promise((res) => setTimeout(res, 300));
    assert.doesNotMatch(gw.output().slice(quiet), /upstream request failed/, 'no error line from any worker at crit');

    const same = await put(`${gw.adminUrl}/debug/node/log-level/crit`);
    assert.equal(same.status, 200);
    assert.equal(await message(same), 'log level is already crit');

    assert.equal(await message(await put(`${gw.adminUrl}/debug/node/log-level/info`)), 'log level changed');
    await new Promise((res) => setTimeout(res, 300));
    const loud = gw.output().length;
    await failingRequests(gw, 2);
    await waitFor(() => gw.output().slice(loud).includes('upstream request failed'), 5000, 'error lines again');
  });

  test('timeout: the level goes back to the configured one when it runs out', async () => {
    const r = await put(`${gw.adminUrl}/debug/node/log-level/debug?timeout=1`);
    assert.equal(await message(r), 'log level changed');
    assert.equal(await levelOf(gw), 'log level: debug');
    await waitFor(async () => (await levelOf(gw)) === 'log level: info', 5000, 'the level back to info');
  });

  test("bad input: Kong's answers", async () => {
    const unknown = await put(`${gw.adminUrl}/debug/node/log-level/stderr`);
    assert.equal(unknown.status, 400);
    assert.equal(await message(unknown), 'unknown log level: stderr');
    const negative = await put(`${gw.adminUrl}/debug/node/log-level/debug?timeout=-5`);
    assert.equal(negative.status, 400);
    assert.equal(await message(negative), 'timeout must be greater than or equal to 0');
    assert.equal(await levelOf(gw), 'log level: info', 'nothing changed');
    const wrongMethod = await fetch(`${gw.adminUrl}/debug/node/log-level`, { method: 'POST' });
    assert.equal(wrongMethod.status, 405);
  });

  test('a worker started while a level is in force takes it (Kong: a new worker reads it from the shm)', async () => {
    const workerPids = async () => ((await (await fetch(`${gw.adminUrl}/status`)).json()) as { memory: { workers_lua_vms: Array<{ pid: number }> } }).memory.workers_lua_vms.map((w) => w.pid);
    assert.equal(await message(await put(`${gw.adminUrl}/debug/node/log-level/crit?timeout=0`)), 'log level changed');
    const [victim] = await workerPids();
    process.kill(victim, 'SIGKILL');
    await waitFor(async () => {
      const now = await workerPids();
      return now.length === 2 && !now.includes(victim);
    }, 20_000, 'a new worker');
    await new Promise((res) => setTimeout(res, 1000)); // it listens once configured
    const quiet = gw.output().length;
    await failingRequests(gw, 10);
    await new Promise((res) => setTimeout(res, 300));
    assert.doesNotMatch(gw.output().slice(quiet), /upstream request failed/, 'the new worker logs at crit too');
    assert.equal(await message(await put(`${gw.adminUrl}/debug/node/log-level/info`)), 'log level changed');
  });

  test('GET /timers: the worker count and the pending timers', async () => {
    const r = await fetch(`${gw.adminUrl}/timers`);
    assert.equal(r.status, 200);
    const body = (await r.json()) as { worker: { id: number; count: number }; stats: { sys: { running: number; pending: number; total: number }; timers: object } };
    assert.equal(body.worker.count, 2);
    assert.ok(body.stats.sys.pending >= 0 && body.stats.sys.total === body.stats.sys.pending);
    assert.deepEqual(body.stats.timers, {});
  });
});

test('DB-less: the level can be read, not changed (405, as Kong)', async () => {
  const gw = await startGatewayProcess({ config: '_format_version: "3.0"\n', env: { PORTCULLIS_PROXY_ACCESS_LOG: 'off' } });
  try {
    assert.equal(await levelOf(gw), 'log level: info');
    const r = await put(`${gw.adminUrl}/debug/node/log-level/debug`);
    assert.equal(r.status, 405);
    assert.equal(await message(r), 'cannot change log level when not using a database');
    assert.equal(await levelOf(gw), 'log level: info');
  } finally {
    await gw.stop();
  }
});

describe('cluster log level: two nodes sharing PostgreSQL', () => {
  const schema = `loglevel_${randomUUID().replaceAll('-', '')}`;
  const env = {
    PORTCULLIS_DATABASE: 'postgres', PORTCULLIS_PG_HOST: '127.0.0.1', PORTCULLIS_PG_PORT: '5432', PORTCULLIS_PG_USER: 'postgres',
    PORTCULLIS_PG_DATABASE: 'test', PORTCULLIS_PG_SCHEMA: schema, PORTCULLIS_PROXY_ACCESS_LOG: 'off',
  };
  let a: GatewayProcess;
  let b: GatewayProcess;
  before(async () => {
    a = await startGatewayProcess({ env, workers: 1 });
    b = await startGatewayProcess({ env, workers: 1 });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    const client = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: 'test' });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  test('PUT /debug/cluster/log-level on node A reaches node B; /debug/node only the node asked', async () => {
    const node = await put(`${a.adminUrl}/debug/node/log-level/notice`);
    assert.equal(await message(node), 'log level changed');
    assert.equal(await levelOf(a), 'log level: notice');
    await new Promise((res) => setTimeout(res, 2500));
    assert.equal(await levelOf(b), 'log level: info', 'a node-level change stays on its node');

    const r = await put(`${a.adminUrl}/debug/cluster/log-level/emerg?timeout=30`);
    assert.equal(r.status, 200);
    assert.equal(await message(r), 'log level changed');
    assert.equal(await levelOf(a), 'log level: emerg');
    await waitFor(async () => (await levelOf(b)) === 'log level: emerg', 8000, 'node B at emerg');
  });
});
