/**
 * decK against a real gateway node (SQLite store, port 0), two ways:
 *
 * 1. The exact call sequence `deck gateway dump/diff/sync` (decK 1.x–3.x on go-kong and
 *    go-database-reconciler) makes, as ../shared/kong-gateway-reference.md §7.1 lists it, replayed
 *    with fetch: `GET /` and its version; the dump's lists with `size=1000` following `offset`
 *    (those decK needs answer 200, those it tolerates 200/403/404); `/upstreams/{id}/targets` per
 *    upstream; `/consumer_groups/{name}` per group; `/schemas/...` for defaults; then a sync's
 *    writes level by level with client-generated ids — `PUT /<entity>/<id>`, credentials under
 *    their consumer, targets' `PUT` then `POST` fallback on 404, consumer-group memberships by
 *    `POST /consumer_groups/{g}/consumers`, group plugins under the group — an update run, the
 *    "duplicate" delete-then-create of a renamed id, and the deletes in reverse level order.
 * 2. The real decK binary when one is installed: Debian ships decK 1.4.0 (`apt-get install deck`;
 *    no newer decK is on npm or Debian here). It pings, syncs, dumps, diffs, syncs a deletion and
 *    resets. Without the binary that part is skipped, saying why.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { selfSigned } from './helpers/certs.ts';
import { waitFor } from './helpers/process.ts';

const run = promisify(execFile);

interface Reply {
  status: number;
  body: any;
}

/** An Admin API client that records every call as decK's debug output would show it. */
class DeckClient {
  readonly calls: string[] = [];
  readonly base: string;
  constructor(base: string) {
    this.base = base;
  }

  async req(method: string, path: string, body?: unknown): Promise<Reply> {
    const res = await fetch(this.base + path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    this.calls.push(`${method} ${path} ${res.status}`);
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  /** go-kong's list-all: `size=1000`, following `offset` until it is absent. */
  async listAll(path: string, opts: { size?: number; tolerate?: number[] } = {}): Promise<{ status: number; data: any[] }> {
    const size = opts.size ?? 1000;
    const data: any[] = [];
    let offset: string | undefined;
    for (;;) {
      const q = new URLSearchParams({ size: String(size), ...(offset ? { offset } : {}) });
      const r = await this.req('GET', `${path}?${q}`);
      if (r.status !== 200) {
        assert.ok((opts.tolerate ?? []).includes(r.status), `${path}: ${r.status} is not tolerated by decK`);
        return { status: r.status, data: [] };
      }
      assert.ok(Array.isArray(r.body.data), `${path}: data is a list`);
      assert.ok('next' in r.body, `${path}: next present`);
      data.push(...r.body.data);
      if (!r.body.offset) {
        assert.equal(r.body.next, null, `${path}: next is null on the last page`);
        return { status: 200, data };
      }
      assert.equal(typeof r.body.next, 'string');
      assert.ok(r.body.next.includes(`offset=${encodeURIComponent(r.body.offset)}`) || r.body.next.includes(`offset=${r.body.offset}`), 'next carries the offset');
      assert.ok(r.body.next.includes(`size=${size}`), 'next carries size');
      offset = r.body.offset;
    }
  }

  /** The dump phase of `deck gateway dump|diff|sync` (gdr pkg/dump/dump.go). */
  async dump(): Promise<Record<string, any[]>> {
    const root = await this.req('GET', '/');
    assert.equal(root.status, 200);
    assert.match(root.body.version, /^3\.\d+\.\d+/);
    const out: Record<string, any[]> = {};
    // Lists decK needs: an error aborts the dump.
    for (const path of ['/services', '/routes', '/plugins', '/certificates', '/snis', '/upstreams', '/consumers']) {
      out[path.slice(1)] = (await this.listAll(path)).data;
    }
    out.targets = [];
    for (const u of out.upstreams) out.targets.push(...(await this.listAll(`/upstreams/${u.id}/targets`)).data);
    // Lists decK tolerates as 404/403 (→ empty): every one we have answers 200.
    const tolerated = ['/ca_certificates', '/vaults', '/keys', '/key-sets', '/partials', '/key-auths', '/hmac-auths', '/jwts', '/basic-auths', '/oauth2', '/acls', '/mtls-auths'];
    for (const path of tolerated) {
      const r = await this.listAll(path, { tolerate: [403, 404] });
      if (path !== '/mtls-auths') assert.equal(r.status, 200, `${path} is a list of ours or Kong's empty list`);
      out[path.slice(1)] = r.data;
    }
    const fc = await this.listAll('/filter-chains', { tolerate: [400, 404] });
    assert.equal(fc.status, 200);
    const groups = await this.listAll('/consumer_groups', { tolerate: [403, 404] });
    assert.equal(groups.status, 200);
    out.consumer_groups = [];
    for (const g of groups.data) {
      const detail = await this.req('GET', `/consumer_groups/${encodeURIComponent(g.name)}`);
      assert.equal(detail.status, 200);
      assert.equal(detail.body.consumer_group.id, g.id);
      assert.ok(Array.isArray(detail.body.consumers));
      assert.ok(Array.isArray(detail.body.plugins));
      out.consumer_groups.push(detail.body);
    }
    return out;
  }
}

/**
 * decK fills entity defaults from `GET /schemas/{entity}` (go-kong flattenDefaultsSchema, then a
 * merge into the entity): a record's defaults field by field, other fields' defaults where the
 * entity has none; fields without a default stay unset (omitted from the JSON body).
 */
function fillDefaults(schema: { fields?: Array<Record<string, any>> }, entity: Record<string, any>): Record<string, any> {
  const out = { ...entity };
  for (const f of schema.fields ?? []) {
    const [name, def] = Object.entries(f)[0]!;
    if (def.type === 'record') {
      const sub = fillDefaults(def, out[name] && typeof out[name] === 'object' ? out[name] : {});
      if (Object.keys(sub).length > 0) out[name] = sub;
    } else if (out[name] === undefined && def.default !== undefined && def.default !== null) {
      out[name] = def.default;
    }
  }
  return out;
}

/** Every field decK sent comes back the same (what `deck gateway diff` compares). */
function assertSentComesBack(sent: Record<string, any>, got: Record<string, any>, what: string): void {
  for (const [k, v] of Object.entries(sent)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && !('id' in v)) assertSentComesBack(v, got?.[k] ?? {}, `${what}.${k}`);
    else assert.deepEqual(got?.[k], v, `${what}.${k}`);
  }
}

/**
 * go-kong's fillConfigRecord (FillDefaults): every config field gets its default or an explicit
 * null; a record recurses when required or given; an array of records fills each element.
 */
function fillConfig(schema: { fields?: Array<Record<string, any>> }, config: Record<string, any>): Record<string, any> {
  const res: Record<string, any> = structuredClone(config);
  for (const f of schema.fields ?? []) {
    const [name, def] = Object.entries(f)[0]!;
    const v = config[name];
    if (v !== undefined) {
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
        if (def.keys && def.values) continue;
      } else if (Array.isArray(v)) {
        if (def.elements?.type !== 'record') continue;
      } else continue;
    }
    if (def.type === 'record' && (v != null || def.required)) {
      res[name] = fillConfig(def, v && !Array.isArray(v) ? v : {});
    } else if ((def.type === 'array' || def.type === 'set') && def.elements?.type === 'record' && Array.isArray(v) && v.length > 0) {
      res[name] = v.map((x: Record<string, any>) => fillConfig(def.elements, x));
    } else if (!def.auto) {
      res[name] = def.default !== undefined ? def.default : null;
    }
  }
  return res;
}

/** The fields each bundled plugin requires (no default), for a minimal config. */
const requiredConfig: Record<string, Record<string, unknown>> = {
  'openid-connect': { issuer: 'https://idp.example.test' },
  acl: { allow: ['a'] },
  'http-log': { http_endpoint: 'http://log.example.test/x' },
  'file-log': { path: '/tmp/portcullis-deck-calls.log' },
  'rate-limiting': { minute: 5 },
  'proxy-cache': { strategy: 'memory' },
  'ip-restriction': { allow: ['10.0.0.0/8'] },
  opentelemetry: { traces_endpoint: 'http://otel.example.test/v1/traces' },
  // provision_key is Kong's `auto` (no default in the schema): a file that wants a stable diff names it.
  oauth2: { enable_client_credentials: true, provision_key: 'deck-provision-key' },
};

const ids = {
  cert: '0f5c3a10-0000-4000-8000-000000000001',
  sni: '0f5c3a10-0000-4000-8000-000000000002',
  consumer: '0f5c3a10-0000-4000-8000-000000000003',
  group: '0f5c3a10-0000-4000-8000-000000000004',
  service: '0f5c3a10-0000-4000-8000-000000000005',
  upstream: '0f5c3a10-0000-4000-8000-000000000006',
  keyAuth: '0f5c3a10-0000-4000-8000-000000000007',
  acl: '0f5c3a10-0000-4000-8000-000000000008',
  route: '0f5c3a10-0000-4000-8000-000000000009',
  target: '0f5c3a10-0000-4000-8000-00000000000a',
  groupPlugin: '0f5c3a10-0000-4000-8000-00000000000b',
  routePlugin: '0f5c3a10-0000-4000-8000-00000000000c',
  service2: '0f5c3a10-0000-4000-8000-00000000000d',
};

describe('decK call sequence against a real gateway', () => {
  let gw: TestGateway;
  let echo: EchoServer;
  let deck: DeckClient;
  before(async () => {
    echo = await startEcho();
    gw = await startGateway({ database: 'sqlite' });
    deck = new DeckClient(gw.adminUrl);
  });
  after(async () => {
    await gw.close();
    await echo.close();
  });

  test('dump of an empty node: every list decK reads answers as it expects', async () => {
    const state = await deck.dump();
    for (const [k, v] of Object.entries(state)) assert.deepEqual(v, [], k);
  });

  test('the schemas decK reads for defaults answer Kong\'s format; defaults match what the entities then read back', async () => {
    for (const e of ['services', 'routes', 'consumers', 'upstreams', 'targets', 'certificates', 'snis', 'consumer_groups', 'keyauth_credentials', 'acls', 'plugins']) {
      const r = await deck.req('GET', `/schemas/${e}`);
      assert.equal(r.status, 200, e);
      assert.ok(Array.isArray(r.body.fields) && r.body.fields.length > 0, e);
    }
    assert.equal((await deck.req('GET', '/schemas/vaults')).status, 404, 'decK reads 404 as "no schema"');
    for (const p of ['key-auth', 'rate-limiting']) {
      const r = await deck.req('GET', `/schemas/plugins/${p}`);
      assert.equal(r.status, 200);
      const protocols = r.body.fields.find((f: Record<string, unknown>) => 'protocols' in f)?.protocols;
      assert.deepEqual(protocols?.default, ['grpc', 'grpcs', 'http', 'https'], 'go-kong getDefaultProtocols');
    }
  });

  test('deck gateway validate --online: each entity of a file not written yet validates against /schemas/.../validate (schema only, as Kong)', async () => {
    const missing = '0f5c3a10-0000-4000-8000-0000000000ff';
    const ok = { message: 'schema validation successful' };
    const checks: [string, unknown][] = [
      ['/schemas/services/validate', { id: ids.service, name: 'v-svc', host: 'v.test' }],
      ['/schemas/routes/validate', { id: ids.route, name: 'v-route', paths: ['/v'], service: { id: missing } }],
      ['/schemas/targets/validate', { target: '10.0.0.1:80', upstream: { id: missing } }],
      ['/schemas/keyauth_credentials/validate', { key: 'v-key', consumer: { id: missing } }],
      ['/schemas/consumer_group_consumers/validate', { consumer_group: { id: missing }, consumer: { id: missing } }],
      ['/schemas/plugins/validate', { name: 'key-auth', route: { id: missing }, config: { key_names: ['apikey'] } }],
    ];
    for (const [path, body] of checks) {
      const r = await deck.req('POST', path, body);
      assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
      assert.deepEqual(r.body, ok);
    }
    const bad = await deck.req('POST', '/schemas/routes/validate', { paths: ['no-slash'], service: { id: missing } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 2);
    assert.ok(bad.body.fields.paths, 'the schema problem is named');
    const badPlugin = await deck.req('POST', '/schemas/plugins/validate', { name: 'key-auth', consumer: { id: missing } });
    assert.equal(badPlugin.status, 400, 'a scope the plugin refuses is still a schema violation');
    assert.equal((await deck.req('GET', '/services')).body.data.length, 0, 'validation wrote nothing');
  });

  test('every bundled plugin: its config filled as decK 3.x fills it (defaults, explicit nulls) is accepted and reads back unchanged', async () => {
    const root = await deck.req('GET', '/');
    const names = Object.keys(root.body.plugins.available_on_server);
    assert.ok(names.length >= 10);
    for (const name of names) {
      const schema = (await deck.req('GET', `/schemas/plugins/${name}`)).body;
      const config = fillConfig(schema.fields.find((f: Record<string, unknown>) => 'config' in f).config, requiredConfig[name] ?? {});
      const id = `5e1f0000-0000-4000-8000-${String(names.indexOf(name)).padStart(12, '0')}`;
      const put = await deck.req('PUT', `/plugins/${id}`, { id, name, config, protocols: ['grpc', 'grpcs', 'http', 'https'], enabled: true });
      assert.equal(put.status, 200, `${name}: ${JSON.stringify(put.body).slice(0, 400)}`);
      // decK's diff compares this with what it sent: nothing may differ, not even a null.
      assert.deepEqual(put.body.config, config, name);
      assert.deepEqual((await deck.req('GET', `/plugins/${id}`)).body.config, config, name);
      assert.equal((await deck.req('DELETE', `/plugins/${id}`)).status, 204);
    }
  });

  test('sync (create): PUT with client ids level by level, target PUT → 404 → POST, memberships by POST; the node serves it', async () => {
    const schema = async (e: string) => (await deck.req('GET', `/schemas/${e}`)).body;
    const { cert, key } = selfSigned('deck.test');
    const expect = async (method: string, path: string, body: unknown, status: number) => {
      const r = await deck.req(method, path, body);
      assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.body)}`);
      return r.body;
    };
    // Level 1: certificates, consumers.
    assert.equal((await expect('PUT', `/certificates/${ids.cert}`, { id: ids.cert, cert, key, tags: ['deck'] }, 200)).id, ids.cert);
    await expect('PUT', `/consumers/${ids.consumer}`, { id: ids.consumer, username: 'ann', tags: ['deck'] }, 200);
    // Level 2: consumer groups, SNIs, services, upstreams, credentials.
    await expect('PUT', `/consumer_groups/${ids.group}`, { id: ids.group, name: 'gold', tags: ['deck'] }, 200);
    await expect('PUT', `/snis/${ids.sni}`, { id: ids.sni, name: 'deck.test', certificate: { id: ids.cert } }, 200);
    const service = fillDefaults(await schema('services'), { id: ids.service, name: 'deck-svc', host: 'deck-up', port: 80, protocol: 'http', tags: ['deck'] });
    assertSentComesBack(service, await expect('PUT', `/services/${ids.service}`, service, 200), 'service');
    const upstream = fillDefaults(await schema('upstreams'), { id: ids.upstream, name: 'deck-up', tags: ['deck'] });
    assert.equal(upstream.healthchecks.active.healthy.interval, 0, 'nested record defaults filled');
    assertSentComesBack(upstream, await expect('PUT', `/upstreams/${ids.upstream}`, upstream, 200), 'upstream');
    await expect('PUT', `/consumers/${ids.consumer}/key-auth/${ids.keyAuth}`, { id: ids.keyAuth, key: 'ann-secret-key', consumer: { id: ids.consumer } }, 200);
    await expect('PUT', `/consumers/${ids.consumer}/acls/${ids.acl}`, { id: ids.acl, group: 'readers', consumer: { id: ids.consumer } }, 200);
    // Level 3: routes, targets, memberships, group plugins.
    const route = fillDefaults(await schema('routes'), { id: ids.route, name: 'deck-route', paths: ['/deck'], service: { id: ids.service }, tags: ['deck'] });
    assertSentComesBack(route, await expect('PUT', `/routes/${ids.route}`, route, 200), 'route');
    const target = fillDefaults(await schema('targets'), { id: ids.target, target: `127.0.0.1:${echo.port}`, upstream: { id: ids.upstream } });
    assert.equal(target.weight, 100);
    await expect('PUT', `/upstreams/${ids.upstream}/targets/${ids.target}`, target, 404);
    const created = await expect('POST', `/upstreams/${ids.upstream}/targets`, target, 201);
    assert.equal(created.id, ids.target, 'the client id is kept');
    assertSentComesBack(target, created, 'target');
    const joined = await expect('POST', `/consumer_groups/${ids.group}/consumers`, { consumer: ids.consumer }, 201);
    assert.equal(joined.consumer_group.id, ids.group);
    assert.equal(joined.consumers[0].id, ids.consumer);
    await expect('PUT', `/consumer_groups/${ids.group}/plugins/${ids.groupPlugin}`, {
      id: ids.groupPlugin, name: 'rate-limiting', config: { minute: 1000, policy: 'local' }, protocols: ['grpc', 'grpcs', 'http', 'https'], enabled: true,
    }, 200);
    // Level 4: plugins.
    await expect('PUT', `/plugins/${ids.routePlugin}`, {
      id: ids.routePlugin, name: 'key-auth', route: { id: ids.route }, config: { key_names: ['apikey'] }, protocols: ['grpc', 'grpcs', 'http', 'https'], enabled: true,
    }, 200);

    // The synced configuration is live: key-auth on the route, balanced to the echo upstream.
    await waitFor(async () => (await fetch(`${gw.proxyUrl}/deck/anything`, { headers: { apikey: 'ann-secret-key' } })).status === 200, 15_000, 'the synced route to answer');
    assert.equal((await fetch(`${gw.proxyUrl}/deck/anything`)).status, 401);
  });

  test('dump after sync: the same ids and references decK compares against its file', async () => {
    const state = await deck.dump();
    assert.deepEqual(state.services.map((s) => s.id), [ids.service]);
    assert.deepEqual(state.routes.map((r) => [r.id, r.service.id]), [[ids.route, ids.service]]);
    assert.deepEqual(state.targets.map((t) => [t.id, t.upstream.id]), [[ids.target, ids.upstream]]);
    assert.deepEqual(state.snis.map((s) => [s.id, s.certificate.id]), [[ids.sni, ids.cert]]);
    assert.deepEqual(state['key-auths'].map((k) => [k.id, k.consumer.id]), [[ids.keyAuth, ids.consumer]]);
    assert.deepEqual(state.acls.map((a) => [a.id, a.group]), [[ids.acl, 'readers']]);
    assert.deepEqual(state.plugins.map((p) => p.id).sort(), [ids.groupPlugin, ids.routePlugin].sort());
    assert.equal(state.plugins.find((p) => p.id === ids.groupPlugin).consumer_group.id, ids.group);
    assert.deepEqual(state.consumer_groups.map((g) => [g.consumer_group.id, g.consumers.map((c: { id: string }) => c.id)]), [[ids.group, [ids.consumer]]]);
    // A second diff finds nothing to change: what decK sent (with the schema defaults) is what it reads.
    const route = state.routes[0];
    const schema = (await deck.req('GET', '/schemas/routes')).body;
    const filled = fillDefaults(schema, { id: ids.route, name: 'deck-route', paths: ['/deck'], service: { id: ids.service }, tags: ['deck'] });
    for (const [k, v] of Object.entries(filled)) assert.deepEqual(route[k], v, `route.${k}`);
    // `select_tags`: the lists filter with tags=a,b (AND).
    const tagged = await deck.req('GET', '/services?size=1000&tags=deck');
    assert.equal(tagged.body.data.length, 1);
    const r = await deck.req('GET', '/services?size=1000&tags=deck,other');
    assert.deepEqual(r.body.data, []);
    const or = await deck.req('GET', '/services?size=1000&tags=deck/other');
    assert.equal(or.body.data.length, 1);
  });

  test('sync (update): PUT replaces in place (200, same id); the target PUT now succeeds', async () => {
    const svc = await deck.req('PUT', `/services/${ids.service}`, { id: ids.service, name: 'deck-svc', host: 'deck-up', port: 80, protocol: 'http', retries: 2, tags: ['deck'] });
    assert.equal(svc.status, 200);
    assert.equal(svc.body.retries, 2);
    const t = await deck.req('PUT', `/upstreams/${ids.upstream}/targets/${ids.target}`, { id: ids.target, target: `127.0.0.1:${echo.port}`, weight: 50, upstream: { id: ids.upstream } });
    assert.equal(t.status, 200);
    assert.equal(t.body.weight, 50);
    assert.equal(t.body.id, ids.target);
  });

  test('sync with a "duplicate": a name now on another id is deleted first, then created with the new id', async () => {
    const clash = await deck.req('PUT', `/services/${ids.service2}`, { id: ids.service2, name: 'deck-svc-2', host: 'deck-up' });
    assert.equal(clash.status, 200);
    // The file now gives `deck-svc-2` another id: creating it before the delete is a 409 ...
    const newId = '0f5c3a10-0000-4000-8000-00000000000e';
    const conflict = await deck.req('PUT', `/services/${newId}`, { id: newId, name: 'deck-svc-2', host: 'deck-up' });
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body.code, 5);
    // ... which is why decK deletes the old row first.
    assert.equal((await deck.req('DELETE', `/services/${ids.service2}`)).status, 204);
    assert.equal((await deck.req('PUT', `/services/${newId}`, { id: newId, name: 'deck-svc-2', host: 'deck-up' })).status, 200);
    assert.equal((await deck.req('DELETE', `/services/${newId}`)).status, 204);
  });

  test('sync (delete), reverse level order: every DELETE 204, then the dump is empty', async () => {
    const del = async (path: string, status = 204) => assert.equal((await deck.req('DELETE', path)).status, status, path);
    await del(`/plugins/${ids.routePlugin}`);
    await del(`/consumer_groups/${ids.group}/plugins/${ids.groupPlugin}`);
    await del(`/consumer_groups/${ids.group}/consumers/${ids.consumer}`);
    await del(`/consumer_groups/${ids.group}/consumers/${ids.consumer}`, 404);
    await del(`/upstreams/${ids.upstream}/targets/${ids.target}`);
    await del(`/routes/${ids.route}`);
    await del(`/consumers/${ids.consumer}/key-auth/${ids.keyAuth}`);
    await del(`/consumers/${ids.consumer}/acls/${ids.acl}`);
    await del(`/upstreams/${ids.upstream}`);
    await del(`/services/${ids.service}`);
    await del(`/snis/${ids.sni}`);
    await del(`/consumer_groups/${ids.group}`);
    await del(`/certificates/${ids.cert}`);
    await del(`/consumers/${ids.consumer}`);
    await del(`/services/${ids.service}`, 204);
    const state = await deck.dump();
    for (const [k, v] of Object.entries(state)) assert.deepEqual(v, [], k);
  });

  test('paging as go-kong follows it: size, offset and next over several pages', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await deck.req('PUT', `/consumers/page-${i}`, { tags: ['paged'] })).status, 200);
    const all = await deck.listAll('/consumers', { size: 2 });
    assert.deepEqual(all.data.map((c) => c.username).sort(), ['page-0', 'page-1', 'page-2', 'page-3', 'page-4']);
    const tagged = await deck.req('GET', '/consumers?size=2&tags=paged');
    assert.match(tagged.body.next, /tags=paged/, 'next carries the tags filter');
    for (let i = 0; i < 5; i++) await deck.req('DELETE', `/consumers/page-${i}`);
  });
});

const deckBinary = ['/usr/bin/deck', '/usr/local/bin/deck'].find((p) => existsSync(p));

describe('the real decK binary (Debian\'s decK 1.4.0)', { skip: deckBinary ? false : 'no decK binary installed (Debian: apt-get install deck)' }, () => {
  let gw: TestGateway;
  let dir: string;
  const deckRun = async (...args: string[]) => {
    const { stdout, stderr } = await run(deckBinary!, [...args, '--kong-addr', gw.adminUrl], { cwd: dir, timeout: 60_000 });
    return stdout + stderr;
  };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-deck-'));
    gw = await startGateway({ database: 'sqlite' });
  });
  after(async () => {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('ping, sync, dump, diff, sync a deletion, reset', async () => {
    assert.match(await deckRun('ping'), /Kong version:\s+3\.10\.0/);
    const file = join(dir, 'kong.yaml');
    const content = `_format_version: "1.1"
services:
- name: svc1
  url: http://127.0.0.1:9
  retries: 3
  routes:
  - name: r1
    paths: [/deck]
    plugins:
    - name: key-auth
      config: { key_names: [apikey] }
consumers:
- username: ann
  keyauth_credentials:
  - key: ann-key
  acls:
  - group: admins
upstreams:
- name: up1
  targets:
  - target: 127.0.0.1:9
    weight: 50
`;
    writeFileSync(file, content);
    const synced = await deckRun('sync', '-s', file);
    assert.match(synced, /Created: 8/);
    const admin = async (path: string) => (await (await fetch(gw.adminUrl + path)).json()) as any;
    assert.equal((await admin('/services/svc1')).retries, 3);
    assert.deepEqual((await admin('/consumers/ann/acls')).data.map((a: { group: string }) => a.group), ['admins']);
    assert.equal((await admin('/upstreams/up1/targets')).data[0].weight, 50);

    await deckRun('dump', '-o', join(dir, 'dump.yaml'));
    const dumped = readFileSync(join(dir, 'dump.yaml'), 'utf8');
    assert.match(dumped, /name: svc1/);
    assert.match(dumped, /key: ann-key/);
    assert.match(dumped, /target: 127\.0\.0\.1:9/);
    assert.match(dumped, /- group: admins/);

    // decK 1.4 fills defaults from its own tables (older than Kong 3.x), so its diff lists
    // fields it does not know; it creates and deletes nothing.
    const diff = await deckRun('diff', '-s', file);
    assert.match(diff, /Created: 0/);
    assert.match(diff, /Deleted: 0/);

    writeFileSync(file, content.replace('  acls:\n  - group: admins\n', ''));
    const deletion = await deckRun('sync', '-s', file);
    assert.match(deletion, /deleting acl-group admins/);
    assert.deepEqual((await admin('/consumers/ann/acls')).data, []);

    await deckRun('reset', '--force');
    for (const path of ['/services', '/routes', '/consumers', '/plugins', '/upstreams', '/key-auths']) assert.deepEqual((await admin(path)).data, [], path);
  });

  test('dump of a DB-less node started from a decK file with consumer-group nesting', async () => {
    const dbless = await startGateway({
      config: {
        services: [{ name: 'dl-svc', url: 'http://127.0.0.1:9', routes: [{ name: 'dl-route', paths: ['/dl'] }] }],
        consumer_groups: [{ name: 'gold', consumers: [{ username: 'ann' }] }],
        consumers: [{ username: 'ann', keyauth_credentials: [{ key: 'dl-key' }] }, { username: 'bob', groups: [{ name: 'gold' }] }],
      },
    });
    try {
      const { stdout } = await run(deckBinary!, ['dump', '-o', '-', '--kong-addr', dbless.adminUrl], { cwd: dir, timeout: 60_000 });
      assert.match(stdout, /name: dl-svc/);
      assert.match(stdout, /name: dl-route/);
      assert.match(stdout, /username: ann/);
      assert.match(stdout, /key: dl-key/);
      const members = (await (await fetch(`${dbless.adminUrl}/consumer_groups/gold`)).json()) as { consumers: { username: string }[] };
      assert.deepEqual(members.consumers.map((c) => c.username).sort(), ['ann', 'bob']);
    } finally {
      await dbless.close();
    }
  });
});
