/**
 * proxy-cache end to end: a decK file with the plugin, a real gateway (DB-less) and an upstream
 * whose answers the requests shape (`status`, `type`, `cc` query arguments) and that counts what
 * reaches it, so a hit is seen both in the headers and in the upstream's count.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { adminJson, startGateway, type TestGateway } from './helpers/gateway.ts';
import { testClient, type TestResponse } from './helpers/http.ts';
import { startGatewayProcess } from './helpers/process.ts';

const ROUTE_PLUGIN_ID = '7a0b5f6e-9d1c-4c1e-8d6a-2b9f0e4d1c01';

/** Every request is answered with a fresh serial number, so a replayed body is recognisable. */
let served = 0;
const upstream = http.createServer((req, res) => {
  served++;
  const url = new URL(req.url ?? '/', 'http://up.local');
  const status = Number(url.searchParams.get('status') ?? 200);
  const headers: Record<string, string> = { 'content-type': url.searchParams.get('type') ?? 'application/json', 'x-upstream': 'yes' };
  const cc = url.searchParams.get('cc');
  if (cc !== null) headers['cache-control'] = cc;
  const body = JSON.stringify({ serial: served, path: url.pathname, variant: req.headers['x-variant'] ?? null });
  res.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
});

let gw: TestGateway;
const client = testClient(() => gw.proxyUrl);
const call = (path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<TestResponse> => client.call(path, { method, headers });

const cache = (config: object = {}) => ({ name: 'proxy-cache', config: { strategy: 'memory', ...config } });

before(async () => {
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as AddressInfo).port;
  const route = (name: string, plugins: object[], extra: object = {}) => ({ name, paths: [`/${name}`], strip_path: false, plugins, ...extra });
  gw = await startGateway({
    config: {
      _format_version: '3.0',
      services: [{
        name: 'up', url: `http://127.0.0.1:${port}`,
        routes: [
          route('basic', [{ ...cache(), id: ROUTE_PLUGIN_ID }]),
          route('filters', [cache({ response_code: [200, 418], content_type: ['application/xml', 'text/plain; charset=utf-8'] })]),
          route('expiry', [cache({ cache_ttl: 1 })]),
          route('refresh', [cache({ cache_ttl: 1, storage_ttl: 60 })]),
          route('cc', [cache({ cache_control: true })]),
          route('vary', [cache({ vary_headers: ['X-Variant'], vary_query_params: ['v'] })]),
          route('anycase', [cache({ ignore_uri_case: true })]),
          route('case', [cache()]),
          route('quiet', [cache({ response_headers: { age: false, 'X-Cache-Status': false, 'X-Cache-Key': false } })]),
          route('auth', [{ name: 'key-auth' }, cache()]),
          route('per-consumer', [{ name: 'key-auth' }]),
          route('methods', [cache({ request_method: ['GET', 'POST'] })]),
        ],
      }],
      consumers: [
        { username: 'alice', keyauth_credentials: [{ key: 'alice-key' }] },
        { username: 'bob', keyauth_credentials: [{ key: 'bob-key' }] },
        // A consumer-scoped instance: only carol's requests are cached on /per-consumer.
        { username: 'carol', keyauth_credentials: [{ key: 'carol-key' }], plugins: [cache()] },
      ],
    },
  });
});

after(async () => {
  await client.close();
  await gw?.close();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

/** Two requests: the first a Miss reaching the upstream, the second a Hit that does not. */
async function missThenHit(path: string, headers: Record<string, string> = {}): Promise<[TestResponse, TestResponse]> {
  const before = served;
  const miss = await call(path, headers);
  assert.equal(miss.headers['x-cache-status'], 'Miss', `${path}: first`);
  assert.equal(served, before + 1);
  const hit = await call(path, headers);
  assert.equal(hit.headers['x-cache-status'], 'Hit', `${path}: second`);
  assert.equal(served, before + 1, `${path}: the hit did not reach the upstream`);
  return [miss, hit];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('proxy-cache: a Miss is stored and the next request is a Hit with the same status, headers and body', async () => {
  const [miss, hit] = await missThenHit('/basic/a');
  assert.equal(hit.status, 200);
  assert.equal(hit.text, miss.text);
  assert.equal(hit.headers['content-type'], 'application/json');
  assert.equal(hit.headers['x-upstream'], 'yes');
  assert.equal(hit.headers['content-length'], String(Buffer.byteLength(miss.text)));
  assert.match(String(miss.headers['x-cache-key']), /^[0-9a-f]{64}$/);
  assert.equal(hit.headers['x-cache-key'], miss.headers['x-cache-key']);
  assert.equal(miss.headers.age, undefined);
  assert.equal(hit.headers.age, '0');
  // The hit carries this request's id, not the stored one.
  assert.notEqual(hit.headers['x-request-id'], miss.headers['x-request-id']);
  // The query is part of the key.
  assert.equal((await call('/basic/a?x=1')).headers['x-cache-status'], 'Miss');
});

test('proxy-cache: Age grows; past cache_ttl (storage_ttl longer) a Refresh, stored again', async () => {
  const [miss] = await missThenHit('/refresh/age');
  let r: TestResponse;
  const ages = new Set<string>();
  const deadline = Date.now() + 4000;
  do {
    await sleep(200);
    r = await call('/refresh/age');
    if (r.headers['x-cache-status'] === 'Hit') ages.add(String(r.headers.age));
  } while (r.headers['x-cache-status'] === 'Hit' && Date.now() < deadline);
  // Whole seconds, as Kong: hits at Age 0 and 1, a Refresh once the entry is more than 1 s old.
  assert.ok(ages.has('1') && [...ages].every((a) => a === '0' || a === '1'), [...ages].join());
  assert.equal(r.headers['x-cache-status'], 'Refresh');
  assert.notEqual(r.text, miss.text, 'refreshed from the upstream');
  const again = await call('/refresh/age');
  assert.equal(again.headers['x-cache-status'], 'Hit');
  assert.equal(again.text, r.text, 'the refreshed response is what is cached now');
});

test('proxy-cache: entries expire after cache_ttl when no storage_ttl is set (a Miss again)', async () => {
  await missThenHit('/expiry/x');
  await sleep(1100);
  assert.equal((await call('/expiry/x')).headers['x-cache-status'], 'Miss');
});

test('proxy-cache: response_code and content_type filters; Bypass otherwise', async () => {
  // Defaults: 200/301/404 and text/plain, application/json — exactly, parameters included.
  assert.equal((await call('/basic/s?status=500')).headers['x-cache-status'], 'Bypass');
  assert.equal((await call('/basic/t?type=application/xml')).headers['x-cache-status'], 'Bypass');
  assert.equal((await call('/basic/p?type=application/json;%20charset=utf-8')).headers['x-cache-status'], 'Bypass');
  const before = served;
  assert.equal((await call('/basic/p?type=application/json;%20charset=utf-8')).headers['x-cache-status'], 'Bypass');
  assert.equal(served, before + 1, 'a bypassed response is not stored');
  await missThenHit('/basic/404?status=404');
  // Configured lists.
  const [, teapot] = await missThenHit('/filters/x?status=418&type=application/xml');
  assert.equal(teapot.status, 418);
  await missThenHit('/filters/y?type=text/plain;%20charset=utf-8');
  assert.equal((await call('/filters/z?type=application/json')).headers['x-cache-status'], 'Bypass');
  assert.equal((await call('/filters/w?status=404&type=application/xml')).headers['x-cache-status'], 'Bypass');
});

test('proxy-cache: request_method (POST cached when listed); other methods Bypass without a key', async () => {
  const post = await call('/basic/m', {}, 'POST');
  assert.equal(post.headers['x-cache-status'], 'Bypass');
  assert.equal(post.headers['x-cache-key'], undefined);
  const before = served;
  assert.equal((await call('/methods/m', {}, 'POST')).headers['x-cache-status'], 'Miss');
  const hit = await call('/methods/m', {}, 'POST');
  assert.equal(hit.headers['x-cache-status'], 'Hit');
  assert.equal(served, before + 1);
});

test('proxy-cache: cache_control — response max-age/s-maxage give the TTL; private, no-store, no-cache, no TTL: Bypass', async () => {
  const [miss] = await missThenHit('/cc/a?cc=max-age%3D60');
  const key = String(miss.headers['x-cache-key']);
  assert.equal((await adminJson(gw.adminUrl, 'GET', `/proxy-cache/${key}`)).body.ttl, 60);
  const [sMiss] = await missThenHit('/cc/s?cc=public,%20max-age%3D60,%20s-maxage%3D30');
  assert.equal((await adminJson(gw.adminUrl, 'GET', `/proxy-cache/${sMiss.headers['x-cache-key']}`)).body.ttl, 30);
  for (const cc of ['private,%20max-age%3D60', 'no-store,%20max-age%3D60', 'no-cache', 'max-age%3D0', 'public']) {
    assert.equal((await call(`/cc/b?cc=${cc}`)).headers['x-cache-status'], 'Bypass', cc);
  }
  // Request directives: no-cache bypasses; a max-age the entry is younger than is a Hit.
  assert.equal((await call('/cc/a?cc=max-age%3D60', { 'cache-control': 'no-cache' })).headers['x-cache-status'], 'Bypass');
  assert.equal((await call('/cc/a?cc=max-age%3D60', { 'cache-control': 'max-age=3600' })).headers['x-cache-status'], 'Hit');
  // only-if-cached with nothing cached: 504.
  assert.equal((await call('/cc/none', { 'cache-control': 'only-if-cached' })).status, 504);
});

test('proxy-cache: without cache_control the Cache-Control headers are ignored', async () => {
  await missThenHit('/basic/nocc?cc=no-store');
  assert.equal((await call('/basic/nocc?cc=no-store', { 'cache-control': 'no-cache' })).headers['x-cache-status'], 'Hit');
});

test('proxy-cache: vary_headers and vary_query_params give different keys; other parameters do not', async () => {
  const [a] = await missThenHit('/vary/x?v=1', { 'x-variant': 'a' });
  const [b] = await missThenHit('/vary/x?v=1', { 'x-variant': 'b' });
  assert.notEqual(a.headers['x-cache-key'], b.headers['x-cache-key']);
  assert.equal(JSON.parse(b.text).variant, 'b');
  await missThenHit('/vary/x?v=2', { 'x-variant': 'a' });
  // A parameter outside vary_query_params is not part of the key.
  const other = await call('/vary/x?v=1&other=9', { 'x-variant': 'a' });
  assert.equal(other.headers['x-cache-status'], 'Hit');
  assert.equal(other.text, a.text);
  assert.equal(other.headers['x-cache-key'], a.headers['x-cache-key']);
});

test('proxy-cache: ignore_uri_case folds the path into one key; without it the case counts', async () => {
  const [miss] = await missThenHit('/anycase/Kong');
  const upper = await call('/anycase/KONG');
  assert.equal(upper.headers['x-cache-status'], 'Hit');
  assert.equal(upper.headers['x-cache-key'], miss.headers['x-cache-key']);
  await missThenHit('/case/kong');
  assert.equal((await call('/case/KONG')).headers['x-cache-status'], 'Miss');
});

test('proxy-cache: response_headers off hides Age and the X-Cache headers, Kong-Debug shows them', async () => {
  const before = served;
  const first = await call('/quiet/x');
  const second = await call('/quiet/x');
  assert.equal(served, before + 1, 'the second was served from the cache');
  for (const r of [first, second]) {
    assert.equal(r.headers['x-cache-status'], undefined);
    assert.equal(r.headers['x-cache-key'], undefined);
    assert.equal(r.headers.age, undefined);
  }
  const debug = await call('/quiet/x', { 'kong-debug': '1' });
  assert.equal(debug.headers['x-cache-status'], 'Hit');
  assert.match(String(debug.headers['x-cache-key']), /^[0-9a-f]{64}$/);
  assert.equal(debug.headers.age, '0');
});

test('proxy-cache: one cache per consumer; unauthenticated requests never reach the cache', async () => {
  const denied = await call('/auth/x');
  assert.equal(denied.status, 401);
  assert.equal(denied.headers['x-cache-status'], undefined);
  const [alice] = await missThenHit('/auth/x', { apikey: 'alice-key' });
  const [bob] = await missThenHit('/auth/x', { apikey: 'bob-key' });
  assert.notEqual(alice.headers['x-cache-key'], bob.headers['x-cache-key']);
});

test('proxy-cache: a consumer-scoped instance caches only that consumer\'s requests', async () => {
  await missThenHit('/per-consumer/x', { apikey: 'carol-key' });
  const bob = await call('/per-consumer/x', { apikey: 'bob-key' });
  assert.equal(bob.status, 200);
  assert.equal(bob.headers['x-cache-status'], undefined);
});

test('proxy-cache Admin API: GET an entry in Kong\'s shape, DELETE one, DELETE all; 404s', async () => {
  const [miss] = await missThenHit('/basic/admin');
  const key = String(miss.headers['x-cache-key']);
  const got = await adminJson(gw.adminUrl, 'GET', `/proxy-cache/${key}`);
  assert.equal(got.status, 200);
  assert.equal(got.body.status, 200);
  assert.equal(got.body.body, miss.text);
  assert.equal(got.body.body_len, Buffer.byteLength(miss.text));
  assert.equal(got.body.headers['content-type'], 'application/json');
  assert.equal(got.body.version, 1);
  assert.equal(got.body.ttl, 300);
  assert.ok(Math.abs(got.body.timestamp - Date.now() / 1000) < 5);
  const byPlugin = await adminJson(gw.adminUrl, 'GET', `/proxy-cache/${ROUTE_PLUGIN_ID}/caches/${key}`);
  assert.deepEqual(byPlugin, got);
  assert.equal((await adminJson(gw.adminUrl, 'GET', `/proxy-cache/7a0b5f6e-9d1c-4c1e-8d6a-2b9f0e4d1c99/caches/${key}`)).status, 404);
  assert.deepEqual(await adminJson(gw.adminUrl, 'GET', `/proxy-cache/${'0'.repeat(64)}`), { status: 404, body: { message: 'Not found' } });

  assert.equal((await adminJson(gw.adminUrl, 'DELETE', `/proxy-cache/${key}`)).status, 204);
  assert.equal((await adminJson(gw.adminUrl, 'DELETE', `/proxy-cache/${key}`)).status, 404);
  assert.equal((await adminJson(gw.adminUrl, 'GET', `/proxy-cache/${key}`)).status, 404);
  await missThenHit('/basic/admin');

  assert.equal((await adminJson(gw.adminUrl, 'DELETE', `/proxy-cache/${ROUTE_PLUGIN_ID}/caches/${key}`)).status, 204);
  assert.equal((await adminJson(gw.adminUrl, 'DELETE', `/proxy-cache/${ROUTE_PLUGIN_ID}/caches/${key}`)).status, 404);
  await missThenHit('/basic/admin');
  await missThenHit('/case/purged');

  // Purge all: every plugin's entries go; the next requests are Misses.
  assert.equal((await adminJson(gw.adminUrl, 'DELETE', '/proxy-cache')).status, 204);
  assert.equal((await call('/basic/admin')).headers['x-cache-status'], 'Miss');
  assert.equal((await call('/case/purged')).headers['x-cache-status'], 'Miss');
});

test('proxy-cache config: Kong\'s checks through the Admin API; an unknown shared dict is refused naming the field', async () => {
  const validate = (config: object) => adminJson(gw.adminUrl, 'POST', '/schemas/plugins/validate', { name: 'proxy-cache', config });
  assert.equal((await validate({ strategy: 'memory' })).status, 200);
  const dict = await validate({ strategy: 'memory', memory: { dictionary_name: 'my_cache' } });
  assert.equal(dict.status, 400);
  assert.match(JSON.stringify(dict.body), /dictionary_name.*missing shared dict 'my_cache'/);
  const none = await validate({});
  assert.equal(none.status, 400);
  assert.match(JSON.stringify(none.body), /strategy.*required field missing/);
  const codes = await validate({ strategy: 'memory', response_code: [99] });
  assert.match(JSON.stringify(codes.body), /value should be between 100 and 900/);
  const schema = await adminJson(gw.adminUrl, 'GET', '/schemas/plugins/proxy-cache');
  assert.equal(schema.status, 200);
  assert.deepEqual(schema.body.entity_checks, [{ custom_entity_check: { field_sources: ['config'] } }]);
});

test('proxy-cache with 2 workers: one cache for the node — every worker hits what another stored, the Admin API sees and purges it', async () => {
  const port = (upstream.address() as AddressInfo).port;
  const config = JSON.stringify({
    _format_version: '3.0',
    services: [{ name: 'up', url: `http://127.0.0.1:${port}`, routes: [{ name: 'w', paths: ['/workers'], strip_path: false, plugins: [cache()] }] }],
  });
  // Generous: a node of three processes loads slowly on a busy machine.
  const node = await startGatewayProcess({ config, workers: 2, startTimeoutMs: 120_000 });
  // A fresh connection per request: the kernel spreads them over both workers.
  const fresh = async (): Promise<{ status: string; key: string; text: string }> => {
    const a = new Agent({ pipelining: 0 });
    try {
      const r = await request(`${node.proxyUrl}/workers/x`, { dispatcher: a, headers: { connection: 'close' } });
      return { status: String(r.headers['x-cache-status']), key: String(r.headers['x-cache-key']), text: await r.body.text() };
    } finally {
      await a.close();
    }
  };
  try {
    const before = served;
    const miss = await fresh();
    assert.equal(miss.status, 'Miss');
    for (let i = 0; i < 20; i++) {
      const r = await fresh();
      assert.equal(r.status, 'Hit', `request ${i + 2}`);
      assert.equal(r.text, miss.text);
    }
    assert.equal(served, before + 1, 'only the first request reached the upstream');
    const got = await adminJson(node.adminUrl, 'GET', `/proxy-cache/${miss.key}`);
    assert.equal(got.status, 200);
    assert.equal(got.body.body, miss.text);
    assert.equal((await adminJson(node.adminUrl, 'DELETE', '/proxy-cache')).status, 204);
    assert.equal((await fresh()).status, 'Miss');
    for (let i = 0; i < 10; i++) assert.equal((await fresh()).status, 'Hit');
    assert.equal(served, before + 2);
  } finally {
    await node.stop();
  }
});
