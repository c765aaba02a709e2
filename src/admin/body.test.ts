import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { coerceForm, jsonSchemaOf, nestForm } from './body.ts';
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
