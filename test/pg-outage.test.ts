/**
 * PostgreSQL disappearing and coming back, simulated with a TCP relay in front of the real server:
 * while it is gone the store fails fast with GW_STORE_UNAVAILABLE (503 on the Admin API,
 * `database.reachable: false`) and nothing crashes; once it is back, the LISTEN connection
 * reconnects and changes made meanwhile by another node are picked up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { openConfigStore } from '../src/storage/index.ts';
import { createAdminServer } from '../src/admin/index.ts';
import { createRegistry } from '../src/plugins/registry.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { isGatewayError } from '../src/errors.ts';
import { relay } from './helpers/tcp-relay.ts';

const pgBase = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };

test('database outage: fail fast, keep running, reconnect and catch up', async () => {
  const schema = `out_${randomUUID().replaceAll('-', '')}`;
  const r = relay();
  const port = await r.start();
  const viaRelay = await openConfigStore({ database: 'postgres', pg: { ...pgBase, port, schema, connectTimeoutMs: 1000 }, pollIntervalMs: 200 });
  const direct = await openConfigStore({ database: 'postgres', pg: { ...pgBase, schema } });
  const admin = await createAdminServer({ store: viaRelay, registry: createRegistry([]), log: silentLogger(), nodeInfo: () => ({}), status: () => ({}) });
  const adminUrl = `http://127.0.0.1:${(await admin.listen('127.0.0.1', 0)).port}`;
  try {
    let changes = 0;
    viaRelay.onChange(() => changes++);
    await r.stop();

    const err = await viaRelay.load().then(() => null, (e: unknown) => e);
    assert.ok(isGatewayError(err) && err.code === 'GW_STORE_UNAVAILABLE', String(err) + ' ' + (err as any)?.cause);
    const status: any = await (await fetch(`${adminUrl}/status`)).json();
    assert.deepEqual(status.database, { reachable: false });
    const write = await fetch(`${adminUrl}/consumers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":"x"}' });
    assert.equal(write.status, 503);
    assert.deepEqual(await write.json(), { message: 'database unavailable' });

    // Another node writes while this one is cut off.
    await direct.insert('consumers', { id: randomUUID(), username: 'during-outage', custom_id: null, tags: null, created_at: 1, updated_at: 1 });
    await new Promise((res) => setTimeout(res, 300));
    const before = changes;

    await r.start();
    const started = Date.now();
    while (changes === before && Date.now() - started < 8000) await new Promise((res) => setTimeout(res, 50));
    assert.ok(changes > before, 'the change made during the outage was noticed after reconnecting');
    assert.ok((await viaRelay.load()).consumers.some((c) => c.username === 'during-outage'));
    const created = await fetch(`${adminUrl}/consumers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":"after"}' });
    assert.equal(created.status, 201);
  } finally {
    await admin.close();
    await viaRelay.close();
    await direct.close();
    await r.stop();
    const c = new pg.Client(pgBase);
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  }
});
