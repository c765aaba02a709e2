import { test } from 'node:test';
import assert from 'node:assert/strict';
import { oidcConfigSchema, notSupportedYet } from './schema.ts';

const issues = (input: unknown) => {
  const r = oidcConfigSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

test('defaults follow Kong 3.15 (array defaults in the documented order)', () => {
  const c = oidcConfigSchema.parse({ issuer: 'https://idp.example/' });
  assert.deepEqual(c.auth_methods, ['password', 'client_credentials', 'authorization_code', 'bearer', 'introspection', 'userinfo', 'kong_oauth2', 'refresh_token', 'session']);
  assert.deepEqual(c.bearer_token_param_type, ['header', 'query', 'body']);
  assert.deepEqual(c.consumer_by, ['username', 'custom_id']);
  assert.equal(c.upstream_access_token_header, 'authorization:bearer');
  assert.equal(c.hide_credentials, true);
  assert.equal(c.ssl_verify, true);
  assert.equal(c.timeout, 10000);
  assert.equal(c.unauthorized_error_message, 'Unauthorized');
  assert.equal(c.rediscovery_lifetime, 30);
  assert.deepEqual(c.login_tokens, ['id_token']);
  assert.equal(c.client_id, null);
});

test('every 3.15 field is known: 234 fields plus the consumer_claim shorthand and our extensions', () => {
  const keys = Object.keys(oidcConfigSchema.parse({ issuer: 'https://idp.example/' }));
  const extensions = ['consumer_claim', 'backchannel_logout_uri_suffix'];
  for (const name of extensions) assert.ok(keys.includes(name), name);
  assert.equal(keys.length, 234 + extensions.length);
});

test('decK exports with explicit nulls load; null means the default', () => {
  const c = oidcConfigSchema.parse({ issuer: 'https://idp.example/', anonymous: null, scopes: null, login_tokens: null, redis: null, leeway: null });
  assert.deepEqual(c.scopes, ['openid']);
  assert.equal(c.login_tokens, null, 'login_tokens: null means no tokens');
  assert.equal(c.leeway, 0);
});

test('unknown fields, bad enums and a missing issuer are errors naming the field', () => {
  assert.deepEqual(issues({}).map((i) => i.split(':')[0]), ['issuer']);
  assert.match(issues({ issuer: 'https://i/', nope: 1 })[0], /Unrecognized key/);
  assert.match(issues({ issuer: 'https://i/', auth_methods: ['magic'] })[0], /^auth_methods\.0/);
  assert.match(issues({ issuer: 'not a url' })[0], /^issuer: must be an absolute URL/);
});

test('a field whose feature is not built is accepted at its default only', () => {
  assert.deepEqual(issues({ issuer: 'https://i/', proof_of_possession_dpop: 'off', http_version: 1.1 }), []);
  assert.deepEqual(issues({ issuer: 'https://i/', proof_of_possession_dpop: 'strict' }), ['proof_of_possession_dpop: not supported yet (only "off" is accepted)']);
  assert.match(issues({ issuer: 'https://i/', client_auth: ['tls_client_auth'] })[0], /^client_auth\.0: tls_client_auth: not supported yet/);
  assert.match(issues({ issuer: 'https://i/', login_methods: ['password'] })[0], /^login_methods\.0/);
  for (const field of Object.keys(notSupportedYet)) assert.ok(field in oidcConfigSchema.parse({ issuer: 'https://i/' }), field);
});

test('paired arrays must line up', () => {
  assert.match(issues({ issuer: 'https://i/', upstream_headers_claims: ['sub'] })[0], /^upstream_headers_names: must have as many entries/);
  assert.deepEqual(issues({ issuer: 'https://i/', upstream_headers_claims: ['sub'], upstream_headers_names: ['x-sub'] }), []);
});

test('nested records: redis, upstream_headers, consumer_claims, client_jwk', () => {
  const c = oidcConfigSchema.parse({
    issuer: 'https://i/',
    redis: { host: 'r', port: 6380 },
    upstream_headers: [{ header: 'x-user', path: ['user', 'name'] }],
    consumer_claims: [['preferred_username'], ['user', 'id']],
    client_jwk: [{ kty: 'RSA', n: 'x', e: 'AQAB' }],
  });
  assert.equal(c.redis?.database, 0);
  assert.equal(c.redis?.ssl_verify, true);
  assert.equal(c.upstream_headers?.[0].path[1], 'name');
  assert.match(issues({ issuer: 'https://i/', upstream_headers: [{ header: 'x', path: [] }] })[0], /^upstream_headers\.0\.path/);
});
