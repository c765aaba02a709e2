import { test } from 'node:test';
import assert from 'node:assert/strict';
import { oidcConfigSchema } from '../schema.ts';
import { authorizeClaims, claimAt, claimValues, equalsIgnoringCase, mapConsumer, satisfies } from './authorize.ts';
import type { EntityLookup } from '../../../sdk.ts';
import type { Consumer } from '../../../../config/types.ts';

const cfg = (extra: Record<string, unknown> = {}) => oidcConfigSchema.parse({ issuer: 'https://i/', ...extra });
const status = (fn: () => void): number | null => {
  try {
    fn();
    return null;
  } catch (err) {
    return (err as { status: number }).status;
  }
};

test('claim paths, values and AND/OR requirement logic', () => {
  const claims = { realm_access: { roles: ['admin', 'dev'] }, scope: 'openid email', aud: 'api' };
  assert.deepEqual(claimAt(claims, ['realm_access', 'roles']), ['admin', 'dev']);
  assert.equal(claimAt(claims, ['realm_access', 'missing', 'x']), undefined);
  assert.deepEqual(claimValues('openid email'), ['openid', 'email']);
  assert.deepEqual(claimValues(['a', 1]), ['a', '1']);
  assert.ok(satisfies(['openid email'], ['openid', 'email']));
  assert.ok(!satisfies(['openid profile'], ['openid', 'email']));
  assert.ok(satisfies(['nope', 'email'], ['openid', 'email']));
});

test('authorizeClaims: 403 when unmet, nested roles, claims_forbidden', () => {
  const claims = { realm_access: { roles: ['admin'] }, scope: 'openid email', aud: ['api'] };
  assert.equal(status(() => authorizeClaims(cfg({ scopes_required: ['openid email'] }), claims)), null);
  assert.equal(status(() => authorizeClaims(cfg({ scopes_required: ['openid profile'] }), claims)), 403);
  assert.equal(status(() => authorizeClaims(cfg({ roles_required: ['admin'], roles_claim: ['realm_access', 'roles'] }), claims)), null);
  assert.equal(status(() => authorizeClaims(cfg({ groups_required: ['x'] }), claims)), 403);
  assert.equal(status(() => authorizeClaims(cfg({ audience_required: ['api'] }), claims)), null);
  assert.equal(status(() => authorizeClaims(cfg({ claims_forbidden: ['realm_access'] }), claims)), 403);
});

function lookup(consumers: Consumer[]): EntityLookup {
  return {
    consumerById: (id) => consumers.find((c) => c.id === id) ?? null,
    consumerByUsername: (u, ic) => consumers.find((c) => (ic ? c.username?.toLowerCase() === u.toLowerCase() : c.username === u)) ?? null,
    consumerByCustomId: (id) => consumers.find((c) => c.custom_id === id) ?? null,
    aclGroups: () => [],
    keyAuthByKey: () => null, basicAuthByUsername: () => null, jwtSecretByKey: () => null, oauth2ByClientId: () => null, oauth2ById: () => null, consumerGroups: () => [], consumerGroupByName: () => null,
    certificateById: () => null, caCertificateById: () => null,
  };
}

test('mapConsumer: paths in order, consumer_by in order, optional, virtual credential, groups', () => {
  const alex: Consumer = { id: 'c1', username: 'alex', custom_id: 'A-1', tags: null, created_at: 0, updated_at: 0 };
  const entities = lookup([alex]);
  const claims = { sub: 'A-1', preferred_username: 'Alex', scope: 'openid email' };
  const m = mapConsumer(cfg({ consumer_claims: [['missing'], ['sub']], authenticated_groups_claim: ['scope'] }), [claims], entities);
  assert.equal(m.consumer?.id, 'c1');
  assert.deepEqual(m.groups, ['openid', 'email']);
  assert.equal(mapConsumer(cfg({ consumer_claim: ['preferred_username'], by_username_ignore_case: true }), [claims], entities).consumer?.id, 'c1');
  assert.equal(status(() => mapConsumer(cfg({ consumer_claim: ['preferred_username'] }), [claims], entities)), 403);
  const optional = mapConsumer(cfg({ consumer_claim: ['preferred_username'], consumer_optional: true }), [claims], entities);
  assert.equal(optional.consumer, null);
  assert.equal(optional.credential?.id, 'A-1', 'credential_claim (sub) gives a virtual credential');
});

test('equalsIgnoringCase: case only, no look-alikes', () => {
  assert.ok(equalsIgnoringCase('Alex', 'aLEX'));
  assert.ok(equalsIgnoringCase('ÉLODIE', 'élodie'));
  assert.ok(!equalsIgnoringCase('\u212Aate', 'kate'), 'Kelvin sign');
  assert.ok(!equalsIgnoringCase('\u0130ris', 'iris'), 'dotted capital I');
  assert.ok(!equalsIgnoringCase('\u017Fam', 'sam'), 'long s');
  assert.ok(!equalsIgnoringCase('j\u0430ne', 'jane'), 'Cyrillic a');
  assert.ok(!equalsIgnoringCase('alex', 'alexa'));
});
