/**
 * Replies through the real gateway (§13 checks), as a Kong user would run them with curl: the challenge
 * without and with a bad credential (#2), password before client credentials on one Basic header
 * (#4), `introspection_check_active: false` (#7), user info refusing a token (#9), an invalid
 * refresh token (#10), scope as authenticated groups (#15), a request authenticated by another
 * plugin skipping OIDC under `anonymous` (#16), forbidden vs unauthorized redirects (#17) and the
 * generated-JWKS Admin routes without keys (#24).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { startGateway } from './helpers/gateway.ts';
import type { TestGateway } from './helpers/gateway.ts';
import { testAuthPlugin } from './helpers/test-auth-plugin.ts';
import { definePlugin } from '../src/plugins/sdk.ts';
import { startIdp } from '../demo/idp.ts';
import type { DemoIdp } from '../demo/idp.ts';
import { startEcho } from '../demo/echo.ts';
import { startBadIdp } from './helpers/bad-idp.ts';
import type { BadIdp } from './helpers/bad-idp.ts';
import { CookieJar, send } from './helpers/fake-ctx.ts';
import type { EchoServer } from '../demo/echo.ts';

let idp: DemoIdp;
let echo: EchoServer;
let gw: TestGateway;
/** An IdP whose discovery document does not advertise PKCE. */
let noPkceIdp: BadIdp;
/** The header auth plugin at key-auth's priority (1250), so that it runs before openid-connect (1050). */
const earlyAuthPlugin = definePlugin({ ...testAuthPlugin, name: 'test-header-auth-early', priority: 1250 });

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
type Echo = { headers: Record<string, string | undefined> };

/** One service + route per case, each with its own openid-connect config. */
function route(name: string, config: string, extraPlugins = '', issuer = idp.issuer): string {
  return `  - name: ${name}
    url: ${echo.url}/anything
    routes:
      - name: ${name}
        paths: [/${name}]
    plugins:${extraPlugins}
      - name: openid-connect
        config:
          issuer: ${issuer}
          client_id: [kong]
          client_secret: [kong-secret]
          client_auth: [client_secret_post]
${config}`;
}

before(async () => {
  idp = await startIdp();
  echo = await startEcho();
  noPkceIdp = await startBadIdp({ discovery: { code_challenge_methods_supported: undefined } });
  gw = await startGateway({
    plugins: [earlyAuthPlugin],
    config: `_format_version: "3.0"
consumers:
  - username: bob
  - username: anonymous-user
services:
${route('errors', `          auth_methods: [bearer]
`)}
${route('pwcc', `          auth_methods: [password, client_credentials]
`)}
${route('cc', `          auth_methods: [client_credentials]
`)}
${route('inactive', `          auth_methods: [introspection]
          introspection_check_active: false
`)}
${route('userinfo', `          auth_methods: [userinfo]
`)}
${route('refresh', `          auth_methods: [refresh_token]
          refresh_token_param_name: refresh_token
          refresh_token_param_type: [header]
`)}
${route('groups', `          auth_methods: [password]
          authenticated_groups_claim: [scope]
`)}
${route('other', `          auth_methods: [bearer]
          anonymous: anonymous-user
`, `
      - name: test-header-auth-early`)}
${route('pkce', `          auth_methods: [authorization_code]
`)}
${route('nopkce', `          auth_methods: [authorization_code]
`, '', noPkceIdp.issuer)}
${route('redirects', `          auth_methods: [password, bearer]
          groups_required: [nobody-has-this-group]
          unauthorized_redirect_uri: [https://example.test/unauthorized]
          forbidden_redirect_uri: [https://example.test/forbidden]
`)}
`,
  });
});
after(async () => {
  await gw.close();
  await echo.close();
  await idp.close();
  await noPkceIdp.close();
});

async function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: string }> {
  const r = await fetch(`${gw.proxyUrl}${path}`, { headers: { accept: 'application/json', ...headers }, redirect: 'manual' });
  return { status: r.status, headers: r.headers, body: await r.text() };
}

test('#2 no credentials → 401 without an error code; an invalid token → error="invalid_token"', async () => {
  const none = await get('/errors');
  assert.equal(none.status, 401);
  assert.deepEqual(JSON.parse(none.body), { message: 'Unauthorized' });
  const challenge = none.headers.get('www-authenticate') ?? '';
  assert.match(challenge, /^Bearer realm="[^"]+"$/);
  const bad = await get('/errors', { authorization: 'Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln' });
  assert.equal(bad.status, 401);
  assert.match(bad.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
});

test('#4 one Basic header with password and client_credentials enabled: tried as a password grant first', async () => {
  idp.resetCounts();
  const r = await get('/pwcc', { authorization: basic(idp.clients.service.client_id, idp.clients.service.client_secret) });
  assert.equal(r.status, 200, r.body);
  const counts = idp.counts();
  assert.equal(counts['token:password'], 1, JSON.stringify(counts));
  assert.equal(counts['token:client_credentials'], 1, JSON.stringify(counts));
  const token = String((JSON.parse(r.body) as Echo).headers.authorization).replace(/^Bearer /, '');
  assert.equal(decodeJwt(token).client_id ?? decodeJwt(token).azp, idp.clients.service.client_id);
});

test('#4 client credentials from the Basic header: one token call per id/secret, then the cache', async () => {
  idp.resetCounts();
  const good = basic(idp.clients.service.client_id, idp.clients.service.client_secret);
  for (let i = 0; i < 3; i++) assert.equal((await get('/cc', { authorization: good })).status, 200);
  assert.equal(idp.counts()['token:client_credentials'], 1);
  const wrong = await get('/cc', { authorization: basic(idp.clients.service.client_id, 'not-the-secret') });
  assert.equal(wrong.status, 401, 'another secret is another cache key: the IdP is asked and refuses');
  assert.equal(idp.counts()['token:client_credentials'], 2);
});

test('#7 introspection_check_active: false lets an inactive token through', async () => {
  idp.resetCounts();
  const r = await get('/inactive', { authorization: 'Bearer some-opaque-token-the-idp-never-issued' });
  assert.equal(r.status, 200, r.body);
  assert.equal(idp.counts().introspection, 1);
});

test('#9 user info: a token the endpoint refuses → 401', async () => {
  idp.resetCounts();
  const r = await get('/userinfo', { authorization: 'Bearer some-opaque-token-the-idp-never-issued' });
  assert.equal(r.status, 401, r.body);
  assert.equal(idp.counts().userinfo, 1, 'the user info endpoint was asked');
});

test('#10 an invalid refresh token → 401', async () => {
  idp.resetCounts();
  const r = await get('/refresh', { 'refresh-token': 'not-a-refresh-token-the-idp-issued' });
  assert.equal(r.status, 401, r.body);
  assert.equal(idp.counts()['token:refresh_token'], 1);
});

test('#15 authenticated_groups_claim: [scope] → X-Authenticated-Groups lists the scopes', async () => {
  const r = await get('/groups', { authorization: basic('alex', 'doe'), 'x-authenticated-groups': 'spoofed' });
  assert.equal(r.status, 200, r.body);
  const e = JSON.parse(r.body) as Echo;
  const scope = String(decodeJwt(String(e.headers.authorization).replace(/^Bearer /, '')).scope);
  assert.ok(scope.includes('openid'), scope);
  assert.equal(e.headers['x-authenticated-groups'], scope.split(' ').join(', '));
});

test('#16 with anonymous set, a request already authenticated by another plugin skips OIDC', async () => {
  idp.resetCounts();
  const r = await get('/other', { 'x-test-consumer': 'bob' });
  assert.equal(r.status, 200, r.body);
  const e = JSON.parse(r.body) as Echo;
  // Had openid-connect run, it would have found no credential and set the anonymous consumer.
  assert.equal(e.headers['x-anonymous-consumer'], undefined);
  assert.equal(e.headers['x-consumer-username'], undefined);
  assert.deepEqual(idp.counts(), {});
  const anon = await get('/other');
  assert.equal(anon.status, 200, anon.body);
  assert.equal((JSON.parse(anon.body) as Echo).headers['x-anonymous-consumer'], 'true');
});

test('#17 forbidden_redirect_uri for 403, unauthorized_redirect_uri for 401 (not mixed up)', async () => {
  const forbidden = await get('/redirects', { authorization: basic('alex', 'doe') });
  assert.equal(forbidden.status, 302);
  assert.equal(forbidden.headers.get('location'), 'https://example.test/forbidden');
  const unauthorized = await get('/redirects');
  assert.equal(unauthorized.status, 302);
  assert.equal(unauthorized.headers.get('location'), 'https://example.test/unauthorized');
});

test('#24 GET /openid-connect/jwks → 404 while no key was generated; DELETE → 204', async () => {
  const g = await fetch(`${gw.adminUrl}/openid-connect/jwks`);
  assert.equal(g.status, 404);
  await g.body?.cancel();
  const d = await fetch(`${gw.adminUrl}/openid-connect/jwks`, { method: 'DELETE' });
  assert.equal(d.status, 204);
  await d.body?.cancel();
});

test('#12 PKCE S256 when discovery advertises it, and neither parameter when it does not', async () => {
  const nav = { accept: 'text/html', 'sec-fetch-mode': 'navigate' };
  const withPkce = await send(new CookieJar(), `${gw.proxyUrl}/pkce/page`, { headers: nav });
  assert.equal(withPkce.status, 302);
  const a = new URL(withPkce.location!);
  assert.equal(a.searchParams.get('code_challenge_method'), 'S256');
  assert.ok(a.searchParams.get('code_challenge'));
  assert.equal(a.searchParams.get('scope'), 'openid');
  assert.ok(a.searchParams.get('nonce') && a.searchParams.get('state') && a.searchParams.get('redirect_uri'));
  assert.ok(withPkce.setCookies.some((c) => c.startsWith('authorization=')));
  const without = await send(new CookieJar(), `${gw.proxyUrl}/nopkce/page`, { headers: nav });
  assert.equal(without.status, 302, without.body);
  const b = new URL(without.location!);
  assert.equal(b.origin + b.pathname, `${noPkceIdp.issuer}/authorize`);
  assert.equal(b.searchParams.get('code_challenge'), null);
  assert.equal(b.searchParams.get('code_challenge_method'), null);
  assert.equal(b.searchParams.get('response_type'), 'code');
});

test('logs never contain the credentials these requests carried', () => {
  const text = gw.logText();
  assert.ok(text.length > 0);
  const sent = [
    'some-opaque-token-the-idp-never-issued',
    'not-a-refresh-token-the-idp-issued',
    'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln',
    idp.clients.service.client_secret,
    'kong-secret',
    Buffer.from('alex:doe').toString('base64'),
    Buffer.from(`${idp.clients.service.client_id}:${idp.clients.service.client_secret}`).toString('base64'),
  ];
  for (const s of sent) assert.equal(text.includes(s), false, `log contains ${s.slice(0, 6)}…`);
});
