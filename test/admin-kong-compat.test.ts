/**
 * Admin API behaviours a Kong user relies on beyond the entity CRUD (checked against Kong's Admin
 * API reference): /tags, foreign-entity endpoints (/acls/{id}/consumer, /plugins/{id}/route ...),
 * 415 for text bodies on entity endpoints, GET / configuration, PUT/DELETE statuses.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { createAdminServer, type AdminServer } from '../src/admin/index.ts';
import { openConfigStore } from '../src/storage/index.ts';
import type { ConfigStore } from '../src/storage/ports.ts';
import { createRegistry } from '../src/plugins/registry.ts';
import { definePlugin } from '../src/plugins/sdk.ts';
import { silentLogger } from '../src/observability/logger.ts';

const plug = definePlugin({ name: 'p1', version: '1.0.0', priority: 10, schema: z.strictObject({ n: z.int().default(1) }), create: () => ({}) });
const registry = createRegistry([plug]);

describe('Admin API: Kong compatibility', () => {
  let dir: string;
  let store: ConfigStore;
  let server: AdminServer;
  let url: string;
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const h = { ...headers };
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
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-kong-compat-'));
    store = await openConfigStore({ database: 'sqlite', sqlitePath: join(dir, 'a.db') });
    server = await createAdminServer({
      store, registry, log: silentLogger(),
      nodeInfo: () => ({ version: '1.2.3', configuration: { proxy_listen: ['0.0.0.0:8000'], database: 'wrong' } }),
      status: () => ({}),
    });
    url = `http://127.0.0.1:${(await server.listen('127.0.0.1', 0)).port}`;
  });
  after(async () => {
    await server.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('GET / merges the node configuration; the store decides `database`', async () => {
    const root = await call('GET', '/');
    assert.deepEqual(root.body.configuration.proxy_listen, ['0.0.0.0:8000']);
    assert.equal(root.body.configuration.database, 'sqlite');
    assert.equal(root.body.configuration.admin_token_required, false);
  });

  test('GET /tags and /tags/{tag}: entity_name, entity_id, tag; paged', async () => {
    const svc = await call('POST', '/services', { name: 's1', url: 'http://a.test', tags: ['red', 'blue'] });
    assert.equal(svc.status, 201);
    const route = await call('POST', '/services/s1/routes', 'name=r1&paths[]=/a&tags[]=red');
    assert.equal(route.status, 201);
    const all = await call('GET', '/tags');
    assert.equal(all.status, 200);
    assert.deepEqual(all.body.data, [
      { entity_name: 'services', entity_id: svc.body.id, tag: 'red' },
      { entity_name: 'services', entity_id: svc.body.id, tag: 'blue' },
      { entity_name: 'routes', entity_id: route.body.id, tag: 'red' },
    ]);
    assert.equal(all.body.next, null);
    const red = await call('GET', '/tags/red?size=1');
    assert.deepEqual(red.body.data, [{ entity_name: 'services', entity_id: svc.body.id, tag: 'red' }]);
    assert.equal(typeof red.body.offset, 'string');
    assert.match(red.body.next, /^\/tags\/red\?size=1&offset=/);
    const second = await call('GET', red.body.next);
    assert.deepEqual(second.body.data, [{ entity_name: 'routes', entity_id: route.body.id, tag: 'red' }]);
    assert.equal(second.body.next, null);
    assert.equal(second.body.offset, undefined);
    assert.deepEqual((await call('GET', '/tags/none')).body, { data: [], next: null });
    assert.equal((await call('GET', '/tags?offset=garbage')).body.code, 7);
    assert.equal((await call('GET', '/tags?size=0')).body.code, 9);
    assert.equal((await call('POST', '/tags', {})).status, 405);
  });

  test('foreign-entity endpoints: /acls/{id}/consumer, /plugins/{id}/route|service|consumer', async () => {
    const c = await call('POST', '/consumers', { username: 'alex' });
    const acl = await call('POST', '/consumers/alex/acls', 'group=g1');
    assert.equal(acl.status, 201);
    const owner = await call('GET', `/acls/${acl.body.id}/consumer`);
    assert.equal(owner.status, 200);
    assert.equal(owner.body.username, 'alex');
    assert.equal(owner.body.id, c.body.id);

    const r = await call('POST', '/routes', { name: 'r2', paths: ['/b'] });
    const p = await call('POST', '/routes/r2/plugins', { name: 'p1' });
    assert.equal(p.status, 201);
    const pr = await call('GET', `/plugins/${p.body.id}/route`);
    assert.equal(pr.status, 200);
    assert.equal(pr.body.id, r.body.id);
    // A null reference and an unknown plugin are both 404 Not found.
    assert.deepEqual(await call('GET', `/plugins/${p.body.id}/service`), { status: 404, body: { message: 'Not found' } });
    assert.equal((await call('GET', `/plugins/${p.body.id}/consumer`)).status, 404);
    assert.equal((await call('GET', '/plugins/00000000-0000-4000-8000-000000000000/route')).status, 404);
    assert.equal((await call('GET', '/acls/00000000-0000-4000-8000-000000000000/consumer')).status, 404);
  });

  test('every foreign key has /{entity}/{id}/{field} with GET and PATCH, as Kong generates them', async () => {
    const c = await call('POST', '/consumers', { username: 'fk-owner' });
    const acl = await call('POST', '/consumers/fk-owner/acls', { group: 'g-fk' });
    assert.equal(acl.status, 201);
    const patched = await call('PATCH', `/acls/${acl.body.id}/consumer`, { custom_id: 'fk-custom' });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.id, c.body.id);
    assert.equal(patched.body.custom_id, 'fk-custom');
    assert.equal((await call('GET', '/consumers/fk-owner')).body.custom_id, 'fk-custom');
    // The nested collections exist for every foreign key too (here: a consumer's plugins).
    const p = await call('POST', '/consumers/fk-owner/plugins', { name: 'p1' });
    assert.equal(p.status, 201);
    assert.equal((await call('GET', `/plugins/${p.body.id}/consumer`)).body.id, c.body.id);
    assert.equal((await call('PATCH', `/plugins/${p.body.id}/route`, { name: 'x' })).status, 404);
  });

  test('GET /consumers?custom_id=X answers only that consumer', async () => {
    const a = await call('POST', '/consumers', { username: 'with-cid', custom_id: 'cid-1' });
    assert.equal(a.status, 201);
    await call('POST', '/consumers', { username: 'other-cid', custom_id: 'cid-2' });
    assert.deepEqual(await call('GET', '/consumers?custom_id=cid-1'), { status: 200, body: { data: [a.body], next: null } });
    assert.deepEqual((await call('GET', '/consumers?custom_id=none')).body, { data: [], next: null });
  });

  test('a trailing slash is ignored, as in Kong\'s docs (`POST /services/`)', async () => {
    const created = await call('POST', '/services/', 'name=slashed&url=http://slashed.test');
    assert.equal(created.status, 201);
    assert.equal((await call('GET', '/services/slashed/')).body.id, created.body.id);
    assert.equal((await call('GET', '/services/slashed/routes/')).status, 200);
    assert.equal((await call('GET', '/status/')).status, 200);
  });

  test('/schemas answers Kong\'s `fields` array (JSON Schema with ?format=json-schema)', async () => {
    const svc = await call('GET', '/schemas/services');
    assert.equal(svc.body.properties, undefined, 'Kong\'s shape only');
    assert.ok((await call('GET', '/schemas/services?format=json-schema')).body.properties.host, 'JSON Schema on request');
    const field = (fields: Array<Record<string, any>>, name: string) => fields.find((f) => name in f)?.[name];
    assert.deepEqual(field(svc.body.fields, 'retries'), { type: 'integer', between: [0, 32767], default: 5, required: true });
    assert.equal(field(svc.body.fields, 'protocol').type, 'string');
    assert.ok(field(svc.body.fields, 'protocol').one_of.includes('https'));
    const routes = await call('GET', '/schemas/routes');
    assert.deepEqual(field(routes.body.fields, 'service'), { type: 'foreign', reference: 'services' });
    assert.equal(field(routes.body.fields, 'headers').type, 'map');
    assert.equal(field(routes.body.fields, 'paths').elements.type, 'string');
    const plugin = await call('GET', '/schemas/plugins/p1');
    assert.ok((await call('GET', '/schemas/plugins/p1?format=json-schema')).body.config.properties.n, 'JSON Schema of config on request');
    const config = field(plugin.body.fields, 'config');
    assert.equal(config.type, 'record');
    assert.deepEqual(field(config.fields, 'n'), { type: 'integer', default: 1, required: true });
  });

  test('GET /plugins/schema/{name} (deprecated in Kong 3.x, still served until 4.0): the config record', async () => {
    const r = await call('GET', '/plugins/schema/p1');
    assert.equal(r.status, 200);
    assert.equal(r.body.type, 'record');
    const n = (r.body.fields as Array<Record<string, unknown>>).find((f) => 'n' in f)?.n;
    assert.deepEqual(n, { type: 'integer', default: 1, required: true });
    const missing = await call('GET', '/plugins/schema/nope');
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.body, { message: "No plugin named 'nope'" });
  });

  test('a text/plain body on an entity endpoint is 415, not a schema violation', async () => {
    const res = await call('POST', '/services', 'name=x', { 'content-type': 'text/plain' });
    assert.equal(res.status, 415);
    assert.equal(typeof res.body.message, 'string');
  });

  test('PUT creates (200) then replaces (200, same id); DELETE of a missing service is 204', async () => {
    const a = await call('PUT', '/services/put-me', { url: 'http://a.test' });
    assert.equal(a.status, 200);
    const b = await call('PUT', '/services/put-me', { url: 'http://b.test' });
    assert.equal(b.status, 200);
    assert.equal(b.body.id, a.body.id);
    assert.equal(b.body.host, 'b.test');
    assert.equal((await call('DELETE', '/services/never-was')).status, 204);
  });

  test('PUT by name: the name in the URL wins over one in the body, as Kong\'s upsert_by_<key>', async () => {
    const a = await call('PUT', '/consumers/carol', { username: 'someone-else', custom_id: 'c-1' });
    assert.equal(a.status, 200);
    assert.equal(a.body.username, 'carol');
    const b = await call('PUT', '/consumers/carol', { username: 'someone-else', custom_id: 'c-2' });
    assert.equal(b.status, 200);
    assert.equal(b.body.id, a.body.id);
    assert.equal(b.body.username, 'carol');
    assert.equal((await call('GET', '/consumers/someone-else')).status, 404);
    const s = await call('PUT', '/services/url-name', 'name=body-name&url=http://a.test');
    assert.equal(s.body.name, 'url-name');
  });

  test('schema violations say what Kong\'s schema validator says (kong/db/schema/init.lua messages)', async () => {
    const cases: Array<[string, string, unknown, Record<string, unknown>]> = [
      ['POST', '/services', { host: 'a.test', port: 70000 }, { port: 'value should be between 0 and 65535' }],
      ['POST', '/services', { host: 'a.test', connect_timeout: 0 }, { connect_timeout: 'value should be between 1 and 2147483646' }],
      ['POST', '/services', { host: 'a.test', retries: 40000 }, { retries: 'value should be between 0 and 32767' }],
      ['POST', '/services', { host: 'a.test', name: '' }, { name: 'length must be at least 1' }],
      ['POST', '/services', { host: 'a.test', protocol: 'ftp' }, { protocol: 'expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp, ws, wss' }],
      ['POST', '/routes', { paths: ['/x'], path_handling: 'v2' }, { path_handling: 'expected one of: v0, v1' }],
      ['POST', '/routes', { paths: ['/x'], service: { id: 'not-a-uuid' } }, { service: { id: 'expected a valid UUID' } }],
    ];
    for (const [method, path, body, fields] of cases) {
      const r = await call(method, path, body);
      assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}`);
      assert.equal(r.body.name, 'schema violation');
      assert.deepEqual(r.body.fields, fields, `${path} ${JSON.stringify(body)}`);
    }
  });
});

describe('Admin API: /config as Kong\'s DB-less mode', () => {
  let store: ConfigStore;
  let server: AdminServer;
  let url: string;
  before(async () => {
    store = await openConfigStore({ database: 'off' });
    server = await createAdminServer({ store, registry, log: silentLogger(), nodeInfo: () => ({}), status: () => ({}) });
    url = `http://127.0.0.1:${(await server.listen('127.0.0.1', 0)).port}`;
  });
  after(async () => {
    await server.close();
    await store.close();
  });
  const post = (query: string, body: string, type = 'application/yaml') =>
    fetch(`${url}/config${query}`, { method: 'POST', body, headers: { 'content-type': type } });
  const doc = '_format_version: "3.0"\nservices:\n  - name: s\n    url: http://s.test\n    routes:\n      - name: r\n        paths: [/r]\n';

  test('GET /config is {"config": "<YAML>"}; /status carries configuration_hash', async () => {
    assert.equal((await post('', doc)).status, 201);
    const res = await fetch(`${url}/config`);
    assert.equal(res.status, 200);
    const body = await res.json() as { config: string };
    assert.equal(typeof body.config, 'string');
    assert.match(body.config, /_format_version: "3.0"/);
    assert.match(body.config, /name: s\n/);
    const status = await (await fetch(`${url}/status`)).json() as { configuration_hash: string };
    assert.match(status.configuration_hash, /^[0-9a-f]{32}$/);
  });

  test('check_hash=1: the same configuration again is 304 and changes nothing; a different one 201', async () => {
    assert.equal((await post('', doc)).status, 201);
    const hash = (await (await fetch(`${url}/status`)).json() as { configuration_hash: string }).configuration_hash;
    const same = await post('?check_hash=1', doc);
    assert.equal(same.status, 304);
    const changed = doc.replace('/r]', '/r2]');
    assert.equal((await post('?check_hash=1', changed)).status, 201);
    const after = (await (await fetch(`${url}/status`)).json() as { configuration_hash: string }).configuration_hash;
    assert.notEqual(after, hash);
    // Without check_hash the same document is simply applied again.
    assert.equal((await post('', changed)).status, 201);
  });

  test('flatten_errors=1: one item per entity with field errors, beside Kong\'s code 14 body', async () => {
    const bad = '_format_version: "3.0"\nservices:\n  - name: bad-svc\n    host: h.test\n    port: nope\n    tags: [t1]\n    routes:\n      - name: bad-route\n        paths: [nope]\n';
    const res = await post('?flatten_errors=1', bad);
    assert.equal(res.status, 400);
    const body = await res.json() as { code: number; name: string; fields: object; flattened_errors: Array<Record<string, any>> };
    assert.equal(body.code, 14);
    assert.equal(body.name, 'invalid declarative configuration');
    assert.ok(body.fields);
    const svc = body.flattened_errors.find((e) => e.entity_type === 'service');
    assert.ok(svc, JSON.stringify(body.flattened_errors));
    assert.equal(svc.entity_name, 'bad-svc');
    assert.deepEqual(svc.entity_tags, ['t1']);
    assert.equal(svc.errors[0].field, 'port');
    assert.equal(svc.errors[0].type, 'field');
    const route = body.flattened_errors.find((e) => e.entity_type === 'route');
    assert.ok(route);
    assert.equal(route.entity_name, 'bad-route');
    assert.equal(route.errors[0].field, 'paths[0]');
    // Without the flag, Kong's plain body.
    const plain = await (await post('', bad)).json() as Record<string, unknown>;
    assert.equal(plain.flattened_errors, undefined);
    assert.equal(plain.code, 14);
  });
});
