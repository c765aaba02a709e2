import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { IncomingView } from '../../../sdk.ts';
import { createMemoryKv } from '../../../../storage/kv.ts';
import { oidcConfigSchema } from '../schema.ts';
import { DpopState } from '../dpop-state.ts';
import { authError, toReply } from '../errors.ts';
import { accessTokenHash, boundKey, checkProof, htuMatches, requestUrl } from './dpop.ts';
import type { Outcome } from '../runtime.ts';

function view(o: { scheme?: 'http' | 'https'; headers?: Record<string, string>; path?: string; trusted?: boolean }): IncomingView {
  const headers = o.headers ?? {};
  return {
    method: 'GET', scheme: o.scheme ?? 'http', host: 'gw.test', port: 8000, path: o.path ?? '/api', rawQuery: '', headers,
    header: (n: string) => headers[n.toLowerCase()], trusted: o.trusted ?? false,
  } as unknown as IncomingView;
}

test('htu: scheme, host, port and path must match after URL normalization; query and fragment do not count', () => {
  const url = new URL('https://api.example:8443/a/b');
  assert.ok(htuMatches('https://API.example:8443/a/b?x=1#f', url));
  assert.ok(htuMatches('https://api.example:8443/a/./b', url));
  assert.ok(!htuMatches('http://api.example:8443/a/b', url));
  assert.ok(!htuMatches('https://api.example/a/b', url));
  assert.ok(!htuMatches('https://api.example:8443/a/c', url));
  assert.ok(!htuMatches('not a url', url));
  assert.ok(htuMatches('https://api.example/x', new URL('https://api.example:443/x')), 'default port');
});

test('the request URL is the Host the client used; X-Forwarded-Host/Port count only from a trusted peer', () => {
  assert.equal(requestUrl(view({ headers: { host: 'gw.test:8000' } }))?.href, 'http://gw.test:8000/api');
  const forwarded = { host: 'internal:8000', 'x-forwarded-host': 'api.example', 'x-forwarded-port': '8443' };
  assert.equal(requestUrl(view({ scheme: 'https', headers: forwarded, trusted: true }))?.href, 'https://api.example:8443/api');
  assert.equal(requestUrl(view({ scheme: 'https', headers: forwarded, trusted: false }))?.href, 'https://internal:8000/api');
  assert.equal(requestUrl(view({ headers: { host: 'a b' } })), null);
});

test('boundKey reads cnf.jkt from introspection first, then the JWT claims', () => {
  const o = (introspection: unknown, accessClaims: unknown) => ({ introspection, accessClaims } as unknown as Outcome);
  assert.equal(boundKey(o({ cnf: { jkt: 'A' } }, { cnf: { jkt: 'B' } })), 'A');
  assert.equal(boundKey(o(null, { cnf: { jkt: 'B' } })), 'B');
  assert.equal(boundKey(o(null, { cnf: { 'x5t#S256': 'C' } })), null);
  assert.equal(boundKey(o(null, null)), null);
});

test('checkProof: a good proof yields the RFC 7638 thumbprint of its key; each defect is named', async () => {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  const url = new URL('http://gw.test:8000/api');
  const sign = (claims: Record<string, unknown>, header: Record<string, unknown> = {}) =>
    new SignJWT({ htm: 'GET', htu: url.href, iat: 1, jti: randomUUID(), ath: accessTokenHash('tok'), ...claims }).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk, ...header }).sign(privateKey);
  const ok = await checkProof(await sign({ nonce: 'n' }), 'GET', url, 'tok', null);
  assert.equal(ok.jkt, await calculateJwkThumbprint(jwk, 'sha256'));
  assert.equal(ok.nonce, 'n');
  const reason = async (p: Promise<string>, method = 'GET') => {
    const err = await checkProof(await p, method, url, 'tok', null).then(() => null, (e: Error) => e);
    assert.ok(err, 'refused');
    return err.message;
  };
  assert.match(await reason(sign({ jti: undefined })), /jti/);
  assert.match(await reason(sign({}), 'POST'), /htm/);
  assert.match(await reason(sign({ iat: 'yesterday' })), /iat/);
  assert.match(await reason(sign({ ath: undefined })), /ath/);
  assert.match(await reason(sign({}, { typ: 'JWT' })), /typ/);
  assert.match(await reason(sign({}, { jwk: undefined })), /jwk/);
  assert.match(await reason(sign({}, { jwk: await exportJWK(privateKey) })), /public key/);
  assert.match(await reason(Promise.resolve('garbage')), /not a JWT/);
  // A malformed or mislabelled key is the client's bad proof (401), never a 500.
  assert.match(await reason(sign({}, { jwk: { kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA' } })), /invalid/);
  assert.match(await reason(sign({}, { jwk: { ...jwk, use: 'enc' } })), /invalid/);
  assert.match(await reason(sign({}, { jwk: { ...jwk, alg: 'ES384' } })), /invalid/);
  // The key is remembered per JWK: a second proof by the same key checks the same way.
  assert.equal((await checkProof(await sign({}), 'GET', url, 'tok', null)).jkt, ok.jkt);
});

test('DpopState: a jti is accepted once per key; nonces made by one instance verify on another sharing the store', async () => {
  const kv = createMemoryKv();
  let now = 1_000_000;
  const make = () => new DpopState({ lifetimeSec: 10, leewaySec: 0, sessionSecret: null, redis: null, sharedKv: kv, instanceId: 'p1', workers: 2, database: 'off', now: () => now });
  const a = make();
  const b = make();
  assert.equal(await a.replayed('k1', 'j1'), false);
  assert.equal(await b.replayed('k1', 'j1'), true);
  assert.equal(await b.replayed('k2', 'j1'), false, 'another key may use the same jti');
  const n = await a.nonce();
  assert.equal(await b.nonceIssuedAt(n), now);
  assert.equal(await a.nonce(), n, 'the current nonce is reused until it is due for rotation');
  now += 2000;
  assert.notEqual(await a.nonce(), n);
  assert.equal(await b.nonceIssuedAt('x.y.z'), null);
  // Another plugin instance (another generated secret) does not accept it.
  const other = new DpopState({ lifetimeSec: 10, leewaySec: 0, sessionSecret: null, redis: null, sharedKv: kv, instanceId: 'p2', workers: 2, database: 'off', now: () => now });
  assert.equal(await other.nonceIssuedAt(n), null);
  // With session_secret the key is derived from it: the same on nodes that share no store.
  const s1 = new DpopState({ lifetimeSec: 10, leewaySec: 0, sessionSecret: 'shared', redis: null, sharedKv: createMemoryKv(), instanceId: 'p1', workers: 2, database: 'off', now: () => now });
  const s2 = new DpopState({ lifetimeSec: 10, leewaySec: 0, sessionSecret: 'shared', redis: null, sharedKv: createMemoryKv(), instanceId: 'p1', workers: 2, database: 'off', now: () => now });
  assert.equal(await s2.nonceIssuedAt(await s1.nonce()), now);
  // A single DB-less process keeps its jti in its own memory, never in the shared store.
  const clock = () => now;
  const single = new DpopState({ lifetimeSec: 10, leewaySec: 0, sessionSecret: 'x', redis: null, sharedKv: kv, instanceId: 'p3', workers: 1, database: 'off', now: clock });
  assert.equal(await single.replayed('k9', 'j9'), false);
  assert.equal(await single.replayed('k9', 'j9'), true);
  assert.equal(await make().replayed('k9', 'j9'), false);
  // It is the process's: a rebuilt plugin (a reload) still knows the proofs already used.
  const rebuilt = new DpopState({ lifetimeSec: 10, leewaySec: 0, sessionSecret: 'x', redis: null, sharedKv: kv, instanceId: 'p3', workers: 1, database: 'off', now: clock });
  assert.equal(await rebuilt.replayed('k9', 'j9'), true);
  // The window ends: the same jti is new again (its proof would be too old by then anyway).
  now += 11_001;
  assert.equal(await single.replayed('k9', 'j9'), false);
});

test('proof_of_possession_auth_methods_validation: with DPoP on, only bearer, introspection and session may be enabled', () => {
  const issues = (input: Record<string, unknown>) => {
    const r = oidcConfigSchema.safeParse({ issuer: 'https://i/', ...input });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  assert.deepEqual(issues({ proof_of_possession_dpop: 'strict', auth_methods: ['bearer', 'introspection', 'session'] }), []);
  const bad = issues({ proof_of_possession_dpop: 'optional' });
  assert.deepEqual(bad.map((i) => i.split(':')[0]), ['auth_methods.0', 'auth_methods.1', 'auth_methods.2', 'auth_methods.5', 'auth_methods.6', 'auth_methods.7']);
  assert.match(bad[0], /password cannot be used with proof_of_possession_dpop/);
  assert.deepEqual(issues({ proof_of_possession_dpop: 'strict', proof_of_possession_auth_methods_validation: false }), []);
  assert.deepEqual(issues({ proof_of_possession_dpop: 'off', dpop_use_nonce: true, dpop_proof_lifetime: 60 }), []);
});

test('DPoP replies: challenge scheme per mode, algs, the nonce header, and which error codes expose_error_code hides', () => {
  const base = { unauthorizedMessage: 'Unauthorized', forbiddenMessage: 'Forbidden', exposeErrorCode: true, displayErrors: false, realm: 'gw' };
  const strict = { ...base, dpop: { mode: 'strict' as const, algs: 'ES256 RS256' } };
  const optional = { ...base, dpop: { mode: 'optional' as const, algs: 'ES256 RS256' } };
  const proofErr = authError('invalid_dpop_proof', 'bad', undefined, { 'dpop-nonce': 'N1' });
  let r = toReply(proofErr, strict);
  assert.equal(r.status, 401);
  assert.equal(r.headers['www-authenticate'], 'DPoP realm="gw", error="invalid_dpop_proof", algs="ES256 RS256"');
  assert.equal(r.headers['dpop-nonce'], 'N1');
  // optional: DPoP errors use the DPoP scheme; other failures offer both schemes.
  assert.equal(toReply(proofErr, optional).headers['www-authenticate'], 'DPoP realm="gw", error="invalid_dpop_proof", algs="ES256 RS256"');
  assert.deepEqual(toReply(authError('invalid_token', 'x'), optional).headers['www-authenticate'], ['Bearer realm="gw", error="invalid_token"', 'DPoP realm="gw", algs="ES256 RS256"']);
  assert.equal(toReply(authError('invalid_token', 'x'), strict).headers['www-authenticate'], 'DPoP realm="gw", error="invalid_token", algs="ES256 RS256"');
  // expose_error_code false hides invalid_dpop_proof but never use_dpop_nonce (the client must learn to add one).
  r = toReply(proofErr, { ...strict, exposeErrorCode: false });
  assert.equal(r.headers['www-authenticate'], 'DPoP realm="gw", algs="ES256 RS256"');
  r = toReply(authError('use_dpop_nonce', 'need one', undefined, { 'dpop-nonce': 'N2' }), { ...strict, exposeErrorCode: false });
  assert.equal(r.headers['www-authenticate'], 'DPoP realm="gw", error="use_dpop_nonce", algs="ES256 RS256"');
  // Without DPoP, replies are as before.
  assert.equal(toReply(authError('invalid_token', 'x'), base).headers['www-authenticate'], 'Bearer realm="gw", error="invalid_token"');
});
