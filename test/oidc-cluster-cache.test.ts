/**
 * openid-connect caches across nodes and across IdP outages: `cluster_cache_strategy: redis` with
 * `cluster_cache_redis` and `cluster_cache_items` (two gateways sharing a real Redis at
 * 127.0.0.1:6379: the second uses what the first cached, counted at the IdP; token responses are
 * stored sealed), and `cache_ttl_resurrect` (an expired entry served while the IdP fails).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { startGateway } from './helpers/gateway.ts';
import type { TestGateway } from './helpers/gateway.ts';
import { startBadIdp } from './helpers/bad-idp.ts';
import { oidcDeck } from './helpers/oidc-deck.ts';
import { idpEchoSuite } from './helpers/idp.ts';

const env = idpEchoSuite(startBadIdp);

function deck(pluginConfig: string): string {
  return oidcDeck(env.echo.url, env.idp.issuer, `      client_id: [gw-client]\n      client_secret: [gw-secret]\n${pluginConfig}`);
}

async function withGateways(config: string, fn: (a: TestGateway, b: TestGateway) => Promise<void>): Promise<void> {
  const a = await startGateway({ config });
  const b = await startGateway({ config });
  try {
    await fn(a, b);
  } finally {
    await a.close();
    await b.close();
  }
}

async function status(gw: TestGateway, path: string, headers: Record<string, string>): Promise<number> {
  const r = await fetch(`${gw.proxyUrl}${path}`, { headers });
  await r.body?.cancel();
  return r.status;
}

const redisCluster = `      cluster_cache_strategy: redis
      cluster_cache_redis:
        host: 127.0.0.1
        port: 6379
`;

test('cluster_cache_strategy redis: the second gateway uses the introspection the first cached', async () => {
  const token = `opaque-${randomUUID()}`;
  env.idp.setIntrospection(token, { active: true, sub: 'alex', exp: Math.floor(Date.now() / 1000) + 300 });
  await withGateways(deck(`      auth_methods: [introspection]\n${redisCluster}      cluster_cache_items: [introspection]\n`), async (a, b) => {
    env.idp.resetCounts();
    assert.equal(await status(a, '/api', { authorization: `Bearer ${token}` }), 200);
    assert.equal(env.idp.counts().introspection, 1);
    assert.equal(await status(b, '/api', { authorization: `Bearer ${token}` }), 200);
    assert.equal(env.idp.counts().introspection, 1);
  });
});

test('cluster_cache_strategy off, or cluster_cache_items empty: each gateway asks the IdP', async () => {
  for (const config of [`      cluster_cache_strategy: 'off'\n`, `${redisCluster}      cluster_cache_items: []\n`]) {
    const token = `opaque-${randomUUID()}`;
    env.idp.setIntrospection(token, { active: true, sub: 'alex', exp: Math.floor(Date.now() / 1000) + 300 });
    await withGateways(deck(`      auth_methods: [introspection]\n${config}`), async (a, b) => {
      env.idp.resetCounts();
      assert.equal(await status(a, '/api', { authorization: `Bearer ${token}` }), 200);
      assert.equal(await status(b, '/api', { authorization: `Bearer ${token}` }), 200);
      assert.equal(env.idp.counts().introspection, 2);
    });
  }
});

test('cluster_cache_items [tokens]: token responses shared (same cache_tokens_salt) and stored sealed; introspection then is not shared', async () => {
  const at = await env.idp.sign({ sub: 'alex', jti: randomUUID() });
  env.idp.setTokenResponse({ access_token: at, token_type: 'Bearer', expires_in: 300 });
  const salt = randomUUID();
  const user = `alex-${randomUUID()}`;
  const opaque = `opaque-${randomUUID()}`;
  env.idp.setIntrospection(opaque, { active: true, sub: 'alex', exp: Math.floor(Date.now() / 1000) + 300 });
  await withGateways(deck(`      auth_methods: [password, introspection]\n      cache_tokens_salt: ${salt}\n${redisCluster}      cluster_cache_items: [tokens]\n`), async (a, b) => {
    env.idp.resetCounts();
    const creds = `Basic ${Buffer.from(`${user}:doe`).toString('base64')}`;
    assert.equal(await status(a, '/api', { authorization: creds }), 200);
    assert.equal(await status(b, '/api', { authorization: creds }), 200);
    assert.equal(env.idp.counts().token, 1);
    assert.equal(await status(a, '/api', { authorization: `Bearer ${opaque}` }), 200);
    assert.equal(await status(b, '/api', { authorization: `Bearer ${opaque}` }), 200);
    assert.equal(env.idp.counts().introspection, 2);
  });
  // Nothing in Redis shows the access token.
  const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });
  try {
    await redis.connect();
    const keys = await redis.keys('portcullis:oidc:*:tokens:*');
    assert.ok(keys.length > 0);
    for (const k of keys) assert.ok(!(await redis.get(k))!.includes(at.split('.')[1]));
  } finally {
    redis.disconnect();
  }
});

test('cache_ttl_resurrect: an expired introspection result serves while the IdP fails, not beyond', async () => {
  const token = `opaque-${randomUUID()}`;
  env.idp.setIntrospection(token, { active: true, sub: 'alex' });
  const config = (resurrect: string) => deck(`      auth_methods: [introspection]\n      cache_ttl_max: 1\n${resurrect}`);
  for (const resurrect of ['      cache_ttl_resurrect: 60\n', '']) {
    const gw = await startGateway({ config: config(resurrect) });
    try {
      assert.equal(await status(gw, '/api', { authorization: `Bearer ${token}` }), 200);
      // The entry expires (cache_ttl_max: 1 s); then the IdP fails.
      await new Promise((r) => setTimeout(r, 1200));
      env.idp.setResponder('introspection', () => ({ status: 503, headers: { 'content-type': 'application/json' }, body: '{"error":"temporarily_unavailable"}' }));
      assert.equal(await status(gw, '/api', { authorization: `Bearer ${token}` }), resurrect ? 200 : 500);
      // A token never seen has nothing to resurrect.
      assert.equal(await status(gw, '/api', { authorization: `Bearer other-${randomUUID()}` }), 500);
    } finally {
      env.idp.setResponder('introspection', null);
      await gw.close();
    }
  }
});
