import { test } from 'node:test';
import assert from 'node:assert/strict';
import plugin, { keyAuthSchema } from './index.ts';
import { makeConsumer, makeCtx, makeDeps, type FakeRequest } from '../../../../test/helpers/plugin-ctx.ts';
import type { Reply } from '../../sdk.ts';
import type { KeyAuthCredential } from '../../../config/credentials.ts';

const alice = makeConsumer('c-alice', 'alice', 'A-1');
const anon = makeConsumer('c-anon', 'anonymous');
const cred = (key: string, extra: Partial<KeyAuthCredential> = {}): KeyAuthCredential =>
  ({ id: `kc-${key}`, consumer: { id: alice.id }, key, ttl: null, tags: null, created_at: 0, ...extra });

async function run(config: unknown, req: FakeRequest) {
  const h = await plugin.create(keyAuthSchema.parse(config), makeDeps('key-auth'));
  const ctx = makeCtx({ consumers: [alice, anon], keyAuths: [cred('secret-1')], ...req });
  const reply = (await h.access!(ctx)) as Reply | undefined;
  return { ctx, reply };
}

test('schema: Kong defaults, strict, priority 1250', () => {
  const c = keyAuthSchema.parse({});
  assert.deepEqual(c.key_names, ['apikey']);
  assert.equal(c.key_in_header, true);
  assert.equal(c.key_in_query, true);
  assert.equal(c.key_in_body, false);
  assert.equal(c.hide_credentials, false);
  assert.equal(c.run_on_preflight, true);
  assert.equal(c.anonymous, null);
  assert.equal(keyAuthSchema.safeParse({ identity_realms: [] }).success, false);
  assert.equal(keyAuthSchema.safeParse({ key_names: [] }).success, false);
  assert.equal(keyAuthSchema.safeParse({ key_names: ['bad name'] }).success, false);
  assert.equal(plugin.priority, 1250);
});

test('a key in the header authenticates and sets the identity headers; client copies are replaced', async () => {
  const { ctx, reply } = await run({}, { headers: { ApiKey: 'secret-1', 'x-consumer-id': 'forged', 'x-anonymous-consumer': 'true', 'x-credential-identifier': 'forged' } });
  assert.equal(reply, undefined);
  assert.equal(ctx.consumer?.id, 'c-alice');
  assert.equal(ctx.credential?.id, 'kc-secret-1');
  assert.equal(ctx.upstreamHeaders.get('x-consumer-id'), 'c-alice');
  assert.equal(ctx.upstreamHeaders.get('x-consumer-username'), 'alice');
  assert.equal(ctx.upstreamHeaders.get('x-consumer-custom-id'), 'A-1');
  assert.equal(ctx.upstreamHeaders.get('x-credential-identifier'), 'kc-secret-1');
  assert.equal(ctx.upstreamHeaders.get('x-anonymous-consumer'), undefined);
  assert.equal(ctx.upstreamHeaders.get('apikey'), 'secret-1', 'kept without hide_credentials');
});

test('query key; duplicate query key; missing; unknown; expired — Kong messages and WWW-Authenticate', async () => {
  assert.equal((await run({}, { rawQuery: 'apikey=secret-1' })).reply, undefined);
  const dup = await run({}, { rawQuery: 'apikey=a&apikey=b' });
  assert.equal(dup.reply?.status, 401);
  assert.deepEqual(dup.reply?.body, { message: 'Duplicate API key found' });
  const none = await run({ realm: 'zone' }, {});
  assert.deepEqual(none.reply?.body, { message: 'No API key found in request' });
  assert.equal(none.reply?.headers?.['www-authenticate'], 'Key realm="zone"');
  const unknown = await run({}, { headers: { apikey: 'nope' } });
  assert.deepEqual(unknown.reply?.body, { message: 'Unauthorized' });
  assert.equal(unknown.reply?.headers?.['www-authenticate'], 'Key');
  const expired = await run({}, { headers: { apikey: 'old' }, keyAuths: [cred('old', { ttl: 10, created_at: 990 })], now: () => 1001_000 });
  assert.equal(expired.reply?.status, 401);
  const live = await run({}, { headers: { apikey: 'old' }, keyAuths: [cred('old', { ttl: 10, created_at: 990 })], now: () => 999_000 });
  assert.equal(live.reply, undefined);
});

test('key_in_header/key_in_query off are honoured; header wins over query', async () => {
  assert.equal((await run({ key_in_query: false }, { rawQuery: 'apikey=secret-1' })).reply?.status, 401);
  assert.equal((await run({ key_in_header: false }, { headers: { apikey: 'secret-1' } })).reply?.status, 401);
  assert.equal((await run({}, { headers: { apikey: 'secret-1' }, rawQuery: 'apikey=wrong' })).reply, undefined);
});

test('key_in_body: form and JSON bodies; hide_credentials strips header, query and body field', async () => {
  const form = await run({ key_in_body: true, hide_credentials: true }, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1&apikey=secret-1' });
  assert.equal(form.reply, undefined);
  assert.equal(form.ctx.upstreamBody, 'a=1');
  const json = await run({ key_in_body: true, hide_credentials: true }, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"apikey":"secret-1","b":2}' });
  assert.equal(json.reply, undefined);
  assert.equal(json.ctx.upstreamBody, '{"b":2}');
  const hidden = await run({ hide_credentials: true }, { headers: { apikey: 'secret-1' }, rawQuery: 'x=1' });
  assert.equal(hidden.ctx.upstreamHeaders.get('apikey'), undefined);
  const q = await run({ hide_credentials: true }, { rawQuery: 'apikey=secret-1&x=1' });
  assert.equal(q.ctx.upstream.query.toString(), 'x=1');
});

test('a credential whose consumer is gone never authenticates', async () => {
  const { reply } = await run({}, { headers: { apikey: 'ghost' }, keyAuths: [{ ...cred('ghost'), consumer: { id: 'deleted' } }] });
  assert.equal(reply?.status, 401);
});

test('anonymous: failure attaches the anonymous consumer; an earlier credential short-cuts; missing anonymous → 500', async () => {
  const a = await run({ anonymous: 'anonymous' }, { headers: { apikey: 'nope' } });
  assert.equal(a.reply, undefined);
  assert.equal(a.ctx.consumer?.id, 'c-anon');
  assert.equal(a.ctx.credential, null);
  assert.equal(a.ctx.upstreamHeaders.get('x-anonymous-consumer'), 'true');
  assert.equal(a.ctx.upstreamHeaders.get('x-credential-identifier'), undefined);
  const before = await run({ anonymous: 'c-anon' }, { consumer: alice, credential: { id: 'other' }, headers: { apikey: 'nope' } });
  assert.equal(before.reply, undefined);
  assert.equal(before.ctx.credential?.id, 'other');
  const missing = await run({ anonymous: 'nobody' }, {});
  assert.equal(missing.reply?.status, 500);
  assert.deepEqual(missing.reply?.body, { message: "anonymous consumer nobody is configured but doesn't exist" });
});

test('run_on_preflight false lets OPTIONS through untouched', async () => {
  assert.equal((await run({ run_on_preflight: false }, { method: 'OPTIONS' })).reply, undefined);
  assert.equal((await run({}, { method: 'OPTIONS' })).reply?.status, 401);
});

test('X-Consumer-Groups carries the consumer groups of the consumer', async () => {
  const { ctx } = await run({}, {
    headers: { apikey: 'secret-1', 'x-consumer-groups': 'forged' },
    consumerGroups: [{ id: 'g1', name: 'gold', tags: null, created_at: 0, updated_at: 0 }, { id: 'g2', name: 'beta', tags: null, created_at: 0, updated_at: 0 }],
    memberships: { 'c-alice': ['gold', 'beta'] },
  });
  assert.equal(ctx.upstreamHeaders.get('x-consumer-groups'), 'beta, gold');
  const none = await run({}, { headers: { apikey: 'secret-1', 'x-consumer-groups': 'forged' } });
  assert.equal(none.ctx.upstreamHeaders.get('x-consumer-groups'), undefined);
});
