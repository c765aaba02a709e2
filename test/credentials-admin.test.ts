/**
 * Consumers' credentials and consumer groups through Kong's Admin API (SQLite store, real
 * sockets): nested and top-level paths, generated keys, uniqueness (409), basic-auth passwords
 * never stored or returned in clear, cascade on consumer deletion, consumer-group membership,
 * consumer-group-scoped plugins applied to members only, acl include_consumer_groups.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { waitFor } from './helpers/process.ts';

let echo: EchoServer;
let gw: TestGateway;

async function admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${gw.adminUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? null : JSON.parse(text) };
}

async function proxy(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${gw.proxyUrl}${path}`, { headers });
  const text = await res.text();
  let body: any = text;
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, body, headers: res.headers };
}

/** The proxy sees Admin API writes after the next Snapshot: poll for up to 5 s. */
const eventually = (fn: () => Promise<boolean>, what: string): Promise<void> => waitFor(fn, 5000, what);

before(async () => {
  echo = await startEcho();
  gw = await startGateway({ database: 'sqlite' });
  assert.equal((await admin('POST', '/services', { name: 'echo', url: `http://127.0.0.1:${echo.port}` })).status, 201);
  assert.equal((await admin('POST', '/services/echo/routes', { name: 'keyed', paths: ['/keyed'] })).status, 201);
  assert.equal((await admin('POST', '/routes/keyed/plugins', { name: 'key-auth' })).status, 201);
});

after(async () => {
  await gw?.close();
  await echo?.close();
});

test('key-auth credentials: nested and top-level paths, generated key, 409 on a duplicate, works at once', async () => {
  assert.equal((await admin('POST', '/consumers', { username: 'alice' })).status, 201);
  const generated = await admin('POST', '/consumers/alice/key-auth', {});
  assert.equal(generated.status, 201, JSON.stringify(generated.body));
  assert.equal(typeof generated.body.key, 'string');
  assert.ok(generated.body.key.length >= 32, 'a generated key is long and random');
  const given = await admin('POST', '/consumers/alice/key-auth', { key: 'alice-chosen-key' });
  assert.equal(given.status, 201);
  assert.equal(given.body.consumer.id, (await admin('GET', '/consumers/alice')).body.id);
  const dup = await admin('POST', '/consumers/alice/key-auth', { key: 'alice-chosen-key' });
  assert.equal(dup.status, 409);
  assert.equal((await admin('GET', '/consumers/alice/key-auth')).body.data.length, 2);
  assert.equal((await admin('GET', `/key-auths/${given.body.id}`)).body.key, 'alice-chosen-key');
  assert.equal((await admin('GET', '/key-auths/alice-chosen-key')).body.id, given.body.id, 'endpoint key: the key itself');
  await eventually(async () => (await proxy('/keyed', { apikey: 'alice-chosen-key' })).status === 200, 'new key accepted');
  assert.equal((await proxy('/keyed', { apikey: generated.body.key })).status, 200);
});

test('basic-auth credentials: the password is stored and returned only as a salted hash', async () => {
  assert.equal((await admin('POST', '/consumers', { username: 'bob' })).status, 201);
  const c = await admin('POST', '/consumers/bob/basic-auth', { username: 'bob-login', password: 'bob-password' });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  assert.notEqual(c.body.password, 'bob-password');
  assert.match(c.body.password, /^\$scrypt\$/);
  const read = await admin('GET', `/basic-auths/${c.body.id}`);
  assert.equal(read.body.password, c.body.password);
  assert.equal((await admin('POST', '/consumers/bob/basic-auth', { username: 'bob-login', password: 'x' })).status, 409);
  const missing = await admin('POST', '/consumers/bob/basic-auth', { username: 'no-password' });
  assert.equal(missing.status, 400);
  assert.match(JSON.stringify(missing.body), /password/);
});

test('jwt credentials: generated key and secret; RS256 needs a parsable rsa_public_key', async () => {
  assert.equal((await admin('POST', '/consumers', { username: 'carol' })).status, 201);
  const hs = await admin('POST', '/consumers/carol/jwt', {});
  assert.equal(hs.status, 201, JSON.stringify(hs.body));
  assert.equal(hs.body.algorithm, 'HS256');
  assert.ok(hs.body.key && hs.body.secret);
  const rs = await admin('POST', '/consumers/carol/jwt', { algorithm: 'RS256' });
  assert.equal(rs.status, 400);
  assert.match(JSON.stringify(rs.body), /rsa_public_key/);
  const badPem = await admin('POST', '/consumers/carol/jwt', { algorithm: 'RS256', rsa_public_key: 'not a key' });
  assert.equal(badPem.status, 400);
  assert.equal((await admin('GET', '/jwts')).body.data.length, 1);
});

test('deleting a consumer deletes its credentials: its key never authenticates again', async () => {
  assert.equal((await admin('POST', '/consumers', { username: 'erin' })).status, 201);
  assert.equal((await admin('POST', '/consumers/erin/key-auth', { key: 'erin-key' })).status, 201);
  await eventually(async () => (await proxy('/keyed', { apikey: 'erin-key' })).status === 200, 'erin key accepted');
  assert.equal((await admin('DELETE', '/consumers/erin')).status, 204);
  await eventually(async () => (await proxy('/keyed', { apikey: 'erin-key' })).status === 401, 'erin key refused');
  assert.equal((await admin('GET', '/key-auths/erin-key')).status, 404);
});

test('consumer groups: membership both ways; a group-scoped plugin applies to members only; acl include_consumer_groups', async () => {
  const g = await admin('POST', '/consumer_groups', { name: 'gold' });
  assert.equal(g.status, 201, JSON.stringify(g.body));
  assert.equal((await admin('POST', '/consumer_groups', { name: 'gold' })).status, 409);
  const add = await admin('POST', '/consumer_groups/gold/consumers', { consumer: 'alice' });
  assert.equal(add.status, 201, JSON.stringify(add.body));
  assert.equal((await admin('GET', '/consumer_groups/gold/consumers')).body.data[0].username, 'alice');
  const byConsumer = await admin('GET', '/consumers/alice/consumer_groups');
  assert.equal(byConsumer.body.data[0].name, 'gold');
  assert.equal((await admin('POST', '/consumers/bob/consumer_groups', { group: 'gold' })).status, 201);
  assert.equal((await admin('DELETE', '/consumers/bob/consumer_groups/gold')).status, 204);
  // A plugin scoped to the group (rate-limiting accepts that scope, as in Kong): members get its
  // limit, others do not; a plugin without that scope is refused.
  const refused = await admin('POST', '/consumer_groups/gold/plugins', { name: 'request-termination' });
  assert.equal(refused.status, 400);
  assert.match(JSON.stringify(refused.body), /cannot be applied to a consumer group/);
  const scoped = await admin('POST', '/consumer_groups/gold/plugins', { name: 'rate-limiting', config: { minute: 1000 } });
  assert.equal(scoped.status, 201, JSON.stringify(scoped.body));
  assert.equal(scoped.body.consumer_group.id, g.body.id);
  assert.equal((await admin('POST', '/consumers', { username: 'frank' })).status, 201);
  assert.equal((await admin('POST', '/consumers/frank/key-auth', { key: 'frank-key' })).status, 201);
  await eventually(async () => (await proxy('/keyed', { apikey: 'alice-chosen-key' })).headers.get('x-ratelimit-limit-minute') === '1000', 'group plugin applies to alice');
  await eventually(async () => (await proxy('/keyed', { apikey: 'frank-key' })).status === 200, 'frank authenticates');
  assert.equal((await proxy('/keyed', { apikey: 'frank-key' })).headers.get('x-ratelimit-limit-minute'), null, 'frank is not a member');
  assert.equal((await admin('DELETE', `/consumer_groups/gold/plugins/${scoped.body.id}`)).status, 204);
  // The transformers take that scope too (Kong's 3.10 schemas): the members' responses carry the header.
  const tagged = await admin('POST', '/consumer_groups/gold/plugins', { name: 'response-transformer', config: { add: { headers: ['x-tier:gold'] } } });
  assert.equal(tagged.status, 201, JSON.stringify(tagged.body));
  assert.equal((await admin('POST', '/consumer_groups/gold/plugins', { name: 'request-transformer', config: { add: { headers: ['x-tier:gold'] } } })).status, 201);
  await eventually(async () => (await proxy('/keyed', { apikey: 'alice-chosen-key' })).headers.get('x-tier') === 'gold', 'group response-transformer applies to alice');
  assert.equal((await proxy('/keyed', { apikey: 'alice-chosen-key' })).body?.headers?.['x-tier'], 'gold', 'group request-transformer applies to alice');
  assert.equal((await proxy('/keyed', { apikey: 'frank-key' })).headers.get('x-tier'), null, 'frank is not a member');
  assert.equal((await admin('DELETE', `/consumer_groups/gold/plugins/${tagged.body.id}`)).status, 204);
  // X-Consumer-Groups carries the group names.
  await eventually(async () => (await proxy('/keyed', { apikey: 'alice-chosen-key' })).body?.headers?.['x-consumer-groups'] === 'gold', 'X-Consumer-Groups');
  assert.equal((await admin('POST', '/services/echo/routes', { name: 'gold-only', paths: ['/gold-only'] })).status, 201);
  assert.equal((await admin('POST', '/routes/gold-only/plugins', { name: 'key-auth' })).status, 201);
  assert.equal((await admin('POST', '/routes/gold-only/plugins', { name: 'acl', config: { allow: ['gold'], include_consumer_groups: true } })).status, 201);
  await eventually(async () => (await proxy('/gold-only', { apikey: 'alice-chosen-key' })).status === 200, 'alice through acl by group');
  assert.equal((await proxy('/gold-only', { apikey: 'frank-key' })).status, 403);
});
