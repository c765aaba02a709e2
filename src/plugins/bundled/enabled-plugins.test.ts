import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bundledPlugins, enabledPlugins } from './index.ts';
import { createRegistry } from '../registry.ts';
import { normalizeEntity } from '../../config/normalize.ts';

test("Kong's plugins setting: bundled by default, a list of names, off, unknown names refused", () => {
  assert.deepEqual(enabledPlugins(undefined).map((p) => p.name), bundledPlugins.map((p) => p.name));
  assert.deepEqual(enabledPlugins('bundled').map((p) => p.name), bundledPlugins.map((p) => p.name));
  assert.deepEqual(enabledPlugins('cors, acl').map((p) => p.name), ['cors', 'acl']);
  assert.deepEqual(enabledPlugins('off'), []);
  assert.throws(() => enabledPlugins('cors,nope'), /plugins: 'nope' is not an available plugin/);
});

test('a plugin left out of the setting is refused with the message that names the setting', () => {
  const registry = createRegistry(enabledPlugins('cors'));
  const res = normalizeEntity('plugins', { name: 'acl', config: { allow: ['a'] } }, { registry, now: 0 });
  assert.equal(res.ok, false);
  if (res.ok) return;
  assert.deepEqual(res.issues.map((i) => `${i.path}: ${i.message}`), ["name: plugin 'acl' not enabled; add it to the 'plugins' configuration property"]);
  assert.equal(normalizeEntity('plugins', { name: 'cors' }, { registry, now: 0 }).ok, true);
});
