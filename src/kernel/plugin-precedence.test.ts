import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildChains, resolveEntry, type Instance } from './plugins.ts';
import type { Consumer, Plugin, Route } from '../config/types.ts';
import type { PluginDefinition } from '../plugins/sdk.ts';

const def = { name: 'rate-limiting', priority: 910 } as unknown as PluginDefinition;
const route = { id: 'r1', service: { id: 's1' } } as unknown as Route;
const consumer = { id: 'c1' } as Consumer;

function inst(label: string, scope: { route?: string; service?: string; consumer?: string; consumer_group?: string }): Instance {
  const entity = {
    id: label, name: 'rate-limiting', route: scope.route ? { id: scope.route } : null, service: scope.service ? { id: scope.service } : null,
    consumer: scope.consumer ? { id: scope.consumer } : null, consumer_group: scope.consumer_group ? { id: scope.consumer_group } : null,
  } as unknown as Plugin;
  return { entity, def, handlers: {}, key: label, http: true, https: true };
}

const levels: [string, Parameters<typeof inst>[1]][] = [
  ['consumer+route+service', { consumer: 'c1', route: 'r1', service: 's1' }],
  ['group+route+service', { consumer_group: 'gA', route: 'r1', service: 's1' }],
  ['consumer+route', { consumer: 'c1', route: 'r1' }],
  ['consumer+service', { consumer: 'c1', service: 's1' }],
  ['group+route', { consumer_group: 'gA', route: 'r1' }],
  ['group+service', { consumer_group: 'gA', service: 's1' }],
  ['route+service', { route: 'r1', service: 's1' }],
  ['consumer', { consumer: 'c1' }],
  ['group', { consumer_group: 'gA' }],
  ['route', { route: 'r1' }],
  ['service', { service: 's1' }],
  ['global', {}],
];

test("Kong's precedence with consumer groups: each level beats every level after it", () => {
  const groups = { consumerGroups: [{ id: 'gA' }] };
  for (let i = 0; i < levels.length; i++) {
    const chain = buildChains(levels.slice(i).map(([label, scope]) => inst(label, scope)), [route]).forRoute(route);
    assert.equal(chain.length, 1);
    assert.equal(resolveEntry(chain[0], consumer, groups)?.entity.id, levels[i][0]);
  }
});

test('group-scoped instances apply only to members; the alphabetically first group wins', () => {
  const chain = buildChains([inst('gold', { consumer_group: 'g-gold' }), inst('bronze', { consumer_group: 'g-bronze' }), inst('global', {})], [route]).forRoute(route);
  assert.equal(resolveEntry(chain[0], consumer, { consumerGroups: [] })?.entity.id, 'global');
  assert.equal(resolveEntry(chain[0], null, undefined)?.entity.id, 'global');
  // Sorted by name: bronze before gold.
  assert.equal(resolveEntry(chain[0], consumer, { consumerGroups: [{ id: 'g-bronze' }, { id: 'g-gold' }] })?.entity.id, 'bronze');
  assert.equal(resolveEntry(chain[0], consumer, { consumerGroups: [{ id: 'g-gold' }] })?.entity.id, 'gold');
});

test('consumer groups given without a consumer (claim mapping) still select group-scoped instances', () => {
  const chain = buildChains([inst('gold', { consumer_group: 'g-gold' }), inst('global', {})], [route]).forRoute(route);
  assert.equal(resolveEntry(chain[0], null, { consumerGroups: [{ id: 'g-gold' }] })?.entity.id, 'gold');
  assert.equal(resolveEntry(chain[0], null, { consumerGroups: [] })?.entity.id, 'global');
});
