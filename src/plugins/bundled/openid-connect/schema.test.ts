import { test } from 'node:test';
import assert from 'node:assert/strict';
import { oidcConfigSchema } from './schema.ts';

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

test('every field of Kong 3.15 is built: DPoP and the rest take values other than their default', () => {
  assert.deepEqual(issues({ issuer: 'https://i/', proof_of_possession_dpop: 'off', http_version: 1.1 }), []);
  assert.deepEqual(issues({ issuer: 'https://i/', proof_of_possession_dpop: 'strict', auth_methods: ['bearer'] }), []);
  assert.deepEqual(issues({ issuer: 'https://i/', verify_parameters: true, introspection_accept: 'application/jwt', cache_ttl_resurrect: 30 }), []);
});

test('mutual TLS: a client certificate for tls_client_auth, compatible methods with mTLS PoP, revocation check settings of header certificates', () => {
  assert.match(issues({ issuer: 'https://i/', client_auth: ['tls_client_auth'] })[0], /^tls_client_auth_cert_id: required when tls_client_auth/);
  assert.match(issues({ issuer: 'https://i/', introspection_endpoint_auth_method: 'self_signed_tls_client_auth' })[0], /^tls_client_auth_cert_id: required/);
  assert.deepEqual(issues({ issuer: 'https://i/', client_auth: ['tls_client_auth'], tls_client_auth_cert_id: 'c1' }), []);
  // Kong's default auth_methods include methods that cannot prove possession.
  assert.match(issues({ issuer: 'https://i/', proof_of_possession_mtls: 'strict' })[0], /^auth_methods\.0: password: not compatible with proof_of_possession_mtls/);
  assert.deepEqual(issues({ issuer: 'https://i/', proof_of_possession_mtls: 'strict', auth_methods: ['bearer', 'introspection', 'session'] }), []);
  assert.deepEqual(issues({ issuer: 'https://i/', proof_of_possession_mtls: 'optional', proof_of_possession_auth_methods_validation: false }), []);
  const header = { certificate_header_name: 'x-client-cert', ca_certificates: ['ca1'] };
  // Kong's default revocation_check_mode (IGNORE_CA_ERROR) and the other modes and fetch settings are accepted.
  assert.deepEqual(issues({ issuer: 'https://i/', proof_of_possession_mtls_from_header: header }), []);
  assert.equal(oidcConfigSchema.parse({ issuer: 'https://i/', proof_of_possession_mtls_from_header: header }).proof_of_possession_mtls_from_header?.revocation_check_mode, 'IGNORE_CA_ERROR');
  for (const mode of ['STRICT', 'SKIP', 'IGNORE_CA_ERROR']) {
    assert.deepEqual(issues({ issuer: 'https://i/', proof_of_possession_mtls_from_header: { ...header, revocation_check_mode: mode } }), []);
  }
  assert.match(issues({ issuer: 'https://i/', proof_of_possession_mtls_from_header: { ...header, revocation_check_mode: 'LAX' } })[0], /^proof_of_possession_mtls_from_header\.revocation_check_mode: /);
  for (const [field, value] of [['cert_cache_ttl', 5], ['http_timeout', 5], ['ssl_verify', false]] as const) {
    assert.deepEqual(issues({ issuer: 'https://i/', proof_of_possession_mtls_from_header: { ...header, revocation_check_mode: 'STRICT', [field]: value } }), []);
  }
  assert.deepEqual(issues({ issuer: 'https://i/', proof_of_possession_mtls_from_header: { ...header, http_proxy_host: 'p', http_proxy_port: 3128, https_proxy_host: 'p', https_proxy_port: 3129 } }), []);
  // A proxy is a host and a port: one without the other is refused, naming the missing field.
  assert.deepEqual(issues({ issuer: 'https://i/', proof_of_possession_mtls_from_header: { ...header, https_proxy_port: 3128 } }), ['proof_of_possession_mtls_from_header.https_proxy_host: required with https_proxy_port (the forward proxy of the revocation checks is a host and a port)']);
  assert.match(issues({ issuer: 'https://i/', proof_of_possession_mtls_from_header: { ...header, http_proxy_host: 'p' } })[0], /^proof_of_possession_mtls_from_header\.http_proxy_port: required with http_proxy_host/);
  assert.match(issues({ issuer: 'https://i/', proof_of_possession_mtls_from_header: { ...header, http_timeout: 0 } })[0], /^proof_of_possession_mtls_from_header\.http_timeout: /);
  assert.match(issues({ issuer: 'https://i/', proof_of_possession_mtls_from_header: { ...header, cert_cache_ttl: -1 } })[0], /^proof_of_possession_mtls_from_header\.cert_cache_ttl: /);
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

test('session settings the browser flows cannot build are validation errors, with their paths (declarative files, Admin API)', async () => {
  const { createRegistry } = await import('../../registry.ts');
  const { bundledPlugins } = await import('../index.ts');
  const { parseDeclarative } = await import('../../../config/declarative.ts');
  const { ConfigError } = await import('../../../errors.ts');
  const problems = (workers: number, config: Record<string, unknown>, database: 'off' | 'sqlite' | 'postgres' = 'off'): string[] => {
    const text = JSON.stringify({ _format_version: '3.0', plugins: [{ name: 'openid-connect', config: { issuer: 'https://idp.example/', ...config } }] });
    try {
      parseDeclarative(text, { registry: createRegistry(bundledPlugins, { workers, database }) });
      return [];
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.issues.map((i) => `${i.path}: ${i.message}`);
    }
  };
  // Kong's session how-to without a session_secret: fine with any number of workers (DB-less,
  // the node generates one secret and shares it with its workers, as Kong does per node).
  const howTo = { client_id: ['kong'], client_secret: ['kong-secret'], client_auth: ['client_secret_post'], auth_methods: ['session', 'password'] };
  assert.deepEqual(problems(1, howTo), []);
  assert.deepEqual(problems(2, howTo), []);
  // With a database the secret is generated and stored there (Kong): nothing is required.
  assert.deepEqual(problems(2, howTo, 'sqlite'), []);
  assert.deepEqual(problems(2, howTo, 'postgres'), []);
  // Without a browser method nothing of the session is built, so nothing is required.
  assert.deepEqual(problems(2, { auth_methods: ['bearer', 'password'] }), []);
  // Static problems are reported whatever the number of workers, all at once.
  assert.deepEqual(problems(1, { auth_methods: ['session'], session_storage: 'memcached', session_memcached_socket: '/run/m.sock', session_cookie_name: 'bad name' }), [
    'plugins[0].config.session_memcached_socket: not supported: the memcached client connects over TCP (session_memcached_host/port, optionally TLS)',
    'plugins[0].config.session_cookie_name: not a valid cookie name',
  ]);
});

test("Kong's shorthand fields: pre-3.2 cookie names and the flat session_redis_* fields load as the current fields", async () => {
  const { createRegistry } = await import('../../registry.ts');
  const { bundledPlugins } = await import('../index.ts');
  const { parseDeclarative } = await import('../../../config/declarative.ts');
  const text = JSON.stringify({
    _format_version: '3.0',
    plugins: [{
      name: 'openid-connect',
      config: {
        issuer: 'https://idp.example/', auth_methods: ['session', 'password'], session_secret: 'a-secret',
        session_cookie_lifetime: 1800, session_cookie_idletime: 300, session_cookie_samesite: 'off', session_cookie_httponly: false,
        authorization_cookie_lifetime: 120, authorization_cookie_samesite: 'Strict', authorization_cookie_httponly: false,
        session_storage: 'redis', session_redis_host: 'redis.internal', session_redis_port: 6380, session_redis_auth: 'pw',
        session_cookie_renew: 600, session_strategy: 'default', session_compressor: 'none', session_cookie_maxsize: 4000,
      },
    }],
  });
  const data = parseDeclarative(text, { registry: createRegistry(bundledPlugins) });
  const c = data.plugins[0]!.config as Record<string, any>;
  assert.equal(c.session_rolling_timeout, 1800);
  assert.equal(c.session_idling_timeout, 300);
  assert.equal(c.session_cookie_same_site, 'Default');
  assert.equal(c.session_cookie_http_only, false);
  assert.equal(c.authorization_rolling_timeout, 120);
  assert.equal(c.authorization_cookie_same_site, 'Strict');
  assert.equal(c.authorization_cookie_http_only, false);
  assert.equal(c.redis.host, 'redis.internal');
  assert.equal(c.redis.port, 6380);
  assert.equal(c.redis.password, 'pw');
  for (const old of ['session_cookie_lifetime', 'session_redis_host', 'session_cookie_renew', 'session_strategy']) assert.ok(!(old in c), old);
  // The old name overrides a stored value (an Admin API PATCH on a defaulted config); unknown fields are still errors.
  const both = oidcConfigSchema.parse((await import('./schema.ts')).oidcShorthands({ issuer: 'https://idp.example/', session_cookie_lifetime: 1, session_rolling_timeout: 3600 }));
  assert.equal(both.session_rolling_timeout, 1);
  assert.throws(
    () => parseDeclarative(JSON.stringify({ _format_version: '3.0', plugins: [{ name: 'openid-connect', config: { issuer: 'https://idp.example/', session_cookie_lifetimes: 1 } }] }), { registry: createRegistry(bundledPlugins) }),
    (err: { issues: Array<{ path: string; message: string }> }) => err.issues.some((i) => i.path === 'plugins[0].config.session_cookie_lifetimes' && i.message === 'unknown field'),
  );
});

test('endpoint and redirect URL fields must be absolute URLs (Kong typedefs.url), named in the error', () => {
  const base = { issuer: 'https://idp.example/' };
  assert.deepEqual(issues({ ...base, token_endpoint: 'idp.example/token' }), ['token_endpoint: must be an absolute http(s) URL']);
  assert.deepEqual(issues({ ...base, jwks_endpoint: 'ftp://idp.example/keys' }), ['jwks_endpoint: must be an absolute http(s) URL']);
  assert.deepEqual(issues({ ...base, extra_jwks_uris: ['https://a.example/jwks', 'nope'] }), ['extra_jwks_uris.1: must be an absolute http(s) URL']);
  assert.deepEqual(issues({ ...base, logout_redirect_uri: ['/signed-out'] }), ['logout_redirect_uri.0: must be an absolute URL']);
  assert.deepEqual(issues({
    ...base,
    token_endpoint: 'http://127.0.0.1:9080/token',
    extra_jwks_uris: ['https://a.example/jwks'],
    redirect_uri: ['https://app.example/cb'],
    logout_redirect_uri: ['com.example.app:/signed-out'],
    end_session_endpoint: null,
  }), []);
});

test('response_mode is one of Kong\'s values; the fragment modes and unapplied redis fields are refused by name', () => {
  for (const mode of ['query', 'form_post', 'query.jwt', 'form_post.jwt', 'jwt']) assert.deepEqual(issues({ issuer: 'https://i/', response_mode: mode }), [], mode);
  assert.match(issues({ issuer: 'https://i/', response_mode: 'whatever' })[0], /^response_mode/);
  assert.match(issues({ issuer: 'https://i/', response_mode: 'fragment' })[0], /^response_mode: fragment: not supported yet/);
  assert.deepEqual(issues({ issuer: 'https://i/', redis: { host: 'r', keepalive_pool_size: 256, connection_is_proxied: false } }), []);
  assert.deepEqual(issues({ issuer: 'https://i/', redis: { connection_is_proxied: true } }), []);
  assert.deepEqual(issues({ issuer: 'https://i/', redis: { keepalive_pool_size: 10 } }).map((i) => i.split(':')[0]), ['redis.keepalive_pool_size']);
  assert.deepEqual(issues({ issuer: 'https://i/', redis: { keepalive_backlog: 5 } }).map((i) => i.split(':')[0]), ['redis.keepalive_backlog']);
  assert.deepEqual(issues({ issuer: 'https://i/', redis: { cloud_authentication: { auth_provider: 'aws' } } }).map((i) => i.split(':')[0]), ['redis.cloud_authentication']);
});

test('records of defaults as Kong writes them (Kong Manager form, Kong dumps) count as unset', () => {
  const cloud = { aws_is_serverless: true };
  const clusterRedis = { cloud_authentication: cloud, cluster_max_redirections: 5, connect_timeout: 2000, connection_is_proxied: false, database: 0, host: '127.0.0.1', keepalive_pool_size: 256, port: 6379, read_timeout: 2000, send_timeout: 2000, ssl: false, ssl_verify: true };
  assert.deepEqual(issues({ issuer: 'https://i/', cluster_cache_redis: clusterRedis, redis: { cloud_authentication: cloud } }), []);
  // A record that says something is still refused by name.
  assert.equal(issues({ issuer: 'https://i/', redis: { cloud_authentication: { auth_provider: 'aws' } } }).length, 1);
  assert.match(issues({ issuer: 'https://i/', redis: { cloud_authentication: { auth_provider: 'aws' } } })[0], /^redis\.cloud_authentication: /);
});
