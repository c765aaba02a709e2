/**
 * The remaining token-side openid-connect options, each exercised against the in-test IdP:
 * per-endpoint client authentication (`token_endpoint_auth_method`,
 * `introspection_endpoint_auth_method`), `verify_claims`, `domains`, `scopes_claim`,
 * `audience_claim`, `token_cache_key_include_scope`, `introspection_post_args_client_headers`,
 * `userinfo_headers_names`/`userinfo_headers_values`, `cache_ttl_neg`, `cache_tokens_salt`, the
 * `downstream_*` token and JSON headers and `downstream_headers`, the `client_jwk` members
 * (`key_ops`, `x5c`, `x5u`, `crv`, `dq`, `qi`; `oth` refused), `discovery_headers_*` and
 * `using_pseudo_issuer`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, jwtVerify } from 'jose';
import { withGateway } from './helpers/gateway.ts';
import type { TestGateway } from './helpers/gateway.ts';
import { startBadIdp } from './helpers/bad-idp.ts';
import { oidcDeck } from './helpers/oidc-deck.ts';
import { idpEchoSuite } from './helpers/idp.ts';
import { oidcConfigSchema } from '../src/plugins/bundled/openid-connect/schema.ts';

const env = idpEchoSuite(startBadIdp);

function deck(pluginConfig: string, issuer = env.idp.issuer): string {
  return oidcDeck(env.echo.url, issuer, `      client_id: [gw-client]\n      client_secret: [gw-secret]\n${pluginConfig}`);
}

type Echo = { headers: Record<string, string> };
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const last = (endpoint: string) => [...env.idp.requests()].reverse().find((r) => r.endpoint === endpoint)!;
const now = () => Math.floor(Date.now() / 1000);
const b64json = (v: string | null | undefined) => JSON.parse(Buffer.from(String(v), 'base64').toString('utf8')) as Record<string, unknown>;

async function get(gw: TestGateway, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; echo: Echo | null }> {
  const r = await fetch(`${gw.proxyUrl}${path}`, { headers });
  const text = await r.text();
  return { status: r.status, headers: r.headers, echo: r.status === 200 ? (JSON.parse(text) as Echo) : null };
}

test('token_endpoint_auth_method and introspection_endpoint_auth_method override client_auth per endpoint', async () => {
  const at = await env.idp.sign({ sub: 'alex' });
  env.idp.setTokenResponse({ access_token: at, token_type: 'Bearer', expires_in: 300 });
  env.idp.setIntrospection('opaque-auth', { active: true, sub: 'alex' });
  await withGateway(deck(`      auth_methods: [password, introspection]
      client_auth: [client_secret_basic]
      token_endpoint_auth_method: client_secret_post
      introspection_endpoint_auth_method: client_secret_basic
`), async (gw) => {
    assert.equal((await get(gw, '/api', { authorization: basic('alex', 'doe') })).status, 200);
    const token = last('token');
    assert.equal(new URLSearchParams(token.body).get('client_secret'), 'gw-secret');
    assert.equal(token.headers.authorization, undefined);
    assert.equal((await get(gw, '/api', { authorization: 'Bearer opaque-auth' })).status, 200);
    const intro = last('introspection');
    assert.equal(new URLSearchParams(intro.body).get('client_secret'), null);
    assert.match(String(intro.headers.authorization), /^Basic /);
  });
  await withGateway(deck(`      auth_methods: [introspection]
      client_auth: [client_secret_basic]
      introspection_endpoint_auth_method: client_secret_post
`), async (gw) => {
    assert.equal((await get(gw, '/api', { authorization: 'Bearer opaque-auth' })).status, 200);
    assert.equal(new URLSearchParams(last('introspection').body).get('client_secret'), 'gw-secret');
  });
});

test('verify_claims: false accepts an expired token with a good signature; true refuses it', async () => {
  const expired = await env.idp.sign({ sub: 'alex', exp: now() - 3600 });
  await withGateway(deck(`      auth_methods: [bearer]\n      verify_claims: false\n`), async (gw) => {
    assert.equal((await get(gw, '/api', { authorization: `Bearer ${expired}` })).status, 200);
  });
  await withGateway(deck(`      auth_methods: [bearer]\n      verify_claims: true\n`), async (gw) => {
    assert.equal((await get(gw, '/api', { authorization: `Bearer ${expired}` })).status, 401);
  });
});

test('domains: the hd claim must be one of them', async () => {
  const ours = await env.idp.sign({ sub: 'alex', hd: 'example.com' });
  const theirs = await env.idp.sign({ sub: 'alex', hd: 'other.example' });
  const none = await env.idp.sign({ sub: 'alex' });
  await withGateway(deck(`      auth_methods: [bearer]\n      domains: [example.com]\n`), async (gw) => {
    assert.equal((await get(gw, '/api', { authorization: `Bearer ${ours}` })).status, 200);
    assert.equal((await get(gw, '/api', { authorization: `Bearer ${theirs}` })).status, 401);
    assert.equal((await get(gw, '/api', { authorization: `Bearer ${none}` })).status, 401);
  });
});

test('scopes_claim and audience_claim: the claim paths the requirements read', async () => {
  const at = await env.idp.sign({ sub: 'alex', scope: 'none', authz: { scp: ['read', 'write'] }, target: ['api://orders'] });
  await withGateway(deck(`      auth_methods: [bearer]
      scopes_claim: [authz, scp]
      scopes_required: [write]
      audience_claim: [target]
      audience_required: ['api://orders']
`), async (gw) => {
    assert.equal((await get(gw, '/api', { authorization: `Bearer ${at}` })).status, 200);
  });
  // The default claims (scope, aud) do not have them: 403.
  await withGateway(deck(`      auth_methods: [bearer]\n      scopes_required: [write]\n`), async (gw) => {
    assert.equal((await get(gw, '/api', { authorization: `Bearer ${at}` })).status, 403);
  });
  await withGateway(deck(`      auth_methods: [bearer]\n      audience_required: ['api://orders']\n`), async (gw) => {
    assert.equal((await get(gw, '/api', { authorization: `Bearer ${at}` })).status, 403);
  });
});

test('token_cache_key_include_scope: tokens of different scopes are cached apart only when set', async () => {
  const at = await env.idp.sign({ sub: 'alex' });
  env.idp.setTokenResponse({ access_token: at, token_type: 'Bearer', expires_in: 300 });
  for (const [include, calls] of [[false, 1], [true, 2]] as const) {
    const user = `u-${randomUUID()}`;
    await withGateway(deck(`      auth_methods: [password]\n      token_post_args_client: [scope]\n      token_cache_key_include_scope: ${include}\n`), async (gw) => {
      env.idp.resetCounts();
      assert.equal((await get(gw, '/api?scope=openid', { authorization: basic(user, 'p') })).status, 200);
      assert.equal((await get(gw, '/api?scope=openid%20email', { authorization: basic(user, 'p') })).status, 200);
      assert.equal(env.idp.counts().token, calls);
    });
  }
});

test('introspection_post_args_client_headers: client headers become introspection form arguments', async () => {
  env.idp.setIntrospection('opaque-h', { active: true, sub: 'alex' });
  await withGateway(deck(`      auth_methods: [introspection]\n      introspection_post_args_client_headers: [x-tenant]\n`), async (gw) => {
    assert.equal((await get(gw, '/api', { authorization: 'Bearer opaque-h', 'x-tenant': 'acme' })).status, 200);
    assert.equal(new URLSearchParams(last('introspection').body).get('x-tenant'), 'acme');
  });
});

test('userinfo_headers_names / userinfo_headers_values: fixed headers on user info calls', async () => {
  env.idp.setUserinfo('opaque-u', { sub: 'alex' });
  await withGateway(deck(`      auth_methods: [userinfo]\n      userinfo_headers_names: [x-api-key]\n      userinfo_headers_values: [k-9]\n`), async (gw) => {
    assert.equal((await get(gw, '/api', { authorization: 'Bearer opaque-u' })).status, 200);
    assert.equal(last('userinfo').headers['x-api-key'], 'k-9');
  });
});

test('cache_ttl_neg: how long an inactive introspection answer is remembered (0: not at all)', async () => {
  for (const [neg, calls] of [['0', 3], ['60', 1]] as const) {
    await withGateway(deck(`      auth_methods: [introspection]\n      cache_ttl_neg: ${neg}\n`), async (gw) => {
      env.idp.resetCounts();
      for (let i = 0; i < 3; i++) assert.equal((await get(gw, '/api', { authorization: 'Bearer never-active' })).status, 401);
      assert.equal(env.idp.counts().introspection, calls);
    });
  }
});

test('cache_tokens_salt: token caches are shared (cluster cache) only by instances with the same salt', async () => {
  const at = await env.idp.sign({ sub: 'alex' });
  env.idp.setTokenResponse({ access_token: at, token_type: 'Bearer', expires_in: 300 });
  const user = `s-${randomUUID()}`;
  const cluster = `      auth_methods: [password]\n      cluster_cache_strategy: redis\n      cluster_cache_items: [tokens]\n`;
  env.idp.resetCounts();
  await withGateway(deck(`${cluster}      cache_tokens_salt: salt-a-${user}\n`), async (gw) => {
    assert.equal((await get(gw, '/api', { authorization: basic(user, 'p') })).status, 200);
  });
  await withGateway(deck(`${cluster}      cache_tokens_salt: salt-b-${user}\n`), async (gw) => {
    assert.equal((await get(gw, '/api', { authorization: basic(user, 'p') })).status, 200);
  });
  assert.equal(env.idp.counts().token, 2);
  await withGateway(deck(`${cluster}      cache_tokens_salt: salt-a-${user}\n`), async (gw) => {
    assert.equal((await get(gw, '/api', { authorization: basic(user, 'p') })).status, 200);
  });
  assert.equal(env.idp.counts().token, 2);
});

test('downstream token and JSON headers, downstream_headers', async () => {
  const at = await env.idp.sign({ sub: 'alex', profile: { team: 'blue' } });
  const idt = await env.idp.sign({ sub: 'alex', aud: 'gw-client' });
  env.idp.setTokenResponse({ access_token: at, id_token: idt, refresh_token: 'rt-9', token_type: 'Bearer', expires_in: 300 });
  env.idp.setUserinfo(at, { sub: 'alex', email: 'alex@example.com' });
  await withGateway(deck(`      auth_methods: [password]
      search_user_info: true
      downstream_id_token_header: x-id-token
      downstream_refresh_token_header: x-refresh-token
      downstream_user_info_header: x-userinfo
      downstream_headers:
        - header: x-team
          path: [profile, team]
`), async (gw) => {
    const r = await get(gw, '/api', { authorization: basic('alex', 'doe') });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-id-token'), idt);
    assert.equal(r.headers.get('x-refresh-token'), 'rt-9');
    assert.equal(b64json(r.headers.get('x-userinfo')).email, 'alex@example.com');
    assert.equal(r.headers.get('x-team'), 'blue');
  });
  env.idp.setIntrospection('opaque-d', { active: true, sub: 'alex', scope: 'x' });
  await withGateway(deck(`      auth_methods: [introspection]\n      downstream_introspection_header: x-introspection\n`), async (gw) => {
    const r = await get(gw, '/api', { authorization: 'Bearer opaque-d' });
    assert.equal(r.status, 200);
    assert.equal(b64json(r.headers.get('x-introspection')).scope, 'x');
  });
});

test('client_jwk members: an RSA key with key_ops, x5c, x5u, x5t, x5t#S256, dq, qi and an EC key with crv sign private_key_jwt assertions; oth is refused', async () => {
  const at = await env.idp.sign({ sub: 'alex' });
  env.idp.setTokenResponse({ access_token: at, token_type: 'Bearer', expires_in: 300 });
  for (const alg of ['RS256', 'ES256'] as const) {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const priv = { ...(await exportJWK(privateKey)), kid: `k-${alg}`, alg, key_ops: ['sign'], x5u: 'https://keys.example/k.pem', x5c: ['MIIBfake'], x5t: 'c2hhMS10aHVtYnByaW50', 'x5t#S256': 'c2hhMjU2LXRodW1icHJpbnQ' };
    if (alg === 'RS256') assert.ok(priv.dq && priv.qi);
    else assert.equal(priv.crv, 'P-256');
    await withGateway(deck(`      auth_methods: [password]\n      client_auth: [private_key_jwt]\n      client_jwk:\n        - ${JSON.stringify(priv)}\n`), async (gw) => {
      assert.equal((await get(gw, '/api', { authorization: basic(`k-${randomUUID()}`, 'p') })).status, 200);
      const form = new URLSearchParams(last('token').body);
      const { protectedHeader } = await jwtVerify(form.get('client_assertion')!, await importJWK(await exportJWK(publicKey), alg));
      assert.equal(protectedHeader.kid, `k-${alg}`);
    });
  }
  const r = oidcConfigSchema.safeParse({ issuer: 'https://idp.example', client_jwk: [{ kty: 'RSA', n: 'x', e: 'AQAB', d: 'y', oth: 'z' }] });
  assert.equal(r.success, false);
  assert.deepEqual(r.error!.issues.map((i) => i.path.join('.')), ['client_jwk.0.oth']);
});

test('discovery_headers_names / discovery_headers_values: sent with the discovery request', async () => {
  const at = await env.idp.sign({ sub: 'alex' });
  await withGateway(deck(`      auth_methods: [bearer]\n      discovery_headers_names: [x-discovery-key]\n      discovery_headers_values: [d-1]\n`), async (gw) => {
    assert.equal((await get(gw, '/api', { authorization: `Bearer ${at}` })).status, 200);
    assert.equal(last('discovery').headers['x-discovery-key'], 'd-1');
  });
});

test('using_pseudo_issuer: no discovery; the configured endpoints and keys are used', async () => {
  const at = await env.idp.sign({ sub: 'alex' });
  env.idp.setIntrospection('opaque-p', { active: true, sub: 'alex' });
  env.idp.resetCounts();
  await withGateway(deck(`      auth_methods: [bearer, introspection]
      using_pseudo_issuer: true
      jwks_endpoint: ${env.idp.issuer}/jwks
      introspection_endpoint: ${env.idp.issuer}/introspect
`), async (gw) => {
    assert.equal((await get(gw, '/api', { authorization: `Bearer ${at}` })).status, 200);
    assert.equal((await get(gw, '/api', { authorization: 'Bearer opaque-p' })).status, 200);
    assert.equal(env.idp.counts().discovery ?? 0, 0);
    assert.equal(env.idp.counts().jwks, 1);
  });
});
