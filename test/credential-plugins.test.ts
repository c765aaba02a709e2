/**
 * key-auth, basic-auth and jwt end to end: a decK file with consumers and their credentials, an
 * echo upstream, real HTTP requests; the logical AND/OR between several auth plugins; secrets
 * never in the logs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { echoGatewaySuite } from './helpers/echo-gateway.ts';

const jwtSecret = 'jwt-secret-for-carol-0123456789abcdef';
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const hs256 = (claims: Record<string, unknown>, secret = jwtSecret) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(secret));

const t = echoGatewaySuite({
  routes: [
    { name: 'key', paths: ['/key'], plugins: [{ name: 'key-auth', config: { hide_credentials: true } }] },
    { name: 'basic', paths: ['/basic'], plugins: [{ name: 'basic-auth', config: { realm: 'portcullis' } }] },
    { name: 'jwt', paths: ['/jwt'], plugins: [{ name: 'jwt', config: { claims_to_verify: ['exp'] } }] },
    {
      // Kong's "allow multiple authentication" pattern: each with anonymous, request-termination on
      // the anonymous consumer refuses what neither authenticated.
      name: 'either', paths: ['/either'], plugins: [
        { name: 'key-auth', config: { anonymous: 'anonymous' } },
        { name: 'basic-auth', config: { anonymous: 'anonymous' } },
      ],
    },
    { name: 'both', paths: ['/both'], plugins: [{ name: 'key-auth' }, { name: 'basic-auth' }] },
  ],
  consumers: [
    { username: 'alice', custom_id: 'A-1', keyauth_credentials: [{ key: 'alice-key-123' }] },
    { username: 'bob', basicauth_credentials: [{ username: 'bob-login', password: 'bob-password' }] },
    { username: 'carol', jwt_secrets: [{ key: 'carol-iss', secret: jwtSecret, algorithm: 'HS256' }] },
    { username: 'dave', keyauth_credentials: [{ key: 'dave-key-456' }], basicauth_credentials: [{ username: 'dave-login', password: 'dave-pw' }] },
    { username: 'anonymous', plugins: [{ name: 'request-termination', config: { status_code: 401, message: 'Authenticate with a key or a password' } }] },
  ],
});

test('key-auth: header and query keys, Kong headers upstream, forged identity headers replaced, key hidden', async () => {
  const r = await t.call('/key', { apikey: 'alice-key-123', 'x-consumer-username': 'forged', 'x-anonymous-consumer': 'true' });
  assert.equal(r.status, 200, r.text);
  const h = r.body.headers;
  assert.equal(h['x-consumer-username'], 'alice');
  assert.equal(h['x-consumer-custom-id'], 'A-1');
  assert.match(h['x-consumer-id'], /^[0-9a-f-]{36}$/);
  assert.match(h['x-credential-identifier'], /^[0-9a-f-]{36}$/, 'key-auth identifies the credential by its id');
  assert.equal(h['x-anonymous-consumer'], undefined);
  assert.equal(h.apikey, undefined, 'hide_credentials');
  assert.equal((await t.call('/key?apikey=alice-key-123')).status, 200);
  const wrong = await t.call('/key', { apikey: 'nope' });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.body.message, 'Unauthorized');
  assert.equal(wrong.headers['www-authenticate'], 'Key');
  const none = await t.call('/key');
  assert.equal(none.body.message, 'No API key found in request');
  assert.equal((await t.call('/key?apikey=a&apikey=b')).body.message, 'Duplicate API key found');
});

test('basic-auth: right password passes (identifier = username); wrong → 401 with the realm', async () => {
  const r = await t.call('/basic', { authorization: basic('bob-login', 'bob-password') });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.headers['x-consumer-username'], 'bob');
  assert.equal(r.body.headers['x-credential-identifier'], 'bob-login');
  assert.equal((await t.call('/basic', { authorization: basic('bob-login', 'bob-password') })).status, 200, 'again, from the verified memo');
  const bad = await t.call('/basic', { authorization: basic('bob-login', 'wrong') });
  assert.equal(bad.status, 401);
  assert.equal(bad.headers['www-authenticate'], 'Basic realm="portcullis"');
  assert.equal(bad.body.message, 'Unauthorized');
});

test('jwt: HS256 token passes (identifier = key); expired and badly signed tokens → Kong bodies', async () => {
  const now = Math.floor(Date.now() / 1000);
  const ok = await t.call('/jwt', { authorization: `Bearer ${await hs256({ iss: 'carol-iss', exp: now + 60 })}` });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.body.headers['x-consumer-username'], 'carol');
  assert.equal(ok.body.headers['x-credential-identifier'], 'carol-iss');
  const expired = await t.call('/jwt', { authorization: `Bearer ${await hs256({ iss: 'carol-iss', exp: now - 5 })}` });
  assert.equal(expired.status, 401);
  assert.deepEqual(expired.body, { exp: 'token expired' });
  const forged = await t.call('/jwt', { authorization: `Bearer ${await hs256({ iss: 'carol-iss', exp: now + 60 }, 'another-secret-another-secret-0000')}` });
  assert.equal(forged.body.message, 'Invalid signature');
  const unknown = await t.call('/jwt', { authorization: `Bearer ${await hs256({ iss: 'who', exp: now + 60 })}` });
  assert.equal(unknown.body.message, "No credentials found for given 'iss'");
});

test('logical OR: either credential passes; neither → the anonymous consumer (refused by its request-termination)', async () => {
  const byKey = await t.call('/either', { apikey: 'alice-key-123' });
  assert.equal(byKey.status, 200, byKey.text);
  assert.equal(byKey.body.headers['x-consumer-username'], 'alice');
  const byPassword = await t.call('/either', { authorization: basic('bob-login', 'bob-password') });
  assert.equal(byPassword.status, 200);
  assert.equal(byPassword.body.headers['x-consumer-username'], 'bob');
  // Both: key-auth (higher priority) authenticated first; basic-auth leaves it alone.
  const both = await t.call('/either', { apikey: 'alice-key-123', authorization: basic('bob-login', 'bob-password') });
  assert.equal(both.body.headers['x-consumer-username'], 'alice');
  const neither = await t.call('/either', { apikey: 'nope' });
  assert.equal(neither.status, 401);
  assert.deepEqual(neither.body.message, 'Authenticate with a key or a password');
});

test('logical AND: without anonymous every plugin must pass; the highest-priority failure answers', async () => {
  assert.equal((await t.call('/both', { apikey: 'dave-key-456', authorization: basic('dave-login', 'dave-pw') })).status, 200);
  const keyOnly = await t.call('/both', { apikey: 'dave-key-456' });
  assert.equal(keyOnly.status, 401);
  assert.equal(keyOnly.headers['www-authenticate'], 'Basic realm="service"');
  const none = await t.call('/both');
  assert.equal(none.body.message, 'No API key found in request', 'key-auth (1250) runs before basic-auth (1100)');
});

test('keys, passwords and jwt secrets never appear in the logs', async () => {
  await t.call('/key', { apikey: 'alice-key-123' });
  await t.call('/basic', { authorization: basic('bob-login', 'bob-password') });
  const logs = t.gw.logText();
  for (const secret of ['alice-key-123', 'bob-password', jwtSecret]) assert.ok(!logs.includes(secret), secret);
});
