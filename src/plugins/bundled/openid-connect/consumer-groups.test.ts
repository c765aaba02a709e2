import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mapConsumerGroups } from './consumer-groups.ts';
import { makeCtx } from '../../../../test/helpers/plugin-ctx.ts';
import { oidcConfigSchema } from './schema.ts';

const groups = [
  { id: 'g-gold', name: 'gold', tags: null, created_at: 0, updated_at: 0 },
  { id: 'g-beta', name: 'beta', tags: null, created_at: 0, updated_at: 0 },
];
const entities = makeCtx({ consumerGroups: groups }).entities;

test('consumer_groups_claim: claim values matched to group names, sorted; unknown names ignored', () => {
  const cfg = { consumer_groups_claim: ['groups'], consumer_groups_optional: false };
  assert.deepEqual(mapConsumerGroups(cfg, ['gold', 'nope', 'beta'], entities)?.map((g) => g.id), ['g-beta', 'g-gold']);
  assert.equal(mapConsumerGroups({ consumer_groups_claim: null, consumer_groups_optional: false }, ['gold'], entities), null);
});

test('no match → 403 insufficient_scope unless consumer_groups_optional', () => {
  const cfg = { consumer_groups_claim: ['groups'], consumer_groups_optional: false };
  assert.throws(() => mapConsumerGroups(cfg, ['silver'], entities), (e: { status?: number }) => e.status === 403);
  assert.equal(mapConsumerGroups({ ...cfg, consumer_groups_optional: true }, ['silver'], entities), null);
});

test('schema: consumer_groups_claim is no longer refused', () => {
  const r = oidcConfigSchema.safeParse({ issuer: 'https://idp.example/', consumer_groups_claim: ['groups'], consumer_groups_optional: true });
  assert.equal(r.success, true, JSON.stringify(!r.success && r.error.issues));
});
