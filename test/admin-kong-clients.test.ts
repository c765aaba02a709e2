/**
 * The Admin API as Kong's own clients call it (issue 19 item 4 server side and item 5): the UI
 * packages (@kong-ui-public/entities-*) and decK/go-kong. A real gateway node (SQLite store) on
 * port 0: `GET /` version parsed the way go-kong and the UI packages parse it, `/kong` and the
 * `/default/...` workspace prefix, `/workspaces`, the Kong entities we do not have (empty lists,
 * writes refused), consumer groups as Kong EE answers them, `/schemas` in Kong's `fields` format,
 * and CORS for the UI's origin only.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { listenerOrigins, parseAdminGuiUrl } from '../src/admin/cors.ts';

const uiOrigin = 'http://ui.example.test:8002';
const token = 'admin-token-for-cors-test';

describe('Admin API for Kong clients', () => {
  let gw: TestGateway;
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const h: Record<string, string> = { 'kong-admin-token': token, ...headers };
    if (body !== undefined) h['content-type'] = 'application/json';
    const res = await fetch(gw.adminUrl + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let parsed: any = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };

  before(async () => {
    gw = await startGateway({ database: 'sqlite', env: { PORTCULLIS_ADMIN_GUI_URL: `${uiOrigin}/manager/, https://other-ui.example.test`, PORTCULLIS_ADMIN_TOKEN: token } });
  });
  after(() => gw.close());

  test('GET / version: a 3.x release to go-kong and to the UI packages, naming Portcullis', async () => {
    const root = await call('GET', '/');
    assert.equal(root.status, 200);
    const v: string = root.body.version;
    assert.match(v, /portcullis/);
    // go-kong kong/utils.go ParseSemanticVersion: this regular expression, the pre-release then dropped.
    const m = /((?:\d+\.\d+\.\d+)|(?:\d+\.\d+))(?:[.-](\d+))?(?:-?(.+)$|$)/.exec(v);
    assert.ok(m, 'go-kong finds a version');
    assert.equal(m[1], '3.10.0');
    assert.equal(m[2], undefined);
    assert.ok(!m[3]!.includes('enterprise'), 'read as a pre-release tag, not an enterprise build');
    // decK (go-database-reconciler CleanKongVersion, then semver.ParseTolerant): major.minor first.
    assert.equal(/^\d+\.\d+/.exec(v)?.[0], '3.10');
    // @kong-ui-public/entities-shared useGatewayFeatureSupported: the version must match this.
    const uiSemver = /^[v^~<>=]*?(\d+)(?:\.([x*]|\d+)(?:\.([x*]|\d+)(?:\.([x*]|\d+))?(?:-([\da-z-]+(?:\.[\da-z-]+)*))?(?:\+[\da-z-]+(?:\.[\da-z-]+)*)?)?)?$/i;
    assert.ok(/^[v\d]/.test(v) && uiSemver.test(v), 'the UI packages accept the version');
    assert.equal(root.body.edition, 'community');
    assert.equal(typeof root.body.portcullis_version, 'string');
    assert.ok(root.body.plugins.available_on_server['key-auth'].priority > 0);
    for (const path of ['/kong', '/default/kong', '/default', '/default/']) {
      const r = await call('GET', path);
      assert.equal(r.status, 200, path);
      assert.equal(r.body.version, v, path);
    }
  });

  test('GET / enabled_in_cluster follows plugin writes (the UI reads it on every navigation)', async () => {
    const before = (await call('GET', '/')).body.plugins.enabled_in_cluster as string[];
    assert.ok(!before.includes('correlation-id'));
    const p = await call('POST', '/plugins', { name: 'correlation-id' });
    assert.equal(p.status, 201);
    assert.ok((await call('GET', '/')).body.plugins.enabled_in_cluster.includes('correlation-id'));
    assert.equal((await call('DELETE', `/plugins/${p.body.id}`)).status, 204);
    assert.ok(!(await call('GET', '/kong')).body.plugins.enabled_in_cluster.includes('correlation-id'));
  });

  test('/default/... is the default workspace: the same entities as without the prefix', async () => {
    const created = await call('POST', '/default/services', { name: 'ws-svc', url: 'http://upstream.test' });
    assert.equal(created.status, 201);
    assert.equal((await call('GET', '/services/ws-svc')).body.id, created.body.id);
    const routes = await call('POST', `/default/services/${created.body.id}/routes`, { name: 'ws-route', paths: ['/ws'] });
    assert.equal(routes.status, 201);
    const list = await call('GET', '/default/routes?size=10');
    assert.ok(list.body.data.some((r: { id: string }) => r.id === routes.body.id));
    assert.equal((await call('GET', '/otherws/services')).status, 404, 'no other workspace exists');
  });

  test('/workspaces lists the default workspace; other names 404; writes refused with code 12', async () => {
    const list = await call('GET', '/workspaces');
    assert.equal(list.status, 200);
    assert.equal(list.body.data.length, 1);
    assert.equal(list.body.data[0].name, 'default');
    assert.equal(list.body.next, null);
    const one = await call('GET', '/workspaces/default');
    assert.equal(one.body.id, list.body.data[0].id);
    assert.equal((await call('GET', `/workspaces/${one.body.id}`)).body.name, 'default');
    assert.equal((await call('GET', '/default/workspaces/default')).status, 200, 'decK: GET /<ws>/workspaces/<ws>');
    assert.equal((await call('GET', '/workspaces/team-a')).status, 404);
    const post = await call('POST', '/workspaces', { name: 'team-a' });
    assert.equal(post.status, 405);
    assert.equal(post.body.code, 12);
    assert.equal(post.body.name, 'operation unsupported');
    assert.match(post.body.message, /workspaces/);
  });

  test('Kong entities Portcullis lacks: empty lists in Kong\'s shape, 404 by id, every write refused naming the entity', async () => {
    for (const path of ['/keys', '/key-sets', '/vaults', '/hmac-auths', '/filter-chains', '/partials', '/default/vaults']) {
      const r = await call('GET', `${path}?size=1000`);
      assert.equal(r.status, 200, path);
      assert.deepEqual(r.body, { data: [], next: null }, path);
    }
    assert.equal((await call('GET', '/keys?size=0')).body.code, 9, 'size still checked');
    assert.equal((await call('GET', '/keys/2b3f4c6e-8a1d-4e2f-9b7c-1d2e3f4a5b6c')).status, 404);
    assert.equal((await call('GET', '/key-sets/2b3f4c6e-8a1d-4e2f-9b7c-1d2e3f4a5b6c/keys')).status, 404);
    const vault = await call('POST', '/vaults', { name: 'env', prefix: 'my-env' });
    assert.equal(vault.status, 405);
    assert.equal(vault.body.code, 12);
    assert.match(vault.body.message, /'vaults'/);
    assert.equal((await call('PUT', '/keys/2b3f4c6e-8a1d-4e2f-9b7c-1d2e3f4a5b6c', { name: 'k' })).status, 405);
    assert.equal((await call('DELETE', '/keys/2b3f4c6e-8a1d-4e2f-9b7c-1d2e3f4a5b6c')).status, 405);
    const consumer = await call('POST', '/consumers', { username: 'hmac-user' });
    assert.deepEqual((await call('GET', '/consumers/hmac-user/hmac-auth')).body, { data: [], next: null });
    assert.equal((await call('GET', '/consumers/nobody/hmac-auth')).status, 404);
    const hmac = await call('POST', `/consumers/${consumer.body.id}/hmac-auth`, { username: 'u', secret: 's' });
    assert.equal(hmac.status, 405);
    assert.match(hmac.body.message, /hmacauth_credentials/);
  });

  test('consumer groups as Kong EE answers them: {consumer_group, consumers, plugins}; ?list_consumers=false; ?counter=true', async () => {
    const g = await call('POST', '/consumer_groups', { name: 'gold' });
    assert.equal(g.status, 201);
    await call('POST', '/consumers', { username: 'ann' });
    await call('POST', '/consumers', { username: 'bob' });
    assert.equal((await call('POST', '/consumer_groups/gold/consumers', { consumer: ['ann', 'bob'] })).status, 201);
    const one = await call('GET', '/consumer_groups/gold');
    assert.equal(one.status, 200);
    assert.equal(one.body.consumer_group.id, g.body.id);
    assert.deepEqual(one.body.consumers.map((c: { username: string }) => c.username).sort(), ['ann', 'bob']);
    assert.deepEqual(one.body.plugins, []);
    const lean = await call('GET', `/consumer_groups/${g.body.id}?list_consumers=false`);
    assert.equal(lean.body.consumer_group.name, 'gold');
    assert.equal(lean.body.consumers, undefined);
    const counted = await call('GET', '/consumer_groups?counter=true');
    assert.equal(counted.body.data.find((x: { name: string }) => x.name === 'gold').consumers_count, 2);
    const plain = await call('GET', '/consumer_groups');
    assert.equal(plain.body.data[0].consumers_count, undefined);
  });

  test('/schemas/{entity}: Kong\'s fields — id uuid/auto, timestamps, foreign references, unique keys, defaults', async () => {
    const r = await call('GET', '/schemas/routes');
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body).sort(), ['entity_checks', 'fields']);
    const field = (name: string) => r.body.fields.find((f: Record<string, unknown>) => name in f)?.[name];
    assert.deepEqual(field('id'), { type: 'string', uuid: true, auto: true });
    assert.deepEqual(field('created_at'), { type: 'integer', timestamp: true, auto: true });
    assert.deepEqual(field('service'), { type: 'foreign', reference: 'services' });
    assert.equal(field('name').unique, true);
    assert.deepEqual(field('protocols').default, ['http', 'https']);
    assert.equal(field('strip_path').default, true);
    const targets = await call('GET', '/schemas/targets');
    const upstream = targets.body.fields.find((f: Record<string, unknown>) => 'upstream' in f).upstream;
    assert.deepEqual(upstream, { type: 'foreign', reference: 'upstreams', on_delete: 'cascade' });
    assert.deepEqual((await call('GET', '/schemas/keys')).body, { message: "No entity named 'keys'" });
    const json = await call('GET', '/schemas/routes?format=json-schema');
    assert.equal(json.body.type, 'object');
    assert.ok(json.body.properties.paths);
    const unknown = await call('GET', '/schemas/routes?format=yaml');
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.message, /format/);
  });

  test('/schemas/plugins/{name}: refused scopes as Kong\'s no_consumer, protocols with its default, the config record', async () => {
    const r = await call('GET', '/schemas/plugins/key-auth');
    assert.equal(r.status, 200);
    const names = r.body.fields.map((f: Record<string, unknown>) => Object.keys(f)[0]);
    assert.deepEqual(names, ['consumer', 'protocols', 'config']);
    assert.deepEqual(r.body.fields[0].consumer, { type: 'foreign', reference: 'consumers', eq: null });
    assert.deepEqual(r.body.fields[1].protocols.default, ['grpc', 'grpcs', 'http', 'https']);
    assert.equal(r.body.fields[1].protocols.type, 'set');
    const config = r.body.fields[2].config;
    assert.equal(config.type, 'record');
    const keyNames = config.fields.find((f: Record<string, unknown>) => 'key_names' in f).key_names;
    assert.deepEqual(keyNames.default, ['apikey']);
    const rl = await call('GET', '/schemas/plugins/rate-limiting');
    assert.deepEqual(rl.body.fields.find((f: Record<string, unknown>) => 'consumer_group' in f).consumer_group, { type: 'foreign', reference: 'consumer_groups' });
    assert.equal(rl.body.fields.some((f: Record<string, unknown>) => 'consumer' in f), false, 'rate-limiting may be scoped to a consumer');
    // Secrets carry Kong's `encrypted` mark (Kong Manager masks them); other fields do not.
    const oidc = (await call('GET', '/schemas/plugins/openid-connect')).body.fields.find((f: Record<string, unknown>) => 'config' in f).config.fields;
    const field = (n: string) => oidc.find((f: Record<string, unknown>) => n in f)[n];
    assert.equal(field('client_secret').encrypted, true);
    assert.equal(field('session_secret').encrypted, true);
    assert.equal(field('issuer').encrypted, undefined);
  });

  test('CORS: the UI origin gets the headers and a preflight before the token check; any other origin gets nothing', async () => {
    const pre = await fetch(`${gw.adminUrl}/services`, {
      method: 'OPTIONS',
      headers: { origin: uiOrigin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, kong-admin-token' },
    });
    assert.equal(pre.status, 204, 'no token on a preflight, still answered');
    assert.equal(pre.headers.get('access-control-allow-origin'), uiOrigin);
    assert.equal(pre.headers.get('access-control-allow-credentials'), 'true');
    assert.match(pre.headers.get('access-control-allow-headers') ?? '', /kong-admin-token/i);
    assert.match(pre.headers.get('access-control-allow-methods') ?? '', /PATCH/);
    const second = await fetch(`${gw.adminUrl}/`, { headers: { origin: 'https://other-ui.example.test', 'kong-admin-token': token } });
    assert.equal(second.headers.get('access-control-allow-origin'), 'https://other-ui.example.test', 'every admin_gui_url entry');
    const get = await call('GET', '/services', undefined, { origin: uiOrigin });
    assert.equal(get.headers.get('access-control-allow-origin'), uiOrigin);
    assert.match(get.headers.get('vary') ?? '', /Origin/);
    const noToken = await fetch(`${gw.adminUrl}/services`, { headers: { origin: uiOrigin } });
    assert.equal(noToken.status, 401);
    assert.equal(noToken.headers.get('access-control-allow-origin'), uiOrigin, 'the UI can read the 401 and ask for the token');

    const evil = 'http://evil.example.test';
    const evilGet = await call('GET', '/services', undefined, { origin: evil });
    assert.equal(evilGet.status, 200);
    assert.equal(evilGet.headers.get('access-control-allow-origin'), null);
    assert.equal(evilGet.headers.get('access-control-allow-credentials'), null);
    const evilPre = await fetch(`${gw.adminUrl}/services`, { method: 'OPTIONS', headers: { origin: evil, 'access-control-request-method': 'DELETE' } });
    assert.notEqual(evilPre.status, 204);
    assert.equal(evilPre.headers.get('access-control-allow-origin'), null);
    assert.equal(evilPre.headers.get('access-control-allow-methods'), null);
  });
});

describe('Admin API CORS: which origins', () => {
  test('admin_gui_url entries become origins; a non-URL entry is refused naming the setting', () => {
    assert.deepEqual(parseAdminGuiUrl('http://a.test:8002/manager, https://b.test/'), ['http://a.test:8002', 'https://b.test']);
    assert.deepEqual(parseAdminGuiUrl(undefined), []);
    assert.throws(() => parseAdminGuiUrl('a.test:8002'), /PORTCULLIS_ADMIN_GUI_URL: 'a.test:8002' is not an http\(s\) URL/);
  });
  test('a loopback or wildcard GUI listener is reached as localhost and 127.0.0.1; a named host as itself', () => {
    assert.deepEqual(listenerOrigins('127.0.0.1', 8002, false), ['http://localhost:8002', 'http://127.0.0.1:8002', 'http://[::1]:8002']);
    assert.deepEqual(listenerOrigins('0.0.0.0', 443, true), ['https://localhost', 'https://127.0.0.1', 'https://[::1]']);
    assert.deepEqual(listenerOrigins('10.1.2.3', 8002, false), ['http://10.1.2.3:8002']);
  });
  test('no GUI URL and no GUI listener: no CORS header for anyone', async () => {
    const gw = await startGateway({ database: 'sqlite' });
    try {
      const r = await fetch(`${gw.adminUrl}/`, { headers: { origin: 'http://127.0.0.1:8002' } });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('access-control-allow-origin'), null);
    } finally {
      await gw.close();
    }
  });
});
