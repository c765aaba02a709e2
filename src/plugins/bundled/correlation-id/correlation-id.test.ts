import { test } from 'node:test';
import assert from 'node:assert/strict';
import plugin, { correlationIdSchema, CORRELATION_ID_STATE } from './index.ts';
import { makeCtx, makeDeps } from '../../../../test/helpers/plugin-ctx.ts';

const make = (config: unknown) => plugin.create(correlationIdSchema.parse(config), makeDeps('correlation-id'));

test('schema defaults, priority and strictness', () => {
  assert.deepEqual(correlationIdSchema.parse({}), { header_name: 'Kong-Request-ID', generator: 'uuid#counter', echo_downstream: false });
  assert.equal(plugin.priority, 100001);
  assert.equal(correlationIdSchema.safeParse({ generator: 'random' }).success, false);
  assert.equal(correlationIdSchema.safeParse({ extra: true }).success, false);
});

test('uuid#counter: one uuid per instance, counter increments; not echoed by default', async () => {
  const h = await make({});
  const a = makeCtx();
  const b = makeCtx();
  await h.access!(a);
  await h.access!(b);
  const ida = a.upstreamHeaders.get('kong-request-id') as string;
  const idb = b.upstreamHeaders.get('kong-request-id') as string;
  assert.match(ida, /^[0-9a-f-]{36}#1$/);
  assert.equal(idb, ida.replace(/#1$/, '#2'));
  assert.equal(a.state.get(CORRELATION_ID_STATE), ida);
  await h.response!(a);
  assert.equal(a.responseHeaders.get('kong-request-id'), undefined);
});

test('uuid generator, custom header, echo_downstream', async () => {
  const h = await make({ generator: 'uuid', header_name: 'X-Correlation', echo_downstream: true });
  const ctx = makeCtx();
  await h.access!(ctx);
  const id = ctx.upstreamHeaders.get('x-correlation') as string;
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  await h.response!(ctx);
  assert.equal(ctx.responseHeaders.get('x-correlation'), id);
});

test('a client-sent id is kept and echoed', async () => {
  const h = await make({ echo_downstream: true });
  const ctx = makeCtx({ headers: { 'kong-request-id': 'abc-123' } });
  await h.access!(ctx);
  assert.equal(ctx.upstreamHeaders.get('kong-request-id'), 'abc-123');
  await h.response!(ctx);
  assert.equal(ctx.responseHeaders.get('kong-request-id'), 'abc-123');
});

test('tracker generator has six dash-separated parts ending in a timestamp', async () => {
  const h = await make({ generator: 'tracker' });
  const ctx = makeCtx({ now: () => 1_700_000_000_123 });
  await h.access!(ctx);
  const id = ctx.upstreamHeaders.get('kong-request-id') as string;
  assert.ok(id.startsWith('gateway.test-8000-'));
  assert.ok(id.endsWith('-1700000000.123'));
});

test('echo_downstream when access did not run: the client id, else a new one (Kong\'s header_filter)', async () => {
  const h = await make({ echo_downstream: true });
  const given = makeCtx({ headers: { 'kong-request-id': 'client-7' } });
  await h.response!(given);
  assert.equal(given.responseHeaders.get('kong-request-id'), 'client-7');
  const none = makeCtx();
  await h.response!(none);
  assert.match(String(none.responseHeaders.get('kong-request-id')), /^[0-9a-f-]{36}#\d+$/);
  const off = makeCtx();
  await (await make({})).response!(off);
  assert.equal(off.responseHeaders.get('kong-request-id'), undefined, 'nothing without echo_downstream');
});
