import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { checkJsonBody, coerceForm, jsonSchemaOf, maxBodyDepth, nestForm } from './body.ts';
import { issuesToFields, luaPretty, schemaViolation, splitPath } from './errors.ts';

test('nestForm: dotted keys nest, repeated keys and [] make arrays, empty → null', () => {
  const form = new URLSearchParams('name=x&config.scopes=openid&config.scopes=email&config.redis.host=h&paths[]=/a&paths[]=/b&hosts[1]=b&hosts[0]=a&config.login_tokens=&service.id=abc');
  assert.deepEqual(nestForm([...form.entries()]), {
    name: 'x',
    config: { scopes: ['openid', 'email'], redis: { host: 'h' }, login_tokens: null },
    paths: ['/a', '/b'],
    hosts: ['a', 'b'],
    service: { id: 'abc' },
  });
});

test('nestForm: `key[]=` alone is an empty array', () => {
  assert.deepEqual(nestForm([['tags[]', '']]), { tags: [] });
});

test('coerceForm follows the schema: arrays, booleans, numbers, nested records, unions', () => {
  const schema = z.strictObject({
    list: z.array(z.string()).nullable().default(null),
    flag: z.boolean().default(false),
    n: z.int().default(1),
    f: z.number().optional(),
    s: z.string().optional(),
    nested: z.strictObject({ port: z.int(), on: z.boolean() }).optional(),
    either: z.union([z.string(), z.array(z.string())]).optional(),
    headers: z.record(z.string(), z.array(z.string())).optional(),
  });
  const out = coerceForm(
    { list: 'one', flag: 'true', n: '42', f: '1.5', s: '123', nested: { port: '80', on: 'false' }, either: 'x', headers: { 'x-a': 'v' }, extra: 'kept' },
    jsonSchemaOf(schema),
  );
  assert.deepEqual(out, { list: ['one'], flag: true, n: 42, f: 1.5, s: '123', nested: { port: 80, on: false }, either: 'x', headers: { 'x-a': ['v'] }, extra: 'kept' });
  // Not numeric / not boolean: left alone so validation reports it.
  assert.deepEqual(coerceForm({ n: 'abc', flag: 'yes' }, jsonSchemaOf(schema)), { n: 'abc', flag: 'yes' });
});

test('coerceForm: an override schema guides one top-level property', () => {
  const entity = z.strictObject({ name: z.string(), config: z.record(z.string(), z.unknown()).optional() });
  const plugin = z.strictObject({ scopes: z.array(z.string()), leeway: z.number() });
  assert.deepEqual(coerceForm({ name: 'p', config: { scopes: 'openid', leeway: '3' } }, jsonSchemaOf(entity), { config: jsonSchemaOf(plugin) }), {
    name: 'p',
    config: { scopes: ['openid'], leeway: 3 },
  });
});

test('issuesToFields nests paths like Kong (arrays keep positions, entity-level under @entity)', () => {
  assert.deepEqual(splitPath('config.redis.hosts[1].port'), ['config', 'redis', 'hosts', 1, 'port']);
  assert.deepEqual(
    issuesToFields([
      { path: 'config.issuer', message: 'required field missing' },
      { path: 'paths[1]', message: 'bad path' },
      { path: '', message: 'at least one of ...' },
      { path: 'name', message: 'a' },
      { path: 'name', message: 'b' },
    ]),
    { config: { issuer: 'required field missing' }, paths: [null, 'bad path'], '@entity': ['at least one of ...'], name: 'a; b' },
  );
});

test('schemaViolation message: one vs several', () => {
  assert.equal(schemaViolation([{ path: 'host', message: 'required field missing' }]).body.message, 'schema violation (host: required field missing)');
  const e = schemaViolation([{ path: 'a', message: 'x' }, { path: 'b.c', message: 'y' }]);
  assert.equal(e.status, 400);
  assert.deepEqual(e.body, { code: 2, name: 'schema violation', message: '2 schema violations (a: x; b.c: y)', fields: { a: 'x', b: { c: 'y' } } });
});

test('luaPretty renders like Kong messages', () => {
  assert.equal(luaPretty({ service: { id: 'i' }, name: 'n', route: null }), '{name="n",route=null,service={id="i"}}');
});

test('nestForm refuses keys that reach prototype machinery, and Object.prototype stays clean', () => {
  for (const key of ['__proto__.tags', 'constructor.prototype.tags', 'config.__proto__.x', 'a[__proto__]']) {
    assert.throws(() => nestForm([[key, 'p']]), (err: { status?: number; body?: { message?: string } }) => err.status === 400 && /not allowed/.test(String(err.body?.message)), key);
  }
  assert.equal(({} as Record<string, unknown>).tags, undefined);
  assert.equal(Object.getPrototypeOf(nestForm([['a.b', 'c']])), Object.prototype, 'callers still get plain objects');
});

test('nestForm and checkJsonBody refuse nesting deeper than the limit with a 400', () => {
  assert.throws(() => nestForm([[`${'a.'.repeat(50_000)}b`, 'x']]), (err: { status?: number }) => err.status === 400);
  assert.deepEqual(nestForm([[`${'a.'.repeat(maxBodyDepth - 1)}b`.split('.').slice(0, maxBodyDepth).join('.'), 'x']]) !== null, true);
  let deep: unknown = 1;
  for (let i = 0; i < 50_000; i++) deep = { a: deep };
  assert.throws(() => checkJsonBody(deep), (err: { status?: number }) => err.status === 400);
  assert.throws(() => checkJsonBody(JSON.parse('{"x": {"__proto__": {"tags": 1}}}')), (err: { status?: number }) => err.status === 400);
  checkJsonBody({ config: { a: [1, { b: 2 }] } });
});
