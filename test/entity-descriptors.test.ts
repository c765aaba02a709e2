/**
 * The entity descriptors drive the SQL layout: every table has exactly the key columns its
 * descriptor derives (so a descriptor change without a migration fails here), a database made by
 * an older version still opens and keeps its rows and unique keys, and the DDL derived for a new
 * entity works on both databases.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { z } from 'zod';
import type { EntityDescriptor } from '../src/config/entity.ts';
import { entities } from '../src/config/entities/index.ts';
import { normalizeSimple } from '../src/config/normalize-kit.ts';
import { configMigrations, entityTableDdl, tableLayout } from '../src/storage/sql-common.ts';
import { openConfigStore } from '../src/storage/index.ts';
import { isGatewayError } from '../src/errors.ts';

const pgBase = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };
const dir = mkdtempSync(join(tmpdir(), 'portcullis-entities-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Key columns of a table (everything but id, seq and data). */
function expectedColumns(d: EntityDescriptor): string[] {
  return tableLayout(d).columns.map((c) => c.name).sort();
}

describe('SQL tables follow the entity descriptors', () => {
  test('sqlite: every entity table has exactly the derived key columns', async () => {
    const path = join(dir, 'layout.db');
    const store = await openConfigStore({ database: 'sqlite', sqlitePath: path });
    await store.close();
    const db = new DatabaseSync(path);
    try {
      for (const d of entities) {
        const cols = (db.prepare(`PRAGMA table_info(${d.name})`).all() as { name: string }[]).map((c) => c.name).filter((n) => !['id', 'seq', 'data'].includes(n));
        assert.deepEqual(cols.sort(), expectedColumns(d), d.name);
      }
    } finally {
      db.close();
    }
  });

  test('postgres: every entity table has exactly the derived key columns', async () => {
    const schema = `t_${randomUUID().replaceAll('-', '')}`;
    const store = await openConfigStore({ database: 'postgres', pg: { ...pgBase, schema } });
    await store.close();
    const c = new pg.Client(pgBase);
    await c.connect();
    try {
      for (const d of entities) {
        const r = await c.query<{ column_name: string }>('SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2', [schema, d.name]);
        const cols = r.rows.map((x) => x.column_name).filter((n) => !['id', 'seq', 'data'].includes(n));
        assert.deepEqual(cols.sort(), expectedColumns(d), d.name);
      }
    } finally {
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.end();
    }
  });

  test('a SQLite file written by an older version (rows inserted with the first layout) opens, keeps its rows and its unique keys', async () => {
    const path = join(dir, 'old.db');
    const db = new DatabaseSync(path);
    db.exec('CREATE TABLE portcullis_migrations (name TEXT PRIMARY KEY, executed_at BIGINT NOT NULL)');
    for (const m of configMigrations.filter((x) => ['000_base', '001_seq_indexes'].includes(x.name))) {
      for (const stmt of m.up) db.exec(stmt);
      db.prepare('INSERT INTO portcullis_migrations (name, executed_at) VALUES (?, 1)').run(m.name);
    }
    const consumer = { id: randomUUID(), username: 'old-user', custom_id: null, tags: null, created_at: 1, updated_at: 1 };
    const acl = { id: randomUUID(), consumer: { id: consumer.id }, group: 'a|b', tags: null, created_at: 1 };
    db.prepare('INSERT INTO consumers (id, seq, username, custom_id, data) VALUES (?, 1, ?, NULL, ?)').run(consumer.id, 'old-user', JSON.stringify(consumer));
    db.prepare('INSERT INTO acls (id, seq, consumer_id, grp, data) VALUES (?, 1, ?, ?, ?)').run(acl.id, consumer.id, 'a|b', JSON.stringify(acl));
    db.close();

    const store = await openConfigStore({ database: 'sqlite', sqlitePath: path });
    try {
      const data = await store.load();
      assert.deepEqual(data.consumers, [consumer]);
      assert.deepEqual(data.acls, [acl]);
      await assert.rejects(store.insert('acls', { ...acl, id: randomUUID() }), (e: unknown) => isGatewayError(e) && e.status === 409);
      await assert.rejects(store.insert('consumers', { ...consumer, id: randomUUID() }), (e: unknown) => isGatewayError(e) && e.status === 409);
      await store.insert('acls', { ...acl, id: randomUUID(), group: 'a' });
      assert.equal((await store.list('acls', { foreign: { field: 'consumer', id: consumer.id } })).data.length, 2);
    } finally {
      await store.close();
    }
  });
});

describe('a new entity needs only its descriptor for its table', () => {
  // A stand-in shaped like Kong's targets (unique per upstream) with a key-auth-like `key`.
  const schema = z.strictObject({ id: z.string().optional(), upstream: z.unknown(), target: z.string(), key: z.string().nullable().default(null), created_at: z.int().optional() });
  const things: EntityDescriptor = {
    name: 'things' as never,
    singular: 'thing',
    adminPath: 'things',
    endpointKey: null,
    uniqueKeys: ['key'],
    compositeKeys: [{ name: 'upstream_target', fields: ['upstream', 'target'], nullable: false, issueField: 'target', duplicateMessage: () => 'duplicate' }],
    foreignKeys: [{ field: 'upstream', entity: 'services', onDelete: 'cascade', nested: true }],
    schema,
    naturalKey: { from: 'entity', key: (r) => String(r.target) },
    normalize: (input, ctx) => normalizeSimple(things, input, ctx),
  };

  test('the derived DDL creates a table whose UNIQUE constraints hold (sqlite and postgres)', async () => {
    const ddl = entityTableDdl(things);
    assert.match(ddl[0], /^CREATE TABLE things \(id TEXT PRIMARY KEY, seq BIGINT NOT NULL, data TEXT NOT NULL, "key" TEXT UNIQUE, "upstream_id" TEXT, "target" TEXT NOT NULL, UNIQUE \("upstream_id", "target"\)\)$/);
    assert.ok(ddl.includes('CREATE INDEX things_upstream_id ON things ("upstream_id")'));
    const insert = 'INSERT INTO things (id, seq, data, "key", "upstream_id", "target") VALUES ($1, 1, $2, $3, $4, $5)';

    const db = new DatabaseSync(':memory:');
    for (const stmt of ddl) db.exec(stmt);
    const run = (...args: (string | null)[]) => db.prepare(insert.replace(/\$(\d)/g, '?$1')).run(...args);
    run('1', '{}', 'k1', 'u1', 't1');
    run('2', '{}', null, 'u1', 't2');
    run('3', '{}', null, 'u2', 't1');
    assert.throws(() => run('4', '{}', null, 'u1', 't1'), /UNIQUE/);
    assert.throws(() => run('5', '{}', 'k1', 'u3', 't3'), /UNIQUE/);
    db.close();

    const schemaName = `t_${randomUUID().replaceAll('-', '')}`;
    const c = new pg.Client(pgBase);
    await c.connect();
    try {
      await c.query(`CREATE SCHEMA "${schemaName}"`);
      await c.query(`SET search_path TO "${schemaName}"`);
      for (const stmt of ddl) await c.query(stmt);
      await c.query(insert, ['1', '{}', 'k1', 'u1', 't1']);
      await c.query(insert, ['2', '{}', null, 'u1', 't2']);
      await assert.rejects(c.query(insert, ['4', '{}', null, 'u1', 't1']), (e: { code?: string }) => e.code === '23505');
      await assert.rejects(c.query(insert, ['5', '{}', 'k1', 'u3', 't3']), (e: { code?: string }) => e.code === '23505');
    } finally {
      await c.query(`DROP SCHEMA IF EXISTS "${schemaName}" CASCADE`);
      await c.end();
    }
  });

  test('normalizeSimple fills id and created_at and resolves the foreign key', () => {
    const upstream = randomUUID();
    const res = normalizeSimple(things, { upstream: { id: upstream }, target: 'a:80' }, { registry: undefined as never, now: 5000 });
    assert.equal(res.ok, true);
    if (!res.ok) return;
    const v = res.value as unknown as Record<string, unknown>;
    assert.deepEqual(v.upstream, { id: upstream });
    assert.equal(v.created_at, 5);
    assert.equal(v.key, null);
    assert.match(String(v.id), /^[0-9a-f-]{36}$/);
    const bad = normalizeSimple(things, { upstream: 'not-a-uuid-and-no-resolver', target: 'a' }, { registry: undefined as never, now: 0 });
    assert.equal(bad.ok, false);
  });
});
