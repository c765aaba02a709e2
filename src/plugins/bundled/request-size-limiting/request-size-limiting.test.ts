import { test } from 'node:test';
import assert from 'node:assert/strict';
import plugin, { requestSizeLimitingSchema } from './index.ts';
import { makeCtx, makeDeps, type FakeRequest } from '../../../../test/helpers/plugin-ctx.ts';
import type { Reply } from '../../sdk.ts';
import { GatewayError } from '../../../errors.ts';

async function run(config: unknown, req: FakeRequest, size?: (stopAbove?: number) => Promise<number>) {
  const h = await plugin.create(requestSizeLimitingSchema.parse(config), makeDeps('request-size-limiting'));
  const ctx = makeCtx(req);
  let reads = 0;
  const measure = size ?? ctx.request.bodySize;
  let asked: number | undefined;
  (ctx.request as { bodySize: (stopAbove?: number) => Promise<number> }).bodySize = (stopAbove) => {
    reads++;
    asked = stopAbove;
    return measure(stopAbove);
  };
  const reply = (await h.access!(ctx)) as Reply | undefined;
  return { reply, reads, asked };
}

test('definition and schema: Kong priority, defaults, units, strict', () => {
  assert.equal(plugin.priority, 951);
  assert.ok(!plugin.protocols!.includes('tcp'));
  assert.deepEqual(requestSizeLimitingSchema.parse({}), { allowed_payload_size: 128, size_unit: 'megabytes', require_content_length: false });
  for (const bad of [{ size_unit: 'gigabytes' }, { allowed_payload_size: 1.5 }, { allowed_payload_size: '10' }, { require_content_length: 'yes' }, { limit: 1 }]) {
    assert.equal(requestSizeLimitingSchema.safeParse(bad).success, false, JSON.stringify(bad));
  }
});

test('Content-Length is checked without reading the body; units are powers of two', async () => {
  const conf = { allowed_payload_size: 1, size_unit: 'kilobytes' };
  const ok = await run(conf, { method: 'POST', headers: { 'content-length': '1024' } });
  assert.equal(ok.reply, undefined);
  assert.equal(ok.reads, 0);
  const big = await run(conf, { method: 'POST', headers: { 'content-length': '1025' } });
  assert.equal(big.reply?.status, 413);
  assert.deepEqual(big.reply?.body, { message: 'Request size limit exceeded' });
  assert.equal(big.reads, 0);
  assert.equal((await run({ allowed_payload_size: 1 }, { headers: { 'content-length': '1048577' } })).reply?.status, 413);
  assert.equal((await run({ allowed_payload_size: 1 }, { headers: { 'content-length': '1048576' } })).reply, undefined);
});

test('Expect: 100-continue turns 413 into 417', async () => {
  const r = await run({ allowed_payload_size: 10, size_unit: 'bytes' }, { headers: { 'content-length': '11', expect: ' 100-Continue ' } });
  assert.equal(r.reply?.status, 417);
  assert.deepEqual(r.reply?.body, { message: 'Request size limit exceeded' });
});

test('chunked bodies are measured as read', async () => {
  const conf = { allowed_payload_size: 10, size_unit: 'bytes' };
  const under = await run(conf, { method: 'POST', headers: { 'transfer-encoding': 'chunked' }, body: 'x'.repeat(10) });
  assert.equal(under.reply, undefined);
  assert.equal(under.reads, 1);
  const over = await run(conf, { method: 'POST', headers: { 'transfer-encoding': 'chunked' }, body: 'x'.repeat(11) });
  assert.equal(over.reply?.status, 413);
});

test('a chunked body is measured up to the limit only, and a refusal closes the connection', async () => {
  const r = await run({ allowed_payload_size: 2, size_unit: 'kilobytes' }, { method: 'POST', headers: { 'transfer-encoding': 'chunked' }, body: 'x'.repeat(5000) });
  assert.equal(r.asked, 2048);
  assert.equal(r.reply?.status, 413);
  assert.deepEqual(r.reply?.body, { message: 'Request size limit exceeded' });
  assert.equal(r.reply?.headers?.connection, 'close');
  // The node's own failures (413 past client_max_body_size, timeouts, client gone) are the kernel's to answer.
  await assert.rejects(run({}, { headers: { 'transfer-encoding': 'chunked' } }, async () => {
    throw new GatewayError('GW_REQUEST_TIMEOUT', 'Request timeout', { status: 408 });
  }), /Request timeout/);
});

test('require_content_length: 411 without it unless chunked', async () => {
  const conf = { require_content_length: true };
  const r = await run(conf, { method: 'POST' });
  assert.equal(r.reply?.status, 411);
  assert.deepEqual(r.reply?.body, { message: 'A valid Content-Length header is required' });
  assert.equal((await run(conf, { method: 'POST', headers: { 'transfer-encoding': 'chunked' }, body: 'abc' })).reply, undefined);
  assert.equal((await run(conf, { method: 'POST', headers: { 'content-length': '3' } })).reply, undefined);
});

test('an HTTP/1 request without a body is not read; an HTTP/2 one is', async () => {
  const none = await run({ allowed_payload_size: 0, size_unit: 'bytes' }, { method: 'GET' });
  assert.equal(none.reply, undefined);
  assert.equal(none.reads, 0);
  const h2 = await run({ allowed_payload_size: 2, size_unit: 'bytes' }, { method: 'POST', headers: { ':method': 'POST' }, body: 'abc' });
  assert.equal(h2.reply?.status, 413);
  assert.equal(h2.reads, 1);
});
