/**
 * The auth plugins' config schemas and credential checks against Kong's schema.lua / daos.lua, as
 * Kong's clients see them through the Admin API (a real node, SQLite store): Kong's validation
 * messages and where they go (`config.<field>` or the plugin's `@entity`), Kong's `set`s, fields
 * Kong generates (`auto`) shown without a default.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type TestGateway, adminJson } from './helpers/gateway.ts';

describe('auth plugin schemas as Kong declares them', () => {
  let gw: TestGateway;
  const call = (method: string, path: string, body?: unknown) => adminJson(gw.adminUrl, method, path, body);
  const validate = (name: string, config: unknown) => call('POST', '/schemas/plugins/validate', { name, config });
  const configFields = async (name: string): Promise<Record<string, Record<string, unknown>>> => {
    const r = await call('GET', `/schemas/plugins/${name}`);
    assert.equal(r.status, 200);
    const fields = r.body.fields.find((f: Record<string, unknown>) => 'config' in f).config.fields as Record<string, Record<string, unknown>>[];
    return Object.assign({}, ...fields);
  };

  before(async () => {
    gw = await startGateway({ database: 'sqlite' });
  });
  after(() => gw.close());

  test("key-auth key_names: Kong's header_name (letters, digits, '_', '-') and its message", async () => {
    const bad = await validate('key-auth', { key_names: ['x.key', 'ok_1-2'] });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body.fields, { config: { key_names: ["bad header name 'x.key', allowed characters are A-Z, a-z, 0-9, '_', and '-'"] } });
    assert.equal((await validate('key-auth', { key_names: ['ok_1-2', 'X-Api-Key'] })).status, 200);
  });

  test("acl: Kong's only_one_of / at_least_one_of, under @entity with the config. names", async () => {
    const both = await validate('acl', { allow: ['a'], deny: ['b'] });
    assert.equal(both.status, 400);
    assert.deepEqual(both.body.fields, { '@entity': ["exactly one of these fields must be non-empty: 'config.allow', 'config.deny'"] });
    const neither = await validate('acl', { allow: [] });
    assert.deepEqual(neither.body.fields, {
      '@entity': [
        "exactly one of these fields must be non-empty: 'config.allow', 'config.deny'",
        "at least one of these fields must be non-empty: 'config.allow', 'config.deny'",
      ],
    });
    assert.equal((await validate('acl', { allow: [], deny: ['b'] })).status, 200, 'an empty list counts as unset');
  });

  test("jwt: maximum_expiration's conditional as Kong's (unset claims_to_verify passes); sets keep one of each", async () => {
    assert.equal((await validate('jwt', { maximum_expiration: 60 })).status, 200, 'Kong does not run `contains` on an unset set');
    const nbf = await validate('jwt', { maximum_expiration: 60, claims_to_verify: ['nbf'] });
    assert.equal(nbf.status, 400);
    assert.deepEqual(nbf.body.fields, {
      config: { claims_to_verify: 'expected to contain: exp' },
      '@entity': ["failed conditional validation given value of field 'config.maximum_expiration'"],
    });
    const p = await call('POST', '/plugins', { name: 'jwt', config: { uri_param_names: ['jwt', 'token', 'jwt'], claims_to_verify: ['exp', 'exp'], header_names: ['authorization', 'authorization'] } });
    assert.equal(p.status, 201, JSON.stringify(p.body));
    assert.deepEqual(p.body.config.uri_param_names, ['jwt', 'token']);
    assert.deepEqual(p.body.config.claims_to_verify, ['exp']);
    assert.deepEqual(p.body.config.header_names, ['authorization']);
    assert.equal((await call('DELETE', `/plugins/${p.body.id}`)).status, 204);
    const f = await configFields('jwt');
    for (const n of ['uri_param_names', 'cookie_names', 'claims_to_verify', 'header_names']) assert.equal(f[n].type, 'set', n);
    assert.deepEqual(f.uri_param_names.default, ['jwt']);
    assert.deepEqual(f.header_names.default, ['authorization']);
  });

  test("oauth2: provision_key is Kong's `auto` (no default for decK to copy); Kong's messages for the flows and mandatory_scope", async () => {
    const f = await configFields('oauth2');
    assert.equal(f.provision_key.default, undefined, 'no generated value as a default');
    assert.equal(f.provision_key.auto, true);
    assert.equal(f.provision_key.encrypted, true);
    const one = await call('POST', '/plugins', { name: 'oauth2', config: { enable_client_credentials: true } });
    const svc = await call('POST', '/services', { name: 'oauth2-svc', url: 'http://127.0.0.1:9/' });
    assert.equal(svc.status, 201, JSON.stringify(svc.body));
    const two = await call('POST', '/services/oauth2-svc/plugins', { name: 'oauth2', config: { enable_client_credentials: true } });
    assert.equal(one.status, 201, JSON.stringify(one.body));
    assert.equal(two.status, 201, JSON.stringify(two.body));
    assert.match(one.body.config.provision_key, /^[0-9a-f]{32}$/);
    assert.notEqual(one.body.config.provision_key, two.body.config.provision_key, 'each instance gets its own key');
    for (const p of [one, two]) await call('DELETE', `/plugins/${p.body.id}`);
    const none = await validate('oauth2', {});
    assert.equal(none.status, 400);
    assert.deepEqual(none.body.fields, { config: 'at least one of these fields must be true: enable_authorization_code, enable_implicit_grant, enable_client_credentials, enable_password_grant' });
    const scopes = await validate('oauth2', { enable_password_grant: true, mandatory_scope: true });
    assert.deepEqual(scopes.body.fields, { config: { scopes: 'required field missing' } });
    assert.equal((await validate('oauth2', { enable_password_grant: true, mandatory_scope: true, scopes: [] })).status, 200, "Kong's `required` accepts an empty list");
  });

  test('jwt_secrets: rsa_public_key required and parsed for RS*, PS*, EdDSA only, as Kong; ES* accepted without one', async () => {
    assert.equal((await call('POST', '/consumers', { username: 'jwt-owner' })).status, 201);
    const es = await call('POST', '/consumers/jwt-owner/jwt', { algorithm: 'ES256' });
    assert.equal(es.status, 201, JSON.stringify(es.body));
    assert.equal(es.body.rsa_public_key, null);
    const rs = await call('POST', '/consumers/jwt-owner/jwt', { algorithm: 'RS256' });
    assert.equal(rs.status, 400);
    assert.deepEqual(rs.body.fields, { rsa_public_key: 'required field missing', '@entity': ["failed conditional validation given value of field 'algorithm'"] });
    const bad = await call('POST', '/consumers/jwt-owner/jwt', { algorithm: 'EdDSA', rsa_public_key: 'not a key' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.fields.rsa_public_key, 'invalid key');
  });
});
