/**
 * openid-connect DPoP (RFC 9449, `proof_of_possession_dpop`, `dpop_use_nonce`,
 * `dpop_proof_lifetime`) against the demo IdP (oidc-provider, which binds tokens requested with a
 * DPoP proof: `cnf.jkt`). The happy paths use a real DPoP client (openid-client's DPoP handle);
 * the bad proofs are made with jose, one defect each. Every refusal is a 401 with a
 * `WWW-Authenticate: DPoP ...` challenge and nothing reaches the upstream.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import * as client from 'openid-client';
import { base64url, calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import http from 'node:http';
import { request } from 'undici';
import { Redis } from 'ioredis';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { freePort, startGatewayProcess } from './helpers/process.ts';
import { idpEchoSuite, startBadIdp, startIdp } from './helpers/idp.ts';
import { oidcDeck } from './helpers/oidc-deck.ts';
import { parseExposition } from './helpers/prometheus.ts';

// The IdP demands DPoP nonces at its token endpoint too (a real DPoP client follows that by itself).
const env = idpEchoSuite(() => startIdp({ dpop: { requireNonce: true } }));

interface Holder {
  alg: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

async function holder(alg = 'ES256'): Promise<Holder> {
  const kp = await generateKeyPair(alg, { extractable: true });
  return { alg, ...kp, jwk: await exportJWK(kp.publicKey) };
}

const ath = (token: string) => createHash('sha256').update(token).digest('base64url');

interface ProofOptions {
  htm?: string;
  htu: string;
  token?: string | null;
  nonce?: string;
  iat?: number;
  jti?: string;
  typ?: string;
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
}

/** A DPoP proof (RFC 9449 §4.2) signed by `h`, with whatever defect the options give it. */
function proof(h: Holder, o: ProofOptions): Promise<string> {
  const payload = {
    htm: o.htm ?? 'GET',
    htu: o.htu,
    iat: o.iat ?? Math.floor(Date.now() / 1000),
    jti: o.jti ?? randomUUID(),
    ...(o.token ? { ath: ath(o.token) } : {}),
    ...(o.nonce ? { nonce: o.nonce } : {}),
    ...o.claims,
  };
  return new SignJWT(payload).setProtectedHeader({ alg: h.alg, typ: o.typ ?? 'dpop+jwt', jwk: h.jwk, ...o.header }).sign(h.privateKey);
}

async function idpConfig(id: string, secret: string): Promise<client.Configuration> {
  return client.discovery(new URL(env.idp.issuer), id, secret, undefined, { execute: [client.allowInsecureRequests] });
}

/** A client-credentials access token from the IdP, bound to `h` when given (a DPoP proof at the token endpoint). */
async function accessToken(h: Holder | null, id = 'service-client', secret = 'service-secret'): Promise<string> {
  const config = await idpConfig(id, secret);
  const options = h ? { DPoP: client.getDPoPHandle(config, { privateKey: h.privateKey, publicKey: h.publicKey }) } : undefined;
  const t = await client.clientCredentialsGrant(config, {}, options);
  assert.equal(t.token_type.toLowerCase(), h ? 'dpop' : 'bearer');
  return t.access_token;
}

function deck(extra: string): string {
  return oidcDeck(env.echo.url, env.idp.issuer, `      display_errors: true\n${extra}`);
}

async function withGateway(extra: string, fn: (gw: TestGateway) => Promise<void>): Promise<void> {
  const gw = await startGateway({ config: deck(extra) });
  try {
    await fn(gw);
  } finally {
    await gw.close();
  }
}

type Echo = { headers: Record<string, string> };

/** The request is refused with 401, a DPoP challenge naming `error` and `algs`, and nothing upstream. */
async function refused(gw: TestGateway, headers: Record<string, string> | string[], error: string, reason: RegExp, path = '/api', method = 'GET'): Promise<Awaited<ReturnType<typeof request>>['headers']> {
  const before = env.echo.received.length;
  const r = await request(`${gw.proxyUrl}${path}`, { method: method as 'GET', headers });
  const body = (await r.body.json()) as { message: string; error_description?: string };
  assert.equal(r.statusCode, 401, JSON.stringify(body));
  assert.equal(body.message, 'Unauthorized');
  assert.match(body.error_description ?? '', reason);
  const challenge = String(r.headers['www-authenticate']);
  assert.match(challenge, /^DPoP realm="127\.0\.0\.1"/);
  assert.match(challenge, new RegExp(`error="${error}"`));
  assert.match(challenge, /algs="ES256 [^"]*RS256/);
  assert.equal(env.echo.received.length, before, 'nothing reached the upstream');
  return r.headers;
}

test('strict: a real DPoP client (openid-client) gets through with a fresh proof per request; the upstream sees a Bearer token and no DPoP header', async () => {
  await withGateway(`      auth_methods: [bearer]
      proof_of_possession_dpop: strict`, async (gw) => {
    const h = await holder();
    const token = await accessToken(h);
    const config = await idpConfig('service-client', 'service-secret');
    const handle = client.getDPoPHandle(config, { privateKey: h.privateKey, publicKey: h.publicKey });
    for (let i = 0; i < 3; i++) {
      const r = await client.fetchProtectedResource(config, token, new URL(`${gw.proxyUrl}/api?n=${i}`), 'GET', undefined, undefined, { DPoP: handle });
      assert.equal(r.status, 200);
      const e = (await r.json()) as Echo;
      assert.equal(e.headers.authorization, `Bearer ${token}`);
      assert.equal(e.headers.dpop, undefined);
    }
    // Each of those requests carried its own proof: a proof's jti is single-use.
    const seen = env.echo.received.slice(-3);
    assert.equal(seen.length, 3);
  });
});

test('strict: every defective proof is refused with invalid_dpop_proof (or invalid_token) and never reaches the upstream', async () => {
  await withGateway(`      auth_methods: [bearer]
      proof_of_possession_dpop: strict`, async (gw) => {
    const h = await holder();
    const token = await accessToken(h);
    const htu = `${gw.proxyUrl}/api`;
    const auth = { authorization: `DPoP ${token}` };
    const now = Math.floor(Date.now() / 1000);

    // Control: a good proof passes (also with a query string the proof's htu leaves out).
    const ok = await request(`${htu}?q=1`, { headers: { ...auth, dpop: await proof(h, { htu, token }) } });
    assert.equal(ok.statusCode, 200, await ok.body.text());

    await refused(gw, auth, 'invalid_dpop_proof', /DPoP proof missing/);
    const two = [await proof(h, { htu, token }), await proof(h, { htu, token })];
    await refused(gw, ['authorization', `DPoP ${token}`, 'dpop', two[0], 'dpop', two[1]], 'invalid_dpop_proof', /more than one DPoP proof/);
    await refused(gw, { ...auth, dpop: await proof(h, { htu, token, htm: 'POST' }) }, 'invalid_dpop_proof', /htm/);
    await refused(gw, { ...auth, dpop: await proof(h, { htu: `${gw.proxyUrl}/other`, token }) }, 'invalid_dpop_proof', /htu/);
    await refused(gw, { ...auth, dpop: await proof(h, { htu: htu.replace('http:', 'https:'), token }) }, 'invalid_dpop_proof', /htu/);
    await refused(gw, { ...auth, dpop: await proof(h, { htu, token, iat: now - 301 }) }, 'invalid_dpop_proof', /too old/);
    await refused(gw, { ...auth, dpop: await proof(h, { htu, token, iat: now + 60 }) }, 'invalid_dpop_proof', /future/);
    await refused(gw, { ...auth, dpop: await proof(h, { htu, token: 'another-token' }) }, 'invalid_dpop_proof', /ath/);
    await refused(gw, { ...auth, dpop: await proof(h, { htu, token: null }) }, 'invalid_dpop_proof', /ath/);
    await refused(gw, { ...auth, dpop: await proof(h, { htu, token, typ: 'JWT' }) }, 'invalid_dpop_proof', /typ/);
    // Signed by a key other than the one the token is bound to (cnf.jkt).
    const other = await holder();
    await refused(gw, { ...auth, dpop: await proof(other, { htu, token }) }, 'invalid_dpop_proof', /cnf\.jkt/);
    // A private key in the header.
    const privateJwk = await exportJWK(h.privateKey);
    await refused(gw, { ...auth, dpop: await proof(h, { htu, token, header: { jwk: privateJwk } }) }, 'invalid_dpop_proof', /public key/);
    // RSA works like EC (another asymmetric alg), but only when signed by the bound key.
    const rsa = await holder('PS256');
    await refused(gw, { ...auth, dpop: await proof(rsa, { htu, token }) }, 'invalid_dpop_proof', /cnf\.jkt/);
    // alg none.
    const enc = (o: object) => base64url.encode(JSON.stringify(o));
    const none = `${enc({ alg: 'none', typ: 'dpop+jwt', jwk: h.jwk })}.${enc({ htm: 'GET', htu, iat: now, jti: randomUUID(), ath: ath(token) })}.`;
    await refused(gw, { ...auth, dpop: none }, 'invalid_dpop_proof', /alg/);
    // HS256, keyed by a secret carried in the header as an oct JWK.
    const secret = new TextEncoder().encode('0123456789abcdef0123456789abcdef');
    const hs = await new SignJWT({ htm: 'GET', htu, iat: now, jti: randomUUID(), ath: ath(token) })
      .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: base64url.encode(secret) } as JWK }).sign(secret);
    await refused(gw, { ...auth, dpop: hs }, 'invalid_dpop_proof', /alg/);
    // A tampered signature.
    const good = await proof(h, { htu, token });
    const tampered = `${good.slice(0, good.lastIndexOf('.') + 1)}${good.slice(good.lastIndexOf('.') + 1).split('').reverse().join('')}`;
    await refused(gw, { ...auth, dpop: tampered }, 'invalid_dpop_proof', /signature/);
    // A replayed proof (same worker): accepted once, then refused.
    const once = await proof(h, { htu, token });
    const first = await request(htu, { headers: { ...auth, dpop: once } });
    assert.equal(first.statusCode, 200, await first.body.text());
    await refused(gw, { ...auth, dpop: once }, 'invalid_dpop_proof', /already used/);
    // A DPoP-bound token sent with the Bearer scheme (a downgrade) is refused even with a good proof.
    await refused(gw, { authorization: `Bearer ${token}`, dpop: await proof(h, { htu, token }) }, 'invalid_token', /DPoP-bound/);
    // A token that is not DPoP-bound, with a good proof by any key: strict refuses it.
    const plain = await accessToken(null);
    await refused(gw, { authorization: `DPoP ${plain}`, dpop: await proof(h, { htu, token: plain }) }, 'invalid_token', /not DPoP-bound/);
    await refused(gw, { authorization: `Bearer ${plain}`, dpop: await proof(h, { htu, token: plain }) }, 'invalid_token', /not DPoP-bound/);
    // Each refusal above was counted (no token or proof in the metric, only the reason).
    const metrics = parseExposition(await (await fetch(`${gw.adminUrl}/metrics`)).text());
    assert.equal(metrics.value('portcullis_oidc_auth_failures_total', { reason: 'dpop_proof' }), 20);
  });
});

test('upstream: the DPoP scheme becomes Bearer even when the plugin writes no token header and hides nothing', async () => {
  await withGateway(`      auth_methods: [bearer]
      upstream_access_token_header: null
      hide_credentials: false
      proof_of_possession_dpop: strict`, async (gw) => {
    const htu = `${gw.proxyUrl}/api`;
    const h = await holder();
    const token = await accessToken(h);
    const r = await fetch(htu, { headers: { authorization: `DPoP ${token}`, dpop: await proof(h, { htu, token }) } });
    assert.equal(r.status, 200, await r.clone().text());
    const e = (await r.json()) as Echo;
    assert.equal(e.headers.authorization, `Bearer ${token}`);
    assert.equal(e.headers.dpop, undefined);
  });
});

test('tokens from a misbehaving IdP: cnf.jkt is read from the verified JWT; a malformed cnf binds nothing', async () => {
  const bad = await startBadIdp();
  const gw = await startGateway({ config: oidcDeck(env.echo.url, bad.issuer, `      display_errors: true
      auth_methods: [bearer]
      proof_of_possession_dpop: strict`) });
  try {
    const htu = `${gw.proxyUrl}/api`;
    const h = await holder();
    const jkt = await calculateJwkThumbprint(h.jwk, 'sha256');
    const bound = await bad.sign({ sub: 'alex', cnf: { jkt } });
    const ok = await fetch(htu, { headers: { authorization: `DPoP ${bound}`, dpop: await proof(h, { htu, token: bound }) } });
    assert.equal(ok.status, 200, await ok.clone().text());
    for (const cnf of [{ jkt: 42 }, ['jkt', jkt], { 'x5t#S256': jkt }, jkt]) {
      const token = await bad.sign({ sub: 'alex', cnf });
      await refused(gw, { authorization: `DPoP ${token}`, dpop: await proof(h, { htu, token }) }, 'invalid_token', /not DPoP-bound/);
    }
    // A forged token naming the client's key: its signature fails before any proof is looked at.
    const forged = await bad.sign({ sub: 'alex', cnf: { jkt } }, { key: 'other' });
    const r = await request(htu, { headers: { authorization: `DPoP ${forged}`, dpop: await proof(h, { htu, token: forged }) } });
    assert.equal(r.statusCode, 401);
    assert.match(String(r.headers['www-authenticate']), /^DPoP .*error="invalid_token"/);
    await r.body.dump();
  } finally {
    await gw.close();
    await bad.close();
  }
});

test('htu behind a trusted proxy: X-Forwarded-Proto/Host/Port name the URL the client used; from an untrusted peer they are ignored', async () => {
  const extra = `      auth_methods: [bearer]
      proof_of_possession_dpop: strict`;
  const h = await holder();
  const token = await accessToken(h);
  const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.example', 'x-forwarded-port': '8443' };
  const htu = 'https://api.example:8443/api';
  const trusted = await startGateway({ config: deck(extra), env: { PORTCULLIS_TRUSTED_IPS: '127.0.0.1' } });
  try {
    const r = await fetch(`${trusted.proxyUrl}/api`, { headers: { ...forwarded, authorization: `DPoP ${token}`, dpop: await proof(h, { htu, token }) } });
    assert.equal(r.status, 200, await r.clone().text());
  } finally {
    await trusted.close();
  }
  await withGateway(extra, async (gw) => {
    await refused(gw, { ...forwarded, authorization: `DPoP ${token}`, dpop: await proof(h, { htu, token }) }, 'invalid_dpop_proof', /htu/);
  });
});

test('strict: the 401 for a request without credentials challenges with the DPoP scheme', async () => {
  await withGateway(`      auth_methods: [bearer]
      proof_of_possession_dpop: strict`, async (gw) => {
    const r = await fetch(`${gw.proxyUrl}/api`);
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('www-authenticate'), `DPoP realm="127.0.0.1", algs="ES256 ES384 ES512 EdDSA Ed25519 PS256 PS384 PS512 RS256 RS384 RS512"`);
  });
});

test('optional: an unbound bearer token passes without a proof; a bound token needs a valid one', async () => {
  await withGateway(`      auth_methods: [bearer]
      proof_of_possession_dpop: optional`, async (gw) => {
    const htu = `${gw.proxyUrl}/api`;
    const plain = await accessToken(null);
    const r1 = await fetch(htu, { headers: { authorization: `Bearer ${plain}` } });
    assert.equal(r1.status, 200);
    // Sent with the DPoP scheme and a proof, the unbound token also passes, rewritten to Bearer upstream.
    const h = await holder();
    const r2 = await fetch(htu, { headers: { authorization: `DPoP ${plain}`, dpop: await proof(h, { htu, token: plain }) } });
    assert.equal(r2.status, 200);
    const e2 = (await r2.json()) as Echo;
    assert.equal(e2.headers.authorization, `Bearer ${plain}`);
    assert.equal(e2.headers.dpop, undefined);

    const bound = await accessToken(h);
    await refused(gw, { authorization: `DPoP ${bound}` }, 'invalid_dpop_proof', /missing/);
    await refused(gw, { authorization: `DPoP ${bound}`, dpop: await proof(await holder(), { htu, token: bound }) }, 'invalid_dpop_proof', /cnf\.jkt/);
    const ok = await fetch(htu, { headers: { authorization: `DPoP ${bound}`, dpop: await proof(h, { htu, token: bound }) } });
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as Echo).headers.authorization, `Bearer ${bound}`);

    // optional offers both schemes in its challenges (RFC 9449 §7.2).
    const none = await request(htu);
    await none.body.dump();
    assert.equal(none.statusCode, 401);
    assert.deepEqual(none.headers['www-authenticate'], ['Bearer realm="127.0.0.1"', 'DPoP realm="127.0.0.1", algs="ES256 ES384 ES512 EdDSA Ed25519 PS256 PS384 PS512 RS256 RS384 RS512"']);
  });
});

test('introspection: an opaque DPoP-bound token gets its cnf.jkt from the introspection response', async () => {
  await withGateway(`      client_id: [introspector]
      client_secret: [introspector-secret]
      auth_methods: [introspection]
      proof_of_possession_dpop: strict`, async (gw) => {
    const htu = `${gw.proxyUrl}/api`;
    const h = await holder();
    // kong-basic gets opaque access tokens.
    const token = await accessToken(h, 'kong-basic', 'kong-basic-secret');
    assert.equal(token.split('.').length, 1);
    const ok = await fetch(htu, { headers: { authorization: `DPoP ${token}`, dpop: await proof(h, { htu, token }) } });
    assert.equal(ok.status, 200, await ok.clone().text());
    await refused(gw, { authorization: `DPoP ${token}`, dpop: await proof(await holder(), { htu, token }) }, 'invalid_dpop_proof', /cnf\.jkt/);
  });
});

test('session: a session started by a DPoP-bound bearer token needs a proof for that token on every request', async () => {
  await withGateway(`      auth_methods: [bearer, session]
      session_secret: dpop-session-test-secret-0123456789
      unauthorized_destroy_session: false
      proof_of_possession_dpop: strict`, async (gw) => {
    const htu = `${gw.proxyUrl}/api`;
    const h = await holder();
    const token = await accessToken(h);
    const first = await fetch(htu, { headers: { authorization: `DPoP ${token}`, dpop: await proof(h, { htu, token }) } });
    assert.equal(first.status, 200, await first.clone().text());
    const cookie = first.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    assert.match(cookie, /session=/);
    // The cookie alone is not enough: the session's token is DPoP-bound.
    await refused(gw, { cookie }, 'invalid_dpop_proof', /missing/);
    await refused(gw, { cookie, dpop: await proof(await holder(), { htu, token }) }, 'invalid_dpop_proof', /cnf\.jkt/);
    const ok = await fetch(htu, { headers: { cookie, dpop: await proof(h, { htu, token }) } });
    assert.equal(ok.status, 200, await ok.clone().text());
    assert.equal(((await ok.json()) as Echo).headers.authorization, `Bearer ${token}`);
    // (With Kong's default unauthorized_destroy_session, a refused request ends the session.)
  });
});

test('proof_of_possession_auth_methods_validation false: a method DPoP does not apply to (password) is not checked, bearer still is', async () => {
  await withGateway(`      client_id: [kong]
      client_secret: [kong-secret]
      auth_methods: [password, bearer]
      proof_of_possession_auth_methods_validation: false
      proof_of_possession_dpop: strict`, async (gw) => {
    const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}` } });
    assert.equal(r.status, 200, await r.clone().text());
    const plain = await accessToken(null);
    await refused(gw, { authorization: `Bearer ${plain}` }, 'invalid_dpop_proof', /missing/);
  });
});

test('dpop_use_nonce: the server nonce is demanded, issued, accepted, rotated on success and refused once older than dpop_proof_lifetime', async () => {
  await withGateway(`      auth_methods: [bearer]
      proof_of_possession_dpop: strict
      dpop_use_nonce: true
      dpop_proof_lifetime: 3`, async (gw) => {
    const h = await holder();
    const token = await accessToken(h);
    const htu = `${gw.proxyUrl}/api`;
    const auth = { authorization: `DPoP ${token}` };

    // A real client follows the challenge by itself (openid-client retries once with the nonce).
    const config = await idpConfig('service-client', 'service-secret');
    const handle = client.getDPoPHandle(config, { privateKey: h.privateKey, publicKey: h.publicKey });
    const before = env.echo.received.length;
    const real = await client.fetchProtectedResource(config, token, new URL(htu), 'GET', undefined, undefined, { DPoP: handle });
    assert.equal(real.status, 200);
    assert.equal(env.echo.received.length, before + 1);

    // Without a nonce: use_dpop_nonce and a DPoP-Nonce to use.
    const first = await refused(gw, { ...auth, dpop: await proof(h, { htu, token }) }, 'use_dpop_nonce', /no nonce/);
    const n1 = String(first['dpop-nonce']);
    assert.ok(n1.length > 20);
    await refused(gw, { ...auth, dpop: await proof(h, { htu, token, nonce: 'made-up' }) }, 'use_dpop_nonce', /not issued here/);
    const ok = await request(htu, { headers: { ...auth, dpop: await proof(h, { htu, token, nonce: n1 }) } });
    assert.equal(ok.statusCode, 200, await ok.body.text());

    // Older than a fifth of the lifetime (at least 1 s): the success carries a newer nonce.
    await new Promise((r) => setTimeout(r, 1300));
    const later = await request(htu, { headers: { ...auth, dpop: await proof(h, { htu, token, nonce: n1 }) } });
    assert.equal(later.statusCode, 200, await later.body.text());
    const n2 = String(later.headers['dpop-nonce']);
    assert.ok(n2.length > 20 && n2 !== n1, 'a rotated nonce');

    // Older than dpop_proof_lifetime: refused with a fresh nonce, which then works.
    await new Promise((r) => setTimeout(r, 2000));
    const stale = await refused(gw, { ...auth, dpop: await proof(h, { htu, token, nonce: n1 }) }, 'use_dpop_nonce', /expired/);
    const metrics = parseExposition(await (await fetch(`${gw.adminUrl}/metrics`)).text());
    assert.ok(metrics.value('portcullis_oidc_auth_failures_total', { reason: 'dpop_nonce' }) >= 3);
    const n3 = String(stale['dpop-nonce']);
    assert.notEqual(n3, n1);
    const again = await request(htu, { headers: { ...auth, dpop: await proof(h, { htu, token, nonce: n3 }) } });
    assert.equal(again.statusCode, 200, await again.body.text());
  });
});

test('the DPoP scheme is not taken while proof_of_possession_dpop is off', async () => {
  await withGateway(`      auth_methods: [bearer]`, async (gw) => {
    const h = await holder();
    const token = await accessToken(h);
    const htu = `${gw.proxyUrl}/api`;
    const r = await fetch(htu, { headers: { authorization: `DPoP ${token}`, dpop: await proof(h, { htu, token }) } });
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer /);
  });
});

/** One GET on a new connection (so a multi-worker gateway may hand it to any worker), with a chosen Host. */
function fresh(url: string, headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The worker that answered: correlation-id's `tracker` ids carry the process id (host-port-pid-...). */
const pidOf = (r: { headers: http.IncomingHttpHeaders }) => String(r.headers['kong-request-id']).split('-')[2];

/** The clients' view of the API: one public host in front of every worker and node. */
const publicHost = 'api.test';
const publicUrl = `http://${publicHost}/api`;

test('two workers: a nonce issued by one worker is accepted by the other, and a proof used on one worker is refused on the other', async () => {
  const config = deck(`      auth_methods: [bearer]
      proof_of_possession_dpop: strict
      dpop_use_nonce: true
  - name: correlation-id
    config:
      generator: tracker
      echo_downstream: true`);
  const gp = await startGatewayProcess({ config, workers: 2, startTimeoutMs: 120_000 });
  try {
    const h = await holder();
    const token = await accessToken(h);
    const send = async (dpop?: string) => fresh(`${gp.proxyUrl}/api`, { host: publicHost, authorization: `DPoP ${token}`, ...(dpop ? { dpop } : {}) });

    const challenge = await send(await proof(h, { htu: publicUrl, token }));
    assert.equal(challenge.status, 401);
    assert.match(String(challenge.headers['www-authenticate']), /error="use_dpop_nonce"/);
    const nonce = String(challenge.headers['dpop-nonce']);
    const issuer = pidOf(challenge);

    // Fresh proofs with that nonce, on new connections, until both workers have accepted one.
    const accepted = new Set<string>();
    for (let i = 0; i < 60 && accepted.size < 2; i++) {
      const r = await send(await proof(h, { htu: publicUrl, token, nonce }));
      assert.equal(r.status, 200, r.body);
      accepted.add(pidOf(r));
    }
    assert.equal(accepted.size, 2, 'both workers answered');
    assert.ok(accepted.has(issuer));

    // One proof, used once: every later use is refused, on whichever worker it lands.
    const once = await proof(h, { htu: publicUrl, token, nonce });
    const first = await send(once);
    assert.equal(first.status, 200, first.body);
    const refusedBy = new Set<string>();
    for (let i = 0; i < 60 && !(refusedBy.size === 2); i++) {
      const r = await send(once);
      assert.equal(r.status, 401, r.body);
      assert.match(r.body, /jti already used/);
      refusedBy.add(pidOf(r));
    }
    assert.ok([...refusedBy].some((pid) => pid !== pidOf(first)), 'the replay was refused by the worker that had not seen the proof');
  } finally {
    await gp.stop();
  }
});

test('two nodes sharing Redis: a nonce issued by one node is accepted by the other, and a proof used on one node is refused on the other', async () => {
  const prefix = `portcullis-dpop-test-${randomUUID()}`;
  const extra = `      auth_methods: [bearer]
      proof_of_possession_dpop: strict
      dpop_use_nonce: true
      redis:
        host: 127.0.0.1
        port: 6379
        prefix: ${prefix}`;
  const a = await startGateway({ config: deck(extra) });
  const b = await startGateway({ config: deck(extra) });
  const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });
  try {
    const h = await holder();
    const token = await accessToken(h);
    const send = async (gw: TestGateway, dpop: string) => fresh(`${gw.proxyUrl}/api`, { host: publicHost, authorization: `DPoP ${token}`, dpop });

    const challenge = await send(a, await proof(h, { htu: publicUrl, token }));
    assert.equal(challenge.status, 401);
    const nonce = String(challenge.headers['dpop-nonce']);
    const atB = await send(b, await proof(h, { htu: publicUrl, token, nonce }));
    assert.equal(atB.status, 200, atB.body);

    const once = await proof(h, { htu: publicUrl, token, nonce });
    const first = await send(a, once);
    assert.equal(first.status, 200, first.body);
    const before = env.echo.received.length;
    const replay = await send(b, once);
    assert.equal(replay.status, 401, replay.body);
    assert.match(replay.body, /jti already used/);
    assert.equal(env.echo.received.length, before);
    // The replay cache and the nonce key are in that Redis.
    const keys = await redis.keys(`${prefix}:*`);
    assert.ok(keys.some((k) => k.includes('dpop-jti')) && keys.some((k) => k.includes('dpop-nonce-secret')), keys.join(' '));
  } finally {
    const keys = await redis.keys(`${prefix}:*`).catch(() => []);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    await a.close();
    await b.close();
  }
});

test('a replay cache that cannot be reached fails closed: 500, nothing upstream', async () => {
  const port = await freePort();
  await withGateway(`      auth_methods: [bearer]
      proof_of_possession_dpop: strict
      redis:
        host: 127.0.0.1
        port: ${port}
        connect_timeout: 200
        read_timeout: 200
        send_timeout: 200`, async (gw) => {
    const htu = `${gw.proxyUrl}/api`;
    const h = await holder();
    const token = await accessToken(h);
    const before = env.echo.received.length;
    const r = await fetch(htu, { headers: { authorization: `DPoP ${token}`, dpop: await proof(h, { htu, token }) } });
    assert.equal(r.status, 500);
    assert.equal(((await r.json()) as { message: string }).message, 'An unexpected error occurred');
    assert.equal(env.echo.received.length, before);
  });
});
