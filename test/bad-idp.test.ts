/**
 * The misbehaving test IdP (test/helpers/bad-idp.ts): each helper produces what it promises,
 * checked with the same libraries the gateway uses (jose, openid-client).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { startBadIdp } from './helpers/bad-idp.ts';
import type { BadIdp } from './helpers/bad-idp.ts';
import { startIdp } from '../demo/idp.ts';

const signal = () => AbortSignal.timeout(5000);

async function getJson(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { signal: signal() });
  return { status: res.status, text: await res.text() };
}

describe('bad IdP', () => {
  let idp: BadIdp;
  before(async () => { idp = await startBadIdp(); });
  after(() => idp.close());

  it('has a discovery document openid-client accepts', async () => {
    const config = await oidc.discovery(new URL(idp.issuer), 'rp', 'secret', undefined, {
      execute: [oidc.allowInsecureRequests], timeout: 5,
    });
    const meta = config.serverMetadata();
    assert.equal(meta.issuer, idp.issuer);
    assert.equal(meta.jwks_uri, `${idp.issuer}/jwks`);
    assert.equal(meta.introspection_endpoint, `${idp.issuer}/introspect`);
    assert.equal(idp.counts().discovery, 1);
  });

  it('sign() makes tokens that verify against its JWKS; other key and missing kid do not', async () => {
    const jwks = createRemoteJWKSet(new URL(`${idp.issuer}/jwks`));
    const good = await idp.sign({ sub: 'alex', aud: 'api' });
    const { payload, protectedHeader } = await jwtVerify(good, jwks, { issuer: idp.issuer, audience: 'api' });
    assert.equal(payload.sub, 'alex');
    assert.equal(protectedHeader.kid, idp.currentKid());
    assert.ok(typeof payload.exp === 'number' && payload.exp > Date.now() / 1000);

    const es = await idp.sign({ sub: 'alex' }, { alg: 'ES256' });
    assert.equal((await jwtVerify(es, jwks)).protectedHeader.alg, 'ES256');

    const forged = await idp.sign({ sub: 'alex' }, { key: 'other' });
    assert.equal(decodeProtectedHeader(forged).kid, idp.currentKid(), 'claims to be the current key');
    await assert.rejects(jwtVerify(forged, jwks), joseErrors.JWSSignatureVerificationFailed);

    const noKid = await idp.sign({ sub: 'alex' }, { kid: null });
    assert.equal(decodeProtectedHeader(noKid).kid, undefined);

    const expired = await idp.sign({ sub: 'alex', exp: Math.floor(Date.now() / 1000) - 60 });
    await assert.rejects(jwtVerify(expired, jwks), joseErrors.JWTExpired);

    const noExp = await idp.sign({ sub: 'alex', exp: undefined }, { header: { typ: 'at+jwt' } });
    const decoded = await jwtVerify(noExp, jwks);
    assert.equal(decoded.payload.exp, undefined);
    assert.equal(decoded.protectedHeader.typ, 'at+jwt');
  });

  it('unsigned() is an alg none token that jose rejects', async () => {
    const token = idp.unsigned({ sub: 'alex' });
    assert.equal(decodeProtectedHeader(token).alg, 'none');
    assert.ok(token.endsWith('.'));
    const jwks = createLocalJWKSet(idp.jwks());
    await assert.rejects(jwtVerify(token, jwks), joseErrors.JOSENotSupported);
    // Even when a caller forgets to restrict algorithms, jose never accepts "none" with a key.
    const key = createLocalJWKSet(idp.jwks());
    await assert.rejects(jwtVerify(token, key, { algorithms: ['none'] }), joseErrors.JOSEError);
  });

  it('hs256WithPublicKey() is HMAC-signed with the public key PEM and is refused by a JWKS verifier', async () => {
    const token = idp.hs256WithPublicKey({ sub: 'admin' });
    const header = decodeProtectedHeader(token);
    assert.equal(header.alg, 'HS256');
    assert.equal(header.kid, idp.currentKid());
    // The signature really is HMAC(public key PEM): a naive verifier would accept it.
    const { createHmac, createPublicKey } = await import('node:crypto');
    const rsaJwk = idp.jwks().keys.find((k) => k.kid === idp.currentKid());
    assert.ok(rsaJwk);
    const pem = createPublicKey({ key: rsaJwk as import('node:crypto').JsonWebKey, format: 'jwk' })
      .export({ type: 'spki', format: 'pem' });
    const [h, p, s] = token.split('.');
    assert.equal(createHmac('sha256', pem).update(`${h}.${p}`).digest('base64url'), s);
    await assert.rejects(jwtVerify(token, createLocalJWKSet(idp.jwks())));
  });

  it('rotateKeys() publishes a new kid; old tokens fail unless the old key is kept', async () => {
    const before = idp.currentKid();
    const oldToken = await idp.sign({ sub: 'alex' });
    await idp.rotateKeys();
    assert.notEqual(idp.currentKid(), before);
    const kids = idp.jwks().keys.map((k) => k.kid);
    assert.ok(kids.includes(idp.currentKid()));
    assert.ok(!kids.includes(before));
    await assert.rejects(jwtVerify(oldToken, createLocalJWKSet(idp.jwks())), joseErrors.JWKSNoMatchingKey);
    const signedWithOld = await idp.sign({ sub: 'alex' }, { key: 'old' });
    assert.equal(decodeProtectedHeader(signedWithOld).kid, before);

    await idp.rotateKeys({ keepOld: true });
    const served = idp.jwks().keys.map((k) => k.kid);
    assert.equal(served.length, 4, 'current RSA+EC and previous RSA+EC');
    await jwtVerify(await idp.sign({ sub: 'alex' }, { key: 'old' }), createLocalJWKSet(idp.jwks()));
  });

  it('JWKS and discovery failure modes', async () => {
    idp.setJwksFailure('http500');
    assert.equal((await getJson(`${idp.issuer}/jwks`)).status, 500);
    idp.setJwksFailure('garbage');
    const garbage = await getJson(`${idp.issuer}/jwks`);
    assert.equal(garbage.status, 200);
    assert.throws(() => JSON.parse(garbage.text));
    idp.setJwksFailure('hang');
    await assert.rejects(fetch(`${idp.issuer}/jwks`, { signal: AbortSignal.timeout(200) }), { name: 'TimeoutError' });
    idp.setJwksFailure(null);
    assert.equal((await getJson(`${idp.issuer}/jwks`)).status, 200);

    idp.setDiscoveryFailure('wrong-issuer');
    await assert.rejects(oidc.discovery(new URL(idp.issuer), 'rp', 'secret', undefined, {
      execute: [oidc.allowInsecureRequests], timeout: 5,
    }));
    idp.setDiscoveryFailure('http500');
    assert.equal((await getJson(`${idp.issuer}/.well-known/openid-configuration`)).status, 500);
    idp.setDiscoveryFailure(null);
    assert.equal(JSON.parse((await getJson(`${idp.issuer}/.well-known/openid-configuration`)).text).issuer, idp.issuer);
  });

  it('introspection, userinfo and token answers come from the test tables', async () => {
    idp.setIntrospection('tok-1', { active: true, sub: 'alex', scope: 'openid' });
    const post = (path: string, body: Record<string, string>) => fetch(`${idp.issuer}${path}`, {
      method: 'POST', body: new URLSearchParams(body), signal: signal(),
    });
    assert.deepEqual(await (await post('/introspect', { token: 'tok-1' })).json(), { active: true, sub: 'alex', scope: 'openid' });
    assert.deepEqual(await (await post('/introspect', { token: 'unknown' })).json(), { active: false });

    idp.setUserinfo('tok-1', { sub: 'alex', email: 'a@example.com' });
    const ui = await fetch(`${idp.issuer}/userinfo`, { headers: { authorization: 'Bearer tok-1' }, signal: signal() });
    assert.deepEqual(await ui.json(), { sub: 'alex', email: 'a@example.com' });
    const denied = await fetch(`${idp.issuer}/userinfo`, { headers: { authorization: 'Bearer nope' }, signal: signal() });
    assert.equal(denied.status, 401);
    await denied.arrayBuffer();

    const noConfig = await post('/token', { grant_type: 'password' });
    assert.equal(noConfig.status, 400);
    await noConfig.arrayBuffer();
    idp.setTokenResponse({ access_token: 'x', token_type: 'Bearer' });
    assert.equal((await (await post('/token', { grant_type: 'password' })).json() as { access_token: string }).access_token, 'x');
    idp.setTokenResponse((params) => ({ status: 401, body: { error: 'invalid_client', got: params.get('grant_type') } }));
    const fn = await post('/token', { grant_type: 'client_credentials' });
    assert.equal(fn.status, 401);
    assert.deepEqual(await fn.json(), { error: 'invalid_client', got: 'client_credentials' });

    const counts = idp.counts();
    assert.equal(counts.introspection, 2);
    assert.equal(counts.userinfo, 2);
    assert.equal(counts.token, 3);
    const last = idp.requests().at(-1);
    assert.equal(last?.endpoint, 'token');
    assert.equal(last?.body, 'grant_type=client_credentials');
  });
});

describe('demo IdP with openid-client', () => {
  it('discovery() accepts the demo IdP and a password-less client_credentials grant works', async () => {
    const idp = await startIdp();
    try {
      const config = await oidc.discovery(new URL(idp.issuer), 'service-client', 'service-secret', undefined, {
        execute: [oidc.allowInsecureRequests], timeout: 5,
      });
      assert.equal(config.serverMetadata().issuer, idp.issuer);
      const tokens = await oidc.clientCredentialsGrant(config, { audience: 'inventory' });
      const { payload } = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(`${idp.issuer}/jwks`)), {
        issuer: idp.issuer, audience: 'inventory',
      });
      assert.equal(payload.client_id, 'service-client');
    } finally {
      await idp.close();
    }
  });
});
