/**
 * Kong's oauth2 plugin end to end on a SQLite node (the plugin needs a database), driven by a
 * real HTTP client: the authorization code flow with PKCE, client credentials, password, refresh
 * (rotation and reuse refused), expiry; and openid-connect `auth_methods: [kong_oauth2]`
 * accepting a token from the oauth2 plugin (Kong's "Kong OAuth Token authentication" row).
 * The endpoints demand HTTPS: the client is a trusted proxy that sends `X-Forwarded-Proto: https`
 * and the plugin has `accept_http_if_already_terminated`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startIdp, type DemoIdp } from './helpers/idp.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { waitFor } from './helpers/process.ts';

let echo: EchoServer;
let idp: DemoIdp;
let gw: TestGateway;
const https = { 'x-forwarded-proto': 'https' };
const provisionKey = 'provision-key-0123456789';

async function admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${gw.adminUrl}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? null : JSON.parse(text) };
}

async function post(path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${gw.proxyUrl}${path}`, { method: 'POST', headers: { ...https, ...headers }, body: new URLSearchParams(form) });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

async function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(`${gw.proxyUrl}${path}`, { headers });
  const text = await res.text();
  let body: any = text;
  try { body = JSON.parse(text); } catch { /* text */ }
  return { status: res.status, body };
}

/** The proxy sees Admin API writes after the next Snapshot: poll for up to 5 s. */
const eventually = (fn: () => Promise<boolean>, what: string): Promise<void> => waitFor(fn, 5000, what);

before(async () => {
  echo = await startEcho();
  idp = await startIdp();
  gw = await startGateway({ database: 'sqlite', env: { PORTCULLIS_TRUSTED_IPS: '127.0.0.1' } });
  assert.equal((await admin('POST', '/services', { name: 'api', url: `http://127.0.0.1:${echo.port}` })).status, 201);
  assert.equal((await admin('POST', '/services/api/routes', { name: 'api', paths: ['/api'] })).status, 201);
  const plugin = await admin('POST', '/routes/api/plugins', {
    name: 'oauth2',
    config: {
      provision_key: provisionKey, scopes: ['email', 'profile'], enable_authorization_code: true, enable_client_credentials: true,
      enable_password_grant: true, accept_http_if_already_terminated: true, token_expiration: 3,
    },
  });
  assert.equal(plugin.status, 201, JSON.stringify(plugin.body));
  assert.equal((await admin('POST', '/consumers', { username: 'alex' })).status, 201);
  const app = await admin('POST', '/consumers/alex/oauth2', { name: 'web-app', client_id: 'web-client', client_secret: 'web-secret', hash_secret: true, redirect_uris: ['https://app.example/callback'] });
  assert.equal(app.status, 201, JSON.stringify(app.body));
  assert.notEqual(app.body.client_secret, 'web-secret', 'hash_secret: stored hashed');
  const mobile = await admin('POST', '/consumers/alex/oauth2', { name: 'mobile', client_id: 'mobile-client', client_type: 'public', redirect_uris: ['https://mobile.example/cb'] });
  assert.equal(mobile.status, 201, JSON.stringify(mobile.body));
  // openid-connect route accepting Kong OAuth tokens (global credentials, as the how-to).
  assert.equal((await admin('POST', '/services', { name: 'oidc', url: `http://127.0.0.1:${echo.port}` })).status, 201);
  assert.equal((await admin('POST', '/services/oidc/routes', { name: 'token-issuer', paths: ['/issuer'] })).status, 201);
  assert.equal((await admin('POST', '/routes/token-issuer/plugins', {
    name: 'oauth2', config: { provision_key: 'pk-global-0123456789', enable_client_credentials: true, global_credentials: true, accept_http_if_already_terminated: true },
  })).status, 201);
  assert.equal((await admin('POST', '/services/oidc/routes', { name: 'protected', paths: ['/protected'] })).status, 201);
  const oidc = await admin('POST', '/routes/protected/plugins', {
    name: 'openid-connect', config: { issuer: idp.issuer, auth_methods: ['kong_oauth2'], bearer_token_param_type: ['header'] },
  });
  assert.equal(oidc.status, 201, JSON.stringify(oidc.body));
  await eventually(async () => (await get('/api/x')).status === 401 && (await get('/protected/x')).status === 401, 'config live');
});

after(async () => {
  await gw?.close();
  await idp?.close();
  await echo?.close();
});

test('authorization code flow with PKCE, a real client: authorize → code → token → API call → refresh', async () => {
  const verifier = randomBytes(48).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const auth = await post('/api/oauth2/authorize', {
    client_id: 'mobile-client', response_type: 'code', scope: 'email', provision_key: provisionKey, authenticated_userid: 'user-42',
    state: 's-1', code_challenge: challenge, code_challenge_method: 'S256',
  });
  assert.equal(auth.status, 200, JSON.stringify(auth.body));
  assert.equal(auth.headers.get('cache-control'), 'no-store');
  const redirect = new URL(auth.body.redirect_uri);
  assert.equal(redirect.searchParams.get('state'), 's-1');
  const code = redirect.searchParams.get('code')!;
  const wrongVerifier = await post('/api/oauth2/token', { grant_type: 'authorization_code', client_id: 'mobile-client', code, code_verifier: randomBytes(48).toString('base64url') });
  assert.equal(wrongVerifier.status, 400);
  assert.deepEqual(wrongVerifier.body, { error: 'invalid_grant', error_description: 'Invalid code' });
  const token = await post('/api/oauth2/token', { grant_type: 'authorization_code', client_id: 'mobile-client', code, code_verifier: verifier });
  assert.equal(token.status, 200, JSON.stringify(token.body));
  assert.equal(token.body.token_type, 'bearer');
  assert.equal(token.body.expires_in, 3);
  const reused = await post('/api/oauth2/token', { grant_type: 'authorization_code', client_id: 'mobile-client', code, code_verifier: verifier });
  assert.deepEqual(reused.body, { error: 'invalid_request', error_description: 'Invalid code' });
  const call = await get('/api/things', { authorization: `Bearer ${token.body.access_token}` });
  assert.equal(call.status, 200);
  assert.equal(call.body.headers['x-consumer-username'], 'alex');
  assert.equal(call.body.headers['x-credential-identifier'], 'mobile-client');
  assert.equal(call.body.headers['x-authenticated-scope'], 'email');
  assert.equal(call.body.headers['x-authenticated-userid'], 'user-42');
  const refreshed = await post('/api/oauth2/token', { grant_type: 'refresh_token', client_id: 'mobile-client', refresh_token: token.body.refresh_token });
  assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
  const again = await post('/api/oauth2/token', { grant_type: 'refresh_token', client_id: 'mobile-client', refresh_token: token.body.refresh_token });
  assert.equal(again.body.error, 'invalid_request', 'a rotated refresh token is refused (reuse_refresh_token off)');
  // token_expiration 3 s: the new access token expires.
  await new Promise((r) => setTimeout(r, 4100));
  const expired = await get('/api/things', { authorization: `Bearer ${refreshed.body.access_token}` });
  assert.equal(expired.status, 401);
  assert.deepEqual(expired.body, { error: 'invalid_token', error_description: 'The access token is invalid or has expired' });
});

test('authorize refusals: wrong provision_key, unregistered redirect_uri, missing PKCE for a public client', async () => {
  const base = { client_id: 'web-client', response_type: 'code', provision_key: provisionKey, authenticated_userid: 'u' };
  assert.deepEqual((await post('/api/oauth2/authorize', { ...base, provision_key: 'wrong' })).body, { error: 'invalid_provision_key', error_description: 'Invalid provision_key' });
  const redirect = await post('/api/oauth2/authorize', { ...base, redirect_uri: 'https://evil.example/' });
  assert.equal(redirect.status, 400);
  assert.equal(new URL(redirect.body.redirect_uri).searchParams.get('error'), 'invalid_request');
  const pkce = await post('/api/oauth2/authorize', { ...base, client_id: 'mobile-client' });
  assert.equal(new URL(pkce.body.redirect_uri).searchParams.get('error_description'), 'code_challenge is required for public clients');
  const http = await fetch(`${gw.proxyUrl}/api/oauth2/authorize`, { method: 'POST', body: new URLSearchParams(base) });
  assert.deepEqual(await http.json(), { error: 'access_denied', error_description: 'You must use HTTPS' });
});

test('client credentials (hashed secret, Basic header too) and password grants; another consumer\'s client is refused', async () => {
  const cc = await post('/api/oauth2/token', { grant_type: 'client_credentials', client_id: 'web-client', client_secret: 'web-secret', scope: 'profile' });
  assert.equal(cc.status, 200, JSON.stringify(cc.body));
  assert.equal(cc.body.refresh_token, undefined);
  const basic = await post('/api/oauth2/token', { grant_type: 'client_credentials' }, { authorization: `Basic ${Buffer.from('web-client:web-secret').toString('base64')}` });
  assert.equal(basic.status, 200);
  const wrong = await post('/api/oauth2/token', { grant_type: 'client_credentials' }, { authorization: `Basic ${Buffer.from('web-client:nope').toString('base64')}` });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.headers.get('www-authenticate'), 'Basic realm="OAuth2.0"');
  const pw = await post('/api/oauth2/token', { grant_type: 'password', client_id: 'web-client', client_secret: 'web-secret', provision_key: provisionKey, authenticated_userid: 'user-7' });
  assert.equal(pw.status, 200);
  assert.ok(pw.body.refresh_token);
  const refreshOther = await post('/api/oauth2/token', { grant_type: 'refresh_token', client_id: 'mobile-client', refresh_token: pw.body.refresh_token });
  assert.deepEqual(refreshOther.body, { error: 'invalid_client', error_description: 'Invalid client authentication' });
  const listed = await admin('GET', '/oauth2_tokens');
  assert.equal(listed.status, 200);
  assert.ok(listed.body.data.some((t: { access_token: string }) => t.access_token === pw.body.access_token));
});

test('openid-connect kong_oauth2: a token from the oauth2 plugin authenticates; an unknown one does not', async () => {
  const t = await post('/issuer/oauth2/token', { grant_type: 'client_credentials', client_id: 'web-client', client_secret: 'web-secret' });
  assert.equal(t.status, 200, JSON.stringify(t.body));
  const ok = await get('/protected/data', { authorization: `Bearer ${t.body.access_token}` });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body.headers['x-consumer-username'], 'alex');
  assert.equal(ok.body.headers['x-credential-identifier'], 'web-client');
  assert.equal((await get('/protected/data', { authorization: 'Bearer not-a-kong-token' })).status, 401);
  assert.equal((await get('/protected/data')).status, 401);
});

test('oauth2 is refused in DB-less mode with a message saying so', async () => {
  const dbless = await startGateway({});
  try {
    const ok = await dbless.reload({ services: [{ name: 's', url: 'http://127.0.0.1:1', plugins: [{ name: 'oauth2', config: { enable_client_credentials: true } }] }] });
    assert.equal(ok, false);
    assert.match(dbless.logText(), /needs a database/);
  } finally {
    await dbless.close();
  }
});

test('implicit grant: refused while enable_implicit_grant is off; when on, the token comes back in the redirect fragment and works', async () => {
  const base = { client_id: 'web-client', response_type: 'token', provision_key: provisionKey, authenticated_userid: 'user-9', scope: 'email', state: 'st' };
  const off = await post('/api/oauth2/authorize', base);
  assert.equal(off.status, 400);
  assert.equal(new URL(off.body.redirect_uri).searchParams.get('error'), 'unsupported_response_type');

  assert.equal((await admin('POST', '/services/api/routes', { name: 'implicit', paths: ['/implicit'] })).status, 201);
  const plugin = await admin('POST', '/routes/implicit/plugins', {
    name: 'oauth2', config: { provision_key: provisionKey, scopes: ['email'], enable_implicit_grant: true, accept_http_if_already_terminated: true },
  });
  assert.equal(plugin.status, 201, JSON.stringify(plugin.body));
  await eventually(async () => (await post('/implicit/oauth2/authorize', base)).status === 200, 'implicit route live');
  const on = await post('/implicit/oauth2/authorize', base);
  const redirect = new URL(on.body.redirect_uri);
  assert.equal(redirect.search, '', 'nothing in the query string');
  const fragment = new URLSearchParams(redirect.hash.slice(1));
  assert.equal(fragment.get('token_type'), 'bearer');
  assert.equal(fragment.get('state'), 'st');
  assert.equal(fragment.get('refresh_token'), null, 'the implicit grant issues no refresh token');
  const call = await get('/implicit/things', { authorization: `Bearer ${fragment.get('access_token')}` });
  assert.equal(call.status, 200);
  assert.equal(call.body.headers['x-authenticated-userid'], 'user-9');
  // The authorization code flow is off on this plugin (only the implicit grant is enabled).
  const code = await post('/implicit/oauth2/authorize', { ...base, response_type: 'code' });
  assert.equal(new URL(code.body.redirect_uri).searchParams.get('error'), 'unsupported_response_type');
});

test('openid-connect kong_oauth2: a token keeps working across requests until its credential is deleted', async () => {
  assert.equal((await admin('POST', '/consumers', { username: 'temp' })).status, 201);
  assert.equal((await admin('POST', '/consumers/temp/oauth2', { name: 'temp-app', client_id: 'temp-client', client_secret: 'temp-secret', redirect_uris: ['https://temp.example/cb'] })).status, 201);
  await eventually(async () => (await post('/issuer/oauth2/token', { grant_type: 'client_credentials', client_id: 'temp-client', client_secret: 'temp-secret' })).status === 200, 'credential live');
  const t = await post('/issuer/oauth2/token', { grant_type: 'client_credentials', client_id: 'temp-client', client_secret: 'temp-secret' });
  for (let i = 0; i < 3; i++) {
    const ok = await get('/protected/data', { authorization: `Bearer ${t.body.access_token}` });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.headers['x-consumer-username'], 'temp');
  }
  assert.equal((await admin('DELETE', '/consumers/temp/oauth2/temp-client')).status, 204);
  await eventually(async () => (await get('/protected/data', { authorization: `Bearer ${t.body.access_token}` })).status === 401, 'the token of the deleted credential refused');
});

test('oauth2_credentials: the consumer may be referenced by username (consumer.username), as decK writes it', async () => {
  const alex = (await admin('GET', '/consumers/alex')).body;
  const created = await admin('POST', '/oauth2', { consumer: { username: 'alex' }, name: 'by-username', client_id: 'by-username-client', redirect_uris: ['https://app.example/cb'] });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal(created.body.consumer.id, alex.id);
  const missing = await admin('POST', '/oauth2', { consumer: { username: 'nobody' }, name: 'x', redirect_uris: ['https://app.example/cb'] });
  assert.ok(missing.status === 400 || missing.status === 404, `an unknown username is refused (${missing.status})`);
  assert.equal((await admin('DELETE', `/oauth2/${created.body.id}`)).status, 204);
});
