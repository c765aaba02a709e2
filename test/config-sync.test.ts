/**
 * decK-style tools against a real Admin API: dump → edit → sync → dump equals the edited file;
 * diff/dry-run change nothing; a second sync is a no-op; files without ids line up by name.
 * Also `migrations bootstrap|up|status` on SQLite and PostgreSQL (fresh schema, dropped after).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import { createAdminServer, type AdminServer } from '../src/admin/index.ts';
import { configMigrations, openConfigStore } from '../src/storage/index.ts';
import type { ConfigStore } from '../src/storage/ports.ts';
import { createRegistry } from '../src/plugins/registry.ts';
import { definePlugin } from '../src/plugins/sdk.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { runConfigDiff, runConfigDump, runConfigSync, runMigrations } from '../src/cli/config-sync.ts';

const registry = createRegistry([
  definePlugin({ name: 'other', version: '1.0.0', priority: 10, schema: z.strictObject({ n: z.int().default(1), list: z.array(z.string()).default([]) }), create: () => ({}) }),
]);

describe('config dump / diff / sync', () => {
  let dir: string;
  let store: ConfigStore;
  let server: AdminServer;
  let url: string;
  const lines: string[] = [];
  const io = { stdout: (l: string) => lines.push(l), stderr: (l: string) => lines.push(`ERR ${l}`) };
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(url + path, { method, body: body === undefined ? undefined : JSON.stringify(body), headers: body === undefined ? {} : { 'content-type': 'application/json' } });
    const text = await res.text();
    assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-sync-'));
    store = await openConfigStore({ database: 'sqlite', sqlitePath: join(dir, 's.db') });
    server = await createAdminServer({ store, registry, log: silentLogger(), nodeInfo: () => ({ version: '0' }), status: () => ({}) });
    url = `http://127.0.0.1:${(await server.listen('127.0.0.1', 0)).port}`;
    // Entities made through the Admin API get random ids: the tools must cope with them.
    await call('POST', '/services', { name: 's1', url: 'http://s1.test/base' });
    await call('POST', '/services/s1/routes', { name: 'r1', paths: ['/r1'] });
    await call('POST', '/consumers', { username: 'alex' });
    await call('POST', '/consumers/alex/acls', { group: 'admins' });
    await call('POST', '/consumers', { username: 'bob' });
    await call('POST', '/services/s1/plugins', { name: 'other', config: { n: 2 } });
    await call('POST', '/consumers/bob/plugins', { name: 'other' });
  });
  after(async () => {
    await server.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('round trip: dump → edit → sync → dump equals the edited file', async () => {
    const dumpFile = join(dir, 'dump.yaml');
    assert.equal(await runConfigDump(url, dumpFile, io), 0);
    const doc = parse(readFileSync(dumpFile, 'utf8'));
    assert.equal(doc._format_version, '3.0');
    assert.equal(doc.services[0].name, 's1');

    // Edit: change a field, add a route, drop a consumer (and its plugin), change plugin config, add a consumer with an ACL.
    doc.services[0].port = 8080;
    // A new route written the way the dump writes routes (every field), by copying r1.
    const { id: _r1id, ...r1 } = doc.services[0].routes[0];
    void _r1id;
    doc.services[0].routes.push({ ...r1, name: 'r2', paths: ['/r2'], strip_path: false });
    doc.consumers = doc.consumers.filter((c: any) => c.username !== 'bob');
    doc.consumers.push({ username: 'carol', acls: [{ group: 'readers' }] });
    doc.plugins = doc.plugins.filter((p: any) => p.consumer !== 'bob');
    doc.plugins[0].config.n = 5;
    doc.plugins[0].config.list = ['a', 'b'];
    const edited = join(dir, 'edited.yaml');
    writeFileSync(edited, stringify(doc));

    const before = await store.load();
    lines.length = 0;
    assert.equal(await runConfigDiff(url, edited, registry, io), 0);
    assert.ok(lines.includes('creating route r2'), lines.join('\n'));
    assert.ok(lines.some((l) => l.startsWith('updating service s1 (port)')), lines.join('\n'));
    assert.ok(lines.includes('deleting consumer bob'), lines.join('\n'));
    // References are labelled by name, as decK prints them (not by id).
    assert.ok(lines.includes('creating acl readers for consumer carol'), lines.join('\n'));
    assert.ok(lines.some((l) => l.startsWith('deleting plugin ') && l.endsWith(' consumer bob')), lines.join('\n'));
    assert.deepEqual(await store.load(), before, 'diff changes nothing');
    lines.length = 0;
    assert.equal(await runConfigSync(url, edited, { dryRun: true }, registry, io), 0);
    assert.deepEqual(await store.load(), before, '--dry-run changes nothing');

    lines.length = 0;
    assert.equal(await runConfigSync(url, edited, {}, registry, io), 0, lines.join('\n'));
    assert.ok(lines.some((l) => l.includes('Created: 3')), lines.join('\n')); // route r2, consumer carol, acl readers
    assert.ok(lines.some((l) => l.includes('Deleted: 2')), lines.join('\n')); // consumer bob, bob's plugin

    const again = join(dir, 'again.yaml');
    assert.equal(await runConfigDump(url, again, io), 0);
    assert.deepEqual(parse(readFileSync(again, 'utf8')), doc);

    lines.length = 0;
    assert.equal(await runConfigSync(url, edited, {}, registry, io), 0);
    assert.ok(lines.some((l) => /Created: 0\s*\n\s*Updated: 0\s*\n\s*Deleted: 0/.test(l)), `a second sync is a no-op:\n${lines.join('\n')}`);
  });

  test('a hand-written file without ids matches entities by name', async () => {
    const s1 = await call('GET', '/services/s1');
    const file = join(dir, 'hand.yaml');
    writeFileSync(file, '_format_version: "3.0"\nservices:\n  - name: s1\n    url: http://s1.test/other\n');
    lines.length = 0;
    assert.equal(await runConfigSync(url, file, {}, registry, io), 0, lines.join('\n'));
    const after = await call('GET', '/services/s1');
    assert.equal(after.id, s1.id, 'updated in place, not re-created');
    assert.equal(after.path, '/other');
    assert.equal((await call('GET', '/routes')).data.length, 0);
    assert.equal((await call('GET', '/consumers')).data.length, 0);
  });

  test('errors: invalid file → 1 with every problem; unreachable Admin API → 1', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, '_format_version: "3.0"\nservices:\n  - name: x\n    port: nope\n');
    lines.length = 0;
    assert.equal(await runConfigSync(url, file, {}, registry, io), 1);
    assert.ok(lines.some((l) => l.startsWith('ERR services[0]')), lines.join('\n'));
    lines.length = 0;
    writeFileSync(file, '_format_version: "3.0"\n');
    assert.equal(await runConfigSync('http://127.0.0.1:1', file, {}, registry, { ...io, timeoutMs: 2000 }), 1);
    assert.equal(await runConfigDump('http://127.0.0.1:1', undefined, { ...io, timeoutMs: 2000 }), 1);
  });
});

describe('config dump / sync against a DB-less node', () => {
  test('sync replaces the whole configuration through POST /config; dump reads Kong\'s {"config": yaml}', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-sync-off-'));
    const store = await openConfigStore({ database: 'off' });
    const server = await createAdminServer({ store, registry, log: silentLogger(), nodeInfo: () => ({ version: '0' }), status: () => ({}) });
    const url = `http://127.0.0.1:${(await server.listen('127.0.0.1', 0)).port}`;
    const lines: string[] = [];
    const io = { stdout: (l: string) => lines.push(l), stderr: (l: string) => lines.push(`ERR ${l}`) };
    try {
      const file = join(dir, 'kong.yaml');
      writeFileSync(file, '_format_version: "3.0"\nservices:\n  - name: s\n    url: http://s.test\n    routes:\n      - name: r\n        paths: [/r]\n');
      assert.equal(await runConfigSync(url, file, {}, registry, io), 0, lines.join('\n'));
      assert.ok(lines.includes('creating service s'), lines.join('\n'));
      assert.ok(lines.includes('creating route r'), lines.join('\n'));
      assert.deepEqual((await store.load()).routes.map((r) => r.paths), [['/r']]);
      lines.length = 0;
      assert.equal(await runConfigDiff(url, file, registry, io), 0);
      assert.ok(lines.some((l) => l.includes('Created: 0')) && lines.some((l) => l.includes('Updated: 0')), lines.join('\n'));
      const out = join(dir, 'dump.yaml');
      assert.equal(await runConfigDump(url, out, io), 0);
      const dumped = parse(readFileSync(out, 'utf8'));
      assert.equal(dumped.services[0].name, 's');
      assert.deepEqual(dumped.services[0].routes[0].paths, ['/r']);
    } finally {
      await server.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('migrations', () => {
  // Every migration, in order: the two hand-written ones, then one per entity added later
  // (entity_upstreams, entity_targets, ...).
  const all = configMigrations.map((m) => m.name).join(', ');
  /** `status` lists executed migrations by name. */
  const executed = configMigrations.map((m) => m.name).sort().join(', ');
  test('the migrations include the derived tables of upstreams and targets', () => {
    assert.ok(all.startsWith('000_base, 001_seq_indexes'));
    assert.match(all, /entity_upstreams, entity_targets/);
  });
  test('sqlite: bootstrap then status', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-mig-'));
    const lines: string[] = [];
    const io = { stdout: (l: string) => lines.push(l), stderr: (l: string) => lines.push(l) };
    try {
      const settings = { database: 'sqlite' as const, sqlitePath: join(dir, 'm.db') };
      assert.equal(await runMigrations('status', settings, io), 0);
      assert.ok(lines.includes(`pending: ${all}`), lines.join('\n'));
      assert.equal(await runMigrations('bootstrap', settings, io), 0);
      assert.equal(await runMigrations('up', settings, io), 0);
      assert.ok(lines.includes('database is up to date'));
      lines.length = 0;
      assert.equal(await runMigrations('status', settings, io), 0);
      assert.deepEqual(lines, [`executed: ${executed}`, 'pending: (none)']);
      assert.equal(await runMigrations('nope', settings, io), 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('postgres: bootstrap creates the schema; status lists migrations; the store opens on it', async () => {
    const base = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };
    const schema = `mig_${randomUUID().replaceAll('-', '')}`;
    const settings = { database: 'postgres' as const, pg: { ...base, schema } };
    const lines: string[] = [];
    const io = { stdout: (l: string) => lines.push(l), stderr: (l: string) => lines.push(l) };
    try {
      assert.equal(await runMigrations('status', settings, io), 0);
      assert.ok(lines.includes('executed: (none)'), lines.join('\n'));
      assert.equal(await runMigrations('bootstrap', settings, io), 0);
      assert.ok(lines.includes(`applied: ${all}`), lines.join('\n'));
      lines.length = 0;
      assert.equal(await runMigrations('status', settings, io), 0);
      assert.deepEqual(lines, [`executed: ${executed}`, 'pending: (none)']);
      const store = await openConfigStore(settings);
      assert.deepEqual((await store.load()).services, []);
      await store.close();
    } finally {
      const c = new pg.Client(base);
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.end();
    }
  });
});

test('sync checks the file as the node it goes to would: a plugin that needs a database is accepted for a node with one', async () => {
  const needsDb = definePlugin({
    name: 'needs-db', version: '1.0.0', priority: 10, schema: z.strictObject({}), create: () => ({}),
    check: (_c, node) => ((node.database ?? 'off') === 'off' ? [{ path: '', message: 'needs a database' }] : []),
  });
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-sync-db-'));
  const store = await openConfigStore({ database: 'sqlite', sqlitePath: join(dir, 's.db') });
  // The node has a database; the CLI's own registry knows nothing of the node (as `portcullis config sync`).
  const server = await createAdminServer({ store, registry: createRegistry([needsDb], { workers: 1, database: 'sqlite' }), log: silentLogger(), nodeInfo: () => ({ version: '0' }), status: () => ({}) });
  const url = `http://127.0.0.1:${(await server.listen('127.0.0.1', 0)).port}`;
  const lines: string[] = [];
  const io = { stdout: (l: string) => lines.push(l), stderr: (l: string) => lines.push(`ERR ${l}`) };
  try {
    const file = join(dir, 'kong.yaml');
    writeFileSync(file, '_format_version: "3.0"\nplugins:\n  - name: needs-db\n');
    assert.equal(await runConfigSync(url, file, {}, createRegistry([needsDb]), io), 0, lines.join('\n'));
    assert.deepEqual((await store.load()).plugins.map((p) => p.name), ['needs-db']);
  } finally {
    await server.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
