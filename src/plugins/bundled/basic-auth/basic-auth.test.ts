import { test } from 'node:test';
import assert from 'node:assert/strict';
import plugin, { basicAuthSchema, parseBasic } from './index.ts';
import { makeConsumer, makeCtx, makeDeps, type FakeRequest } from '../../../../test/helpers/plugin-ctx.ts';
import type { Reply } from '../../sdk.ts';
import type { BasicAuthCredential } from '../../../config/credentials.ts';
import { hashPassword, isPasswordHash, verifyPassword } from '../../../password-hash.ts';

const bob = makeConsumer('c-bob', 'bob');
const stored: BasicAuthCredential = { id: 'ba-1', consumer: { id: bob.id }, username: 'bob-user', password: hashPassword('s3cret:with:colons'), tags: null, created_at: 0 };
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

async function runWith(h: Awaited<ReturnType<typeof plugin.create>>, req: FakeRequest) {
  const ctx = makeCtx({ consumers: [bob], basicAuths: [stored], ...req });
  const reply = (await h.access!(ctx)) as Reply | undefined;
  return { ctx, reply };
}
const make = (config: unknown = {}) => plugin.create(basicAuthSchema.parse(config), makeDeps('basic-auth'));

test('password hashes: salted scrypt, never the password; verification', async () => {
  const a = hashPassword('pw'), b = hashPassword('pw');
  assert.notEqual(a, b, 'salted');
  assert.ok(isPasswordHash(a));
  assert.ok(!a.includes('pw$'));
  assert.equal(await verifyPassword('pw', a), true);
  assert.equal(await verifyPassword('PW', a), false);
  assert.equal(await verifyPassword('pw', 'plain'), false);
  assert.equal(isPasswordHash('$scrypt$nonsense'), false);
});

test('schema defaults and Kong priority', () => {
  const c = basicAuthSchema.parse({});
  assert.equal(c.realm, 'service');
  assert.equal(c.hide_credentials, false);
  assert.equal(c.anonymous, null);
  assert.equal(basicAuthSchema.safeParse({ run_on_preflight: true }).success, false);
  assert.equal(plugin.priority, 1100);
});

test('parseBasic: case-insensitive scheme, first colon splits, bad base64 refused', () => {
  assert.deepEqual(parseBasic(basic('u', 'a:b')), { username: 'u', password: 'a:b' });
  assert.deepEqual(parseBasic(`basic ${Buffer.from('u:p').toString('base64')}`), { username: 'u', password: 'p' });
  assert.equal(parseBasic('Basic !!!'), null);
  assert.equal(parseBasic(`Basic ${Buffer.from(':p').toString('base64')}`), null);
  assert.equal(parseBasic('Bearer x'), null);
});

test('right password authenticates (identity headers, identifier = username); the second request is served from the verified memo', async () => {
  const h = await make();
  const first = await runWith(h, { headers: { authorization: basic('bob-user', 's3cret:with:colons') } });
  assert.equal(first.reply, undefined);
  assert.equal(first.ctx.upstreamHeaders.get('x-consumer-id'), 'c-bob');
  assert.equal(first.ctx.upstreamHeaders.get('x-credential-identifier'), 'bob-user');
  assert.equal(first.ctx.upstreamHeaders.get('authorization'), basic('bob-user', 's3cret:with:colons'));
  const ctx = makeCtx({ consumers: [bob], basicAuths: [stored], headers: { authorization: basic('bob-user', 's3cret:with:colons') } });
  const r = h.access!(ctx);
  assert.equal(r, undefined, 'verified before: answered synchronously');
  assert.equal(ctx.consumer?.id, 'c-bob');
});

test('wrong password, unknown user, no header, garbage → 401 Unauthorized with the realm challenge', async () => {
  const h = await make({ realm: 'api' });
  for (const headers of [{ authorization: basic('bob-user', 'wrong') }, { authorization: basic('nobody', 'x') }, {}, { authorization: 'Basic ###' }] as Record<string, string>[]) {
    const { reply } = await runWith(h, { headers });
    assert.equal(reply?.status, 401, JSON.stringify(headers));
    assert.deepEqual(reply?.body, { message: 'Unauthorized' });
    assert.equal(reply?.headers?.['www-authenticate'], 'Basic realm="api"');
  }
  // After a success, a wrong password for the same credential is still refused.
  await runWith(h, { headers: { authorization: basic('bob-user', 's3cret:with:colons') } });
  assert.equal((await runWith(h, { headers: { authorization: basic('bob-user', 'wrong') } })).reply?.status, 401);
});

test('Proxy-Authorization is read first; hide_credentials drops the headers read', async () => {
  const h = await make({ hide_credentials: true });
  const { ctx, reply } = await runWith(h, { headers: { 'proxy-authorization': basic('bob-user', 's3cret:with:colons'), authorization: 'Bearer upstream-token' } });
  assert.equal(reply, undefined);
  assert.equal(ctx.upstreamHeaders.get('proxy-authorization'), undefined);
  assert.equal(ctx.upstreamHeaders.get('authorization'), 'Bearer upstream-token', 'not read, so kept');
  const fallback = await runWith(h, { headers: { 'proxy-authorization': basic('nobody', 'x'), authorization: basic('bob-user', 's3cret:with:colons') } });
  assert.equal(fallback.reply, undefined);
  assert.equal(fallback.ctx.upstreamHeaders.get('authorization'), undefined);
});

test('a credential of a deleted consumer never authenticates; anonymous fallback', async () => {
  const h = await make();
  const orphan = { ...stored, consumer: { id: 'gone' } };
  const { reply } = await runWith(h, { basicAuths: [orphan], headers: { authorization: basic('bob-user', 's3cret:with:colons') } });
  assert.equal(reply?.status, 401);
  const anon = await make({ anonymous: 'c-bob' });
  const a = await runWith(anon, { headers: { authorization: basic('bob-user', 'wrong') } });
  assert.equal(a.reply, undefined);
  assert.equal(a.ctx.credential, null);
  assert.equal(a.ctx.upstreamHeaders.get('x-anonymous-consumer'), 'true');
});

test('a remembered header: a changed password or a deleted credential is not served from memory; hide_credentials still applies', async () => {
  const h = await make({ hide_credentials: true });
  const header = basic('bob-user', 's3cret:with:colons');
  assert.equal((await runWith(h, { headers: { authorization: header } })).reply, undefined);
  // The same header again: answered synchronously, the header still removed.
  const again = makeCtx({ consumers: [bob], basicAuths: [stored], headers: { authorization: header } });
  assert.equal(h.access!(again), undefined);
  assert.equal(again.consumer?.id, 'c-bob');
  assert.equal(again.upstreamHeaders.get('authorization'), undefined);
  // The password was changed (a new stored hash): the old header is verified again, and refused.
  const changed = { ...stored, password: hashPassword('new-password') };
  assert.equal((await runWith(h, { basicAuths: [changed], headers: { authorization: header } })).reply?.status, 401);
  // The credential was deleted.
  assert.equal((await runWith(h, { basicAuths: [], headers: { authorization: header } })).reply?.status, 401);
  // Another credential with the same username but another hash of the same password: verified afresh, accepted.
  const recreated = { ...stored, id: 'ba-2', password: hashPassword('s3cret:with:colons') };
  const r = await runWith(h, { basicAuths: [recreated], headers: { authorization: header } });
  assert.equal(r.reply, undefined);
  assert.equal(r.ctx.credential?.id, 'ba-2');
});
