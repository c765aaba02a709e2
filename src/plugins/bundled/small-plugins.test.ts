/** Registration and schema round-trips of cors, correlation-id, acl, rate-limiting, request-termination. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bundledPlugins } from './index.ts';
import { createRegistry } from '../registry.ts';

const samples: Record<string, unknown> = {
  cors: { origins: ['http://a.example', '.*\\.b\\.example'], credentials: true, max_age: 10 },
  'correlation-id': { generator: 'uuid', echo_downstream: true },
  acl: { allow: ['admin'] },
  'rate-limiting': { minute: 5, hour: 100, limit_by: 'header', header_name: 'X-Tenant' },
  'request-termination': { status_code: 418, body: 'teapot', content_type: 'text/plain' },
};

test('registered with Kong priorities', () => {
  const registry = createRegistry(bundledPlugins);
  const expected: Record<string, number> = { cors: 2000, 'correlation-id': 100001, acl: 950, 'rate-limiting': 910, 'request-termination': 2 };
  for (const [name, priority] of Object.entries(expected)) assert.equal(registry.get(name)?.priority, priority, name);
});

test('validated configs validate again unchanged (stored configs can be re-checked)', () => {
  const registry = createRegistry(bundledPlugins);
  for (const [name, config] of Object.entries(samples)) {
    const once = registry.validateConfig(name, config);
    assert.ok(once.ok, name);
    const twice = registry.validateConfig(name, once.value);
    assert.ok(twice.ok, name);
    assert.deepEqual(twice.value, once.value, name);
  }
});

test('unknown fields are rejected with their path', () => {
  const registry = createRegistry(bundledPlugins);
  for (const name of Object.keys(samples)) {
    const r = registry.validateConfig(name, { ...(samples[name] as object), not_a_field: 1 });
    assert.equal(r.ok, false, name);
    if (!r.ok) assert.ok(r.issues.some((i) => i.message.includes('not_a_field')), `${name}: ${JSON.stringify(r.issues)}`);
  }
});

test("numbers Kong bounds on both sides say Kong's between message, whichever side fails", () => {
  const registry = createRegistry(bundledPlugins);
  const oidc = { issuer: 'https://idp.example/.well-known/openid-configuration' };
  const cases: Array<[string, unknown, string, string]> = [
    ['request-termination', { status_code: 700 }, 'status_code', 'value should be between 100 and 599'],
    ['request-termination', { status_code: 99 }, 'status_code', 'value should be between 100 and 599'],
    ['jwt', { maximum_expiration: -1 }, 'maximum_expiration', 'value should be between 0 and 31536000'],
    ['http-log', { http_endpoint: 'http://collector.example/', queue: { max_batch_size: 0 } }, 'queue.max_batch_size', 'value should be between 1 and 1000000'],
    ['opentelemetry', { traces_endpoint: 'http://otel.example/v1/traces', sampling_rate: 2 }, 'sampling_rate', 'value should be between 0 and 1'],
    ['openid-connect', { ...oidc, session_memcached_port: 70000 }, 'session_memcached_port', 'value should be between 0 and 65535'],
    ['oauth2', { enable_client_credentials: true, refresh_token_ttl: -5 }, 'refresh_token_ttl', 'value should be between 0 and 100000000'],
    ['rate-limiting', { minute: 1, error_code: 99 }, 'error_code', 'value should be between 100 and 599'],
  ];
  for (const [name, config, path, message] of cases) {
    const r = registry.validateConfig(name, config);
    assert.equal(r.ok, false, `${name} ${JSON.stringify(config)}`);
    if (!r.ok) assert.ok(r.issues.some((i) => i.path.endsWith(path) && i.message === message), `${name}: ${JSON.stringify(r.issues)}`);
  }
});
