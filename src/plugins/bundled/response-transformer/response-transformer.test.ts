import { test } from 'node:test';
import assert from 'node:assert/strict';
import plugin, { responseTransformerSchema } from './index.ts';
import { jsonOps, transformJsonBody, type JsonEdits } from './json-body.ts';
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

test('schema: json and json_types are accepted; Kong\'s entry and type checks apply', () => {
  const c = responseTransformerSchema.parse({ remove: { json: ['a', 'b:c'] }, add: { json: ['a:1'], json_types: ['number'] }, append: { json: ['x:y'] } });
  assert.deepEqual(c.remove.json, ['a', 'b:c']);
  assert.deepEqual(c.add.json_types, ['number']);
  assert.deepEqual(issues({ add: { json: ['nocolon'] } }), [['add.json.0', 'invalid value: nocolon']]);
  assert.deepEqual(issues({ rename: { json: ['a'] } }), [['rename.json.0', 'invalid value: a']]);
  assert.deepEqual(issues({ add: { json_types: ['date'] } }), [['add.json_types.0', 'expected one of: boolean, number, string']]);
});

test('response: a JSON response with json edits drops Content-Length and asks for the body; others do not', async () => {
  const h = await plugin.create(responseTransformerSchema.parse({ add: { json: ['a:1'] } }), makeDeps('response-transformer'));
  for (const [type, wanted] of [['application/json; charset=utf-8', true], ['Application/JSON', true], ['application/problem+json', true], ['text/plain', false], ['application/jsonx', false], ['application/json;', false]] as const) {
    const ctx = makeCtx();
    ctx.setResponse(200, false, { 'content-type': type, 'content-length': '10' });
    await h.response!(ctx);
    assert.equal(ctx.bodyBuffered, wanted, type);
    assert.equal(ctx.responseHeaders.get('content-length'), wanted ? undefined : '10', type);
  }
  // json_types alone are no body edit (Kong's is_body_transform_set).
  const typesOnly = await plugin.create(responseTransformerSchema.parse({ add: { json_types: ['number'] } }), makeDeps('response-transformer'));
  const ctx = makeCtx();
  ctx.setResponse(200, false, { 'content-type': 'application/json' });
  await typesOnly.response!(ctx);
  assert.equal(ctx.bodyBuffered, false);
});

const edits = (config: object): JsonEdits => {
  const c = responseTransformerSchema.parse(config);
  return {
    remove: jsonOps(c.remove.json), rename: jsonOps(c.rename.json),
    replace: { ops: jsonOps(c.replace.json), types: c.replace.json_types },
    add: { ops: jsonOps(c.add.json), types: c.add.json_types },
    append: { ops: jsonOps(c.append.json), types: c.append.json_types },
  };
};
const transform = (body: unknown, config: object): unknown => {
  const out = transformJsonBody(Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)), edits(config));
  return out === null ? null : JSON.parse(out.toString());
};

test('json: Kong\'s spec cases for add (values kept as written, colons in values, types)', () => {
  const config = { add: { json: ['p1:v1', 'p3:value:3', 'p4:"v1"', 'p5:-1', 'p6:false', 'p7:true'], json_types: ['string', 'string', 'string', 'number', 'boolean', 'boolean'] } };
  assert.deepEqual(transform({ p2: 'v1' }, config), { p2: 'v1', p1: 'v1', p3: 'value:3', p4: '"v1"', p5: -1, p6: false, p7: true });
  assert.deepEqual(transform({ p2: 'v1', a: [] }, config), { p2: 'v1', a: [], p1: 'v1', p3: 'value:3', p4: '"v1"', p5: -1, p6: false, p7: true });
});

test('json: presence rules — replace only a truthy value, add over absent or false, rename keeps null', () => {
  assert.deepEqual(transform({ t: 'x', f: false, n: null }, { replace: { json: ['t:R', 'f:R', 'n:R', 'absent:R'] } }), { t: 'R', f: false, n: 'R' });
  assert.deepEqual(transform({ t: 'x', f: false, n: null }, { add: { json: ['t:A', 'f:A', 'n:A', 'new:A', 'empty:'] } }), { t: 'x', f: 'A', n: null, new: 'A', empty: 'null' });
  assert.deepEqual(transform({ n: null, same: 1 }, { rename: { json: ['n:m', 'same:same', 'missing:x'] } }), { m: null });
  assert.deepEqual(transform({ 'a.b': 1, a: { b: 2 } }, { remove: { json: ['a.b', 'x:y'] } }), { a: { b: 2 } });
});

test('json: append onto a string, an array, an object, an empty object and anything else', () => {
  assert.deepEqual(
    transform({ s: 'a', arr: [1], obj: { k: 1 }, eo: {}, num: 5, nul: null }, { append: { json: ['s:b', 'arr:2', 'obj:v', 'eo:v', 'num:6', 'nul:v', 'fresh:v'], json_types: ['string', 'number'] } }),
    { s: ['a', 'b'], arr: [1, 2], obj: { k: 1, 1: 'v' }, eo: ['v'], num: ['6'], nul: ['v'], fresh: ['v'] },
  );
});

test('json: Lua\'s tonumber and boolean casts; a value that is no number skips the entry', () => {
  assert.deepEqual(
    transform({}, { add: { json: ['a: 12 ', 'b:0x10', 'c:1e3', 'd:abc', 'e:yes', 'f:true'], json_types: ['number', 'number', 'number', 'number', 'boolean', 'boolean'] } }),
    { a: 12, b: 16, c: 1000, e: false, f: true },
  );
  // Kong's encoder cannot write infinity: the body stays as it was.
  assert.equal(transform({ a: 1 }, { add: { json: ['x:inf'], json_types: ['number'] } }), null);
});

test('json: a backslash stays doubled, quotes and slashes do not (Kong\'s json_value)', () => {
  assert.deepEqual(transform({}, { add: { json: ['q:say "hi"', 'p:/a/b', 'bs:a\\b'] } }), { q: 'say "hi"', p: '/a/b', bs: 'a\\\\b' });
});

test('json: not JSON → null (kept by the plugin); an array or scalar is returned as is; __proto__ is a plain key', () => {
  assert.equal(transform('{"a":', { remove: { json: ['a'] } }), null);
  const arr = Buffer.from('[1, 2]');
  assert.equal(transformJsonBody(arr, edits({ add: { json: ['a:1'] } })), arr);
  assert.deepEqual(transform({}, { add: { json: ['__proto__:x'] } }), { ['__proto__']: 'x' });
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
