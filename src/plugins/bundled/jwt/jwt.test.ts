import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import plugin, { jwtSchema } from './index.ts';
import { makeConsumer, makeCtx, makeDeps, type FakeRequest } from '../../../../test/helpers/plugin-ctx.ts';
import type { Reply } from '../../sdk.ts';
import type { JwtSecret } from '../../../config/credentials.ts';

const carol = makeConsumer('c-carol', 'carol');
const hs: JwtSecret = { id: 'j-1', consumer: { id: carol.id }, key: 'carol-key', secret: 'a-long-shared-secret-for-hmac-256', rsa_public_key: null, algorithm: 'HS256', tags: null, created_at: 0 };
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = generateKeyPairSync('ed25519');
const pem = (k: typeof rsa.publicKey) => k.export({ type: 'spki', format: 'pem' }).toString();
const rs: JwtSecret = { ...hs, id: 'j-2', key: 'rsa-key', algorithm: 'RS256', rsa_public_key: pem(rsa.publicKey) };
const es: JwtSecret = { ...hs, id: 'j-3', key: 'ec-key', algorithm: 'ES256', rsa_public_key: pem(ec.publicKey) };
const eddsa: JwtSecret = { ...hs, id: 'j-4', key: 'ed-key', algorithm: 'EdDSA', rsa_public_key: pem(ed.publicKey) };
const now = Math.floor(Date.now() / 1000);

const hsToken = (claims: Record<string, unknown>, secret = hs.secret, alg = 'HS256') =>
  new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).sign(new TextEncoder().encode(secret));

async function run(config: unknown, req: FakeRequest) {
  const h = await plugin.create(jwtSchema.parse(config), makeDeps('jwt'));
  const ctx = makeCtx({ consumers: [carol], jwtSecrets: [hs, rs, es, eddsa], ...req });
  const reply = (await h.access!(ctx)) as Reply | undefined;
  return { ctx, reply, h };
}
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

test('schema: Kong defaults; maximum_expiration needs exp in a claims_to_verify that is set; priority 1450', () => {
  const c = jwtSchema.parse({});
  assert.deepEqual(c.uri_param_names, ['jwt']);
  assert.deepEqual(c.cookie_names, []);
  assert.deepEqual(c.header_names, ['authorization']);
  assert.equal(c.key_claim_name, 'iss');
  assert.equal(c.secret_is_base64, false);
  assert.equal(c.maximum_expiration, 0);
  assert.equal(c.claims_to_verify, null);
  assert.equal(jwtSchema.safeParse({ maximum_expiration: 60 }).success, true, 'Kong: an unset claims_to_verify passes the conditional');
  assert.equal(jwtSchema.safeParse({ maximum_expiration: 60, claims_to_verify: ['nbf'] }).success, false);
  assert.equal(jwtSchema.safeParse({ maximum_expiration: 60, claims_to_verify: ['exp'] }).success, true);
  assert.equal(jwtSchema.safeParse({ claims_to_verify: ['iat'] }).success, false);
  assert.equal(jwtSchema.safeParse({ maximum_expiration: 31536001, claims_to_verify: ['exp'] }).success, false);
  assert.equal(plugin.priority, 1450);
});

test('HS256 from the Authorization header; identifier is the credential key', async () => {
  const { ctx, reply } = await run({}, { headers: bearer(await hsToken({ iss: 'carol-key' })) });
  assert.equal(reply, undefined);
  assert.equal(ctx.consumer?.id, 'c-carol');
  assert.equal(ctx.upstreamHeaders.get('x-credential-identifier'), 'carol-key');
});

test('RS256, ES256 and EdDSA verify against the credential PEM', async () => {
  const sign = (alg: string, key: unknown, iss: string) => new SignJWT({ iss }).setProtectedHeader({ alg }).sign(key as Parameters<SignJWT['sign']>[0]);
  for (const [alg, key, iss] of [['RS256', rsa.privateKey, 'rsa-key'], ['ES256', ec.privateKey, 'ec-key'], ['EdDSA', ed.privateKey, 'ed-key']] as const) {
    const { reply, ctx } = await run({}, { headers: bearer(await sign(alg, key, iss)) });
    assert.equal(reply, undefined, alg);
    assert.equal(ctx.upstreamHeaders.get('x-credential-identifier'), iss);
  }
  // Signed by another RSA key → Invalid signature.
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const bad = await run({}, { headers: bearer(await sign('RS256', other.privateKey, 'rsa-key')) });
  assert.deepEqual(bad.reply?.body, { message: 'Invalid signature' });
});

test('Kong messages: no token, multiple tokens, bad token, missing/empty claim, unknown key, wrong alg, bad signature', async () => {
  const good = await hsToken({ iss: 'carol-key' });
  const none = await run({ realm: 'r' }, {});
  assert.deepEqual(none.reply?.body, { message: 'Unauthorized' });
  assert.equal(none.reply?.headers?.['www-authenticate'], 'Bearer realm="r"');
  const multi = await run({}, { headers: bearer(good), rawQuery: `jwt=${await hsToken({ iss: 'carol-key', x: 1 })}` });
  assert.deepEqual(multi.reply?.body, { message: 'Multiple tokens provided' });
  assert.equal(multi.reply?.headers?.['www-authenticate'], 'Bearer error="invalid_token"');
  const same = await run({}, { headers: bearer(good), rawQuery: `jwt=${good}` });
  assert.equal(same.reply, undefined, 'the same token twice counts once');
  assert.deepEqual((await run({}, { headers: bearer('not-a-jwt') })).reply?.body, { message: 'Bad token; invalid JSON' });
  assert.deepEqual((await run({}, { headers: bearer(await hsToken({ sub: 'x' })) })).reply?.body, { message: "No mandatory 'iss' in claims" });
  assert.deepEqual((await run({}, { headers: bearer(await hsToken({ iss: '' })) })).reply?.body, { message: "Invalid 'iss' in claims" });
  assert.deepEqual((await run({}, { headers: bearer(await hsToken({ iss: 'who' })) })).reply?.body, { message: "No credentials found for given 'iss'" });
  assert.deepEqual((await run({}, { headers: bearer(await hsToken({ iss: 'carol-key' }, hs.secret, 'HS384')) })).reply?.body, { message: 'Invalid algorithm' });
  assert.deepEqual((await run({}, { headers: bearer(await hsToken({ iss: 'carol-key' }, 'another-secret-another-secret-xx')) })).reply?.body, { message: 'Invalid signature' });
});

test('claims_to_verify exp/nbf and maximum_expiration bodies', async () => {
  const expired = await run({ claims_to_verify: ['exp'] }, { headers: bearer(await hsToken({ iss: 'carol-key', exp: now - 10 })) });
  assert.equal(expired.reply?.status, 401);
  assert.deepEqual(expired.reply?.body, { exp: 'token expired' });
  const early = await run({ claims_to_verify: ['nbf'] }, { headers: bearer(await hsToken({ iss: 'carol-key', nbf: now + 600 })) });
  assert.deepEqual(early.reply?.body, { nbf: 'token not valid yet' });
  const notNum = await run({ claims_to_verify: ['exp'] }, { headers: bearer(await hsToken({ iss: 'carol-key', exp: 'soon' })) });
  assert.deepEqual(notNum.reply?.body, { exp: 'must be a number' });
  const tooLong = await run({ claims_to_verify: ['exp'], maximum_expiration: 60 }, { headers: bearer(await hsToken({ iss: 'carol-key', exp: now + 3600 })) });
  assert.deepEqual(tooLong.reply?.body, { exp: 'exceeds maximum allowed expiration' });
  const ok = await run({ claims_to_verify: ['exp', 'nbf'], maximum_expiration: 3600 }, { headers: bearer(await hsToken({ iss: 'carol-key', exp: now + 60, nbf: now - 1 })) });
  assert.equal(ok.reply, undefined);
});

test('a cached token is still checked for expiry on every request', async () => {
  const token = await hsToken({ iss: 'carol-key', exp: now + 5 });
  const h = await plugin.create(jwtSchema.parse({ claims_to_verify: ['exp'] }), makeDeps('jwt'));
  const ctx1 = makeCtx({ consumers: [carol], jwtSecrets: [hs], headers: bearer(token) });
  assert.equal(await h.access!(ctx1), undefined);
  const ctx2 = makeCtx({ consumers: [carol], jwtSecrets: [hs], headers: bearer(token) });
  assert.equal(h.access!(ctx2), undefined, 'cached: synchronous');
  const later = makeCtx({ consumers: [carol], jwtSecrets: [hs], headers: bearer(token), now: () => (now + 10) * 1000 });
  const r = (await h.access!(later)) as Reply | undefined;
  assert.deepEqual(r?.body, { exp: 'token expired' });
});

test('uri_param_names, cookie_names, header_names, key_claim_name, secret_is_base64', async () => {
  const t = await hsToken({ iss: 'carol-key' });
  assert.equal((await run({}, { rawQuery: `jwt=${t}` })).reply, undefined);
  assert.equal((await run({ cookie_names: ['session_jwt'] }, { cookies: { session_jwt: t } })).reply, undefined);
  assert.equal((await run({ header_names: ['x-token'] }, { headers: { 'x-token': `bearer ${t}` } })).reply, undefined);
  const kid = await new SignJWT({}).setProtectedHeader({ alg: 'HS256', kid: 'carol-key' }).sign(new TextEncoder().encode(hs.secret));
  assert.equal((await run({ key_claim_name: 'kid' }, { headers: bearer(kid) })).reply, undefined, 'key from the JOSE header');
  const b64: JwtSecret = { ...hs, id: 'j-b64', key: 'b64-key', secret: Buffer.from('raw-secret-bytes-raw-secret-byte').toString('base64') };
  const signed = await new SignJWT({ iss: 'b64-key' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('raw-secret-bytes-raw-secret-byte'));
  assert.equal((await run({ secret_is_base64: true }, { jwtSecrets: [b64], headers: bearer(signed) })).reply, undefined);
  assert.equal((await run({}, { jwtSecrets: [b64], headers: bearer(signed) })).reply?.status, 401);
});

test('a remembered token: answered synchronously; a token in the query too is still "Multiple tokens"; a replaced secret is verified again', async () => {
  const token = await hsToken({ iss: 'carol-key', exp: now + 600 });
  const first = await run({}, { headers: bearer(token) });
  assert.equal(first.reply, undefined);
  const h = first.h;
  const again = makeCtx({ consumers: [carol], jwtSecrets: [hs], headers: bearer(token) });
  assert.equal(h.access!(again), undefined, 'remembered: no promise');
  assert.equal(again.consumer?.id, 'c-carol');
  const both = makeCtx({ consumers: [carol], jwtSecrets: [hs], headers: bearer(token), rawQuery: `jwt=${await hsToken({ iss: 'carol-key', sub: 'other' })}` });
  assert.equal(((await h.access!(both)) as Reply | undefined)?.status, 401);
  // The credential was replaced by one with another secret: the signature no longer verifies.
  const replaced: JwtSecret = { ...hs, secret: 'another-secret-entirely-for-hmac-256' };
  const after = makeCtx({ consumers: [carol], jwtSecrets: [replaced], headers: bearer(token) });
  const r = (await h.access!(after)) as Reply | undefined;
  assert.equal(r?.status, 401);
  assert.deepEqual(r?.body, { message: 'Invalid signature' });
});
