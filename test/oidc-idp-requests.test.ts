/**
 * What openid-connect sends to the IdP, recorded by the in-test IdP: token requests (grant,
 * scope, token_post_args_*, token_headers_*, client auth, no redirect_uri), introspection
 * requests (token_type_hint, introspection_headers_*, post args), expires_in <= 0 not cached,
 * and IdP failures at the token endpoint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withGateway } from './helpers/gateway.ts';
import type { TestGateway } from './helpers/gateway.ts';
import { startBadIdp } from './helpers/bad-idp.ts';
import { oidcDeck } from './helpers/oidc-deck.ts';

import { idpEchoSuite } from './helpers/idp.ts';

const env = idpEchoSuite(startBadIdp);

function deck(pluginConfig: string): string {
  return oidcDeck(env.echo.url, env.idp.issuer, `      client_id: [gw-client]\n      client_secret: [gw-secret]\n${pluginConfig}`);
}

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const last = (endpoint: string) => [...env.idp.requests()].reverse().find((r) => r.endpoint === endpoint)!;

test('password grant request: form, client_secret_basic, scopes, extra args and headers, no redirect_uri', async () => {
  const at = await env.idp.sign({ sub: 'alex' });
  env.idp.setTokenResponse({ access_token: at, token_type: 'Bearer', expires_in: 300 });
  await withGateway(
    deck(`      auth_methods: [password]
      scopes: [openid, email]
      token_post_args_names: [resource]
      token_post_args_values: [https://api.example]
      token_headers_names: [x-tenant]
      token_headers_values: [acme]
      token_headers_client: [x-trace]
`),
    async (gw) => {
      const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: basic('alex', 'doe'), 'x-trace': 't-1' } });
      assert.equal(r.status, 200);
      assert.equal(((await r.json()) as { headers: Record<string, string> }).headers.authorization, `Bearer ${at}`);
      const req = last('token');
      const form = new URLSearchParams(req.body);
      assert.equal(form.get('grant_type'), 'password');
      assert.equal(form.get('username'), 'alex');
      assert.equal(form.get('password'), 'doe');
      assert.equal(form.get('scope'), 'openid email');
      assert.equal(form.get('resource'), 'https://api.example');
      assert.equal(form.get('redirect_uri'), null);
      // RFC 6749 §2.3.1: id and secret are form-urlencoded before the Basic encoding.
      const [id, secret] = Buffer.from(String(req.headers.authorization).slice(6), 'base64').toString().split(':').map(decodeURIComponent);
      assert.deepEqual([id, secret], ['gw-client', 'gw-secret']);
      assert.equal(req.headers['x-tenant'], 'acme');
      assert.equal(req.headers['x-trace'], 't-1');
    },
  );
});

test('a token response with expires_in <= 0 is not cached', async () => {
  const at = await env.idp.sign({ sub: 'alex' });
  env.idp.setTokenResponse({ access_token: at, token_type: 'Bearer', expires_in: 0 });
  await withGateway(deck(`      auth_methods: [password]\n      ignore_signature: [password]\n`), async (gw) => {
    env.idp.resetCounts();
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: basic('alex', 'doe') } });
      assert.equal(r.status, 200);
      await r.body?.cancel();
    }
    assert.equal(env.idp.counts().token, 3);
  });
});

test('token endpoint failures: rejection → 401, outage → 500', async () => {
  env.idp.setTokenResponse(() => ({ status: 400, body: { error: 'invalid_grant' } }));
  await withGateway(deck(`      auth_methods: [password]\n`), async (gw) => {
    const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: basic('alex', 'bad') } });
    assert.equal(r.status, 401);
    await r.body?.cancel();
    env.idp.setTokenResponse(() => ({ status: 503, body: { error: 'temporarily_unavailable' } }));
    const r2 = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: basic('alex', 'doe') } });
    assert.equal(r2.status, 500);
    await r2.body?.cancel();
  });
});

test('introspection request: hint, extra headers and args, client auth; inactive results are cached briefly', async () => {
  env.idp.setIntrospection('opaque-1', { active: true, sub: 'alex', scope: 'read write' });
  await withGateway(
    deck(`      auth_methods: [introspection]
      client_auth: [client_secret_post]
      introspection_hint: my_hint
      introspection_headers_names: [x-api-key]
      introspection_headers_values: [k-123]
      introspection_post_args_names: [extra]
      introspection_post_args_values: ['1']
      scopes_required: ["read write"]
`),
    async (gw) => {
      const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: 'Bearer opaque-1' } });
      assert.equal(r.status, 200);
      await r.body?.cancel();
      const req = last('introspection');
      const form = new URLSearchParams(req.body);
      assert.equal(form.get('token'), 'opaque-1');
      assert.equal(form.get('token_type_hint'), 'my_hint');
      assert.equal(form.get('extra'), '1');
      assert.equal(form.get('client_id'), 'gw-client');
      assert.equal(form.get('client_secret'), 'gw-secret');
      assert.equal(req.headers['x-api-key'], 'k-123');
      env.idp.resetCounts();
      for (let i = 0; i < 5; i++) {
        const bad = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: 'Bearer unknown-opaque' } });
        assert.equal(bad.status, 401);
        await bad.body?.cancel();
      }
      assert.equal(env.idp.counts().introspection, 1, 'inactive answer cached');
    },
  );
});

test('cache_tokens: arguments the client passes (token_post_args_client) are part of the cache key', async () => {
  // The IdP answers with a token whose audience is the requested resource (RFC 8707).
  const tokens = new Map<string, string>();
  for (const resource of ['https://a.example', 'https://b.example']) tokens.set(resource, await env.idp.sign({ sub: 'alex', aud: resource }));
  env.idp.setTokenResponse((params) => ({ status: 200, body: { access_token: tokens.get(params.get('resource') ?? '') ?? 'none', token_type: 'Bearer', expires_in: 300 } }));
  await withGateway(deck(`      auth_methods: [password]\n      token_post_args_client: [resource]\n`), async (gw) => {
    env.idp.resetCounts();
    const upstreamToken = async (resource: string) => {
      const r = await fetch(`${gw.proxyUrl}/api?resource=${encodeURIComponent(resource)}`, { headers: { authorization: basic('alex', 'doe') } });
      assert.equal(r.status, 200);
      return ((await r.json()) as { headers: Record<string, string> }).headers.authorization;
    };
    assert.equal(await upstreamToken('https://a.example'), `Bearer ${tokens.get('https://a.example')}`);
    assert.equal(await upstreamToken('https://b.example'), `Bearer ${tokens.get('https://b.example')}`, 'not the token cached for another resource');
    assert.equal(await upstreamToken('https://a.example'), `Bearer ${tokens.get('https://a.example')}`);
    assert.equal(env.idp.counts().token, 2, 'one token call per resource, then the cache');
  });
});

test('cache_introspection / cache_user_info: what the client passes through to the IdP is part of the cache key', async () => {
  env.idp.setIntrospection('opaque-ck', { active: true, sub: 'alex' });
  env.idp.setUserinfo('opaque-ui', { sub: 'alex' });
  const call = async (gw: TestGateway, token: string, query: string, headers: Record<string, string> = {}) => {
    const r = await fetch(`${gw.proxyUrl}/api${query}`, { headers: { authorization: `Bearer ${token}`, ...headers } });
    assert.equal(r.status, 200);
    await r.body?.cancel();
  };
  await withGateway(deck(`      auth_methods: [introspection]
      client_auth: [client_secret_post]
      introspection_post_args_client: [resource]
      introspection_headers_client: [x-tenant]
`), async (gw) => {
    env.idp.resetCounts();
    await call(gw, 'opaque-ck', '?resource=a');
    await call(gw, 'opaque-ck', '?resource=b');
    assert.equal(new URLSearchParams(last('introspection').body).get('resource'), 'b', 'the second resource reached the IdP');
    await call(gw, 'opaque-ck', '?resource=a');
    assert.equal(env.idp.counts().introspection, 2, 'one call per resource, then the cache');
    await call(gw, 'opaque-ck', '?resource=a', { 'x-tenant': 't1' });
    assert.equal(last('introspection').headers['x-tenant'], 't1');
    await call(gw, 'opaque-ck', '?resource=a', { 'x-tenant': 't1' });
    assert.equal(env.idp.counts().introspection, 3, 'a passed-through header is part of the key too');
  });
  await withGateway(deck(`      auth_methods: [userinfo]
      userinfo_headers_client: [x-tenant]
`), async (gw) => {
    env.idp.resetCounts();
    await call(gw, 'opaque-ui', '', { 'x-tenant': 't1' });
    await call(gw, 'opaque-ui', '', { 'x-tenant': 't2' });
    assert.equal(last('userinfo').headers['x-tenant'], 't2', 'the second tenant reached the IdP');
    await call(gw, 'opaque-ui', '', { 'x-tenant': 't1' });
    await call(gw, 'opaque-ui', '');
    assert.equal(env.idp.counts().userinfo, 3, 'one call per tenant header (and one without), then the cache');
  });
});

test('introspection_endpoint and userinfo_endpoint override the discovered endpoints', async () => {
  const other = await startBadIdp();
  try {
    other.setIntrospection('opaque-introspected', { active: true, sub: 'alex', exp: Math.floor(Date.now() / 1000) + 300 });
    other.setUserinfo('opaque-userinfo', { sub: 'bob' });
    const cases: Array<[string, string, string]> = [
      ['introspection', `      introspection_endpoint: ${other.issuer}/introspect\n`, 'opaque-introspected'],
      ['userinfo', `      userinfo_endpoint: ${other.issuer}/userinfo\n`, 'opaque-userinfo'],
    ];
    for (const [method, setting, token] of cases) {
      await withGateway(deck(`      auth_methods: [${method}]\n${setting}`), async (gw) => {
        env.idp.resetCounts();
        other.resetCounts();
        const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(r.status, 200, method);
        await r.body?.cancel();
        assert.equal(other.counts()[method], 1, `${method}: the configured endpoint was called`);
        assert.equal(env.idp.counts()[method] ?? 0, 0, `${method}: the discovered endpoint was not`);
      });
    }
  } finally {
    await other.close();
  }
});
