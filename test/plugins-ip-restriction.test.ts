import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { configIssue as issue, testClient } from './helpers/http.ts';
import { testAuthPlugin } from './helpers/test-auth-plugin.ts';
import ipRestriction from '../src/plugins/bundled/ip-restriction/index.ts';

const plugins = [ipRestriction, testAuthPlugin];

let echo: EchoServer;
/** Trusts 127.0.0.1, so X-Real-IP / X-Forwarded-For name the client. */
let gw: TestGateway;
/** Trusts nobody: the client is the TCP peer whatever the headers say. */
let plain: TestGateway;
const trustedClient = testClient(() => gw.proxyUrl);
const plainClient = testClient(() => plain.proxyUrl);

const ipr = (config: object) => ({ name: 'ip-restriction', config });

before(async () => {
  echo = await startEcho();
  const service = {
    name: 'echo', protocol: 'http', host: '127.0.0.1', port: echo.port,
    routes: [
      { name: 'deny', paths: ['/deny'], plugins: [ipr({ deny: ['10.0.0.0/8', '192.168.1.7'] })] },
      { name: 'allow', paths: ['/allow'], plugins: [ipr({ allow: ['172.16.0.0/12', '2001:db8::/32', '[::1]'] })] },
      { name: 'both', paths: ['/both'], plugins: [ipr({ allow: ['10.0.0.0/8'], deny: ['10.1.0.0/16'] })] },
      { name: 'custom', paths: ['/custom'], plugins: [ipr({ deny: ['0.0.0.0/0', '::/0'], status: 401, message: 'Go away' })] },
      { name: 'loopback', paths: ['/loopback'], plugins: [ipr({ allow: ['127.0.0.1'] })] },
      { name: 'per-consumer', paths: ['/per-consumer'] },
    ],
  };
  const consumers = [
    { username: 'alice', plugins: [ipr({ allow: ['203.0.113.0/24'] })] },
    { username: 'bob' },
  ];
  gw = await startGateway({
    plugins,
    env: { PORTCULLIS_TRUSTED_IPS: '127.0.0.1' },
    config: {
      _format_version: '3.0', services: [service], consumers,
      plugins: [{ name: 'test-header-auth' }],
    },
  });
  plain = await startGateway({ plugins, config: { _format_version: '3.0', services: [service] } });
});

after(async () => {
  await trustedClient.close();
  await plainClient.close();
  await gw?.close();
  await plain?.close();
  await echo?.close();
});

const from = (path: string, ip: string) => trustedClient.call(path, { headers: { 'x-real-ip': ip } });

test('deny: an address in a listed CIDR or listed exactly → 403 with Kong\'s default body; others pass', async () => {
  const r = await from('/deny', '10.20.30.40');
  assert.equal(r.status, 403);
  assert.deepEqual(r.body, { message: 'IP address not allowed: 10.20.30.40' });
  assert.equal((await from('/deny', '192.168.1.7')).status, 403);
  const ok = await from('/deny', '192.168.1.8');
  assert.equal(ok.status, 200);
  assert.equal(ok.body.path, '/'); // proxied (strip_path)
});

test('allow: only listed IPv4 and IPv6 ranges pass', async () => {
  assert.equal((await from('/allow', '172.20.1.1')).status, 200);
  assert.equal((await from('/allow', '2001:db8:a::1')).status, 200);
  assert.equal((await from('/allow', '::1')).status, 200);
  const v6 = await from('/allow', '2001:db9::1');
  assert.equal(v6.status, 403);
  assert.deepEqual(v6.body, { message: 'IP address not allowed: 2001:db9::1' });
  assert.equal((await from('/allow', '172.32.0.1')).status, 403);
});

test('deny is checked first: an address in both lists is refused', async () => {
  assert.equal((await from('/both', '10.2.3.4')).status, 200);
  assert.equal((await from('/both', '10.1.3.4')).status, 403);
  assert.equal((await from('/both', '11.0.0.1')).status, 403);
});

test('status and message replace the default answer', async () => {
  const r = await from('/custom', '198.51.100.1');
  assert.equal(r.status, 401);
  assert.deepEqual(r.body, { message: 'Go away' });
  assert.equal((await from('/custom', '2001:db8::1')).status, 401);
});

test('the client address is the one after trusted_ips processing (X-Forwarded-For too)', async () => {
  const xff = await trustedClient.call('/deny', { headers: { 'x-forwarded-for': '10.9.9.9' } });
  assert.equal(xff.status, 403);
  assert.deepEqual(xff.body, { message: 'IP address not allowed: 10.9.9.9' });
  // An untrusted peer cannot claim another address: it is 127.0.0.1.
  const forged = await plainClient.call('/deny', { headers: { 'x-real-ip': '10.0.0.1' } });
  assert.equal(forged.status, 200);
  const lo = await plainClient.call('/loopback', { headers: { 'x-real-ip': '203.0.113.5' } });
  assert.equal(lo.status, 200);
  const notLo = await from('/loopback', '203.0.113.5');
  assert.equal(notLo.status, 403);
  assert.deepEqual(notLo.body, { message: 'IP address not allowed: 203.0.113.5' });
});

test('a consumer-scoped instance applies to that consumer only', async () => {
  const alice = (ip: string) => trustedClient.call('/per-consumer', { headers: { 'x-real-ip': ip, 'x-test-consumer': 'alice' } });
  assert.equal((await alice('203.0.113.9')).status, 200);
  assert.equal((await alice('198.51.100.9')).status, 403);
  assert.equal((await trustedClient.call('/per-consumer', { headers: { 'x-real-ip': '198.51.100.9', 'x-test-consumer': 'bob' } })).status, 200);
});

test('config: invalid IPs and CIDRs are refused with Kong\'s message', async () => {
  const load = (config: object, protocols?: string[]) => startGateway({ plugins, config: { plugins: [{ name: 'ip-restriction', ...(protocols ? { protocols } : {}), config }] } });
  await assert.rejects(load({ allow: ['127.0.0.1/32', 'hello'] }), issue(/config\.allow\[1\].*invalid ip or cidr range: 'hello'/));
  await assert.rejects(load({ deny: ['0.0.0.0/33'] }), issue(/invalid ip or cidr range: '0\.0\.0\.0\/33'/));
  await assert.rejects(load({ deny: ['::1/129'] }), issue(/invalid ip or cidr range: '::1\/129'/));
  await assert.rejects(load({ deny: ['2001:db8::g'] }), issue(/invalid ip or cidr range: '2001:db8::g'/));
  await assert.rejects(load({ deny: ['fe80::1%eth0'] }), issue(/invalid ip or cidr range: 'fe80::1%eth0'/));
  await assert.rejects(load({ allow: 12 }), issue(/config\.allow/));
});

test('config: at least one of allow/deny (Kong\'s entity check), status bounds; tcp/tls accepted (stream preread), tls_passthrough and udp refused', async () => {
  const load = (config: object, protocols?: string[]) => startGateway({ plugins, config: { plugins: [{ name: 'ip-restriction', ...(protocols ? { protocols } : {}), config }] } });
  await assert.rejects(load({}), issue(/at least one of these fields must be non-empty: 'config\.allow', 'config\.deny'/));
  await assert.rejects(load({ allow: [], deny: [] }), issue(/at least one of these fields must be non-empty/));
  await assert.rejects(load({ deny: ['1.2.3.4'], status: 302 }), issue(/config\.status.*value should be between 400 and 599/));
  await assert.rejects(load({ deny: ['1.2.3.4'] }, ['http', 'tls_passthrough']), issue(/protocols\[1\]/));
  await assert.rejects(load({ deny: ['1.2.3.4'] }, ['udp']), issue(/protocols\[0\]/));
  // Stream connections are checked in the preread phase (test/stream-proxy.test.ts).
  const stream = await load({ deny: ['1.2.3.4'] }, ['http', 'tcp', 'tls']);
  await stream.close();
});
