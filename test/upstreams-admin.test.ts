/**
 * Upstreams and targets in the Admin API (SQLite store, and DB-less), decK files and dumps:
 * Kong's paths, statuses, defaults and refusals.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { configIssue } from './helpers/http.ts';
import { runConfigValidate } from '../src/cli/config-validate.ts';
import { createRegistry } from '../src/plugins/registry.ts';
import { bundledPlugins } from '../src/plugins/bundled/index.ts';

async function call(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? null : JSON.parse(text) };
}

describe('Admin API with a database', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ database: 'sqlite' });
  });
  after(() => gw.close());

  test('upstream defaults, Kong shorthands, targets CRUD, 409 on a duplicate, PUT on a missing target 404, cascade', async () => {
    const a = gw.adminUrl;
    const u = await call(a, 'POST', '/upstreams', { name: 'api.internal' });
    assert.equal(u.status, 201);
    assert.equal(u.body.algorithm, 'round-robin');
    assert.equal(u.body.hash_on, 'none');
    assert.equal(u.body.slots, 10000);
    assert.equal(u.body.hash_on_cookie_path, '/');
    assert.deepEqual(u.body.healthchecks.active.healthy, { interval: 0, http_statuses: [200, 302], successes: 0 });
    assert.deepEqual(u.body.healthchecks.passive.unhealthy, { http_statuses: [429, 500, 503], tcp_failures: 0, timeouts: 0, http_failures: 0 });
    assert.equal(u.body.healthchecks.threshold, 0);
    assert.equal(u.body.use_srv_name, false);
    // hash_on picks consistent-hashing.
    const h = await call(a, 'PATCH', '/upstreams/api.internal', { hash_on: 'header', hash_on_header: 'x-user' });
    assert.equal(h.status, 200);
    assert.equal(h.body.algorithm, 'consistent-hashing');
    const lc = await call(a, 'PATCH', '/upstreams/api.internal', { algorithm: 'least-connections' });
    assert.equal(lc.body.hash_on, 'none');

    const t = await call(a, 'POST', '/upstreams/api.internal/targets', { target: '10.0.0.1' });
    assert.equal(t.status, 201);
    assert.equal(t.body.target, '10.0.0.1:8000');
    assert.equal(t.body.weight, 100);
    assert.deepEqual(t.body.upstream, { id: u.body.id });
    assert.ok(!Number.isInteger(t.body.created_at * 1000) || t.body.created_at > 1e9);
    const dup = await call(a, 'POST', '/upstreams/api.internal/targets', { target: '10.0.0.1:8000' });
    assert.equal(dup.status, 409);
    assert.equal((await call(a, 'GET', '/upstreams/api.internal/targets/10.0.0.1:8000')).body.id, t.body.id);
    assert.equal((await call(a, 'PUT', '/upstreams/api.internal/targets/10.0.0.1:8000', { weight: 0 })).body.weight, 0);
    assert.equal((await call(a, 'PUT', '/upstreams/api.internal/targets/10.9.9.9:1', { weight: 5 })).status, 404);
    const list = await call(a, 'GET', '/upstreams/api.internal/targets');
    assert.equal(list.body.data.length, 1);
    assert.equal((await call(a, 'GET', '/upstreams/api.internal/targets/all')).body.data.length, 1);
    // No top-level /targets in Kong.
    assert.equal((await call(a, 'GET', '/targets')).status, 404);
    // Health: checks off.
    const health = await call(a, 'GET', '/upstreams/api.internal/health');
    assert.equal(health.status, 200);
    assert.equal(health.body.data[0].health, 'HEALTHCHECKS_OFF');
    assert.equal(typeof health.body.node_id, 'string');
    // Deleting the upstream deletes its targets.
    assert.equal((await call(a, 'DELETE', '/upstreams/api.internal')).status, 204);
    assert.equal((await call(a, 'GET', `/upstreams/${u.body.id}/targets`)).status, 404);
    assert.equal((await call(a, 'GET', '/upstreams/api.internal/health')).status, 404);
  });

  test('bad input: each refused naming the field, nothing stored', async () => {
    const a = gw.adminUrl;
    const cases: [unknown, RegExp][] = [
      [{ name: '10.0.0.1' }, /name.*no ip addresses allowed/],
      [{ name: 'up:8000' }, /name.*no port allowed/],
      [{ name: 'x1', algorithm: 'fastest' }, /algorithm/],
      [{ name: 'x2', hash_on: 'body' }, /hash_on/],
      [{ name: 'x3', hash_on: 'header' }, /hash_on_header/],
      [{ name: 'x4', hash_on: 'cookie', hash_fallback: 'ip', hash_on_cookie: 'c' }, /hash_fallback/],
      [{ name: 'x5', hash_on: 'ip', hash_fallback: 'ip' }, /hash_fallback/],
      [{ name: 'x6', hash_on: 'header', hash_on_header: 'a', hash_fallback: 'header', hash_fallback_header: 'a' }, /hash_fallback_header/],
      [{ name: 'x7', slots: 5 }, /slots/],
      [{ name: 'x8', healthchecks: { active: { healthy: { successes: 256 } } } }, /healthchecks\.active\.healthy\.successes/],
      [{ name: 'x9', healthchecks: { threshold: 101 } }, /healthchecks\.threshold/],
      [{ name: 'x10', healthchecks: { active: { unhealthy: { http_statuses: [99] } } } }, /healthchecks\.active\.unhealthy\.http_statuses/],
      [{ name: 'x11', client_certificate: { id: '6c2f2a51-0f8e-4b33-9b3f-1a6a3a0e9c11' } }, /client_certificate/],
      [{ name: 'x12', healthchecks: { active: { type: 'grpc' } } }, /healthchecks\.active\.type/],
    ];
    for (const [body, re] of cases) {
      const r = await call(a, 'POST', '/upstreams', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(JSON.stringify(r.body), re, JSON.stringify(body));
    }
    assert.equal((await call(a, 'GET', '/upstreams')).body.data.length, 0);
    assert.equal((await call(a, 'POST', '/upstreams', { name: 'ok.internal' })).status, 201);
    for (const [body, re] of [
      [{ target: 'host:70000' }, /Invalid target/],
      [{ target: ':80' }, /Invalid target/],
      [{ target: 'a b' }, /Invalid target/],
      [{ target: '10.0.0.1', weight: 65536 }, /weight/],
      [{ target: '10.0.0.1', weight: -1 }, /weight/],
    ] as [unknown, RegExp][]) {
      const r = await call(a, 'POST', '/upstreams/ok.internal/targets', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(JSON.stringify(r.body), re);
    }
    assert.equal((await call(a, 'GET', '/upstreams/ok.internal/targets')).body.data.length, 0);
  });
});

describe('DB-less', () => {
  test('upstreams and targets from a decK file (nested and top-level); writes answer 405; dump round-trips', async () => {
    const gw = await startGateway({
      config: {
        upstreams: [
          { name: 'a.internal', algorithm: 'least-connections', targets: [{ target: '10.0.0.1:80', weight: 50 }] },
          { name: 'b.internal', hash_on: 'ip' },
        ],
        targets: [{ upstream: 'b.internal', target: 'example.test' }],
      },
    });
    try {
      const a = gw.adminUrl;
      const t = await call(a, 'GET', '/upstreams/b.internal/targets');
      assert.equal(t.body.data[0].target, 'example.test:8000');
      assert.equal((await call(a, 'GET', '/upstreams/b.internal')).body.algorithm, 'consistent-hashing');
      const w = await call(a, 'POST', '/upstreams/a.internal/targets', { target: '10.0.0.2:80' });
      assert.equal(w.status, 405);
      assert.match(JSON.stringify(w.body), /targets/);
      assert.equal((await call(a, 'POST', '/upstreams', { name: 'c.internal' })).status, 405);
      assert.equal((await call(a, 'PATCH', '/upstreams/a.internal/targets/10.0.0.1:80', { weight: 1 })).status, 405);
      const dump = await fetch(`${a}/config`);
      const text = await dump.text();
      assert.match(text, /a\.internal/);
      assert.equal(await gw.reload(text.startsWith('{') ? JSON.parse(text).config ?? JSON.parse(text) : text), true);
      assert.equal((await call(a, 'GET', '/upstreams/a.internal/targets')).body.data[0].weight, 50);
    } finally {
      await gw.close();
    }
  });

  test('a duplicate target or a target of a missing upstream in a decK file is a config error naming it', async () => {
    await assert.rejects(startGateway({ config: { upstreams: [{ name: 'd.internal', targets: [{ target: '10.0.0.1' }, { target: '10.0.0.1:8000' }] }] } }), configIssue(/duplicate target '10\.0\.0\.1:8000'/));
    await assert.rejects(startGateway({ config: { targets: [{ upstream: 'nope', target: '10.0.0.1' }] } }), configIssue(/targets\[0\]\.upstream/));
  });

  test('config validate: warns about a service host that looks like a missing upstream name', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pc-validate-'));
    const file = join(dir, 'kong.yaml');
    await writeFile(file, JSON.stringify({ _format_version: '3.0', services: [{ name: 's', host: 'orders-upstream' }], upstreams: [{ name: 'order-upstream' }] }));
    const out: string[] = [], err: string[] = [];
    try {
      const code = await runConfigValidate(file, createRegistry(bundledPlugins), { stdout: (l) => out.push(l), stderr: (l) => err.push(l) });
      assert.equal(code, 0);
      assert.deepEqual(out, ['OK']);
      assert.match(err.join('\n'), /warning: service 's': host 'orders-upstream' names no upstream/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
