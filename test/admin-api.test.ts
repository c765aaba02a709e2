/**
 * Admin API over real sockets: every endpoint kind, Kong's statuses and error shapes, the form
 * notation (the seed's `curl --data config.scopes=...` verbatim), multipart, token auth and
 * DB-less mode. Stores are SQLite files in a temp dir (and the `off` store for DB-less).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { Agent, fetch as undiciFetch } from 'undici';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { createAdminServer, type AdminServer } from '../src/admin/index.ts';
import { openConfigStore } from '../src/storage/index.ts';
import type { ConfigStore } from '../src/storage/ports.ts';
import { createRegistry } from '../src/plugins/registry.ts';
import { definePlugin } from '../src/plugins/sdk.ts';
import { silentLogger } from '../src/observability/logger.ts';

/** Stand-in for openid-connect with the field kinds the form notation must handle. */
const standInOidc = definePlugin({
  name: 'openid-connect',
  version: '0.0.0-test',
  priority: 1050,
  schema: z.strictObject({
    issuer: z.string().url(),
    client_id: z.array(z.string()).nullable().default(null),
    client_secret: z.array(z.string()).nullable().default(null),
    redirect_uri: z.array(z.string()).nullable().default(null),
    scopes: z.array(z.string()).default(['openid']),
    verify_signature: z.boolean().default(true),
    leeway: z.number().default(0),
    login_tokens: z.array(z.string()).nullable().default(['id_token']),
    redis: z.strictObject({ host: z.string().nullable().default(null), port: z.int().default(6379) }).default({ host: null, port: 6379 }),
  }),
  create: () => ({}),
  adminRoutes: [
    {
      method: 'GET',
      path: '/openid-connect/jwks',
      handler: async () => ({ status: 200, body: { keys: [] } }),
    },
  ],
});
const other = definePlugin({ name: 'other', version: '1.0.0', priority: 10, schema: z.strictObject({ n: z.int().default(1) }), create: () => ({}) });
const registry = createRegistry([standInOidc, other]);

interface Api {
  url: string;
  server: AdminServer;
  store: ConfigStore;
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

const pgBase = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };

async function startApi(opts: { database?: 'sqlite' | 'off' | 'postgres'; token?: string } = {}): Promise<Api> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-admin-'));
  const schema = `adm_${randomUUID().replaceAll('-', '')}`;
  const store = await openConfigStore({ database: opts.database ?? 'sqlite', sqlitePath: join(dir, 'a.db'), pg: { ...pgBase, schema } });
  const server = await createAdminServer({
    store, registry, log: silentLogger(), token: opts.token,
    nodeInfo: () => ({ version: '9.9.9', hostname: 'h', node_id: 'n1' }),
    status: () => ({ server: { connections_active: 0 } }),
  });
  const { port } = await server.listen('127.0.0.1', 0);
  const url = `http://127.0.0.1:${port}`;
  return {
    url, server, store,
    async call(method, path, body, headers = {}) {
      const h: Record<string, string> = { ...headers };
      let payload: string | undefined;
      if (typeof body === 'string') {
        payload = body;
        h['content-type'] ??= 'application/x-www-form-urlencoded';
      } else if (body !== undefined) {
        payload = JSON.stringify(body);
        h['content-type'] ??= 'application/json';
      }
      const res = await fetch(url + path, { method, body: payload, headers: h });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
    },
    async close() {
      await server.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
      if (opts.database === 'postgres') {
        const c = new pg.Client(pgBase);
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await c.end();
      }
    },
  };
}

function adminSuite(database: 'sqlite' | 'postgres'): void {
describe(`Admin API (${database})`, () => {
  let api: Api;
  before(async () => {
    api = await startApi({ database });
  });
  after(() => api.close());

  test('GET /, /status, /plugins/enabled', async () => {
    const root = await api.call('GET', '/');
    assert.equal(root.status, 200);
    assert.equal(root.body.version, '9.9.9');
    assert.deepEqual(Object.keys(root.body.plugins.available_on_server).sort(), ['openid-connect', 'other']);
    assert.deepEqual(root.body.plugins.enabled_in_cluster, []);
    const status = await api.call('GET', '/status');
    assert.equal(status.status, 200);
    assert.deepEqual(status.body.database, { reachable: true });
    assert.deepEqual((await api.call('GET', '/plugins/enabled')).body, { enabled_plugins: ['openid-connect', 'other'] });
  });

  test('GET /endpoints: every route template once, {param} as Kong writes them, sorted segment by segment', async () => {
    const r = await api.call('GET', '/endpoints');
    assert.equal(r.status, 200);
    const data = r.body.data as string[];
    for (const p of ['/', '/endpoints', '/services', '/services/{id}', '/plugins/enabled', '/schemas/plugins/validate', '/consumers', '/upstreams']) {
      assert.ok(data.some((d) => d === p || d.replace(/\{[^}]+\}/g, '{id}') === p), `${p} listed`);
    }
    assert.equal(new Set(data).size, data.length, 'no duplicates');
    assert.ok(data.every((d) => d.startsWith('/') && !d.includes(':')), 'parameters written as {name}');
    const key = (p: string) => p.replaceAll('/', '\u0000');
    assert.deepEqual(data, [...data].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0)));
    // Segment order: /services/... comes before /services-other, as in Kong.
    const i = data.indexOf('/services'), j = data.findIndex((d) => d.startsWith('/services/'));
    assert.ok(i >= 0 && j > i);
  });

  test('services: POST 201, GET by id and name, PATCH, PUT upsert, DELETE 204', async () => {
    const created = await api.call('POST', '/services', { name: 'example-service', url: 'http://httpbin.test/anything' });
    assert.equal(created.status, 201);
    assert.equal(created.body.host, 'httpbin.test');
    assert.equal(created.body.path, '/anything');
    assert.equal((await api.call('GET', `/services/${created.body.id}`)).body.name, 'example-service');
    assert.equal((await api.call('GET', '/services/example-service')).body.id, created.body.id);
    const patched = await api.call('PATCH', '/services/example-service', { retries: 2 });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.retries, 2);
    assert.equal(patched.body.host, 'httpbin.test');
    const put = await api.call('PUT', '/services/put-service', { host: 'put.test' });
    assert.equal(put.status, 200);
    assert.equal(put.body.name, 'put-service');
    const put2 = await api.call('PUT', '/services/put-service', { host: 'put2.test' });
    assert.equal(put2.body.id, put.body.id);
    assert.equal(put2.body.host, 'put2.test');
    assert.equal(put2.body.retries, 5, 'PUT replaces: unspecified fields get defaults');
    const putById = await api.call('PUT', '/services/6b4c0d7e-1111-4a6b-9c1d-2e3f4a5b6c7d', { name: 'by-id', host: 'id.test' });
    assert.equal(putById.body.id, '6b4c0d7e-1111-4a6b-9c1d-2e3f4a5b6c7d');
    assert.equal((await api.call('DELETE', '/services/put-service')).status, 204);
    assert.equal((await api.call('DELETE', '/services/by-id')).status, 204);
    assert.equal((await api.call('DELETE', '/services/never-existed')).status, 204, 'top-level DELETE of nothing is 204');
    const missing = await api.call('GET', '/services/put-service');
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.body, { message: 'Not found' });
  });

  test('pagination with size/offset/next and tags filter', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await api.call('POST', '/consumers', { username: `page-${i}`, tags: i % 2 ? ['odd', 'all'] : ['even', 'all'] });
      assert.equal(r.status, 201);
    }
    const p1 = await api.call('GET', '/consumers?size=2&tags=all');
    assert.equal(p1.body.data.length, 2);
    assert.ok(p1.body.offset);
    assert.match(p1.body.next, /^\/consumers\?/);
    const p2 = await api.call('GET', p1.body.next);
    const p3 = await api.call('GET', p2.body.next);
    assert.equal(p3.body.next, null);
    assert.deepEqual([...p1.body.data, ...p2.body.data, ...p3.body.data].map((c: any) => c.username), ['page-0', 'page-1', 'page-2', 'page-3', 'page-4']);
    assert.deepEqual((await api.call('GET', '/consumers?tags=odd,all')).body.data.map((c: any) => c.username), ['page-1', 'page-3']);
    assert.equal((await api.call('GET', '/consumers?tags=odd/even')).body.data.length, 5);
    // A repeated `tags` parameter filters by the first one (Kong's endpoints), on every page.
    const rep = await api.call('GET', '/consumers?tags=odd&tags=even&size=1');
    assert.deepEqual(rep.body.data.map((c: any) => c.username), ['page-1']);
    assert.deepEqual((await api.call('GET', rep.body.next)).body.data.map((c: any) => c.username), ['page-3']);
    const bad = await api.call('GET', '/consumers?size=0');
    assert.equal(bad.status, 400);
    const badOffset = await api.call('GET', '/consumers?offset=garbage');
    assert.equal(badOffset.status, 400);
    assert.equal(badOffset.body.code, 7);
    assert.equal(badOffset.body.name, 'invalid offset');
  });

  test('nested collections and cascades', async () => {
    const svc = (await api.call('POST', '/services', { name: 'nest-svc', host: 'nest.test' })).body;
    const route = await api.call('POST', '/services/nest-svc/routes', { name: 'nest-route', paths: ['/nest'] });
    assert.equal(route.status, 201);
    assert.deepEqual(route.body.service, { id: svc.id });
    assert.deepEqual((await api.call('GET', `/services/${svc.id}/routes`)).body.data.map((r: any) => r.name), ['nest-route']);
    assert.equal((await api.call('GET', '/services/nest-svc/routes/nest-route')).status, 200);
    assert.equal((await api.call('GET', '/routes/nest-route/service')).body.id, svc.id);
    const sp = await api.call('POST', '/services/nest-svc/plugins', { name: 'other' });
    assert.equal(sp.status, 201);
    assert.deepEqual(sp.body.service, { id: svc.id });
    const rp = await api.call('POST', '/routes/nest-route/plugins', { name: 'other' });
    assert.deepEqual(rp.body.route, { id: route.body.id });
    assert.equal((await api.call('GET', '/services/nest-svc/plugins')).body.data.length, 1);
    assert.equal((await api.call('GET', '/routes/nest-route/plugins')).body.data.length, 1);
    assert.equal((await api.call('GET', `/services/nest-svc/plugins/${rp.body.id}`)).status, 404, 'a plugin of another scope is not under this service');
    assert.equal((await api.call('GET', '/services/nope/routes')).status, 404);
    assert.equal((await api.call('DELETE', `/services/nest-svc/routes/${'0'.repeat(8)}-0000-4000-8000-000000000000`)).status, 404, 'nested DELETE of nothing is 404');

    const consumer = (await api.call('POST', '/consumers', { username: 'nest-alex' })).body;
    const acl = await api.call('POST', '/consumers/nest-alex/acls', 'group=admins&tags=a&tags=b');
    assert.equal(acl.status, 201);
    assert.deepEqual(acl.body.tags, ['a', 'b']);
    assert.equal((await api.call('GET', '/consumers/nest-alex/acls/admins')).body.id, acl.body.id);
    assert.equal((await api.call('POST', '/consumers/nest-alex/acls', { group: 'admins' })).status, 409);
    const cp = await api.call('POST', '/consumers/nest-alex/plugins', { name: 'other' });
    assert.deepEqual(cp.body.consumer, { id: consumer.id });
    assert.equal((await api.call('GET', '/acls')).body.data.length, 1);

    // Referential integrity.
    const refused = await api.call('DELETE', '/services/nest-svc');
    assert.equal(refused.status, 400);
    assert.deepEqual(refused.body, {
      code: 4, name: 'foreign key violation', message: "an existing 'routes' entity references this 'services' entity", fields: { '@referenced_by': 'routes' },
    });
    assert.equal((await api.call('DELETE', '/routes/nest-route')).status, 204);
    assert.equal((await api.call('GET', `/plugins/${rp.body.id}`)).status, 404, 'route deletion removed its plugins');
    assert.equal((await api.call('DELETE', '/services/nest-svc')).status, 204);
    assert.equal((await api.call('GET', `/plugins/${sp.body.id}`)).status, 404, 'service deletion removed its plugins');
    assert.equal((await api.call('DELETE', '/consumers/nest-alex')).status, 204);
    assert.equal((await api.call('GET', `/plugins/${cp.body.id}`)).status, 404);
    assert.equal((await api.call('GET', '/acls')).body.data.length, 0, 'consumer deletion removed its acls');
  });

  test("the seed's form-encoded curl works verbatim (POST /routes/{id}/plugins)", async () => {
    const svc = (await api.call('POST', '/services', { name: 'okta-svc', host: 'okta.test' })).body;
    const route = (await api.call('POST', '/routes', { name: 'okta-route', paths: ['/okta'], service: { id: svc.id } })).body;
    // The curl's --data arguments, joined with & exactly as curl sends them (values are unreserved text).
    const data = [
      'name=openid-connect',
      'config.issuer=https://YOUR_OKTA_DOMAIN/oauth2/YOUR_AUTH_SERVER/.well-known/openid-configuration',
      'config.client_id=YOUR_CLIENT_ID',
      'config.client_secret=YOUR_CLIENT_SECRET',
      'config.redirect_uri=https://kong.com/api',
      'config.scopes=openid',
      'config.scopes=email',
      'config.scopes=profile',
    ].join('&');
    const res = await api.call('POST', `/routes/${route.id}/plugins`, data);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.name, 'openid-connect');
    assert.deepEqual(res.body.route, { id: route.id });
    assert.equal(res.body.config.issuer, 'https://YOUR_OKTA_DOMAIN/oauth2/YOUR_AUTH_SERVER/.well-known/openid-configuration');
    assert.deepEqual(res.body.config.client_id, ['YOUR_CLIENT_ID'], 'one value for an array field → one-element array');
    assert.deepEqual(res.body.config.client_secret, ['YOUR_CLIENT_SECRET']);
    assert.deepEqual(res.body.config.redirect_uri, ['https://kong.com/api']);
    assert.deepEqual(res.body.config.scopes, ['openid', 'email', 'profile'], 'repeated key → array');
    assert.equal(res.body.config.verify_signature, true);

    // Coercion guided by the schema; empty value → null; PATCH merges config field by field.
    const patched = await api.call('PATCH', `/plugins/${res.body.id}`, 'config.verify_signature=false&config.leeway=5&config.login_tokens=&config.redis.port=6380&enabled=false');
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body.config.verify_signature, false);
    assert.equal(patched.body.config.leeway, 5);
    assert.equal(patched.body.config.login_tokens, null);
    assert.equal(patched.body.config.redis.port, 6380);
    assert.equal(patched.body.enabled, false);
    assert.deepEqual(patched.body.config.scopes, ['openid', 'email', 'profile'], 'untouched config fields are kept');
    assert.equal(patched.body.config.issuer, res.body.config.issuer);
    const jsonPatch = await api.call('PATCH', `/plugins/${res.body.id}`, { config: { scopes: ['openid'] } });
    assert.deepEqual(jsonPatch.body.config.scopes, ['openid'], 'arrays are replaced, not merged');
    assert.equal(jsonPatch.body.config.leeway, 5);

    // Same plugin twice on one route → 409 with Kong's fields.
    const dup = await api.call('POST', `/routes/${route.id}/plugins`, data);
    assert.equal(dup.status, 409);
    assert.equal(dup.body.code, 5);
    assert.equal(dup.body.name, 'unique constraint violation');
    assert.match(dup.body.message, /^UNIQUE violation detected on '/);
  });

  test('multipart bodies use the same notation', async () => {
    const form = new FormData();
    form.append('name', 'multi-svc');
    form.append('host', 'multi.test');
    form.append('port', '8443');
    form.append('tags', 'one');
    const res = await fetch(`${api.url}/services`, { method: 'POST', body: form });
    const body: any = await res.json();
    assert.equal(res.status, 201);
    assert.equal(body.port, 8443);
    assert.deepEqual(body.tags, ['one']);
    const route = await api.call('POST', '/routes', 'name=multi-route&paths[]=/m1&paths[]=/m2&service.name=multi-svc&strip_path=false');
    assert.equal(route.status, 201, JSON.stringify(route.body));
    assert.deepEqual(route.body.paths, ['/m1', '/m2']);
    assert.equal(route.body.strip_path, false);
    assert.deepEqual(route.body.service, { id: body.id });
  });

  test('error shapes: schema violation with nested fields, FK, 405, 415, bad JSON', async () => {
    const missing = await api.call('POST', '/plugins', { name: 'openid-connect', config: { leeway: 'x' } });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.code, 2);
    assert.equal(missing.body.name, 'schema violation');
    assert.deepEqual(missing.body.fields.config, { issuer: 'required field missing', leeway: 'expected a number' });
    assert.match(missing.body.message, /^2 schema violations \(/);
    const unknownPlugin = await api.call('POST', '/plugins', { name: 'nope' });
    assert.equal(unknownPlugin.status, 400);
    assert.match(unknownPlugin.body.fields.name, /not enabled/);
    const arrayErr = await api.call('POST', '/routes', { paths: ['/ok', 'bad'] });
    assert.equal(arrayErr.status, 400);
    assert.equal(arrayErr.body.fields.paths[0], null);
    assert.equal(typeof arrayErr.body.fields.paths[1], 'string');
    const entityErr = await api.call('POST', '/consumers', {});
    assert.equal(entityErr.status, 400);
    assert.ok(Array.isArray(entityErr.body.fields['@entity']));
    const fk = await api.call('POST', '/routes', { paths: ['/x'], service: { id: '11111111-2222-4333-8444-555555555555' } });
    assert.equal(fk.status, 400);
    assert.deepEqual(fk.body, {
      code: 4, name: 'foreign key violation',
      message: "the foreign key '{id=\"11111111-2222-4333-8444-555555555555\"}' does not reference an existing 'services' entity.",
      fields: { service: { id: '11111111-2222-4333-8444-555555555555' } },
    });
    const byName = await api.call('POST', '/routes', { paths: ['/x'], service: { name: 'no-such' } });
    assert.equal(byName.status, 400);
    assert.equal(byName.body.code, 4);
    await api.call('POST', '/services', { name: 'uniq-svc', host: 'u.test' });
    const conflict = await api.call('POST', '/services', { name: 'uniq-svc', host: 'u.test' });
    assert.equal(conflict.status, 409);
    assert.deepEqual(conflict.body, { code: 5, name: 'unique constraint violation', message: `UNIQUE violation detected on '{name="uniq-svc"}'`, fields: { name: 'uniq-svc' } });
    const m405 = await api.call('PATCH', '/services');
    assert.equal(m405.status, 405);
    assert.deepEqual(m405.body, { message: 'Method not allowed' });
    const m415 = await api.call('POST', '/services', 'x', { 'content-type': 'application/octet-stream' });
    assert.equal(m415.status, 415);
    const badJson = await api.call('POST', '/services', '{nope', { 'content-type': 'application/json' });
    assert.equal(badJson.status, 400);
    assert.deepEqual(badJson.body, { message: 'Cannot parse JSON body' });
    assert.deepEqual((await api.call('GET', '/nothing-here')).body, { message: 'Not found' });
  });

  test('schemas endpoints', async () => {
    const s = await api.call('GET', '/schemas/services');
    assert.equal(s.status, 200);
    assert.ok(s.body.fields.some((f: Record<string, unknown>) => 'host' in f));
    assert.ok((await api.call('GET', '/schemas/services?format=json-schema')).body.properties.host);
    assert.equal((await api.call('GET', '/schemas/nope')).status, 404);
    const p = await api.call('GET', '/schemas/plugins/openid-connect');
    assert.equal(p.status, 200);
    const config = p.body.fields.find((f: Record<string, any>) => 'config' in f).config;
    assert.ok(config.fields.some((f: Record<string, unknown>) => 'issuer' in f));
    assert.ok((await api.call('GET', '/schemas/plugins/openid-connect?format=json-schema')).body.config.properties.issuer);
    assert.equal((await api.call('GET', '/schemas/plugins/nope')).status, 404);
    const ok = await api.call('POST', '/schemas/plugins/validate', 'name=openid-connect&config.issuer=https://idp.test');
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, { message: 'schema validation successful' });
    const bad = await api.call('POST', '/schemas/plugins/validate', { name: 'openid-connect', config: {} });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.fields.config.issuer, 'required field missing');
    assert.equal((await api.call('GET', '/plugins')).body.data.every((x: any) => x.name !== 'openid-connect' || x.route), true, 'validate wrote nothing');
  });

  test("plugins' admin routes are served", async () => {
    const r = await api.call('GET', '/openid-connect/jwks');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { keys: [] });
  });

  test('GET /config dumps decK; POST /config replaces everything atomically', async () => {
    const dump = await api.call('GET', '/config');
    assert.equal(dump.status, 200);
    assert.equal(dump.body._format_version, '3.0');
    const before = await api.store.load();
    const invalid = await api.call('POST', '/config', { _format_version: '3.0', services: [{ name: 'a', host: 'a.test' }, { name: 'b', port: 'x' }] });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.code, 14);
    assert.ok(invalid.body.fields.services);
    assert.deepEqual(await api.store.load(), before, 'an invalid POST /config changes nothing');
    const yaml = '_format_version: "3.0"\nservices:\n  - name: only\n    url: http://only.test\n    routes:\n      - name: only-route\n        paths: [/only]\n';
    const posted = await api.call('POST', '/config', yaml, { 'content-type': 'application/yaml' });
    assert.equal(posted.status, 201, JSON.stringify(posted.body));
    const after = await api.store.load();
    assert.deepEqual(after.services.map((s) => s.name), ['only']);
    assert.equal(after.consumers.length, 0);
    assert.equal((await api.call('GET', '/routes/only-route')).status, 200);
  });
});

}

adminSuite('sqlite');
adminSuite('postgres');

describe('Admin API: token auth', () => {
  test('401 without or with a wrong token; 200 with it', async () => {
    const api = await startApi({ token: 's3cret' });
    try {
      const none = await api.call('GET', '/services');
      assert.equal(none.status, 401);
      assert.ok(none.body.message);
      assert.equal((await api.call('GET', '/services', undefined, { 'Kong-Admin-Token': 'wrong' })).status, 401);
      assert.equal((await api.call('GET', '/services', undefined, { 'Kong-Admin-Token': 's3cret' })).status, 200);
    } finally {
      await api.close();
    }
  });
});

describe('Admin API: DB-less (off)', () => {
  test('reads work, writes answer 405 with a reason, POST /config replaces', async () => {
    const api = await startApi({ database: 'off' });
    try {
      assert.equal((await api.call('GET', '/services')).status, 200);
      const w = await api.call('POST', '/services', { name: 'x', host: 'x.test' });
      assert.equal(w.status, 405);
      assert.match(w.body.message, /not using a database/);
      assert.equal((await api.call('DELETE', '/services/x')).status, 405);
      assert.equal((await api.call('PATCH', '/consumers/x', {})).status, 405);
      const posted = await api.call('POST', '/config', { _format_version: '3.0', consumers: [{ username: 'alex' }] });
      assert.equal(posted.status, 201);
      assert.equal((await api.call('GET', '/consumers/alex')).status, 200);
      const form = await api.call('POST', '/config', `config=${encodeURIComponent('_format_version: "3.0"\nconsumers:\n  - username: bob\n')}`);
      assert.equal(form.status, 201, JSON.stringify(form.body));
      assert.equal((await api.call('GET', '/consumers/alex')).status, 404);
      assert.equal((await api.call('GET', '/consumers/bob')).status, 200);
    } finally {
      await api.close();
    }
  });
});

describe('Admin API: TLS listener', () => {
  test('serves HTTPS with the given certificate (and the token check still applies)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-admin-tls-'));
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
      '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1',
    ], { stdio: 'ignore' });
    const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const key = readFileSync(join(dir, 'key.pem'), 'utf8');
    const store = await openConfigStore({ database: 'sqlite', sqlitePath: join(dir, 't.db') });
    const server = await createAdminServer({ store, registry, log: silentLogger(), tls: { cert, key }, token: 't', nodeInfo: () => ({}), status: () => ({}) });
    const agent = new Agent({ connect: { ca: cert } });
    try {
      const { port } = await server.listen('127.0.0.1', 0);
      const ok = await undiciFetch(`https://127.0.0.1:${port}/services`, { dispatcher: agent, headers: { 'kong-admin-token': 't' } });
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), { data: [], next: null });
      const denied = await undiciFetch(`https://127.0.0.1:${port}/services`, { dispatcher: agent });
      assert.equal(denied.status, 401);
      await denied.arrayBuffer();
      await assert.rejects(fetch(`http://127.0.0.1:${port}/services`), 'plain HTTP is not served on the TLS listener');
    } finally {
      await agent.close();
      await server.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Admin API: the seed curl against the bundled openid-connect plugin', () => {
  // Runs once the real plugin is registered in src/plugins/bundled/index.ts.
  test('form-encoded POST /routes/{id}/plugins', async (t) => {
    const { bundledPlugins } = await import('../src/plugins/bundled/index.ts');
    if (!bundledPlugins.some((p) => p.name === 'openid-connect')) {
      t.skip('openid-connect is not registered yet');
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-admin-oidc-'));
    const store = await openConfigStore({ database: 'sqlite', sqlitePath: join(dir, 'o.db') });
    const server = await createAdminServer({ store, registry: createRegistry(bundledPlugins), log: silentLogger(), nodeInfo: () => ({}), status: () => ({}) });
    try {
      const url = `http://127.0.0.1:${(await server.listen('127.0.0.1', 0)).port}`;
      const json = { 'content-type': 'application/json' };
      await fetch(`${url}/services`, { method: 'POST', headers: json, body: JSON.stringify({ name: 's', host: 's.test' }) });
      const route: any = await (await fetch(`${url}/services/s/routes`, { method: 'POST', headers: json, body: JSON.stringify({ paths: ['/o'] }) })).json();
      const body = 'name=openid-connect&config.issuer=https://YOUR_OKTA_DOMAIN/oauth2/YOUR_AUTH_SERVER/.well-known/openid-configuration'
        + '&config.client_id=YOUR_CLIENT_ID&config.client_secret=YOUR_CLIENT_SECRET&config.redirect_uri=https://kong.com/api'
        + '&config.scopes=openid&config.scopes=email&config.scopes=profile';
      const res = await fetch(`${url}/routes/${route.id}/plugins`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      const plugin: any = await res.json();
      assert.equal(res.status, 201, JSON.stringify(plugin));
      assert.deepEqual(plugin.config.client_id, ['YOUR_CLIENT_ID']);
      assert.deepEqual(plugin.config.scopes, ['openid', 'email', 'profile']);
      assert.deepEqual(plugin.route, { id: route.id });
    } finally {
      await server.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
