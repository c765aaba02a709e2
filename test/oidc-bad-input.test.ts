/**
 * openid-connect negative cases against a misbehaving in-test IdP: every bad token gets 401 (or
 * 400 for a token sent twice) and nothing reaches the upstream; key rotation, JWKS outages and
 * an IdP that is down at start-up are survived.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from './helpers/gateway.ts';
import type { TestGateway } from './helpers/gateway.ts';
import { startBadIdp } from './helpers/bad-idp.ts';
import type { BadIdp } from './helpers/bad-idp.ts';
import { startEcho } from '../demo/echo.ts';
import type { EchoServer } from '../demo/echo.ts';
import { oidcDeck } from './helpers/oidc-deck.ts';

let idp: BadIdp;
let echo: EchoServer;
let gw: TestGateway;

function config(issuer: string, extra = ''): string {
  return oidcDeck(echo.url, issuer, `      auth_methods: [bearer]\n      rediscovery_lifetime: 1\n${extra}`);
}

before(async () => {
  idp = await startBadIdp();
  echo = await startEcho();
  gw = await startGateway({ config: config(idp.issuer) });
});
after(async () => {
  await gw.close();
  await echo.close();
  await idp.close();
});

async function call(token: string, init: RequestInit = {}, path = '/api'): Promise<Response> {
  return fetch(`${gw.proxyUrl}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string> | undefined) } });
}

async function refused(token: string, status = 401, init: RequestInit = {}, path = '/api'): Promise<void> {
  const before = echo.received.length;
  const r = await call(token, init, path);
  const body = await r.text();
  assert.equal(r.status, status, body);
  if (status === 401) assert.match(r.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  assert.equal(echo.received.length, before, 'nothing reaches the upstream');
}

const now = () => Math.floor(Date.now() / 1000);

test('a valid token passes; the control case for everything below', async () => {
  const r = await call(await idp.sign({ sub: 'alex' }));
  assert.equal(r.status, 200);
  await r.body?.cancel();
});

test('bad signature, alg none, HS256 with the RSA public key, wrong iss, expired, nbf in the future', async () => {
  const good = await idp.sign({ sub: 'alex' });
  const [h, p, s] = good.split('.');
  await refused(`${h}.${p}.${s.slice(0, -4)}AAAA`);
  await refused(await idp.sign({ sub: 'alex' }, { key: 'other' }));
  await refused(idp.unsigned({ sub: 'alex', iss: idp.issuer, exp: now() + 300 }));
  await refused(idp.hs256WithPublicKey({ sub: 'alex', iss: idp.issuer, exp: now() + 300 }));
  await refused(await idp.sign({ sub: 'alex', iss: 'https://evil.example' }));
  await refused(await idp.sign({ sub: 'alex', exp: now() - 60 }));
  await refused(await idp.sign({ sub: 'alex', nbf: now() + 600 }));
});

test('garbage, oversized and doubly-sent tokens', async () => {
  await refused('not-a-token');
  await refused('a.b.c');
  await refused('x'.repeat(20_000) + '.a.b');
  const good = await idp.sign({ sub: 'alex' });
  await refused(good, 400, {}, `/api?access_token=${good}`);
});

test('wrong audience → 403 with audience_required', async () => {
  const ok = await gw.reload(config(idp.issuer, '      audience_required: [my-api]\n'));
  assert.ok(ok);
  try {
    const before = echo.received.length;
    const r = await call(await idp.sign({ sub: 'alex', aud: 'other-api' }));
    assert.equal(r.status, 403);
    assert.deepEqual(await r.json(), { message: 'Forbidden' });
    assert.match(r.headers.get('www-authenticate') ?? '', /insufficient_scope/);
    assert.equal(echo.received.length, before);
    const r2 = await call(await idp.sign({ sub: 'alex', aud: ['my-api', 'x'] }));
    assert.equal(r2.status, 200);
    await r2.body?.cancel();
  } finally {
    assert.ok(await gw.reload(config(idp.issuer)));
  }
});

test('a JWT that does not verify locally is offered to introspection when it is enabled (the IdP decides)', async () => {
  const deck = oidcDeck(echo.url, idp.issuer, '      auth_methods: [bearer, introspection]\n      client_id: [c]\n      client_secret: [s]\n');
  assert.ok(await gw.reload(deck));
  try {
    // Signed with a key the JWKS does not publish: bearer cannot verify it, the IdP vouches for it.
    const vouched = await idp.sign({ sub: 'alex', n: 1 }, { key: 'other' });
    idp.setIntrospection(vouched, { active: true, sub: 'alex', iss: idp.issuer });
    idp.resetCounts();
    const r = await call(vouched);
    assert.equal(r.status, 200, await r.text());
    assert.equal(idp.counts().introspection, 1);
    // The same kind of token the IdP does not know: 401 invalid_token, nothing upstream.
    await refused(await idp.sign({ sub: 'alex', n: 2 }, { key: 'other' }));
    await refused(await idp.sign({ sub: 'alex', exp: now() - 3600 }));
  } finally {
    assert.ok(await gw.reload(config(idp.issuer)));
  }
});

test('unknown kid → one JWKS refetch per cooldown; a rotated key is then accepted', async () => {
  const warm = await call(await idp.sign({ sub: 'alex' }));
  assert.equal(warm.status, 200);
  await warm.body?.cancel();
  idp.resetCounts();
  for (let i = 0; i < 20; i++) await refused(await idp.sign({ sub: 'alex' }, { kid: `forged-${i}`, key: 'other' }));
  assert.ok((idp.counts().jwks ?? 0) <= 1, `JWKS fetched ${idp.counts().jwks} times`);
  await idp.rotateKeys();
  await new Promise((r) => setTimeout(r, 1100)); // rediscovery_lifetime: 1
  const r = await call(await idp.sign({ sub: 'alex' }));
  assert.equal(r.status, 200);
  await r.body?.cancel();
});

test('JWKS endpoint failing: cached keys keep working, new keys cannot be fetched (401, no flood)', async () => {
  const token = await idp.sign({ sub: 'jane' });
  const ok = await call(token);
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
  idp.setJwksFailure('http500');
  try {
    idp.resetCounts();
    const again = await call(await idp.sign({ sub: 'jane', n: 2 }));
    assert.equal(again.status, 200);
    await again.body?.cancel();
    await idp.rotateKeys();
    for (let i = 0; i < 10; i++) await refused(await idp.sign({ sub: 'jane', i }));
    assert.ok((idp.counts().jwks ?? 0) <= 2);
  } finally {
    idp.setJwksFailure(null);
  }
});

test('an IdP that is down at start-up does not stop the gateway; requests get Kong\'s 500 (the reason with display_errors)', async () => {
  const down = await startBadIdp();
  const issuer = down.issuer;
  await down.close();
  const gw2 = await startGateway({ config: config(issuer) });
  try {
    const r = await fetch(`${gw2.proxyUrl}/api`, { headers: { authorization: 'Bearer a.b.c' } });
    assert.equal(r.status, 500);
    assert.deepEqual(await r.json(), { message: 'An unexpected error occurred' });
    assert.ok(gw2.logText().includes('The identity provider is unavailable') || gw2.logText().includes('GW_AUTH_IDP_UNAVAILABLE'), 'the log says why');
  } finally {
    await gw2.close();
  }
  const gw3 = await startGateway({ config: config(issuer, '      display_errors: true\n') });
  try {
    const r = await fetch(`${gw3.proxyUrl}/api`, { headers: { authorization: 'Bearer a.b.c' } });
    assert.equal(r.status, 500);
    assert.deepEqual(await r.json(), { message: 'An unexpected error occurred', error_description: 'The identity provider is unavailable' });
  } finally {
    await gw3.close();
  }
});

test('JWKS failing before any key was fetched: 500, and the back-off keeps the IdP from being flooded', async () => {
  const fresh = await startBadIdp();
  fresh.setJwksFailure('garbage');
  const gw2 = await startGateway({ config: config(fresh.issuer) });
  try {
    for (let i = 0; i < 10; i++) {
      const before = echo.received.length;
      const r = await fetch(`${gw2.proxyUrl}/api`, { headers: { authorization: `Bearer ${await fresh.sign({ sub: 'a', i })}` } });
      assert.equal(r.status, 500);
      await r.body?.cancel();
      assert.equal(echo.received.length, before);
    }
    assert.equal(fresh.counts().jwks, 1);
  } finally {
    await gw2.close();
    await fresh.close();
  }
});
