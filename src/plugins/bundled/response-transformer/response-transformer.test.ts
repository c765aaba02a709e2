import { test } from 'node:test';
import assert from 'node:assert/strict';
import plugin, { responseTransformerSchema } from './index.ts';
import { readableErrorMap } from '../../../config/issues.ts';
import { makeCtx, makeDeps } from '../../../../test/helpers/plugin-ctx.ts';

const issues = (config: unknown): string[][] => {
  const r = responseTransformerSchema.safeParse(config, { error: readableErrorMap });
  return r.success ? [] : r.error.issues.map((i) => [i.path.join('.'), i.message]);
};

test('schema: lists default to [], unknown fields refused', () => {
  const c = responseTransformerSchema.parse({});
  assert.deepEqual(c.remove, { json: [], headers: [] });
  assert.deepEqual(c.rename, { json: [], headers: [] });
  assert.deepEqual(c.add, { json: [], json_types: [], headers: [] });
  assert.equal(responseTransformerSchema.safeParse({ bogus: 1 }).success, false);
});

test('schema: Kong\'s header entry checks', () => {
  assert.deepEqual(issues({ add: { headers: ['x-a'] } }), [['add.headers.0', 'invalid value: x-a']]);
  assert.deepEqual(issues({ rename: { headers: ['x-a:x b'] } }), [['rename.headers.0', "'x b' is not a valid header"]]);
  assert.deepEqual(issues({ add: { headers: ['x-a:1\r\nx-b: 2'] } }), [['add.headers.0', "'x-a:1\r\nx-b: 2' is not a valid header value"]]);
  assert.deepEqual(issues({ add: { headers: ['x-a:'] } }), []);
});

test('schema: every non-empty json field is refused naming it', () => {
  for (const [op, field] of [['remove', 'json'], ['rename', 'json'], ['replace', 'json'], ['add', 'json'], ['append', 'json'], ['add', 'json_types'], ['replace', 'json_types'], ['append', 'json_types']]) {
    const value = field === 'json_types' ? ['string'] : op === 'remove' ? ['a'] : ['a:b'];
    const got = issues({ [op]: { [field]: value } });
    assert.equal(got.length, 1, `${op}.${field}`);
    assert.equal(got[0][0], `${op}.${field}`);
    assert.match(got[0][1], /JSON body transformations are not supported/);
  }
  assert.deepEqual(issues({ add: { json_types: ['date'] } }), [['add.json_types.0', 'expected one of: boolean, number, string']]);
});

test('headers: remove, rename, replace if present, add if absent, append — presence as the response arrived', async () => {
  const h = await plugin.create(responseTransformerSchema.parse({
    remove: { headers: ['x-gone', 'x-readd'] },
    rename: { headers: ['x-old:x-new'] },
    replace: { headers: ['x-rep:R', 'x-none:R'] },
    add: { headers: ['x-add:A', 'x-rep:no', 'x-readd:back'] },
    append: { headers: ['x-app:2', 'x-empty:'] },
  }), makeDeps('response-transformer'));
  const ctx = makeCtx();
  ctx.setResponse(200, false, { 'x-gone': '1', 'x-readd': '1', 'x-old': 'o', 'x-rep': 'r', 'x-app': '1' });
  await h.response!(ctx);
  const r = ctx.responseHeaders;
  assert.equal(r.get('x-gone'), undefined);
  assert.equal(r.get('x-readd'), undefined);
  assert.equal(r.get('x-old'), undefined);
  assert.equal(r.get('x-new'), 'o');
  assert.equal(r.get('x-rep'), 'R');
  assert.equal(r.get('x-none'), undefined);
  assert.equal(r.get('x-add'), 'A');
  assert.deepEqual(r.get('x-app'), ['1', '2']);
  assert.equal(r.get('x-empty'), undefined);
});
