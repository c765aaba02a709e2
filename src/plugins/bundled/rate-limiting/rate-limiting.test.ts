import { test } from 'node:test';
import assert from 'node:assert/strict';
import plugin, { checkRateLimiting, createRateLimitingPlugin, rateLimitingSchema } from './index.ts';
import { CounterStore, windowBounds } from './counters.ts';
import { makeConsumer, makeCtx, makeDeps, type FakeRequest } from '../../../../test/helpers/plugin-ctx.ts';
import type { PluginHandlers, Reply } from '../../sdk.ts';

const T0 = Date.UTC(2026, 10, 23, 5, 10, 30, 250); // 05:10:30.250 UTC
const make = (config: unknown) => plugin.create(rateLimitingSchema.parse(config), makeDeps('rate-limiting')) as Promise<PluginHandlers> | PluginHandlers;

async function hit(h: PluginHandlers, req: FakeRequest = {}) {
  const ctx = makeCtx({ now: () => T0, ...req });
  const reply = (await h.access!(ctx)) as Reply | undefined;
  return { ctx, reply, headers: Object.fromEntries(ctx.downstream.map) };
}

test('schema: defaults, required limits, ordering, policies, strictness', () => {
  const c = rateLimitingSchema.parse({ minute: 5 });
  assert.equal(c.limit_by, 'consumer');
  assert.equal(c.policy, 'local');
  assert.equal(c.fault_tolerant, true);
  assert.equal(c.hide_client_headers, false);
  assert.equal(c.error_code, 429);
  assert.equal(c.error_message, 'API rate limit exceeded');
  assert.equal(c.redis.port, 6379);
  assert.equal(plugin.priority, 910);
  assert.equal(rateLimitingSchema.safeParse({}).success, false);
  const order = rateLimitingSchema.safeParse({ second: 10, minute: 5 });
  assert.equal(order.success, false);
  assert.match(order.error!.issues[0].message, /minute\(5\.0\) cannot be lower than the limit for second\(10\.0\)/);
  // policy 'redis' needs redis.host (Kong's entity check); 'cluster' needs a database (checkRateLimiting).
  const redis = rateLimitingSchema.safeParse({ minute: 5, policy: 'redis' });
  assert.equal(redis.success, false);
  assert.deepEqual(redis.error!.issues.map((i) => [i.path.join('.'), i.message]), [
    ['redis.host', 'required field missing'],
    ['@entity', "failed conditional validation given value of field 'config.policy'"],
  ]);
  const cluster = rateLimitingSchema.parse({ minute: 5, policy: 'cluster' });
  assert.deepEqual(checkRateLimiting(cluster, { workers: 1, database: 'off' }), [{ path: 'policy', message: 'expected one of: local, redis' }]);
  assert.deepEqual(checkRateLimiting(cluster, { workers: 1 }), [{ path: 'policy', message: 'expected one of: local, redis' }]);
  assert.deepEqual(checkRateLimiting(cluster, { workers: 2, database: 'sqlite' }), []);
  assert.deepEqual(checkRateLimiting(cluster, { workers: 1, database: 'postgres' }), []);
  // the Redis settings mean nothing to the database counters either
  const clusterRedis = rateLimitingSchema.safeParse({ minute: 5, policy: 'cluster', redis: { host: 'r' } });
  assert.equal(clusterRedis.success, false);
  assert.deepEqual(clusterRedis.error!.issues.map((i) => [i.path.join('.'), i.message]), [
    ['redis.host', "the Redis settings apply to policy 'redis' only; leave them at their defaults with 'cluster'"],
  ]);
  assert.equal(rateLimitingSchema.safeParse({ minute: 5, limit_by: 'header' }).success, false);
  assert.equal(rateLimitingSchema.safeParse({ minute: 5, limit_by: 'path', path: 'nope' }).success, false);
  assert.equal(rateLimitingSchema.safeParse({ minute: 5, unknown: 1 }).success, false);
});

test('a year limit: calendar-year window, X-RateLimit-*-Year headers, 429 once used up', async () => {
  assert.deepEqual(windowBounds('year', T0), { start: Date.UTC(2026, 0, 1), end: Date.UTC(2027, 0, 1) });
  const h = await make({ year: 2 });
  const first = await hit(h, { clientIp: '10.9.0.1' });
  assert.equal(first.headers['x-ratelimit-limit-year'], '2');
  assert.equal(first.headers['x-ratelimit-remaining-year'], '1');
  await hit(h, { clientIp: '10.9.0.1' });
  assert.equal((await hit(h, { clientIp: '10.9.0.1' })).reply?.status, 429);
});

test('windows are calendar-aligned in UTC', () => {
  assert.deepEqual(windowBounds('minute', T0), { start: Date.UTC(2026, 10, 23, 5, 10), end: Date.UTC(2026, 10, 23, 5, 11) });
  assert.deepEqual(windowBounds('month', T0), { start: Date.UTC(2026, 10, 1), end: Date.UTC(2026, 11, 1) });
  assert.equal(windowBounds('second', T0).start, T0 - 250);
});

test('limit reached → 429 with Kong headers; counts are per identifier', async () => {
  const h = await make({ minute: 2, hour: 10 });
  const first = await hit(h, { clientIp: '10.0.0.1' });
  assert.equal(first.reply, undefined);
  assert.equal(first.headers['x-ratelimit-limit-minute'], '2');
  assert.equal(first.headers['x-ratelimit-remaining-minute'], '1');
  assert.equal(first.headers['x-ratelimit-limit-hour'], '10');
  assert.equal(first.headers['x-ratelimit-remaining-hour'], '9');
  assert.equal(first.headers['ratelimit-limit'], '2');
  assert.equal(first.headers['ratelimit-remaining'], '1');
  assert.equal(first.headers['ratelimit-reset'], '30'); // 29.75 s left in the minute → 30
  const second = await hit(h, { clientIp: '10.0.0.1' });
  assert.equal(second.headers['x-ratelimit-remaining-minute'], '0');
  const third = await hit(h, { clientIp: '10.0.0.1' });
  assert.equal(third.reply?.status, 429);
  assert.deepEqual(third.reply?.body, { message: 'API rate limit exceeded' });
  assert.equal(third.reply?.headers?.['Retry-After'], '30');
  assert.equal(third.reply?.headers?.['X-RateLimit-Remaining-Minute'], '0');
  assert.equal(third.reply?.headers?.['X-RateLimit-Remaining-Hour'], '8'); // blocked requests are not counted
  // another client is not affected
  assert.equal((await hit(h, { clientIp: '10.0.0.2' })).reply, undefined);
  // next minute: allowed again
  const later = makeCtx({ now: () => T0 + 60_000, clientIp: '10.0.0.1' });
  assert.equal(await h.access!(later), undefined);
});

test('limit_by consumer, header, path; custom error; hidden headers', async () => {
  const h = await make({ second: 1, error_code: 403, error_message: 'slow down', hide_client_headers: true });
  const alice = makeConsumer('c-a', 'alice');
  assert.equal((await hit(h, { consumer: alice, clientIp: '1.1.1.1' })).reply, undefined);
  const blocked = await hit(h, { consumer: alice, clientIp: '2.2.2.2' });
  assert.equal(blocked.reply?.status, 403);
  assert.deepEqual(blocked.reply?.body, { message: 'slow down' });
  assert.equal(blocked.reply?.headers?.['Retry-After'], undefined);
  assert.equal(Object.keys(blocked.headers).length, 0);

  const byHeader = await make({ second: 1, limit_by: 'header', header_name: 'X-Tenant' });
  assert.equal((await hit(byHeader, { headers: { 'x-tenant': 'a' } })).reply, undefined);
  assert.equal((await hit(byHeader, { headers: { 'x-tenant': 'b' } })).reply, undefined);
  assert.equal((await hit(byHeader, { headers: { 'x-tenant': 'a' } })).reply?.status, 429);

  const byPath = await make({ second: 1, limit_by: 'path', path: '/hot' });
  assert.equal((await hit(byPath, { path: '/hot', clientIp: '1.1.1.1' })).reply, undefined);
  assert.equal((await hit(byPath, { path: '/hot', clientIp: '2.2.2.2' })).reply?.status, 429);
});

test('counter store is bounded', () => {
  const s = new CounterStore(10);
  for (let i = 0; i < 50; i++) s.increment(`k${i}`, 1, T0 + 1000, T0);
  assert.ok(s.size <= 10);
  assert.equal(s.get('k49', T0), 1);
  assert.equal(s.get('k49', T0 + 1000), 0); // expired
  const p = createRateLimitingPlugin({ maxCounters: 4 });
  assert.equal(p.name, 'rate-limiting');
});

test('one global instance counts the routes it covers together, as Kong keys by the plugin\'s own scope; Kong < 3.6 redis_* fields are accepted', async () => {
  const h = await make({ minute: 2, limit_by: 'ip' });
  assert.equal((await hit(h, { route: { id: 'r1' } })).reply, undefined);
  assert.equal((await hit(h, { route: { id: 'r2' } })).reply, undefined);
  assert.equal((await hit(h, { route: { id: 'r3' } })).reply?.status, 429);
  assert.equal((await hit(h, { route: { id: 'r1' } })).reply?.status, 429);
  const legacy = rateLimitingSchema.safeParse({ minute: 1, redis_host: null, redis_port: 6379, redis_timeout: 2000, redis_database: 0, redis_ssl: false });
  assert.equal(legacy.success, true);
  // Kong's shorthand fields map onto the redis record; like the record, they only matter with
  // policy 'redis': with 'local', anything but the defaults is refused, naming it.
  assert.equal(rateLimitingSchema.parse({ minute: 1, redis_port: 6379, redis_timeout: 2000 }).redis.port, 6379);
  const flat = rateLimitingSchema.safeParse({
    minute: 1, redis_host: 'cache.internal', redis_port: 6380, redis_username: 'limiter', redis_password: 'pw', redis_ssl: true,
    redis_ssl_verify: true, redis_server_name: 'cache.example', redis_timeout: 500, redis_database: 3,
  });
  assert.equal(flat.success, false);
  assert.deepEqual(flat.error!.issues.map((i) => i.path.join('.')).sort(),
    ['redis_database', 'redis_host', 'redis_password', 'redis_port', 'redis_server_name', 'redis_ssl', 'redis_ssl_verify', 'redis_timeout', 'redis_username']);
  const record = rateLimitingSchema.safeParse({ minute: 1, redis: { host: 'h', connect_timeout: 10, send_timeout: 10, read_timeout: 10, keepalive_pool_size: 5, keepalive_backlog: 5 } });
  assert.equal(record.success, false);
  assert.deepEqual(record.error!.issues.map((i) => i.path.join('.')).sort(),
    ['redis.connect_timeout', 'redis.host', 'redis.keepalive_backlog', 'redis.keepalive_pool_size', 'redis.read_timeout', 'redis.send_timeout']);
  assert.match(record.error!.issues[0].message, /policy 'redis'/);
  // sync_rate paces Redis counters: refused with Kong's message under any other policy.
  const sync = rateLimitingSchema.safeParse({ minute: 1, sync_rate: 10 });
  assert.equal(sync.success, false);
  assert.deepEqual(sync.error!.issues.map((i) => i.path.join('.')), ['sync_rate']);
  assert.equal(sync.error!.issues[0].message, 'sync_rate can only be used with the redis policy');
  assert.equal(rateLimitingSchema.safeParse({ minute: 1, sync_rate: -1 }).success, true);
  assert.equal(rateLimitingSchema.safeParse({ minute: 1, error_code: 1000 }).success, false);
});

test('schema: Kong\'s typedefs for header_name and path, non-empty error_message', () => {
  const issue = (config: Record<string, unknown>) => {
    const r = rateLimitingSchema.safeParse({ minute: 5, ...config });
    assert.equal(r.success, false, JSON.stringify(config));
    return { path: r.error!.issues[0].path.join('.'), message: r.error!.issues[0].message };
  };
  assert.deepEqual(issue({ limit_by: 'header', header_name: 'X.Tenant' }), { path: 'header_name', message: "bad header name 'X.Tenant', allowed characters are A-Z, a-z, 0-9, '_', and '-'" });
  assert.deepEqual(issue({ limit_by: 'path', path: '/a//b' }), { path: 'path', message: 'must not have empty segments' });
  assert.deepEqual(issue({ limit_by: 'path', path: '/a b' }), { path: 'path', message: "invalid path: '/a b' (characters outside of the reserved list of RFC 3986 found)" });
  assert.deepEqual(issue({ limit_by: 'path', path: '/a%zz' }), { path: 'path', message: "invalid url-encoded value: '%zz'" });
  assert.deepEqual(issue({ limit_by: 'path', path: 'nope' }), { path: 'path', message: 'should start with: /' });
  assert.deepEqual(issue({ error_message: '' }), { path: 'error_message', message: 'length must be at least 1' });
  assert.equal(rateLimitingSchema.safeParse({ minute: 5, limit_by: 'path', path: "/a/b%20c;v=1/@x:y~!$&'()*+,=" }).success, true);
  assert.equal(rateLimitingSchema.safeParse({ minute: 5, limit_by: 'header', header_name: 'X_Tenant-Id' }).success, true);
});
