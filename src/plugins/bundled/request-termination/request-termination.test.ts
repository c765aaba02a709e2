import { test } from 'node:test';
import assert from 'node:assert/strict';
import plugin, { requestTerminationSchema } from './index.ts';
import { makeCtx, makeDeps, type FakeRequest } from '../../../../test/helpers/plugin-ctx.ts';
import type { Reply } from '../../sdk.ts';

async function run(config: unknown, req: FakeRequest = {}) {
  const h = await plugin.create(requestTerminationSchema.parse(config), makeDeps('request-termination'));
  return (await h.access!(makeCtx(req))) as Reply | undefined;
}

test('schema: defaults and Kong cross-field rules', () => {
  const c = requestTerminationSchema.parse({});
  assert.equal(c.status_code, 503);
  assert.equal(c.echo, false);
  assert.equal(plugin.priority, 2);
  assert.equal(requestTerminationSchema.safeParse({ status_code: 600 }).success, false);
  assert.equal(requestTerminationSchema.safeParse({ status_code: 99 }).success, false);
  assert.equal(requestTerminationSchema.safeParse({ message: 'x', body: 'y' }).success, false);
  assert.equal(requestTerminationSchema.safeParse({ content_type: 'text/plain' }).success, false);
  assert.equal(requestTerminationSchema.safeParse({ echo: true, body: 'y' }).success, false);
  assert.equal(requestTerminationSchema.safeParse({ nope: 1 }).success, false);
});

test('default: 503 with Kong default message', async () => {
  const r = await run({});
  assert.equal(r?.status, 503);
  assert.deepEqual(r?.body, { message: 'Service unavailable' });
});

test('status and message', async () => {
  const r = await run({ status_code: 403, message: 'So long and thanks for all the fish!' });
  assert.equal(r?.status, 403);
  assert.deepEqual(r?.body, { message: 'So long and thanks for all the fish!' });
});

test('raw body with content type (default application/json)', async () => {
  const r = await run({ status_code: 418, body: '<p>teapot</p>', content_type: 'text/html' });
  assert.equal(r?.body, '<p>teapot</p>');
  assert.equal(r?.headers?.['Content-Type'], 'text/html');
  const j = await run({ body: '{"a":1}' });
  assert.equal(j?.headers?.['Content-Type'], 'application/json; charset=utf-8');
});

test('trigger: only requests carrying the header or query parameter are terminated', async () => {
  assert.equal(await run({ trigger: 'X-Stop' }), undefined);
  assert.equal((await run({ trigger: 'X-Stop' }, { headers: { 'x-stop': '1' } }))?.status, 503);
  assert.equal((await run({ trigger: 'X-Stop' }, { rawQuery: 'X-Stop=' }))?.status, 503);
});

test('echo describes the request', async () => {
  const r = await run({ echo: true, status_code: 404 }, {
    method: 'POST', path: '/echo/me', rawQuery: 'a=1&a=2&b=x', headers: { 'content-type': 'application/json', 'x-h': 'v' }, body: '{"k":"v"}',
  });
  assert.equal(r?.status, 404);
  const body = r?.body as { message: string; request: Record<string, unknown> };
  assert.equal(body.message, 'Not found');
  assert.equal(body.request.method, 'POST');
  assert.equal(body.request.path, '/echo/me');
  assert.deepEqual(body.request.query, { a: ['1', '2'], b: 'x' });
  assert.deepEqual(body.request.body, { k: 'v' });
  assert.equal(body.request.raw_body, '{"k":"v"}');
  assert.equal((body.request.headers as Record<string, string>)['x-h'], 'v');
});

test('trigger must be a header name', () => {
  assert.equal(requestTerminationSchema.safeParse({ trigger: 'bad header' }).success, false);
  assert.equal(requestTerminationSchema.safeParse({ trigger: 'X-Ok' }).success, true);
});

test('schema: Kong\'s typedefs.header_name for trigger and non-empty strings', () => {
  const dotted = requestTerminationSchema.safeParse({ trigger: 'X.Stop' });
  assert.equal(dotted.success, false, 'Kong allows only A-Z, a-z, 0-9, _ and - in a header name');
  assert.match(dotted.error!.issues[0].message, /bad header name 'X\.Stop', allowed characters are A-Z, a-z, 0-9, '_', and '-'/);
  assert.deepEqual(dotted.error!.issues[0].path, ['trigger']);
  assert.equal(requestTerminationSchema.safeParse({ trigger: 'X_Stop-2' }).success, true);
  for (const field of ['message', 'body', 'content_type']) {
    const empty = requestTerminationSchema.safeParse({ [field]: '' });
    assert.equal(empty.success, false, `${field}: ''`);
    assert.deepEqual(empty.error!.issues[0].path, [field]);
    assert.match(empty.error!.issues[0].message, /length must be at least 1/);
  }
});
