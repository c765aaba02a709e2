/** proxy-cache units: schema, Kong's cache key, the cacheability rules, storage layout, handlers on the test adapter, Admin API handlers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import plugin from './index.ts';
import { proxyCacheSchema, KONG_SHARED_DICTS } from './schema.ts';
import { buildCacheKey, headersKey, kongQueryArgs, paramsKey, prefixUuid, requestLineUri } from './cache-key.ts';
import { cacheableRequest, contentTypeMatches, parseDirectives, parseMediaType, resourceTtl, responseTtl } from './rules.ts';
import { CACHE_VERSION, CacheStore, entriesFor, purgeAll, purgeKey, storageKey, type CacheEntry } from './storage.ts';
import { proxyCacheAdminRoutes } from './admin.ts';
import { readableErrorMap, zodIssues } from '../../../config/issues.ts';
import { createMemoryKv } from '../../../storage/kv.ts';
import { makeCtx, makeDeps, silentLogger, type FakeContext, type FakeRequest } from '../../../../test/helpers/plugin-ctx.ts';
import type { KeyValueStore } from '../../../storage/ports.ts';
import type { PluginHandlers, Reply } from '../../sdk.ts';

const issues = (config: unknown): string[][] => {
  const r = proxyCacheSchema.safeParse(config, { error: readableErrorMap });
  return r.success ? [] : zodIssues(r.error).map((i) => [i.path, i.message]);
};

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

test('schema: Kong\'s defaults; strategy is required', () => {
  assert.deepEqual(proxyCacheSchema.parse({ strategy: 'memory' }), {
    response_code: [200, 301, 404],
    request_method: ['GET', 'HEAD'],
    content_type: ['text/plain', 'application/json'],
    cache_ttl: 300,
    strategy: 'memory',
    cache_control: false,
    ignore_uri_case: false,
    storage_ttl: null,
    memory: { dictionary_name: 'kong_db_cache' },
    vary_query_params: null,
    vary_headers: null,
    response_headers: { age: true, 'X-Cache-Status': true, 'X-Cache-Key': true },
  });
  assert.deepEqual(issues({}), [['strategy', 'required field missing']]);
  assert.deepEqual(issues({ strategy: 'redis' }), [['strategy', 'expected one of: memory']]);
});

test('schema: Kong\'s checks and messages', () => {
  const base = { strategy: 'memory' };
  assert.deepEqual(issues({ ...base, response_code: [] }), [['response_code', 'length must be at least 1']]);
  assert.deepEqual(issues({ ...base, response_code: [99, 901, 200] }), [
    ['response_code[0]', 'value should be between 100 and 900'],
    ['response_code[1]', 'value should be between 100 and 900'],
  ]);
  assert.deepEqual(issues({ ...base, response_code: [200.5] }), [['response_code[0]', 'expected an integer']]);
  assert.deepEqual(issues({ ...base, request_method: ['GET', 'DELETE'] }), [['request_method[1]', 'expected one of: HEAD, GET, POST, PATCH, PUT']]);
  assert.deepEqual(issues({ ...base, cache_ttl: 0 }), [['cache_ttl', 'value must be greater than 0']]);
  assert.deepEqual(issues({ ...base, storage_ttl: -1 }), [['storage_ttl', 'value should be at least 0']]);
  assert.deepEqual(issues({ ...base, response_headers: { age: false, 'X-Cache-Status': false, 'X-Cache-Key': false } }), []);
  assert.deepEqual(issues({ ...base, response_headers: { 'x-cache-status': false } }), [['response_headers.x-cache-status', 'unknown field']]);
  assert.deepEqual(issues({ ...base, bogus: 1 }), [['bogus', 'unknown field']]);
  assert.deepEqual(issues({ ...base, vary_query_params: ['a'], vary_headers: ['X-A'], ignore_uri_case: true, cache_control: true, storage_ttl: 0 }), []);
});

test('schema: memory.dictionary_name accepts the shared dicts of a default Kong, refuses others naming the field', () => {
  for (const name of KONG_SHARED_DICTS) assert.deepEqual(issues({ strategy: 'memory', memory: { dictionary_name: name } }), [], name);
  assert.deepEqual(issues({ strategy: 'memory', memory: { dictionary_name: 'my_cache' } }), [['memory.dictionary_name', "missing shared dict 'my_cache'"]]);
});

test('definition: Kong\'s priority, scopes and protocols; the Admin API routes', () => {
  assert.equal(plugin.priority, 100);
  assert.equal(plugin.scopes?.consumer, true);
  assert.equal(plugin.scopes?.consumer_group, false);
  assert.ok(plugin.protocols?.includes('http') && plugin.protocols.includes('https') && !plugin.protocols.includes('tcp'));
  assert.deepEqual(plugin.adminRoutes?.map((r) => `${r.method} ${r.path}`), [
    'DELETE /proxy-cache',
    'GET /proxy-cache/:cache_key',
    'DELETE /proxy-cache/:cache_key',
    'GET /proxy-cache/:plugin_id/caches/:cache_key',
    'DELETE /proxy-cache/:plugin_id/caches/:cache_key',
  ]);
});

test('cache key: prefix_uuid as Kong', () => {
  assert.equal(prefixUuid('c1', 'r1'), 'c1:r1');
  assert.equal(prefixUuid(null, 'r1'), 'r1');
  assert.equal(prefixUuid('c1', null), 'default');
  assert.equal(prefixUuid(null, null), 'default');
});

test('cache key: params_key and headers_key as Kong\'s cache_key spec', () => {
  const q = (raw: string) => kongQueryArgs(raw);
  assert.equal(paramsKey(q('b=2&a=1'), null), 'a=1:b=2');
  assert.equal(paramsKey(q('b=2&a=1'), []), 'a=1:b=2');
  assert.equal(paramsKey(q(''), null), '');
  assert.equal(paramsKey(q(''), ['a']), '');
  assert.equal(paramsKey(q('a=1&b=2'), ['a']), 'a=1');
  assert.equal(paramsKey(q('a=2&a=1'), ['a']), 'a=1,2');
  assert.equal(paramsKey(q('a=1&a=2&b=2'), ['a', 'b', 'c']), 'a=1,2:b=2');
  assert.equal(paramsKey(q('flag&x=a+b%21'), null), 'flag:x=a b!');
  assert.equal(headersKey({ a: '1', b: '2' }, null), '');
  assert.equal(headersKey({ a: '1', b: '2' }, []), '');
  assert.equal(headersKey({ a: '1', b: '2' }, ['a']), 'a=1');
  assert.equal(headersKey({ a: ['2', '1'] }, ['a']), 'a=1,2');
  assert.equal(headersKey({ a: '1', b: '2' }, ['a', 'b', 'c']), 'a=1:b=2');
  // Kong's header table: case-insensitive, `_` read as `-`; the configured name is what is keyed.
  assert.equal(headersKey({ 'x-api-version': 'v2' }, ['X_Api_Version']), 'X_Api_Version=v2');
});

test('cache key: nginx\'s request line without its query; sha256 hex of Kong\'s five parts', () => {
  assert.equal(requestLineUri('GET', '/a/B', '', false, false), 'GET /a/B HTTP/1.1');
  assert.equal(requestLineUri('GET', '/a/B', 'x=1', false, false), 'GET /a/B');
  assert.equal(requestLineUri('GET', '/a/B', '', true, false), 'GET /a/B HTTP/2.0');
  assert.equal(requestLineUri('GET', '/a/B', '', false, true), 'get /a/b http/1.1');
  const key = buildCacheKey({
    consumerId: 'c1', routeId: 'r1', method: 'GET', uri: 'GET /p', query: kongQueryArgs('b=1&a=2'),
    headers: { 'x-v': '3' }, varyQueryParams: null, varyHeaders: ['x-v'],
  });
  assert.match(key, /^[0-9a-f]{64}$/);
  assert.equal(key, sha('c1:r1|GET|GET /p|a=2:b=1|x-v=3'));
});

test('rules: Cache-Control directives as Kong parses them', () => {
  assert.deepEqual(parseDirectives('no-cache, Max-Age=60, private="x", s-maxage=0x10'), { 'no-cache': true, 'max-age': 60, private: '"x"', 's-maxage': 16 });
  assert.deepEqual(parseDirectives(['max-age=1', 'no-store']), { 'max-age': 1, 'no-store': true });
  assert.deepEqual(parseDirectives(undefined), {});
});

test('rules: resource TTL from s-maxage, max-age, then Expires; never negative', () => {
  const now = 1_700_000_000;
  assert.equal(resourceTtl(parseDirectives('max-age=60, s-maxage=10'), undefined, now), 10);
  assert.equal(resourceTtl(parseDirectives('max-age=60'), new Date((now + 999) * 1000).toUTCString(), now), 60);
  assert.equal(resourceTtl({}, new Date((now + 30) * 1000).toUTCString(), now), 30);
  assert.equal(resourceTtl({}, new Date((now - 30) * 1000).toUTCString(), now), 0);
  assert.equal(resourceTtl({}, 'not a date', now), 0);
  assert.equal(resourceTtl({}, undefined, now), 0);
  assert.equal(resourceTtl(parseDirectives('max-age=abc'), undefined, now), 0);
});

test('rules: requests — method list; with cache_control, no-store and no-cache bypass', () => {
  assert.equal(cacheableRequest('GET', ['GET', 'HEAD'], false, {}), true);
  assert.equal(cacheableRequest('POST', ['GET', 'HEAD'], false, {}), false);
  assert.equal(cacheableRequest('GET', ['GET'], false, parseDirectives('no-store')), true);
  assert.equal(cacheableRequest('GET', ['GET'], true, parseDirectives('no-store')), false);
  assert.equal(cacheableRequest('GET', ['GET'], true, parseDirectives('no-cache')), false);
  assert.equal(cacheableRequest('GET', ['GET'], true, parseDirectives('max-age=5')), true);
});

test('rules: content types match exactly, parameters included; wildcards', () => {
  assert.deepEqual(parseMediaType('Application/JSON; Charset=utf-8'), { type: 'application', subtype: 'json', params: new Map([['charset', 'utf-8']]) });
  assert.equal(parseMediaType('application/xml;'), null);
  assert.equal(parseMediaType(' application/json'), null);
  assert.equal(contentTypeMatches('application/json', ['text/plain', 'application/json']), true);
  assert.equal(contentTypeMatches('APPLICATION/JSON', ['application/json']), true);
  assert.equal(contentTypeMatches('application/json; charset=utf-8', ['application/json']), false);
  assert.equal(contentTypeMatches('application/json; charset=utf-8', ['application/json; charset=utf-8']), true);
  assert.equal(contentTypeMatches('application/json; charset=UTF-8', ['application/json; charset=utf-8']), false);
  assert.equal(contentTypeMatches('application/xml', ['*/*']), true);
  assert.equal(contentTypeMatches('application/xml', ['application/*']), true);
  assert.equal(contentTypeMatches('text/xml', ['application/*']), false);
  assert.equal(contentTypeMatches('application/xml', ['application/xml; charset=utf-8']), false);
  assert.equal(contentTypeMatches('application/xml;', ['application/xml']), false);
  assert.equal(contentTypeMatches('application/xml', ['application/xml;', 'bad']), false);
});

test('rules: responses — status, single Content-Type, and with cache_control the directives and TTL', () => {
  const conf = { response_code: [200], content_type: ['application/json'], cache_control: false, cache_ttl: 300 };
  const res = { status: 200, contentType: 'application/json', cacheControl: undefined, expires: undefined };
  assert.equal(responseTtl(res, conf, 0), 300);
  assert.equal(responseTtl({ ...res, status: 404 }, conf, 0), null);
  assert.equal(responseTtl({ ...res, contentType: undefined }, conf, 0), null);
  assert.equal(responseTtl({ ...res, contentType: ['application/json', 'application/json'] }, conf, 0), null);
  assert.equal(responseTtl({ ...res, cacheControl: 'no-store' }, conf, 0), 300, 'ignored without cache_control');
  const cc = { ...conf, cache_control: true };
  assert.equal(responseTtl({ ...res, cacheControl: 'max-age=60' }, cc, 0), 60);
  assert.equal(responseTtl({ ...res, cacheControl: 'public, s-maxage=5, max-age=60' }, cc, 0), 5);
  assert.equal(responseTtl(res, cc, 0), null, 'no TTL: not cacheable');
  for (const d of ['private, max-age=60', 'no-store, max-age=60', 'no-cache, max-age=60', 'max-age=0']) assert.equal(responseTtl({ ...res, cacheControl: d }, cc, 0), null, d);
});

function entry(over: Partial<CacheEntry> = {}): CacheEntry {
  const body = over.body_base64 === undefined ? Buffer.from('{"cached":true}') : Buffer.from(over.body_base64, 'base64');
  return { status: 200, headers: { 'content-type': 'application/json', 'x-up': 'u' }, body_base64: body.toString('base64'), body_len: body.length, timestamp: 1000, ttl: 300, version: CACHE_VERSION, ...over };
}

test('storage: key layout, per-plugin entries, lookups and purges across plugins', async () => {
  const kv = createMemoryKv();
  const k1 = 'a'.repeat(64);
  const k2 = 'b'.repeat(64);
  const s1 = new CacheStore(kv, 'p1');
  const s2 = new CacheStore(kv, 'p2');
  await s1.store(k1, entry(), 10);
  await s2.store(k1, entry({ status: 404 }), 10);
  await s1.store(k2, entry(), 0);
  assert.equal(storageKey(k1, 'p1'), `proxy-cache:${k1}:p1`);
  assert.equal(JSON.parse((await kv.get(`proxy-cache:${k1}:p1`))!).version, 1);
  assert.deepEqual(s1.fetch(k1), { kind: 'entry', entry: entry() });
  assert.deepEqual(s1.fetch('c'.repeat(64)), { kind: 'none' });
  await kv.set(storageKey('d'.repeat(64), 'p1'), 'not json');
  assert.deepEqual(s1.fetch('d'.repeat(64)), { kind: 'corrupt' });
  assert.deepEqual((await entriesFor(kv, k1)).map((e) => [e.pluginId, e.entry.status]), [['p1', 200], ['p2', 404]]);
  assert.equal(await purgeKey(kv, k1), 2);
  assert.equal(await purgeKey(kv, k1), 0);
  assert.deepEqual(s1.fetch(k2), { kind: 'entry', entry: entry() });
  await kv.set('other:key', 'kept');
  await purgeAll(kv);
  assert.deepEqual(s1.fetch(k2), { kind: 'none' });
  assert.equal(await kv.get('other:key'), 'kept');
});

test('storage: a store without peek is read asynchronously', async () => {
  const mem = createMemoryKv();
  const kv: KeyValueStore = { ...mem, peek: undefined };
  const s = new CacheStore(kv, 'p1');
  await s.store('a'.repeat(64), entry(), 10);
  const found = s.fetch('a'.repeat(64));
  assert.ok(found instanceof Promise);
  assert.deepEqual(await found, { kind: 'entry', entry: entry() });
});

// --- handlers, on the test adapter's context

interface Harness {
  kv: KeyValueStore;
  h: PluginHandlers;
  now: { ms: number };
}

async function harness(config: object): Promise<Harness> {
  const kv = createMemoryKv();
  const now = { ms: 1_000_000 };
  const deps = { ...makeDeps('proxy-cache', () => now.ms), sharedKv: kv };
  const h = await plugin.create(proxyCacheSchema.parse({ strategy: 'memory', ...config }), deps);
  return { kv, h, now };
}

const ctxOf = (hs: Harness, req: FakeRequest = {}): FakeContext => makeCtx({ route: { id: 'r1' }, now: () => hs.now.ms, ...req });

async function access(hs: Harness, ctx: FakeContext): Promise<Reply | undefined> {
  return (await hs.h.access!(ctx)) ?? undefined;
}

/** A request through every phase, the upstream answering `status`, `headers`, `body`. */
async function proxied(hs: Harness, ctx: FakeContext, status: number, headers: Record<string, string>, body: string): Promise<void> {
  assert.equal(await access(hs, ctx), undefined, 'proxied');
  // The kernel's own per-request headers are on the response by then; none of them is stored.
  ctx.setResponse(status, false, { ...headers, 'x-cache-status': 'Miss', 'x-request-id': 'r', 'x-kong-upstream-latency': '1' });
  await hs.h.response!(ctx);
  assert.equal(hs.h.log, undefined, 'nothing is left for the log phase');
  if (ctx.bodyBuffered) await hs.h.body!(ctx, Buffer.from(body));
}

test('handlers: miss → stored → hit with the stored status, headers and body, Age and the cache headers', async () => {
  const hs = await harness({});
  const first = ctxOf(hs, { path: '/p' });
  await proxied(hs, first, 200, { 'content-type': 'application/json', 'x-up': 'u' }, '{"n":1}');
  assert.equal(first.downstream.get('x-cache-status'), 'Miss');
  const key = first.downstream.get('x-cache-key') as string;
  assert.equal(key, sha('r1|GET|GET /p HTTP/1.1||'));
  assert.ok(first.bodyBuffered);
  const stored = JSON.parse((await hs.kv.get(storageKey(key, 'proxy-cache-plugin-id')))!);
  assert.deepEqual(stored.headers, { 'content-type': 'application/json', 'x-up': 'u' }, 'hop-by-hop, per-request and cache headers are not stored');
  assert.equal(stored.timestamp, 1000);

  hs.now.ms += 7_500;
  const second = ctxOf(hs, { path: '/p' });
  const reply = await access(hs, second);
  assert.ok(reply);
  assert.equal(reply.status, 200);
  assert.equal(String(reply.body), '{"n":1}');
  assert.deepEqual(reply.headers, { 'content-type': 'application/json', 'x-up': 'u', age: '7', 'x-cache-status': 'Hit', 'x-cache-key': key });
  // The hit is a local reply: the response phase leaves it alone.
  second.setResponse(200, true, {});
  await hs.h.response!(second);
  assert.equal(second.bodyBuffered, false);
});

test('handlers: an entry older than cache_ttl is a Refresh and is stored again', async () => {
  const hs = await harness({ cache_ttl: 10, storage_ttl: 100 });
  await proxied(hs, ctxOf(hs), 200, { 'content-type': 'text/plain' }, 'v1');
  hs.now.ms += 10_000;
  assert.ok(await access(hs, ctxOf(hs)), 'exactly cache_ttl old: still a hit');
  hs.now.ms += 1_000;
  const refresh = ctxOf(hs);
  await proxied(hs, refresh, 200, { 'content-type': 'text/plain' }, 'v2');
  assert.equal(refresh.downstream.get('x-cache-status'), 'Refresh');
  const hit = await access(hs, ctxOf(hs));
  assert.equal(String(hit?.body), 'v2');
  assert.equal(hit?.headers?.age, '0');
});

test('handlers: Bypass for requests and responses that are not cacheable', async () => {
  const hs = await harness({});
  const post = ctxOf(hs, { method: 'POST' });
  assert.equal(await access(hs, post), undefined);
  assert.equal(post.downstream.get('x-cache-status'), 'Bypass');
  assert.equal(post.downstream.get('x-cache-key'), undefined, 'no key for a request that is not cacheable');
  for (const [status, type] of [[500, 'application/json'], [200, 'application/xml'], [200, 'application/json; charset=utf-8']] as const) {
    const ctx = ctxOf(hs, { path: `/s${status}` });
    await access(hs, ctx);
    ctx.setResponse(status, false, { 'content-type': type });
    await hs.h.response!(ctx);
    assert.equal(ctx.responseHeaders.get('x-cache-status'), 'Bypass', `${status} ${type}`);
    assert.equal(ctx.bodyBuffered, false);
  }
});

test('handlers: response_headers off hides the headers unless the request says Kong-Debug', async () => {
  const hs = await harness({ response_headers: { age: false, 'X-Cache-Status': false, 'X-Cache-Key': false } });
  const first = ctxOf(hs);
  await proxied(hs, first, 200, { 'content-type': 'text/plain' }, 'x');
  assert.equal(first.downstream.get('x-cache-status'), undefined);
  assert.equal(first.downstream.get('x-cache-key'), undefined);
  const hit = await access(hs, ctxOf(hs));
  assert.deepEqual(hit?.headers, { 'content-type': 'text/plain' });
  const debug = await access(hs, ctxOf(hs, { headers: { 'kong-debug': '1' } }));
  assert.equal(debug?.headers?.['x-cache-status'], 'Hit');
  assert.ok(debug?.headers?.age !== undefined && debug.headers['x-cache-key'] !== undefined);
});

test('handlers: cache_control — client max-age, max-stale, min-fresh, only-if-cached; response TTL', async () => {
  const hs = await harness({ cache_control: true });
  const first = ctxOf(hs);
  await proxied(hs, first, 200, { 'content-type': 'text/plain', 'cache-control': 'max-age=100' }, 'x');
  const key = first.downstream.get('x-cache-key') as string;
  assert.equal(JSON.parse((await hs.kv.get(storageKey(key, 'proxy-cache-plugin-id')))!).ttl, 100);
  hs.now.ms += 30_000;
  const status = async (cc: string): Promise<string> => {
    const ctx = ctxOf(hs, { headers: { 'cache-control': cc } });
    const r = await access(hs, ctx);
    return r ? String(r.headers?.['x-cache-status']) : String(ctx.downstream.get('x-cache-status'));
  };
  assert.equal(await status('max-age=60'), 'Hit');
  assert.equal(await status('max-age=20'), 'Refresh');
  assert.equal(await status('min-fresh=60'), 'Hit');
  assert.equal(await status('min-fresh=80'), 'Refresh');
  assert.equal(await status('no-cache'), 'Bypass');
  // only-if-cached with nothing cached: 504.
  const none = await access(hs, ctxOf(hs, { path: '/other', headers: { 'cache-control': 'only-if-cached' } }));
  assert.equal(none?.status, 504);
  // max-stale: how far past its TTL the client accepts an entry.
  hs.now.ms += 100_000;
  assert.equal(await status('max-stale=40'), 'Hit');
  assert.equal(await status('max-stale=20'), 'Refresh');
});

test('handlers: an entry of another format version is purged and bypassed; a corrupt one is proxied', async () => {
  const hs = await harness({});
  const probe = ctxOf(hs);
  await access(hs, probe);
  const key = probe.downstream.get('x-cache-key') as string;
  await hs.kv.set(storageKey(key, 'proxy-cache-plugin-id'), JSON.stringify(entry({ version: 0 })));
  const ctx = ctxOf(hs);
  assert.equal(await access(hs, ctx), undefined);
  assert.equal(ctx.downstream.get('x-cache-status'), 'Bypass');
  await new Promise((r) => setImmediate(r));
  assert.equal(await hs.kv.get(storageKey(key, 'proxy-cache-plugin-id')), null);
  await hs.kv.set(storageKey(key, 'proxy-cache-plugin-id'), '{');
  const corrupt = ctxOf(hs);
  assert.equal(await access(hs, corrupt), undefined);
  assert.equal(corrupt.downstream.get('x-cache-status'), undefined);
  assert.equal(corrupt.state.size, 0, 'not stored');
});

test('admin routes: Kong\'s shapes and statuses', async () => {
  const kv = createMemoryKv();
  const route = (m: string, p: string) => proxyCacheAdminRoutes.find((r) => r.method === m && r.path === p)!;
  const deps = { sharedKv: kv, log: silentLogger() };
  const key = 'e'.repeat(64);
  await new CacheStore(kv, 'p1').store(key, entry(), 10);
  const get = await route('GET', '/proxy-cache/:cache_key').handler({ params: { cache_key: key }, query: {}, body: undefined }, deps);
  assert.deepEqual(get, { status: 200, body: { status: 200, headers: { 'content-type': 'application/json', 'x-up': 'u' }, body: '{"cached":true}', body_len: 15, timestamp: 1000, ttl: 300, version: 1 } });
  const missing = await route('GET', '/proxy-cache/:cache_key').handler({ params: { cache_key: 'nope' }, query: {}, body: undefined }, deps);
  assert.deepEqual(missing, { status: 404, body: { message: 'Not found' } });
  const byPlugin = route('GET', '/proxy-cache/:plugin_id/caches/:cache_key');
  assert.equal((await byPlugin.handler({ params: { plugin_id: 'p1', cache_key: key }, query: {}, body: undefined }, deps)).status, 200);
  assert.equal((await byPlugin.handler({ params: { plugin_id: 'p2', cache_key: key }, query: {}, body: undefined }, deps)).status, 404);
  const del = route('DELETE', '/proxy-cache/:plugin_id/caches/:cache_key');
  assert.equal((await del.handler({ params: { plugin_id: 'p2', cache_key: key }, query: {}, body: undefined }, deps)).status, 404);
  assert.equal((await del.handler({ params: { plugin_id: 'p1', cache_key: key }, query: {}, body: undefined }, deps)).status, 204);
  assert.equal(await kv.get(storageKey(key, 'p1')), null);
});
