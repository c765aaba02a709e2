/**
 * One conformance suite for every ConfigStore adapter (off, sqlite, postgres) and one for every
 * KeyValueStore adapter (memory, sqlite, postgres, redis). PostgreSQL tests use a fresh schema
 * per run and drop it afterwards; Redis tests use a random key prefix.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import type { ConfigData, Route, Service } from '../src/config/types.ts';
import { emptyConfig } from '../src/config/types.ts';
import type { ConfigStore, KeyValueStore } from '../src/storage/ports.ts';
import { openConfigStore, openKvStore, openMemoryConfigStore } from '../src/storage/index.ts';
import { isGatewayError } from '../src/errors.ts';

const pgBase = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };

function service(name: string, extra: Partial<Service> = {}): Service {
  return {
    id: randomUUID(), name, protocol: 'http', host: `${name}.test`, port: 80, path: null, retries: 5,
    connect_timeout: 60000, write_timeout: 60000, read_timeout: 60000, tls_verify: null, tls_verify_depth: null,
    ca_certificates: null, client_certificate: null, enabled: true, tags: null, created_at: 1, updated_at: 1, ...extra,
  };
}

function route(name: string, serviceId: string | null): Route {
  return {
    id: randomUUID(), name, protocols: ['http', 'https'], methods: null, hosts: null, paths: [`/${name}`], headers: null,
    snis: null, sources: null, destinations: null, strip_path: true, preserve_host: false, regex_priority: 0,
    path_handling: 'v0', https_redirect_status_code: 426, request_buffering: true, response_buffering: true,
    service: serviceId ? { id: serviceId } : null, tags: null, created_at: 1, updated_at: 1,
  };
}

function sample(): ConfigData {
  const data = emptyConfig();
  const s = service('svc-a', { tags: ['t1', 't2'] });
  data.services.push(s, service('svc-b', { tags: ['t2'] }));
  data.routes.push(route('r1', s.id));
  return data;
}

async function rejects409(p: Promise<unknown>): Promise<void> {
  await assert.rejects(p, (err: unknown) => isGatewayError(err) && err.status === 409);
}

interface Harness {
  name: string;
  /** False when two instances do not share data (the in-process memory store). */
  shared?: boolean;
  appName?: string;
  open(): Promise<ConfigStore>;
  cleanup(): Promise<void>;
}

function sqliteHarness(): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-store-'));
  return {
    name: 'sqlite',
    open: () => openConfigStore({ database: 'sqlite', sqlitePath: join(dir, 'p.db'), pollIntervalMs: 100 }),
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function pgHarness(): Harness {
  const schema = `t_${randomUUID().replaceAll('-', '')}`;
  return {
    name: 'postgres',
    appName: `pc_${schema}`,
    open: () => openConfigStore({ database: 'postgres', pg: { ...pgBase, schema, applicationName: `pc_${schema}` }, pollIntervalMs: 300 }),
    async cleanup() {
      const c = new pg.Client(pgBase);
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.end();
    },
  };
}

/** The writable-store suite (sqlite, postgres). */
function writableSuite(make: () => Harness): void {
  const h = make();
  describe(`ConfigStore conformance: ${h.name}`, () => {
    let store: ConfigStore;
    before(async () => {
      store = await h.open();
    });
    after(async () => {
      await store.close();
      await h.cleanup();
    });

    test('insert, get, update, delete, version moves', async () => {
      const v0 = await store.version();
      const s = service('crud');
      await store.insert('services', s);
      assert.deepEqual(await store.get('services', s.id), s);
      const v1 = await store.version();
      assert.notEqual(v1, v0);
      await store.update('services', { ...s, port: 8080 });
      assert.equal((await store.get('services', s.id))?.port, 8080);
      await store.delete('services', s.id);
      assert.equal(await store.get('services', s.id), null);
      assert.notEqual(await store.version(), v1);
    });

    test('unique keys are enforced (409)', async () => {
      await store.insert('services', service('uniq'));
      await rejects409(store.insert('services', service('uniq')));
      const c = { id: randomUUID(), username: 'alex', custom_id: null, tags: null, created_at: 1, updated_at: 1 };
      await store.insert('consumers', c);
      await rejects409(store.insert('consumers', { ...c, id: randomUUID() }));
      const acl = { id: randomUUID(), consumer: { id: c.id }, group: 'g', tags: null, created_at: 1 };
      await store.insert('acls', acl);
      await rejects409(store.insert('acls', { ...acl, id: randomUUID() }));
      const plugin = {
        id: randomUUID(), name: 'p', instance_name: null, config: {}, protocols: ['http' as const], enabled: true,
        route: null, service: null, consumer: { id: c.id }, ordering: null, tags: null, created_at: 1, updated_at: 1,
      };
      await store.insert('plugins', plugin);
      await rejects409(store.insert('plugins', { ...plugin, id: randomUUID() }));
    });

    test('a failed transaction leaves nothing behind', async () => {
      const before = await store.load();
      const v = await store.version();
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.insert('services', service('tx-half'));
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.deepEqual(await store.load(), before);
      assert.equal(await store.version(), v);
      await rejects409(
        store.transaction(async (tx) => {
          await tx.insert('services', service('tx-dup'));
          await tx.insert('services', service('tx-dup'));
        }),
      );
      assert.equal((await store.list('services', { size: 1000 })).data.some((s) => s.name === 'tx-dup'), false);
    });

    test('replaceAll, load order, paging and tags', async () => {
      const data = sample();
      for (let i = 0; i < 5; i++) data.services.push(service(`page-${i}`, { tags: ['paged'] }));
      await store.replaceAll(data);
      assert.deepEqual(await store.load(), data);
      assert.equal((await store.findBy('services', 'name', 'svc-a'))?.id, data.services[0].id);
      assert.equal(await store.findBy('services', 'name', 'nope'), null);
      assert.deepEqual((await store.list('routes', { foreign: { field: 'service', id: data.services[0].id } })).data, data.routes);
      assert.deepEqual((await store.list('routes', { foreign: { field: 'service', id: data.services[1].id } })).data, []);
      const p1 = await store.list('services', { size: 3 });
      assert.equal(p1.data.length, 3);
      assert.ok(p1.offset);
      const p2 = await store.list('services', { size: 3, offset: p1.offset });
      const p3 = await store.list('services', { size: 3, offset: p2.offset });
      assert.equal(p3.offset, null);
      assert.deepEqual([...p1.data, ...p2.data, ...p3.data].map((s) => s.name), data.services.map((s) => s.name));
      assert.deepEqual((await store.list('services', { tags: ['t1', 't2'] })).data.map((s) => s.name), ['svc-a']);
      assert.deepEqual((await store.list('services', { tags: ['t1', 'paged'], tagsMode: 'or' })).data.length, 6);
      const tagged = await store.list('services', { tags: ['paged'], size: 2 });
      assert.equal(tagged.data.length, 2);
      assert.ok(tagged.offset);
      await store.replaceAll(emptyConfig());
      assert.deepEqual(await store.load(), emptyConfig());
    });

    test('onChange fires for own writes and for writes by another instance', async (t) => {
      if (h.shared === false) {
        let own = 0;
        const off = store.onChange(() => own++);
        await store.insert('services', service('notify-me'));
        off();
        assert.ok(own >= 1);
        t.diagnostic('instances of this store do not share data; only own writes are checked');
        return;
      }
      const other = await h.open();
      try {
        let own = 0;
        let remote = 0;
        const offOwn = store.onChange(() => own++);
        const offRemote = other.onChange(() => remote++);
        const started = Date.now();
        await store.insert('services', service('notify-me'));
        assert.ok(own >= 1, 'own listener fired synchronously after commit');
        while (remote === 0 && Date.now() - started < 1000) await new Promise((r) => setTimeout(r, 20));
        assert.ok(remote >= 1, 'other instance saw the change within 1 s');
        assert.ok((await other.list('services', { size: 1000 })).data.some((s) => s.name === 'notify-me'));
        offOwn();
        offRemote();
      } finally {
        await other.close();
      }
    });
  });
}

writableSuite(() => ({ name: 'memory (writable)', shared: false, open: async () => openMemoryConfigStore({ readOnly: false }), cleanup: async () => {} }));
writableSuite(sqliteHarness);
writableSuite(pgHarness);

describe('ConfigStore conformance: off (declarative)', () => {
  test('serves the declarative data, refuses single writes with 405, allows replaceAll', async () => {
    const data = sample();
    const store = await openConfigStore({ database: 'off', declarative: data });
    assert.equal(store.readOnly, true);
    assert.deepEqual(await store.load(), data);
    assert.deepEqual(await store.get('routes', data.routes[0].id), data.routes[0]);
    assert.deepEqual((await store.list('services', { tags: ['t2'] })).data.length, 2);
    assert.equal((await store.findBy('services', 'name', 'svc-b'))?.id, data.services[1].id);
    assert.deepEqual((await store.list('routes', { foreign: { field: 'service', id: data.services[0].id } })).data, data.routes);
    await assert.rejects(store.insert('services', service('nope')), (e: unknown) => isGatewayError(e) && e.status === 405);
    let changes = 0;
    store.onChange(() => changes++);
    const v = await store.version();
    const next = sample();
    await store.replaceAll(next);
    assert.equal(changes, 1);
    assert.notEqual(await store.version(), v);
    assert.deepEqual(await store.load(), next);
    const dup = sample();
    dup.services[1].name = 'svc-a';
    await rejects409(store.replaceAll(dup));
    assert.deepEqual(await store.load(), next, 'a failed replaceAll changes nothing');
    await store.close();
  });

  test('the writable memory variant rolls back failed transactions', async () => {
    const store = openMemoryConfigStore({ readOnly: false });
    await assert.rejects(store.transaction(async (tx) => {
      await tx.insert('services', service('x'));
      throw new Error('boom');
    }));
    assert.deepEqual(await store.load(), emptyConfig());
  });
});

describe('PostgreSQL: connection loss and recovery', () => {
  test('terminated connections are replaced; reads, writes and notifications recover', async () => {
    const h = pgHarness();
    const a = await h.open();
    const b = await h.open();
    const admin = new pg.Client(pgBase);
    await admin.connect();
    try {
      await a.insert('services', service('before-drop'));
      // Kill every backend of this test's schema (both stores, pools and LISTEN connections).
      const killed = await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [h.appName]);
      assert.ok(killed.rowCount! > 0);
      await new Promise((r) => setTimeout(r, 100));
      // Reads right after the drop succeed (stale pooled connections are retried once).
      assert.ok((await b.load()).services.some((s) => s.name === 'before-drop'));
      let seen = 0;
      b.onChange(() => seen++);
      const started = Date.now();
      await a.insert('services', service('after-drop'));
      while (seen === 0 && Date.now() - started < 3000) await new Promise((r) => setTimeout(r, 20));
      assert.ok(seen > 0, 'b saw a write made after the reconnect');
      assert.ok((await b.load()).services.some((s) => s.name === 'after-drop'));
    } finally {
      await admin.end();
      await a.close();
      await b.close();
      await h.cleanup();
    }
  });
});

/** Stores that answer `get` without waiting must offer `peek` (the session fast path relies on it). */
const synchronousKv = new Set(['memory', 'sqlite']);

function kvSuite(name: string, open: () => Promise<KeyValueStore>, cleanup: () => Promise<void> = async () => {}): void {
  describe(`KeyValueStore conformance: ${name}`, () => {
    let kv: KeyValueStore;
    before(async () => {
      kv = await open();
    });
    after(async () => {
      await kv.close();
      await cleanup();
    });
    test('get/set/delete', async () => {
      assert.equal(await kv.get('a'), null);
      await kv.set('a', '1');
      assert.equal(await kv.get('a'), '1');
      await kv.set('a', '2');
      assert.equal(await kv.get('a'), '2');
      await kv.delete('a');
      assert.equal(await kv.get('a'), null);
    });
    test('ttl expiry', async () => {
      await kv.set('t', 'x', 300);
      assert.equal(await kv.get('t'), 'x');
      await new Promise((r) => setTimeout(r, 450));
      assert.equal(await kv.get('t'), null);
      assert.equal(await kv.take('t'), null);
      assert.equal(await kv.add('t', 'y', 1000), true, 'an expired key can be added again');
      assert.equal(await kv.get('t'), 'y');
    });
    test('peek, where offered, answers like get', async () => {
      if (synchronousKv.has(name)) assert.equal(typeof kv.peek, 'function', `${name} offers peek`);
      if (kv.peek === undefined) return;
      assert.equal(kv.peek('p'), null);
      await kv.set('p', '1');
      assert.equal(kv.peek('p'), '1');
      await kv.set('pt', 'x', 200);
      assert.equal(kv.peek('pt'), 'x');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(kv.peek('pt'), null);
      await kv.delete('p');
      assert.equal(kv.peek('p'), null);
    });
    test('incr: atomic counter with a TTL set on creation; concurrent increments give the exact sum', async () => {
      assert.equal(typeof kv.incr, 'function', `${name} offers incr`);
      const incr = kv.incr!.bind(kv);
      assert.equal(await incr('n', 1, 60_000), 1, 'an absent key is created holding `by`');
      assert.equal(await incr('n', 2, 60_000), 3);
      assert.equal(await incr('n', -1, 60_000), 2);
      assert.equal(await kv.get('n'), '2', 'the value reads as the integer text');
      // the expiry is set when the key is created and kept by later increments
      assert.equal(await incr('short', 5, 300), 5);
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(await incr('short', 1, 60_000), 6, 'a live key keeps its value');
      await new Promise((r) => setTimeout(r, 250));
      assert.equal(await kv.get('short'), null, 'and its first expiry: a later ttl does not extend it');
      assert.equal(await incr('short', 1, 60_000), 1, 'an expired key starts again from `by`');
      await kv.set('text', 'abc');
      await assert.rejects(incr('text', 1, 1000));
      // 4 rounds of 25 concurrent increments, then 10 of `by` 3: no increment is lost
      const results: number[] = [];
      for (let round = 0; round < 4; round++) results.push(...(await Promise.all(Array.from({ length: 25 }, () => incr('burst', 1, 60_000)))));
      results.push(...(await Promise.all(Array.from({ length: 10 }, () => incr('burst', 3, 60_000)))));
      assert.equal(await kv.get('burst'), '130');
      assert.equal(new Set(results).size, results.length, 'every caller saw a distinct new value');
      assert.equal(Math.max(...results), 130);
    });
    test('add only when absent', async () => {
      assert.equal(await kv.add('lock', 'me', 5000), true);
      assert.equal(await kv.add('lock', 'you', 5000), false);
      assert.equal(await kv.get('lock'), 'me');
    });
    test('take is atomic: one winner among concurrent takers', async () => {
      await kv.set('once', 'v');
      const results = await Promise.all(Array.from({ length: 8 }, () => kv.take('once')));
      assert.deepEqual(results.filter((r) => r !== null), ['v']);
      assert.equal(await kv.get('once'), null);
    });
    test('scan, where offered: live entries of a prefix, in key order, paged; wildcard characters are literal', async () => {
      if (name !== 'redis') assert.equal(typeof kv.scan, 'function', `${name} offers scan`);
      if (kv.scan === undefined) return;
      await kv.set('sc:b', '2');
      await kv.set('sc:a', '1');
      await kv.set('sc:c', '3');
      await kv.set('sc:gone', 'x', 100);
      await kv.set('sd:other', 'no');
      await kv.set('s_:wild', 'no');
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(await kv.scan('sc:', null, 10), [{ key: 'sc:a', value: '1' }, { key: 'sc:b', value: '2' }, { key: 'sc:c', value: '3' }]);
      assert.deepEqual((await kv.scan('sc:', null, 2)).map((e) => e.key), ['sc:a', 'sc:b']);
      assert.deepEqual((await kv.scan('sc:', 'sc:b', 10)).map((e) => e.key), ['sc:c']);
      assert.deepEqual((await kv.scan('s_:', null, 10)).map((e) => e.key), ['s_:wild']);
    });
  });
}

kvSuite('memory', () => openKvStore({ kind: 'memory' }));
{
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-kv-'));
  kvSuite('sqlite', () => openKvStore({ kind: 'sqlite', path: join(dir, 'kv.db') }), async () => rmSync(dir, { recursive: true, force: true }));
}
{
  const schema = `kv_${randomUUID().replaceAll('-', '')}`;
  kvSuite('postgres', () => openKvStore({ kind: 'postgres', pg: { ...pgBase, schema } }), async () => {
    const c = new pg.Client(pgBase);
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  });
}
kvSuite('redis', () => openKvStore({ kind: 'redis', url: 'redis://127.0.0.1:6379', prefix: `pc-test:${randomUUID()}:` }));

test('memory kv is bounded', async () => {
  const kv = await openKvStore({ kind: 'memory', maxEntries: 3 });
  for (const k of ['a', 'b', 'c', 'd']) await kv.set(k, k);
  assert.equal(await kv.get('a'), null);
  assert.equal(await kv.get('d'), 'd');
  await kv.close();
});

test('sqlite: a write by another process is seen within 1 s (workers sharing one file)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-mp-'));
  const file = join(dir, 'shared.db');
  const store = await openConfigStore({ database: 'sqlite', sqlitePath: file });
  try {
    let seen = 0;
    store.onChange(() => seen++);
    const storeModule = new URL('../src/storage/index.ts', import.meta.url).href;
    const script = `
      const { openConfigStore } = await import(${JSON.stringify(storeModule)});
      const s = await openConfigStore({ database: 'sqlite', sqlitePath: ${JSON.stringify(file)} });
      await s.insert('services', ${JSON.stringify(service('from-child'))});
      await s.close();
    `;
    await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
    const started = Date.now();
    while (seen === 0 && Date.now() - started < 1000) await new Promise((r) => setTimeout(r, 20));
    assert.ok(seen > 0, 'the change made by the other process was noticed');
    assert.ok((await store.load()).services.some((s) => s.name === 'from-child'));
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
