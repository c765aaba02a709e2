/**
 * A reload (SIGHUP) while PostgreSQL is unreachable: the node keeps its running configuration and
 * reload() reports the failure, instead of logging "configuration reloaded" after the error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { createRegistry } from '../src/plugins/registry.ts';
import { bundledPlugins } from '../src/plugins/bundled/index.ts';
import { readSettings, startSingle } from '../src/kernel/index.ts';

const pgBase = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };

test('reload while the database is unreachable returns false and logs no success', async () => {
  const schema = `qa_reload_${randomUUID().replaceAll('-', '')}`;
  // A relay in front of PostgreSQL that can be cut.
  const sockets = new Set<Socket>();
  let cut = false;
  const relay = createServer((client) => {
    if (cut) return void client.destroy();
    const upstream = connect(pgBase.port, pgBase.host);
    sockets.add(client).add(upstream);
    const drop = () => { client.destroy(); upstream.destroy(); };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const env = {
    ...process.env,
    PORTCULLIS_PG_HOST: '127.0.0.1', PORTCULLIS_PG_PORT: String((relay.address() as { port: number }).port), PORTCULLIS_PG_USER: pgBase.user,
    PORTCULLIS_PG_DATABASE: pgBase.database, PORTCULLIS_PG_SCHEMA: schema, PORTCULLIS_DRAIN_TIMEOUT: '1',
  };
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
  const settings = readSettings({ database: 'postgres', workers: '1', proxyListen: '127.0.0.1:0', adminListen: '127.0.0.1:0', logLevel: 'info' }, env);
  const node = await startSingle(settings, createRegistry(bundledPlugins), log);
  try {
    assert.equal(await node.reload(), true);
    cut = true;
    for (const s of sockets) s.destroy();
    lines.length = 0;
    assert.equal(await node.reload(), false, 'the reload failed');
    assert.ok(lines.some((l) => l.includes('the previous config keeps serving')), lines.join(''));
    assert.ok(!lines.some((l) => l.includes('configuration reloaded')), lines.join(''));
    cut = false;
    assert.equal(await node.reload(), true, 'reloads again once the database is back');
  } finally {
    await node.close();
    relay.close();
    for (const s of sockets) s.destroy();
    const c = new pg.Client(pgBase);
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  }
});
