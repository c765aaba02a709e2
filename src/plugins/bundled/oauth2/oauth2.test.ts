import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import plugin, { oauth2Schema } from './index.ts';
import { makeConsumer, makeCtx, makeDeps, type FakeRequest } from '../../../../test/helpers/plugin-ctx.ts';
import type { Reply } from '../../sdk.ts';
import type { OAuth2Credential } from '../../../config/credentials.ts';
import { createMemoryKv } from '../../../storage/kv.ts';
import { hashClientSecret } from '../../../password-hash.ts';

const dana = makeConsumer('c-dana', 'dana');
const app: OAuth2Credential = {
  id: 'o-1', consumer: { id: dana.id }, name: 'app', client_id: 'client-1', client_secret: hashClientSecret('secret-1'), hash_secret: true,
  redirect_uris: ['https://app.example/cb'], client_type: 'confidential', tags: null, created_at: 0,
};
const pub: OAuth2Credential = { ...app, id: 'o-2', client_id: 'public-1', client_secret: '', hash_secret: false, client_type: 'public' };

async function make(config: Record<string, unknown>) {
  let now = Date.now();
  const deps = { ...makeDeps('oauth2'), sharedKv: createMemoryKv(), database: 'sqlite' as const, now: () => now };
  const h = await plugin.create(oauth2Schema.parse({ provision_key: 'pk', ...config }), deps);
  const call = async (req: FakeRequest) => {
    const ctx = makeCtx({ scheme: 'https', consumers: [dana], oauth2: [app, pub], now: () => now, service: { id: 's1' }, ...req });
    const reply = (await h.access!(ctx)) as Reply | undefined;
    return { ctx, reply, body: reply?.body as Record<string, string> | undefined };
  };
  const post = (path: string, form: Record<string, string>, headers: Record<string, string> = {}) =>
    call({ method: 'POST', path, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form).toString() });
  return { call, post, advance: (ms: number) => { now += ms; } };
}

test('schema: Kong defaults, one grant required, mandatory_scope needs scopes, refused DB-less', () => {
  const c = oauth2Schema.parse({ enable_client_credentials: true });
  assert.equal(c.token_expiration, 7200);
  assert.equal(c.refresh_token_ttl, 1209600);
  assert.equal(c.pkce, 'lax');
  assert.equal(c.auth_header_name, 'authorization');
  assert.match(c.provision_key, /^[0-9a-f]{32}$/);
  assert.equal(oauth2Schema.safeParse({}).success, false);
  assert.equal(oauth2Schema.safeParse({ enable_password_grant: true, mandatory_scope: true }).success, false);
  assert.equal(plugin.check!(c, { workers: 1, database: 'off' })[0]?.message.includes('DB-less'), true);
  assert.deepEqual(plugin.check!(c, { workers: 1, database: 'postgres' }), []);
  assert.equal(plugin.priority, 1400);
});

test('client credentials: token issued (no refresh token), accepted on API calls with Kong headers; wrong secret → invalid_client', async () => {
  const o = await make({ enable_client_credentials: true, scopes: ['read'] });
  const t = await o.post('/api/oauth2/token', { grant_type: 'client_credentials', client_id: 'client-1', client_secret: 'secret-1', scope: 'read' });
  assert.equal(t.reply?.status, 200);
  assert.equal(t.body?.token_type, 'bearer');
  assert.equal(t.body?.expires_in, 7200);
  assert.equal(t.body?.refresh_token, undefined);
  assert.equal(t.reply?.headers?.['cache-control'], 'no-store');
  const api = await o.call({ headers: { authorization: `Bearer ${t.body!.access_token}` } });
  assert.equal(api.reply, undefined);
  assert.equal(api.ctx.upstreamHeaders.get('x-consumer-id'), 'c-dana');
  assert.equal(api.ctx.upstreamHeaders.get('x-credential-identifier'), 'client-1');
  assert.equal(api.ctx.upstreamHeaders.get('x-authenticated-scope'), 'read');
  const bad = await o.post('/api/oauth2/token', { grant_type: 'client_credentials', client_id: 'client-1', client_secret: 'nope' });
  assert.equal(bad.reply?.status, 400);
  assert.deepEqual(bad.body, { error: 'invalid_client', error_description: 'Invalid client authentication' });
  const hdr = await o.post('/api/oauth2/token', { grant_type: 'client_credentials' }, { authorization: `Basic ${Buffer.from('client-1:nope').toString('base64')}` });
  assert.equal(hdr.reply?.status, 401);
  assert.equal(hdr.reply?.headers?.['www-authenticate'], 'Basic realm="OAuth2.0"');
  const scope = await o.post('/api/oauth2/token', { grant_type: 'client_credentials', client_id: 'client-1', client_secret: 'secret-1', scope: 'write' });
  assert.deepEqual(scope.body, { error: 'invalid_scope', error_description: '"write" is an invalid scope' });
});

test('API calls: missing, unknown, expired tokens; other method on the endpoints → 405', async () => {
  const o = await make({ enable_client_credentials: true, token_expiration: 60 });
  const missing = await o.call({});
  assert.equal(missing.reply?.status, 401);
  assert.deepEqual(missing.body, { error: 'invalid_request', error_description: 'The access token is missing' });
  const unknown = await o.call({ headers: { authorization: 'Bearer nope' } });
  assert.deepEqual(unknown.body, { error: 'invalid_token', error_description: 'The access token is invalid or has expired' });
  const t = await o.post('/oauth2/token', { grant_type: 'client_credentials', client_id: 'client-1', client_secret: 'secret-1' });
  assert.equal((await o.call({ rawQuery: `access_token=${t.body!.access_token}` })).reply, undefined);
  o.advance(61_000);
  assert.equal((await o.call({ headers: { authorization: `bearer ${t.body!.access_token}` } })).reply?.status, 401);
  const get = await o.call({ method: 'GET', path: '/x/oauth2/token/' });
  assert.equal(get.reply?.status, 405);
  assert.deepEqual(get.body, { error: 'invalid_method', error_description: 'The HTTP method GET is invalid for the token endpoint' });
});

test('authorization code with PKCE: code, exchange, reuse refused, wrong verifier refused, refresh', async () => {
  const o = await make({ enable_authorization_code: true, scopes: ['email'] });
  const verifier = 'v'.repeat(50);
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const auth = await o.post('/api/oauth2/authorize', { provision_key: 'pk', authenticated_userid: 'user-7', client_id: 'public-1', response_type: 'code', scope: 'email', state: 'xyz', code_challenge: challenge, code_challenge_method: 'S256' });
  assert.equal(auth.reply?.status, 200);
  const redirect = new URL(auth.body!.redirect_uri);
  assert.equal(redirect.origin + redirect.pathname, 'https://app.example/cb');
  assert.equal(redirect.searchParams.get('state'), 'xyz');
  const code = redirect.searchParams.get('code')!;
  const wrong = await o.post('/api/oauth2/token', { grant_type: 'authorization_code', client_id: 'public-1', code, code_verifier: 'w'.repeat(50) });
  assert.deepEqual(wrong.body, { error: 'invalid_grant', error_description: 'Invalid code' });
  const tok = await o.post('/api/oauth2/token', { grant_type: 'authorization_code', client_id: 'public-1', code, code_verifier: verifier });
  assert.equal(tok.reply?.status, 200, JSON.stringify(tok.body));
  assert.ok(tok.body?.refresh_token);
  const again = await o.post('/api/oauth2/token', { grant_type: 'authorization_code', client_id: 'public-1', code, code_verifier: verifier });
  assert.deepEqual(again.body, { error: 'invalid_request', error_description: 'Invalid code' });
  const api = await o.call({ headers: { authorization: `Bearer ${tok.body!.access_token}` } });
  assert.equal(api.ctx.upstreamHeaders.get('x-authenticated-userid'), 'user-7');
  const refreshed = await o.post('/api/oauth2/token', { grant_type: 'refresh_token', client_id: 'public-1', refresh_token: tok.body!.refresh_token });
  assert.equal(refreshed.reply?.status, 200, JSON.stringify(refreshed.body));
  assert.notEqual(refreshed.body?.access_token, tok.body?.access_token);
  const reused = await o.post('/api/oauth2/token', { grant_type: 'refresh_token', client_id: 'public-1', refresh_token: tok.body!.refresh_token });
  assert.deepEqual(reused.body, { error: 'invalid_request', error_description: 'Invalid refresh_token' });
  o.advance(1500);
  assert.equal((await o.call({ headers: { authorization: `Bearer ${tok.body!.access_token}` } })).reply?.status, 401, 'the refreshed-away token is gone');
});

test('authorize errors: provision_key, authenticated_userid, redirect_uri, PKCE required for public clients, http', async () => {
  const o = await make({ enable_authorization_code: true });
  const base = { provision_key: 'pk', authenticated_userid: 'u', client_id: 'client-1', response_type: 'code' };
  assert.deepEqual((await o.post('/oauth2/authorize', { ...base, provision_key: 'x' })).body, { error: 'invalid_provision_key', error_description: 'Invalid provision_key' });
  assert.deepEqual((await o.post('/oauth2/authorize', { ...base, authenticated_userid: ' ' })).body, { error: 'invalid_authenticated_userid', error_description: 'Missing authenticated_userid parameter' });
  const redirect = await o.post('/oauth2/authorize', { ...base, redirect_uri: 'https://evil.example/' });
  assert.equal(redirect.reply?.status, 400);
  assert.match(redirect.body!.redirect_uri, /^https:\/\/app\.example\/cb\?error=invalid_request/);
  const pkce = await o.post('/oauth2/authorize', { ...base, client_id: 'public-1' });
  assert.equal(new URL(pkce.body!.redirect_uri).searchParams.get('error_description'), 'code_challenge is required for public clients');
  const http = await o.call({ scheme: 'http', method: 'POST', path: '/oauth2/authorize', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(base).toString() });
  assert.deepEqual(http.body, { error: 'access_denied', error_description: 'You must use HTTPS' });
});

test('password grant needs the provision key; anonymous OR', async () => {
  const o = await make({ enable_password_grant: true, anonymous: 'dana' });
  const bad = await o.post('/oauth2/token', { grant_type: 'password', client_id: 'client-1', client_secret: 'secret-1', provision_key: 'x', authenticated_userid: 'u' });
  assert.equal(bad.body?.error, 'invalid_provision_key');
  const ok = await o.post('/oauth2/token', { grant_type: 'password', client_id: 'client-1', client_secret: 'secret-1', provision_key: 'pk', authenticated_userid: 'u' });
  assert.ok(ok.body?.refresh_token);
  const anon = await o.call({ headers: { authorization: 'Bearer nope', 'x-authenticated-scope': 'forged' } });
  assert.equal(anon.reply, undefined);
  assert.equal(anon.ctx.upstreamHeaders.get('x-anonymous-consumer'), 'true');
  assert.equal(anon.ctx.upstreamHeaders.get('x-authenticated-scope'), undefined);
});
