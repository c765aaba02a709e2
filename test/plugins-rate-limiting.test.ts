import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from './helpers/gateway.ts';
import { echoGatewaySuite } from './helpers/echo-gateway.ts';
import { configIssue as issue, testClient } from './helpers/http.ts';

import { testAuthPlugin } from './helpers/test-auth-plugin.ts';

const t = echoGatewaySuite({
  plugins: [testAuthPlugin],
  servicePlugins: [{ name: 'test-header-auth' }],
  routes: [
    // A day window keeps the test independent of minute boundaries.
    { name: 'limited', paths: ['/limited'], plugins: [{ name: 'rate-limiting', config: { day: 3, limit_by: 'consumer' } }] },
    { name: 'hidden', paths: ['/hidden'], plugins: [{ name: 'rate-limiting', config: { day: 1, hide_client_headers: true, error_code: 503, error_message: 'busy' } }] },
  ],
  consumers: [{ username: 'alice' }, { username: 'bob' }],
});
const call = (path: string, headers: Record<string, string> = {}) => t.call(path, headers);

test('rate-limiting: headers count down, then 429 with Retry-After', async () => {
  for (let i = 1; i <= 3; i++) {
    const r = await call('/limited', { 'x-test-consumer': 'alice' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-ratelimit-limit-day'], '3');
    assert.equal(r.headers['x-ratelimit-remaining-day'], String(3 - i));
    assert.equal(r.headers['ratelimit-limit'], '3');
    assert.equal(r.headers['ratelimit-remaining'], String(3 - i));
    assert.ok(Number(r.headers['ratelimit-reset']) >= 1);
  }
  const blocked = await call('/limited', { 'x-test-consumer': 'alice' });
  assert.equal(blocked.status, 429);
  assert.deepEqual(JSON.parse(blocked.text), { message: 'API rate limit exceeded' });
  assert.equal(blocked.headers['x-ratelimit-remaining-day'], '0');
  assert.equal(blocked.headers['ratelimit-remaining'], '0');
  const retry = Number(blocked.headers['retry-after']);
  assert.ok(retry >= 1 && retry <= 86400);
  // another consumer has its own budget
  assert.equal((await call('/limited', { 'x-test-consumer': 'bob' })).status, 200);
});

test('rate-limiting: hide_client_headers and custom error', async () => {
  const ok = await call('/hidden');
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['x-ratelimit-limit-day'], undefined);
  assert.equal(ok.headers['ratelimit-limit'], undefined);
  const blocked = await call('/hidden');
  assert.equal(blocked.status, 503);
  assert.deepEqual(JSON.parse(blocked.text), { message: 'busy' });
  assert.equal(blocked.headers['retry-after'], undefined);
});

test('rate-limiting: the cluster policy is refused at load time in DB-less mode (as Kong); redis needs redis.host', async () => {
  // policy 'redis' itself: test/plugins-rate-limiting-redis.test.ts
  await assert.rejects(
    startGateway({ config: { plugins: [{ name: 'rate-limiting', config: { minute: 5, policy: 'redis' } }] } }),
    issue(/required field missing/),
  );
  await assert.rejects(
    startGateway({ config: { plugins: [{ name: 'rate-limiting', config: { minute: 5, policy: 'cluster' } }] } }),
    issue(/config\.policy: expected one of: local, redis/),
  );
});

test('rate-limiting: counts survive a reload that leaves the plugin unchanged', async () => {
  const cfg = {
    services: [{
      name: 'echo', protocol: 'http', host: '127.0.0.1', port: t.echo.port,
      routes: [{ name: 'r', paths: ['/r'], plugins: [{ name: 'rate-limiting', config: { day: 2, limit_by: 'ip' } }] }],
    }],
  };
  const own = await startGateway({ config: cfg });
  const ownClient = testClient(() => own.proxyUrl);
  const get = async (): Promise<number> => (await ownClient.call('/r')).status;
  try {
    assert.equal(await get(), 200);
    assert.equal(await own.reload({ ...cfg, consumers: [{ username: 'someone-new' }] }), true);
    assert.equal(await get(), 200);
    assert.equal(await get(), 429);
  } finally {
    await ownClient.close();
    await own.close();
  }
});
