import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readStoreSettings } from './index.ts';
import { pgClientConfig } from './postgres.ts';

test('readStoreSettings: defaults (sqlite, portcullis.db; off with a declarative file)', () => {
  assert.equal(readStoreSettings({}).database, 'sqlite');
  assert.equal(readStoreSettings({}).sqlitePath, 'portcullis.db');
  assert.equal(readStoreSettings({ PORTCULLIS_DECLARATIVE_CONFIG: 'k.yaml' }).database, 'off');
  assert.equal(readStoreSettings({ PORTCULLIS_DATABASE: 'POSTGRES' }).database, 'postgres');
});

test('readStoreSettings: PostgreSQL variables', () => {
  const s = readStoreSettings({
    PORTCULLIS_DATABASE: 'postgres', PORTCULLIS_PG_HOST: 'db', PORTCULLIS_PG_PORT: '6543', PORTCULLIS_PG_USER: 'u',
    PORTCULLIS_PG_PASSWORD: 'p', PORTCULLIS_PG_DATABASE: 'd', PORTCULLIS_PG_SCHEMA: 'gw', PORTCULLIS_SQLITE_PATH: '/x.db',
  });
  assert.deepEqual(s.pg, { url: undefined, host: 'db', port: 6543, user: 'u', password: 'p', database: 'd', schema: 'gw' });
  assert.equal(s.sqlitePath, '/x.db');
  assert.equal(readStoreSettings({ PORTCULLIS_PG_URL: 'postgres://a@b/c' }).pg?.url, 'postgres://a@b/c');
});

test('readStoreSettings: rejects bad values', () => {
  assert.throws(() => readStoreSettings({ PORTCULLIS_DATABASE: 'mysql' }), /PORTCULLIS_DATABASE/);
  assert.throws(() => readStoreSettings({ PORTCULLIS_PG_PORT: 'x' }), /PORTCULLIS_PG_PORT/);
});

test('pgClientConfig: search_path pinned to the schema, timeouts set, schema names checked', () => {
  const c = pgClientConfig({ schema: 'gw' });
  assert.equal(c.options, '-c search_path=gw');
  assert.equal(c.application_name, 'portcullis_gw');
  assert.equal(c.host, '127.0.0.1');
  assert.ok((c.connectionTimeoutMillis ?? 0) > 0 && (c.query_timeout ?? 0) > 0);
  assert.equal(pgClientConfig({ url: 'postgres://x@h/d' }).connectionString, 'postgres://x@h/d');
  assert.throws(() => pgClientConfig({ schema: 'a;drop' }), /invalid PostgreSQL schema/);
});
