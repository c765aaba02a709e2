import { test } from 'node:test';
import assert from 'node:assert/strict';
import plugin, { aclSchema } from './index.ts';
import { makeConsumer, makeCtx, makeDeps, type FakeRequest } from '../../../../test/helpers/plugin-ctx.ts';
import type { Reply } from '../../sdk.ts';

const make = (config: unknown) => plugin.create(aclSchema.parse(config), makeDeps('acl'));
const alice = makeConsumer('c-alice', 'alice');
const cred = { id: 'cred-1', consumer: { id: 'c-alice' } };

async function run(config: unknown, req: FakeRequest) {
  const h = await make(config);
  const ctx = makeCtx(req);
  const reply = (await h.access!(ctx)) as Reply | undefined;
  return { ctx, reply };
}

test('schema: exactly one of allow/deny; defaults; strict', () => {
  assert.equal(aclSchema.safeParse({}).success, false);
  assert.equal(aclSchema.safeParse({ allow: [] }).success, false);
  assert.equal(aclSchema.safeParse({ allow: ['a'], deny: ['b'] }).success, false);
  assert.equal(aclSchema.safeParse({ allow: ['a'], foo: 1 }).success, false);
  assert.deepEqual(aclSchema.parse({ deny: ['b'], allow: [] }).deny, ['b']);
  const c = aclSchema.parse({ allow: ['a'] });
  assert.equal(c.hide_groups_header, false);
  assert.equal(c.always_use_authenticated_groups, false);
  assert.equal(c.include_consumer_groups, false);
  assert.equal(plugin.priority, 950);
});

test('allow: consumer in group passes with X-Consumer-Groups; client copies removed', async () => {
  const { ctx, reply } = await run({ allow: ['admin'] }, {
    consumer: alice, credential: cred, acls: { 'c-alice': ['admin', 'dev'] },
    headers: { 'x-consumer-groups': 'forged', 'x-authenticated-groups': 'forged' },
  });
  assert.equal(reply, undefined);
  assert.equal(ctx.upstreamHeaders.get('x-consumer-groups'), 'admin, dev');
  assert.equal(ctx.upstreamHeaders.get('x-authenticated-groups'), undefined);
});

test('allow: consumer not in group → 403', async () => {
  const { reply } = await run({ allow: ['admin'] }, { consumer: alice, credential: cred, acls: { 'c-alice': ['dev'] } });
  assert.equal(reply?.status, 403);
  assert.deepEqual(reply?.body, { message: 'You cannot consume this service' });
});

test('deny: listed group → 403; consumer without groups passes', async () => {
  const denied = await run({ deny: ['dev'] }, { consumer: alice, credential: cred, acls: { 'c-alice': ['dev'] } });
  assert.equal(denied.reply?.status, 403);
  const none = await run({ deny: ['dev'] }, { consumer: alice, credential: cred });
  assert.equal(none.reply, undefined);
});

test('allow: consumer without groups → 403 with a credential, 401 without', async () => {
  assert.equal((await run({ allow: ['x'] }, { consumer: alice, credential: cred })).reply?.status, 403);
  assert.equal((await run({ allow: ['x'] }, { consumer: alice })).reply?.status, 401);
});

test('no consumer: authenticated groups are used; none → 401, or 403 with a credential', async () => {
  const ok = await run({ allow: ['openid'] }, { authenticatedGroups: ['openid', 'email'], headers: { 'x-authenticated-groups': 'admin' } });
  assert.equal(ok.reply, undefined);
  assert.equal(ok.ctx.upstreamHeaders.get('x-authenticated-groups'), 'openid, email');
  const blocked = await run({ deny: ['openid'] }, { authenticatedGroups: ['openid'] });
  assert.equal(blocked.reply?.status, 403);
  const anon = await run({ allow: ['openid'] }, {});
  assert.equal(anon.reply?.status, 401);
  assert.deepEqual(anon.reply?.body, { message: 'Unauthorized' });
  const virtual = await run({ allow: ['openid'] }, { credential: { id: 'sub-123' } });
  assert.equal(virtual.reply?.status, 403);
});

test('consumer with credential: consumer groups win unless always_use_authenticated_groups', async () => {
  const req: FakeRequest = { consumer: alice, credential: cred, acls: { 'c-alice': ['dev'] }, authenticatedGroups: ['admin'] };
  assert.equal((await run({ allow: ['admin'] }, req)).reply?.status, 403);
  const pref = await run({ allow: ['admin'], always_use_authenticated_groups: true }, req);
  assert.equal(pref.reply, undefined);
  assert.equal(pref.ctx.upstreamHeaders.get('x-authenticated-groups'), 'admin');
  assert.equal(pref.ctx.upstreamHeaders.get('x-consumer-groups'), undefined);
});

test('decided on consumer groups: the authenticated groups still reach the upstream (client copies never)', async () => {
  const req: FakeRequest = {
    consumer: alice, credential: cred, acls: { 'c-alice': ['dev'] }, authenticatedGroups: ['openid', 'email'],
    headers: { 'x-authenticated-groups': 'forged' },
  };
  const r = await run({ allow: ['dev'] }, req);
  assert.equal(r.reply, undefined);
  assert.equal(r.ctx.upstreamHeaders.get('x-consumer-groups'), 'dev');
  assert.equal(r.ctx.upstreamHeaders.get('x-authenticated-groups'), 'openid, email');
  const forged = await run({ allow: ['dev'] }, { consumer: alice, credential: cred, acls: { 'c-alice': ['dev'] }, headers: { 'x-authenticated-groups': 'forged' } });
  assert.equal(forged.ctx.upstreamHeaders.get('x-authenticated-groups'), undefined);
});

test('consumer without credential (anonymous): authenticated groups override', async () => {
  const r = await run({ allow: ['admin'] }, { consumer: alice, acls: { 'c-alice': ['dev'] }, authenticatedGroups: ['admin'] });
  assert.equal(r.reply, undefined);
});

test('hide_groups_header sends no group header (and still strips client copies)', async () => {
  const r = await run({ allow: ['admin'], hide_groups_header: true }, {
    consumer: alice, credential: cred, acls: { 'c-alice': ['admin'] }, headers: { 'x-consumer-groups': 'forged' },
  });
  assert.equal(r.reply, undefined);
  assert.equal(r.ctx.upstreamHeaders.get('x-consumer-groups'), undefined);
});

test('consumer known only through the credential', async () => {
  const r = await run({ allow: ['admin'] }, { credential: cred, acls: { 'c-alice': ['admin'] } });
  assert.equal(r.reply, undefined);
  assert.equal(r.ctx.upstreamHeaders.get('x-consumer-groups'), 'admin');
});

test('include_consumer_groups: consumer-group names match allow/deny and join X-Consumer-Groups; off, they do not count', async () => {
  const consumerGroups = [{ id: 'g1', name: 'gold', tags: null, created_at: 0, updated_at: 0 }];
  const req = { consumer: alice, credential: cred, acls: { 'c-alice': ['dev'] }, consumerGroups, memberships: { 'c-alice': ['gold'] } };
  const on = await run({ allow: ['gold'], include_consumer_groups: true }, req);
  assert.equal(on.reply, undefined);
  assert.equal(on.ctx.upstreamHeaders.get('x-consumer-groups'), 'dev, gold');
  const off = await run({ allow: ['gold'] }, req);
  assert.equal(off.reply?.status, 403);
  const denied = await run({ deny: ['gold'], include_consumer_groups: true }, req);
  assert.equal(denied.reply?.status, 403);
  const onlyGroup = await run({ allow: ['gold'], include_consumer_groups: true }, { ...req, acls: {} });
  assert.equal(onlyGroup.reply, undefined, 'a consumer with no ACL groups passes through its consumer group');
});
