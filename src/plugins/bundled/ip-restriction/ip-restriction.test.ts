import { test } from 'node:test';
import assert from 'node:assert/strict';
import plugin, { ipRestrictionSchema, parseIpOrCidr } from './index.ts';
import { makeCtx, makeDeps } from '../../../../test/helpers/plugin-ctx.ts';
import type { Reply, StreamContext } from '../../sdk.ts';

async function run(config: unknown, clientIp: string): Promise<Reply | undefined> {
  const h = await plugin.create(ipRestrictionSchema.parse(config), makeDeps('ip-restriction'));
  return (await h.access!(makeCtx({ clientIp }))) as Reply | undefined;
}

const issues = (config: unknown): Array<{ path: string; message: string }> => {
  const r = ipRestrictionSchema.safeParse(config);
  assert.equal(r.success, false, `expected ${JSON.stringify(config)} to be refused`);
  return r.error!.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
};

test('definition: Kong priority, HTTP protocols plus tcp and tls (stream), entity check as Kong prints it', () => {
  assert.equal(plugin.priority, 990);
  assert.ok(plugin.protocols!.includes('tcp') && plugin.protocols!.includes('tls'));
  assert.ok(!plugin.protocols!.includes('tls_passthrough') && !plugin.protocols!.includes('udp'));
  assert.deepEqual(plugin.defaultProtocols, ['grpc', 'grpcs', 'http', 'https', 'tcp', 'tls']);
  assert.ok(plugin.protocols!.includes('grpc') && plugin.protocols!.includes('https'));
  assert.deepEqual(plugin.kongEntityChecks, [{ at_least_one_of: ['config.allow', 'config.deny'] }]);
  assert.equal(plugin.scopes?.consumer_group, true);
});

test('schema: IPs and CIDRs of both families accepted, as Kong does', () => {
  for (const e of ['127.0.0.1', '127.0.0.1/32', '127.0.0.1/8', '0.0.0.0/0', '::1', '::/0', '::/1', '::/128', '2001:db8::/32', '[::1]', '[2001:db8::]/48', '::ffff:10.0.0.1']) {
    assert.ok(parseIpOrCidr(e), e);
  }
  const c = ipRestrictionSchema.parse({ allow: ['10.0.0.0/8'] });
  assert.equal(c.deny, null);
  assert.equal(c.status, null);
  assert.equal(c.message, null);
});

test('schema: invalid entries get Kong\'s message at their index', () => {
  assert.deepEqual(issues({ allow: ['127.0.0.1/32', '127.0.0.2/32', 'hello'] }), [{ path: 'allow.2', message: "invalid ip or cidr range: 'hello'" }]);
  const bad = ['0.0.0.0/a', '0.0.0.0/-1', '0.0.0.0/33', '::/a', '::/-1', '::/129', '::1/a', '::1/-1', '::1/129', '1.2.3.4/08', '1.2.3.4/8/8', '01.2.3.4', '1.2.3', 'fe80::1%eth0', '1.2.3.4/', ''];
  const found = issues({ deny: bad });
  assert.deepEqual(found, bad.map((e, i) => ({ path: `deny.${i}`, message: `invalid ip or cidr range: '${e}'` })));
});

test('schema: at least one non-empty list (Kong\'s entity check), strict, status bounds', () => {
  assert.deepEqual(issues({}), [{ path: '@entity', message: "at least one of these fields must be non-empty: 'config.allow', 'config.deny'" }]);
  assert.deepEqual(issues({ allow: [], deny: [] }).map((i) => i.path), ['@entity']);
  assert.equal(ipRestrictionSchema.safeParse({ allow: ['1.2.3.4'], whitelist: ['1.2.3.4'] }).success, false);
  assert.deepEqual(issues({ allow: ['1.2.3.4'], status: 200 }), [{ path: 'status', message: 'value should be between 400 and 599' }]);
  assert.deepEqual(issues({ allow: ['1.2.3.4'], message: '' }), [{ path: 'message', message: 'length must be at least 1' }]);
  assert.ok(ipRestrictionSchema.safeParse({ allow: ['1.2.3.4'], deny: ['1.2.3.5'], status: 401, message: 'no' }).success);
});

test('deny: a listed address or range is refused with 403 and Kong\'s default message', async () => {
  const r = await run({ deny: ['10.0.0.0/8', '192.168.1.1'] }, '10.20.30.40');
  assert.equal(r?.status, 403);
  assert.deepEqual(r?.body, { message: 'IP address not allowed: 10.20.30.40' });
  assert.equal((await run({ deny: ['10.0.0.0/8', '192.168.1.1'] }, '192.168.1.1'))?.status, 403);
  assert.equal(await run({ deny: ['10.0.0.0/8', '192.168.1.1'] }, '192.168.1.2'), undefined);
});

test('allow: only listed addresses pass; a non-canonical CIDR covers its whole network', async () => {
  assert.equal(await run({ allow: ['127.0.0.1/8'] }, '127.200.0.1'), undefined);
  assert.equal((await run({ allow: ['127.0.0.1/8'] }, '128.0.0.1'))?.status, 403);
});

test('deny wins over allow', async () => {
  const conf = { allow: ['10.0.0.0/8'], deny: ['10.1.0.0/16'] };
  assert.equal(await run(conf, '10.2.0.1'), undefined);
  assert.equal((await run(conf, '10.1.0.1'))?.status, 403);
});

test('IPv6: ranges, bracketed entries; families never cross', async () => {
  assert.equal(await run({ allow: ['2001:db8::/32'] }, '2001:db8:1::5'), undefined);
  assert.equal((await run({ allow: ['2001:db8::/32'] }, '2001:db9::5'))?.status, 403);
  assert.equal(await run({ allow: ['[::1]'] }, '::1'), undefined);
  // An IPv4 client is not matched by IPv6 entries (resty.ipmatcher compares within a family).
  assert.equal((await run({ allow: ['::ffff:0:0/96'] }, '10.0.0.1'))?.status, 403);
  // A mapped IPv4 peer (dual-stack listener) is its IPv4 address.
  assert.equal(await run({ allow: ['10.0.0.0/8'] }, '::ffff:10.0.0.1'), undefined);
});

test('status and message replace the defaults', async () => {
  const r = await run({ deny: ['1.2.3.4'], status: 401, message: 'go away' }, '1.2.3.4');
  assert.equal(r?.status, 401);
  assert.deepEqual(r?.body, { message: 'go away' });
});

test('a client without an IP address gets Kong\'s unix-socket answer', async () => {
  const r = await run({ deny: ['1.2.3.4'], status: 401 }, '');
  assert.equal(r?.status, 403);
  assert.deepEqual(r?.body, { message: 'Cannot identify the client IP address, unix domain sockets are not supported.' });
});

test('preread (stream connections): the same allow/deny check; a refusal carries the status and message, a pass returns nothing', async () => {
  const log = { warn() {}, info() {}, error() {}, debug() {} } as unknown as StreamContext['log'];
  const ctx = (clientIp: string) => ({ clientIp, clientPort: 5000, serverIp: '127.0.0.1', serverPort: 9000, protocol: 'tcp', sni: null, route: {}, service: null, log }) as unknown as StreamContext;
  const deny = await plugin.create(ipRestrictionSchema.parse({ deny: ['10.0.0.0/8'], status: 401 }), makeDeps('ip-restriction'));
  assert.deepEqual(deny.preread!(ctx('10.1.2.3')), { status: 401, message: 'IP address not allowed: 10.1.2.3' });
  assert.equal(deny.preread!(ctx('192.168.0.1')), undefined);
  const allow = await plugin.create(ipRestrictionSchema.parse({ allow: ['::ffff:0:0/96', '127.0.0.1'], message: 'go away' }), makeDeps('ip-restriction'));
  assert.equal(allow.preread!(ctx('127.0.0.1')), undefined);
  assert.deepEqual(allow.preread!(ctx('127.0.0.2')), { status: 403, message: 'go away' });
  assert.deepEqual(allow.preread!(ctx('not-an-ip')), { status: 403, message: 'Cannot identify the client IP address, unix domain sockets are not supported.' });
});
