import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { checkHandlers, definePlugin, type PluginDefinition } from './sdk.ts';

const good = { name: 'my-plugin', version: '1.0.0', priority: 10, schema: z.strictObject({}), create: () => ({}) };

function refused(def: Record<string, unknown>, pattern: RegExp): void {
  assert.throws(() => definePlugin(def as unknown as PluginDefinition), (err: Error) => pattern.test(err.message), JSON.stringify(Object.keys(def)));
}

test('definePlugin accepts a well-formed definition as is', () => {
  assert.equal(definePlugin(good), good);
  const full = { ...good, scopes: { consumer: false }, check: () => [], shorthands: (c: Record<string, unknown>) => c, adminRoutes: [{ method: 'GET' as const, path: '/x', handler: async () => ({ status: 200 }) }], kongEntityChecks: [{ only_one_of: ['config.a', 'config.b'] }] };
  assert.equal(definePlugin(full), full);
});

test('definePlugin refuses what is wrong, naming the plugin and the field', () => {
  refused({ ...good, priority: 10.5 }, /^definePlugin\(my-plugin\): priority: must be an integer/);
  refused({ ...good, priority: '10' }, /priority: must be an integer/);
  refused({ ...good, name: 'My_Plugin' }, /name: must be a kebab-case string/);
  refused({ ...good, name: 'a--b' }, /name: must be a kebab-case/);
  refused({ ...good, schema: undefined }, /schema: must be a zod schema/);
  refused({ ...good, schema: { type: 'object' } }, /schema: must be a zod schema/);
  refused({ ...good, create: undefined }, /create: must be a function/);
  refused({ ...good, version: '' }, /version: must be a non-empty string/);
  refused({ ...good, access: () => {} }, /access: handlers are returned by create/);
  refused({ ...good, prority: 5 }, /prority: unknown field/);
  refused({ ...good, scopes: { routes: true } }, /scopes\.routes: unknown scope/);
  refused({ ...good, adminRoutes: [{ method: 'PUT', path: 'x', handler: null }] }, /adminRoutes\[0\]\.method.*adminRoutes\[0\]\.path.*adminRoutes\[0\]\.handler/);
  refused({ ...good, kongEntityChecks: { only_one_of: ['config.a'] } }, /kongEntityChecks: must be an array/);
  refused({ ...good, kongEntityChecks: [{ only_one_of: ['config.a'], at_least_one_of: ['config.a'] }, null] }, /kongEntityChecks\[0\]: must be an object with a single key.*kongEntityChecks\[1\]/);
});

test('checkHandlers refuses unknown handler names and non-functions', () => {
  const h = { access: () => {}, log: () => {} };
  assert.equal(checkHandlers('p', h), h);
  assert.throws(() => checkHandlers('p', { acess: () => {} }), /plugin p: create\(\) returned an unknown handler 'acess'/);
  assert.throws(() => checkHandlers('p', { access: 1 }), /handler 'access' must be a function/);
  assert.throws(() => checkHandlers('p', null), /must return an object of handlers/);
});
