/**
 * rate-limiting `policy: redis` against the real Redis at 127.0.0.1:6379: counters shared by
 * plugin instances of two gateways, Kong's keys, `sync_rate` buffering, `fault_tolerant` with a
 * Redis that refuses or never answers, and the Redis settings' validation.
 *
 * Every test uses fresh random route and service ids, so its keys
 * (`ratelimit:<route_id>:<service_id>:...`) are its own; they are deleted afterwards.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { configIssue as issue, testClient } from './helpers/http.ts';
import { freePort } from './helpers/process.ts';
import { rateLimitingSchema } from '../src/plugins/bundled/rate-limiting/index.ts';
import { windowBounds } from '../src/plugins/bundled/rate-limiting/counters.ts';
import { clientRecord, EMPTY_UUID, redisKey } from '../src/plugins/bundled/rate-limiting/redis-policy.ts';
import { createRedisClient, sharedRedisClients } from '../src/storage/redis.ts';

let echo: EchoServer;
const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, maxRetriesPerRequest: 1 });
const redisDb5 = new Redis({ host: '127.0.0.1', port: 6379, db: 5, lazyConnect: true, maxRetriesPerRequest: 1 });
const usedIds: string[] = [];

before(async () => {
  echo = await startEcho();
});

after(async () => {
  for (const client of [redis, redisDb5]) {
    for (const id of usedIds) {
      const keys = await client.keys(`ratelimit:${id}:*`);
      if (keys.length > 0) await client.del(...keys);
    }
    await client.quit();
  }
  await echo.close();
});

/**
 * A decK document: service `echo` with one route `/r` whose rate-limiting plugin has `config`.
 * The plugin is scoped to the route only: its keys carry the route's id and the zero UUID.
 */
function deck(config: Record<string, unknown>): { routeId: string; doc: object } {
  const routeId = randomUUID();
  const serviceId = randomUUID();
  usedIds.push(routeId);
  return {
    routeId,
    doc: {
      services: [{
        id: serviceId, name: 'echo', protocol: 'http', host: '127.0.0.1', port: echo.port,
        routes: [{ id: routeId, name: 'r', paths: ['/r'], plugins: [{ name: 'rate-limiting', config }] }],
      }],
    },
  };
}

async function withGateways<T>(n: number, doc: object, fn: (gws: TestGateway[]) => Promise<T>): Promise<T> {
  const gws: TestGateway[] = [];
  try {
    for (let i = 0; i < n; i++) gws.push(await startGateway({ config: doc }));
    return await fn(gws);
  } finally {
    for (const gw of gws) await gw.close();
  }
}

async function get(gw: TestGateway): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string; ms: number }> {
  const client = testClient(() => gw.proxyUrl);
  const t0 = Date.now();
  try {
    const r = await client.call('/r');
    return { ...r, ms: Date.now() - t0 };
  } finally {
    await client.close();
  }
}

/** Wait out the last seconds of a minute, so a test's requests all fall in one minute window. */
async function notNearMinuteEnd(): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 5000) await new Promise((r) => setTimeout(r, left + 50));
}

const localRedis = { host: '127.0.0.1', port: 6379 };

test('rate-limiting redis: two gateways share one count (Kong key); the 4th request across both is 429 with Kong headers', async () => {
  await notNearMinuteEnd();
  const baseline = sharedRedisClients();
  const { routeId, doc } = deck({ minute: 3, limit_by: 'ip', policy: 'redis', redis: localRedis });
  await withGateways(2, doc, async ([a, b]) => {
    const seq = [a, b, a];
    for (let i = 0; i < 3; i++) {
      const r = await get(seq[i]);
      assert.equal(r.status, 200, `request ${i + 1}`);
      assert.equal(r.headers['x-ratelimit-limit-minute'], '3');
      assert.equal(r.headers['x-ratelimit-remaining-minute'], String(2 - i));
      assert.equal(r.headers['ratelimit-limit'], '3');
      assert.equal(r.headers['ratelimit-remaining'], String(2 - i));
    }
    const blocked = await get(b);
    assert.equal(blocked.status, 429);
    assert.deepEqual(JSON.parse(blocked.text), { message: 'API rate limit exceeded' });
    assert.equal(blocked.headers['x-ratelimit-remaining-minute'], '0');
    assert.equal(blocked.headers['ratelimit-remaining'], '0');
    const retry = Number(blocked.headers['retry-after']);
    assert.ok(retry >= 1 && retry <= 60, String(retry));
    assert.equal(blocked.headers['ratelimit-reset'], blocked.headers['retry-after']);
    // Kong's key: ratelimit:<route_id>:<service_id>:<identifier>:<period_start>:<period>, with a TTL;
    // the plugin is on the route only, so its service id is Kong's zero UUID.
    const key = `ratelimit:${routeId}:${EMPTY_UUID}:127.0.0.1:${windowBounds('minute', Date.now()).start}:minute`;
    assert.equal(await redis.get(key), '3');
    const ttl = await redis.ttl(key);
    assert.ok(ttl > 0 && ttl <= 60, String(ttl));
    // the two gateways' instances share one client for the same Redis settings
    assert.equal(sharedRedisClients(), baseline + 1);
  });
  // closed with the last instance that used it: no socket left behind
  assert.equal(sharedRedisClients(), baseline);
});

test('rate-limiting redis: key format, with the zero UUID for a plugin not scoped to a route or service', () => {
  assert.equal(redisKey(null, null, '10.0.0.1', 1764000000000, 'minute'), `ratelimit:${EMPTY_UUID}:${EMPTY_UUID}:10.0.0.1:1764000000000:minute`);
  assert.equal(redisKey('r-id', undefined, 'c', 0, 'day'), `ratelimit:r-id:${EMPTY_UUID}:c:0:day`);
});

test('rate-limiting redis: sync_rate buffers increments in the process; they reach Redis after the interval', async () => {
  const { routeId, doc } = deck({ day: 100, limit_by: 'ip', policy: 'redis', redis: { ...localRedis, database: 5 }, sync_rate: 0.3 });
  const key = `ratelimit:${routeId}:${EMPTY_UUID}:127.0.0.1:${windowBounds('day', Date.now()).start}:day`;
  // usage = the count in Redis (another node's) + this process's unflushed increments
  await redisDb5.set(key, '50', 'EX', 86400);
  await withGateways(1, doc, async ([gw]) => {
    const first = await get(gw);
    assert.equal(first.status, 200);
    assert.equal(first.headers['x-ratelimit-remaining-day'], '49');
    const second = await get(gw);
    assert.equal(second.headers['x-ratelimit-remaining-day'], '48');
    // not flushed yet
    assert.equal(await redisDb5.get(key), '50');
    assert.equal(await redis.get(key), null, 'database 5, not 0');
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(await redisDb5.get(key), '52');
    // after a flush the count is read from Redis again (now with another node's 10 more)
    await redisDb5.incrby(key, 10);
    const third = await get(gw);
    assert.equal(third.headers['x-ratelimit-remaining-day'], '37');
  });
  // closing flushes what is still buffered
  assert.equal(await redisDb5.get(key), '63');
});

test('rate-limiting redis: Redis refusing connections — fault_tolerant true proxies unlimited, false answers 500; neither hangs', async () => {
  const port = await freePort();
  const tolerant = deck({ minute: 1, limit_by: 'ip', policy: 'redis', redis: { host: '127.0.0.1', port, timeout: 500 }, fault_tolerant: true });
  await withGateways(1, tolerant.doc, async ([gw]) => {
    for (let i = 0; i < 4; i++) {
      const r = await get(gw);
      assert.equal(r.status, 200, `request ${i + 1} (limit 1)`);
      assert.equal(r.headers['x-ratelimit-limit-minute'], undefined);
      assert.equal(r.headers['x-ratelimit-remaining-minute'], undefined);
      assert.equal(r.headers['ratelimit-remaining'], undefined);
      assert.ok(r.ms < 2000, `took ${r.ms} ms`);
    }
    // logged once for the interval, not per request
    const errors = gw.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('rate-limiting: usage read failed'));
    assert.equal(errors.length, 1, JSON.stringify(errors));
  });
  const strict = deck({ minute: 1, limit_by: 'ip', policy: 'redis', redis: { host: '127.0.0.1', port, timeout: 500, password: 'do-not-log-me' }, fault_tolerant: false });
  await withGateways(1, strict.doc, async ([gw]) => {
    for (let i = 0; i < 2; i++) {
      const r = await get(gw);
      assert.equal(r.status, 500);
      assert.equal(JSON.parse(r.text).message, 'An unexpected error occurred');
      assert.ok(r.ms < 2000, `took ${r.ms} ms`);
    }
    assert.ok(!gw.logText().includes('do-not-log-me'));
  });
});

test('rate-limiting redis: a Redis that accepts but never answers — the request waits no longer than redis.timeout', async () => {
  const sockets = new Set<Socket>();
  const silent: Server = createServer((s) => { sockets.add(s); s.on('error', () => {}); });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const port = (silent.address() as { port: number }).port;
  try {
    for (const faultTolerant of [true, false]) {
      const { doc } = deck({ minute: 5, limit_by: 'ip', policy: 'redis', redis: { host: '127.0.0.1', port, timeout: 300 }, fault_tolerant: faultTolerant });
      await withGateways(1, doc, async ([gw]) => {
        const r = await get(gw);
        assert.equal(r.status, faultTolerant ? 200 : 500);
        assert.ok(r.ms >= 250 && r.ms < 1500, `took ${r.ms} ms`);
      });
    }
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
  }
});

test('rate-limiting redis: validation — Kong\'s entity checks, sync_rate floor, keepalive refused, legacy redis_* fields', async () => {
  const issues = (config: Record<string, unknown>) => {
    const r = rateLimitingSchema.safeParse({ minute: 5, policy: 'redis', ...config });
    return r.success ? [] : r.error.issues.map((i) => [i.path.join('.'), i.message]);
  };
  const entity = "failed conditional validation given value of field 'config.policy'";
  assert.deepEqual(issues({}), [['redis.host', 'required field missing'], ['@entity', entity]]);
  assert.deepEqual(issues({ redis: { host: 'h', port: null, timeout: null } }), [
    ['redis.port', 'required field missing'], ['@entity', entity], ['redis.timeout', 'required field missing'], ['@entity', entity],
  ]);
  await assert.rejects(
    startGateway({ config: deck({ minute: 5, policy: 'redis' }).doc }),
    issue(/redis\.host.*required field missing/s),
  );
  // Kong's custom check: sync_rate >= 0.02 with redis (or -1)
  assert.deepEqual(issues({ redis: localRedis, sync_rate: 0.01 }), [['sync_rate', 'sync_rate must be greater than 0.02, or -1 to disable']]);
  assert.deepEqual(issues({ redis: localRedis, sync_rate: 0.02 }), []);
  // lua-resty-redis pool settings mean nothing to ioredis: only their defaults are accepted
  const pool = issues({ redis: { ...localRedis, keepalive_pool_size: 10, keepalive_backlog: 5 } });
  assert.deepEqual(pool.map(([p]) => p), ['redis.keepalive_pool_size', 'redis.keepalive_backlog']);
  assert.match(pool[0][1], /not supported: keepalive_pool_size/);
  assert.deepEqual(issues({ redis: { ...localRedis, keepalive_pool_size: 256, keepalive_backlog: null } }), []);
  // the legacy flat fields fill the record (and satisfy the host requirement)
  const legacy = rateLimitingSchema.parse({
    minute: 5, policy: 'redis', redis_host: 'cache.internal', redis_port: 6380, redis_username: 'limiter', redis_password: 'pw',
    redis_ssl: true, redis_ssl_verify: true, redis_server_name: 'sni.example', redis_timeout: 700, redis_database: 4,
  });
  assert.deepEqual(
    { ...legacy.redis },
    { ...legacy.redis, host: 'cache.internal', port: 6380, username: 'limiter', password: 'pw', ssl: true, ssl_verify: true, server_name: 'sni.example', timeout: 700, database: 4 },
  );
  // policy cluster is refused in DB-less mode, with Kong's one_of (test/plugins-rate-limiting-cluster.test.ts)
  await assert.rejects(
    startGateway({ config: deck({ minute: 5, policy: 'cluster' }).doc }),
    issue(/config\.policy: expected one of: local, redis/),
  );
});

test('rate-limiting redis: legacy redis_host / redis_port / redis_timeout / redis_database work with policy redis', async () => {
  const { routeId, doc } = deck({ hour: 2, limit_by: 'ip', policy: 'redis', redis_host: '127.0.0.1', redis_port: 6379, redis_timeout: 1000, redis_database: 5 });
  await withGateways(1, doc, async ([gw]) => {
    assert.equal((await get(gw)).status, 200);
    assert.equal((await get(gw)).status, 200);
    assert.equal((await get(gw)).status, 429);
    const key = `ratelimit:${routeId}:${EMPTY_UUID}:127.0.0.1:${windowBounds('hour', Date.now()).start}:hour`;
    assert.equal(await redisDb5.get(key), '2');
  });
});

test('rate-limiting redis: the record maps onto the shared ioredis factory (timeout bounds every step; ACL user, TLS, database)', () => {
  const record = clientRecord({
    host: 'cache.example', port: 6380, timeout: 1500, connect_timeout: 400, send_timeout: 5000, read_timeout: null,
    username: 'limiter', password: 'pw', database: 2, ssl: true, ssl_verify: true, server_name: 'sni.example',
  });
  assert.deepEqual(
    { connect: record.connect_timeout, send: record.send_timeout, read: record.read_timeout },
    { connect: 400, send: 1500, read: 1500 },
  );
  const c = createRedisClient(record) as Redis;
  try {
    const o = c.options;
    assert.equal(o.host, 'cache.example');
    assert.equal(o.port, 6380);
    assert.equal(o.username, 'limiter');
    assert.equal(o.password, 'pw');
    assert.equal(o.db, 2);
    assert.equal(o.connectTimeout, 400);
    assert.equal(o.commandTimeout, 1500);
    assert.deepEqual(o.tls, { rejectUnauthorized: true, servername: 'sni.example' });
  } finally {
    c.disconnect();
  }
});
