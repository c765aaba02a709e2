import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from './helpers/gateway.ts';
import { echoGatewaySuite } from './helpers/echo-gateway.ts';
import { configIssue as issue } from './helpers/http.ts';

import { testAuthPlugin } from './helpers/test-auth-plugin.ts';

const t = echoGatewaySuite({
  plugins: [testAuthPlugin],
  servicePlugins: [{ name: 'test-header-auth' }],
  routes: [
    { name: 'admins', paths: ['/admins'], plugins: [{ name: 'acl', config: { allow: ['admin'] } }] },
    { name: 'no-dev', paths: ['/no-dev'], plugins: [{ name: 'acl', config: { deny: ['dev'] } }] },
    { name: 'prefer-auth', paths: ['/prefer-auth'], plugins: [{ name: 'acl', config: { allow: ['admin'], always_use_authenticated_groups: true } }] },
  ],
  consumers: [
    { username: 'alice', acls: [{ group: 'admin' }, { group: 'dev' }] },
    { username: 'bob', acls: [{ group: 'ops' }] },
    { username: 'zofia', acls: [{ group: 'admin' }, { group: 'Łódź équipe' }] },
  ],
});
const call = (path: string, headers: Record<string, string> = {}) => t.call(path, headers);

test('acl allow: member passes with X-Consumer-Groups, forged headers dropped', async () => {
  const r = await call('/admins', { 'x-test-consumer': 'alice', 'x-consumer-groups': 'forged', 'x-authenticated-groups': 'forged' });
  assert.equal(r.status, 200);
  assert.equal(r.body.headers['x-consumer-groups'], 'admin, dev');
  assert.equal(r.body.headers['x-authenticated-groups'], undefined);
});

test('acl allow: non-member → 403; nobody → 401', async () => {
  const r = await call('/admins', { 'x-test-consumer': 'bob' });
  assert.equal(r.status, 403);
  assert.deepEqual(r.body, { message: 'You cannot consume this service' });
  const anon = await call('/admins');
  assert.equal(anon.status, 401);
  assert.deepEqual(anon.body, { message: 'Unauthorized' });
});

test('acl deny: listed group → 403, others pass', async () => {
  assert.equal((await call('/no-dev', { 'x-test-consumer': 'alice' })).status, 403);
  const bob = await call('/no-dev', { 'x-test-consumer': 'bob' });
  assert.equal(bob.status, 200);
  assert.equal(bob.body.headers['x-consumer-groups'], 'ops');
});

test('acl with authenticated groups (no consumer, and always_use_authenticated_groups)', async () => {
  const g = await call('/admins', { 'x-test-groups': 'admin, email' });
  assert.equal(g.status, 200);
  assert.equal(g.body.headers['x-authenticated-groups'], 'admin, email');
  assert.equal((await call('/admins', { 'x-test-groups': 'email' })).status, 403);
  const pref = await call('/prefer-auth', { 'x-test-consumer': 'bob', 'x-test-groups': 'admin' });
  assert.equal(pref.status, 200);
  assert.equal(pref.body.headers['x-authenticated-groups'], 'admin');
});

test('acl: group names beyond Latin-1 reach the upstream as UTF-8 (no 502)', async () => {
  const r = await call('/admins', { 'x-test-consumer': 'zofia' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  // node:http hands header bytes over as latin1 characters: decode them as UTF-8.
  assert.equal(Buffer.from(r.body.headers['x-consumer-groups'], 'latin1').toString('utf8'), 'admin, Łódź équipe');
});

test('acl config errors are rejected when the file is loaded', async () => {
  await assert.rejects(
    startGateway({ config: { plugins: [{ name: 'acl', config: { allow: ['a'], deny: ['b'] } }] } }),
    issue(/exactly one of these fields must be non-empty: 'config.allow', 'config.deny'/),
  );
  await assert.rejects(
    startGateway({ config: { plugins: [{ name: 'acl', config: {} }] } }),
    issue(/at least one of these fields must be non-empty: 'config.allow', 'config.deny'/),
  );
  await assert.rejects(
    startGateway({ config: { consumers: [{ username: 'c', plugins: [{ name: 'acl', config: { allow: ['a'] } }] }] } }),
    issue(/cannot be applied to a consumer/),
  );
});
