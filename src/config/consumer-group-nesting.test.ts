/**
 * Issue 16: decK's two nested forms of consumer-group membership in declarative files —
 * `consumers[].groups: [{name}]` (what `deck gateway dump` writes) and
 * `consumer_groups[].consumers: [{username}]` — beside Kong's top-level
 * `consumer_group_consumers`; `config dump` writes decK's form back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { createRegistry } from '../plugins/registry.ts';
import { definePlugin } from '../plugins/sdk.ts';
import { parseDeclarative, toDeclarative } from './index.ts';
import type { ConfigData } from './index.ts';

const registry = createRegistry([
  definePlugin({ name: 'group-limit', version: '1.0.0', priority: 10, scopes: { consumer_group: true }, schema: z.strictObject({ minute: z.int().default(5) }), create: () => ({}) }),
]);
const now = 1_700_000_000_000;
const parse = (text: string): ConfigData => parseDeclarative(text, { registry, env: {}, now });

function issuesOf(text: string): string[] {
  try {
    parse(text);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.format().split('\n');
  }
  assert.fail('expected the file to be rejected');
}

/** Membership pairs as `group:consumer` names, sorted. */
function pairs(data: ConfigData): string[] {
  const group = new Map(data.consumer_groups.map((g) => [g.id, g.name]));
  const consumer = new Map(data.consumers.map((c) => [c.id, c.username ?? c.custom_id]));
  return data.consumer_group_consumers.map((m) => `${group.get(m.consumer_group.id)}:${consumer.get(m.consumer.id)}`).sort();
}

const both = `
_format_version: "3.0"
consumer_groups:
  - name: gold
    tags: [tier]
    consumers:
      - username: ann
      - custom_id: bob-42
    plugins:
      - name: group-limit
        config: { minute: 100 }
  - name: silver
consumers:
  - username: ann
    groups:
      - name: gold
        tags: [tier]
      - name: silver
  - username: bob
    custom_id: bob-42
  - id: 7d5a2a6e-4c3b-4a8e-9d3f-0b1c2d3e4f50
    username: cy
    groups:
      - id: 7d5a2a6e-4c3b-4a8e-9d3f-0b1c2d3e4f51
consumer_group_consumers: []
`.replace('- name: silver\nconsumers', '- name: silver\n    id: 7d5a2a6e-4c3b-4a8e-9d3f-0b1c2d3e4f51\nconsumers');

test('both decK nestings make memberships; the same membership stated twice is one', () => {
  const data = parse(both);
  assert.deepEqual(pairs(data), ['gold:ann', 'gold:bob', 'silver:ann', 'silver:cy']);
  const plugin = data.plugins.find((p) => p.name === 'group-limit');
  assert.equal(plugin?.consumer_group?.id, data.consumer_groups.find((g) => g.name === 'gold')?.id, 'consumer_groups[].plugins scoped to the group');
  // Deterministic ids: the same file gives the same membership rows.
  assert.deepEqual(parse(both).consumer_group_consumers.map((m) => m.id).sort(), data.consumer_group_consumers.map((m) => m.id).sort());
  // Each membership row is stamped like every entity of the file (created_at in seconds).
  for (const m of data.consumer_group_consumers) assert.equal(m.created_at, Math.floor(now / 1000));
});

test('a reference naming nothing, an unknown field, no name at all, or tags that differ: each reported at its path', () => {
  const lines = issuesOf(`
_format_version: "3.0"
consumer_groups:
  - name: gold
    tags: [a]
    consumers:
      - username: nobody
      - nickname: ann
consumers:
  - username: ann
    groups:
      - name: platinum
      - {}
      - name: gold
        tags: [b]
      - name: gold
        id: 0b7f1c1e-0000-4000-8000-000000000001
`);
  const expect = [
    'consumer_groups[0].consumers[0].username: no consumer with username "nobody" in this file',
    'consumer_groups[0].consumers[1].nickname: unknown field (a consumer is named by id, username, custom_id)',
    'consumers[0].groups[0].name: no consumer group with name "platinum" in this file',
    'consumers[0].groups[1]: must name the consumer group by one of id, name',
    'consumers[0].groups[2].tags: differs from the tags of the consumer group it names (defined at consumer_groups[0])',
    'consumers[0].groups[3].id: no consumer group with id "0b7f1c1e-0000-4000-8000-000000000001" in this file',
  ];
  for (const e of expect) assert.ok(lines.some((l) => l.includes(e)), `missing ${JSON.stringify(e)} in:\n${lines.join('\n')}`);
});

test('groups under a consumer is no longer "not supported"; a non-list is an error', () => {
  const lines = issuesOf(`
_format_version: "3.0"
consumers:
  - username: ann
    groups: gold
`);
  assert.ok(lines.some((l) => l.includes('consumers[0].groups: expected an array')), lines.join('\n'));
  assert.ok(!lines.some((l) => l.includes('not supported')), lines.join('\n'));
});

test('config dump writes memberships as decK does (consumers[].groups: [{name}]), and reading it back gives the same memberships', () => {
  const data = parse(both);
  const doc = toDeclarative(data) as Record<string, any>;
  assert.equal(doc.consumer_group_consumers, undefined, 'no top-level link rows');
  const ann = doc.consumers.find((c: { username?: string }) => c.username === 'ann');
  assert.deepEqual(ann.groups, [{ name: 'gold' }, { name: 'silver' }]);
  const gold = doc.consumer_groups.find((g: { name: string }) => g.name === 'gold');
  assert.equal(gold.consumers, undefined, 'one form only');
  // A plugin scoped to the group alone is written under it, as decK writes it.
  assert.deepEqual(gold.plugins, [{ name: 'group-limit', config: { minute: 100 }, protocols: ['grpc', 'grpcs', 'http', 'https'], enabled: true }]);
  assert.equal(doc.plugins, undefined);
  const again = parse(JSON.stringify(doc));
  assert.deepEqual(pairs(again), pairs(data));
  assert.deepEqual(again.consumer_group_consumers.map((m) => m.id).sort(), data.consumer_group_consumers.map((m) => m.id).sort());
});

test('a plugin scoped to a group and something else stays at the top level of a dump, naming both', () => {
  const data = parse(`
_format_version: "3.0"
consumer_groups: [{ name: gold }]
services: [{ name: s, url: "http://s.test" }]
plugins:
  - { name: group-limit, consumer_group: gold, service: s }
`);
  const doc = toDeclarative(data) as Record<string, any>;
  assert.equal(doc.consumer_groups[0].plugins, undefined);
  assert.equal(doc.plugins[0].consumer_group, 'gold');
  assert.equal(doc.plugins[0].service, 's');
  assert.deepEqual(parse(JSON.stringify(doc)).plugins.map((p) => p.id), data.plugins.map((p) => p.id));
});

test('Kong\'s own top-level consumer_group_consumers still loads, and a duplicate of a nested membership is reported', () => {
  const ok = parse(`
_format_version: "3.0"
consumer_groups: [{ name: gold }]
consumers: [{ username: ann }]
consumer_group_consumers:
  - { consumer_group: gold, consumer: ann }
`);
  assert.deepEqual(pairs(ok), ['gold:ann']);
  const lines = issuesOf(`
_format_version: "3.0"
consumer_groups: [{ name: gold }]
consumers: [{ username: ann, groups: [{ name: gold }] }]
consumer_group_consumers:
  - { consumer_group: gold, consumer: ann }
`);
  assert.ok(lines.some((l) => l.includes('already in this consumer group')), lines.join('\n'));
});
