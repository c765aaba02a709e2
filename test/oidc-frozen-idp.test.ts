/**
 * A hung IdP must not stall new logins: with the IdP frozen (connections accepted, never
 * answered), a token with a forged `kid` costs at most its own wait, valid tokens whose keys are
 * in memory are answered at once, and the password grant / introspection fail fast once their
 * endpoint's circuit is open, then recover through a probe when the IdP answers again.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startBadIdp, type BadIdp } from './helpers/bad-idp.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { oidcDeck } from './helpers/oidc-deck.ts';
import { FAILURES_TO_OPEN, OPEN_MS } from '../src/plugins/bundled/openid-connect/idp-breaker.ts';

/** The plugin's IdP timeout: long enough that "did not wait for it" is clear on a busy machine. */
const TIMEOUT_MS = 4000;
/** "Answered without waiting": well under one timeout, generous for a loaded machine. */
const QUICK_MS = TIMEOUT_MS / 2;

let echo: EchoServer;
let idp: BadIdp;
/** Bearer JWTs only: a JWT that fails is not offered to introspection. */
let jwtGw: TestGateway;
/** Password grant and introspection (opaque tokens). */
let grantGw: TestGateway;

const deck = (methods: string) => oidcDeck(echo.url, idp.issuer, `      auth_methods: [${methods}]
      client_id: [c]
      client_secret: [s]
      timeout: ${TIMEOUT_MS}
      cache_ttl: 1
      rediscovery_lifetime: 30
`);

before(async () => {
  echo = await startEcho();
  idp = await startBadIdp();
  jwtGw = await startGateway({ config: deck('bearer') });
  grantGw = await startGateway({ config: deck('password, introspection') });
});
after(async () => {
  idp.setFrozen(false);
  await jwtGw?.close();
  await grantGw?.close();
  await idp?.close();
  await echo?.close();
});

async function timed(headers: Record<string, string>, gw: TestGateway = jwtGw): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  const r = await fetch(`${gw.proxyUrl}/api`, { headers });
  await r.body?.cancel();
  return { status: r.status, ms: performance.now() - t0 };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const basic = (user = 'alex') => ({ authorization: `Basic ${Buffer.from(`${user}:doe`).toString('base64')}` });

test('frozen IdP: a forged kid does not make later valid tokens wait; it is remembered', async () => {
  // Warm: discovery and keys in memory.
  assert.equal((await timed(bearer(await idp.sign({ sub: 'warm' })))).status, 200);
  // cache_ttl (1 s) expires: the keys in memory are now stale, as they would be after any TTL.
  await new Promise((r) => setTimeout(r, 1200));
  idp.setFrozen(true);

  const forged = await idp.sign({ sub: 'mallory' }, { kid: 'forged-kid', key: 'other' });
  const forgedReply = timed(bearer(forged));
  // While the forged kid's refetch hangs, valid tokens not verified before (no verified-token
  // cache entry) are answered from the keys in memory.
  await new Promise((r) => setTimeout(r, 100));
  for (let i = 0; i < 3; i++) {
    const r = await timed(bearer(await idp.sign({ sub: `user-${i}` })));
    assert.equal(r.status, 200);
    assert.ok(r.ms < QUICK_MS, `valid token ${i} waited ${Math.round(r.ms)} ms`);
  }
  const f = await forgedReply;
  assert.equal(f.status, 401);
  assert.ok(f.ms < TIMEOUT_MS + QUICK_MS, `the forged token waited ${Math.round(f.ms)} ms (more than one timeout)`);

  // The same forged kid again: refused at once, without asking the IdP.
  const jwksCalls = idp.counts().jwks ?? 0;
  const again = await timed(bearer(forged));
  assert.equal(again.status, 401);
  assert.ok(again.ms < QUICK_MS, `the known-unknown kid waited ${Math.round(again.ms)} ms`);
  assert.equal(idp.counts().jwks ?? 0, jwksCalls);
  // And valid tokens still pass at once after it.
  const later = await timed(bearer(await idp.sign({ sub: 'later' })));
  assert.equal(later.status, 200);
  assert.ok(later.ms < QUICK_MS, `a valid token after the forged one waited ${Math.round(later.ms)} ms`);
});

test('frozen IdP: password grant and introspection fail fast once their circuit is open, then recover', async () => {
  // Warm: discovery in memory (the login itself is refused: no token response configured yet).
  idp.setFrozen(false);
  assert.equal((await timed(basic('warm'), grantGw)).status, 401);
  idp.setFrozen(true);
  // FAILURES_TO_OPEN concurrent calls each wait one timeout (never more) and open the circuit.
  // (Different users: concurrent logins of one user share a single IdP call.)
  const first = await Promise.all(Array.from({ length: FAILURES_TO_OPEN }, (_, i) => timed(basic(`user${i}`), grantGw)));
  for (const r of first) {
    assert.equal(r.status, 500);
    assert.ok(r.ms < TIMEOUT_MS + QUICK_MS, `a password login waited ${Math.round(r.ms)} ms (more than one timeout)`);
  }
  const tokenCalls = idp.counts().token ?? 0;
  const fast = await timed(basic(), grantGw);
  assert.equal(fast.status, 500);
  assert.ok(fast.ms < QUICK_MS, `with the circuit open a password login waited ${Math.round(fast.ms)} ms`);
  assert.equal(idp.counts().token ?? 0, tokenCalls, 'the open circuit still called the token endpoint');

  const opaque = await Promise.all(Array.from({ length: FAILURES_TO_OPEN }, (_, i) => timed(bearer(`opaque-${i}`), grantGw)));
  for (const r of opaque) assert.equal(r.status, 500);
  const introFast = await timed(bearer('opaque-x'), grantGw);
  assert.equal(introFast.status, 500);
  assert.ok(introFast.ms < QUICK_MS, `with the circuit open introspection waited ${Math.round(introFast.ms)} ms`);

  // The IdP answers again: after the back-off one probe goes through and closes the circuit.
  idp.setFrozen(false);
  idp.setTokenResponse({ access_token: await idp.sign({ sub: 'alex' }), token_type: 'Bearer', expires_in: 60 });
  idp.setIntrospection('opaque-ok', { active: true, sub: 'alex', exp: Math.floor(Date.now() / 1000) + 60 });
  await new Promise((r) => setTimeout(r, OPEN_MS + 200));
  assert.equal((await timed(basic(), grantGw)).status, 200);
  assert.equal((await timed(bearer('opaque-ok'), grantGw)).status, 200);
});
