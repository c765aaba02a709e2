import { test } from 'node:test';
import assert from 'node:assert/strict';
import { oidcConfigSchema } from '../schema.ts';
import { configuredNames, headersFor, tokenHeader } from './headers.ts';
import type { Outcome } from '../runtime.ts';

test('tokenHeader parses name:scheme', () => {
  assert.deepEqual(tokenHeader('authorization:bearer', 't'), { name: 'authorization', value: 'Bearer t' });
  assert.deepEqual(tokenHeader('x-token', 't'), { name: 'x-token', value: 't' });
});

test('headersFor: tokens, base64 JSON, claims (access token before ID token), nested paths', () => {
  const cfg = oidcConfigSchema.parse({
    issuer: 'https://i/',
    upstream_id_token_header: 'x-id',
    upstream_introspection_header: 'x-intro',
    upstream_headers_claims: ['sub', 'missing'],
    upstream_headers_names: ['x-sub', 'x-missing'],
    upstream_headers: [{ header: 'x-city', path: ['address', 'city'] }],
  });
  const o: Outcome = {
    method: 'bearer',
    tokens: { access_token: 'AT', id_token: 'IT' },
    accessClaims: { sub: 'from-access' },
    idClaims: { sub: 'from-id', address: { city: 'Oslo' } },
    introspection: { active: true },
    userinfo: null,
    used: [],
  };
  const h = Object.fromEntries(headersFor(cfg, 'upstream', o).map((x) => [x.name, x.value]));
  assert.equal(h.authorization, 'Bearer AT');
  assert.equal(h['x-id'], 'IT');
  assert.deepEqual(JSON.parse(Buffer.from(h['x-intro'], 'base64').toString()), { active: true });
  assert.equal(h['x-sub'], 'from-access');
  assert.equal(h['x-missing'], undefined);
  assert.equal(h['x-city'], 'Oslo');
  assert.deepEqual(configuredNames(cfg, 'upstream').sort(), ['authorization', 'x-city', 'x-id', 'x-intro', 'x-missing', 'x-sub']);
});
