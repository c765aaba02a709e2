/**
 * JWT-formatted IdP answers from a real OpenID Provider (demo/idp.ts, oidc-provider with
 * `jwtIntrospection` and `jwtUserinfo`): `introspection_accept:
 * application/token-introspection+jwt` (RFC 9701) and `userinfo_accept: application/jwt` (OIDC
 * Core §5.3.2) for a client registered for signed answers; the JWTs are verified with the IdP's
 * keys and forwarded by `upstream_introspection_jwt_header` / `upstream_user_info_jwt_header`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { startGateway } from './helpers/gateway.ts';
import type { TestGateway } from './helpers/gateway.ts';
import { idpEchoSuite, startIdp } from './helpers/idp.ts';
import { oidcDeck } from './helpers/oidc-deck.ts';

const client = { client_id: 'kong-signed-answers', client_secret: 'kong-signed-answers-secret' };

const env = idpEchoSuite(() => startIdp({
  extraClients: [{
    ...client,
    redirect_uris: ['http://127.0.0.1/callback'],
    response_types: ['code'],
    grant_types: ['authorization_code', 'password'],
    token_endpoint_auth_method: 'client_secret_basic',
    introspection_signed_response_alg: 'RS256',
    userinfo_signed_response_alg: 'RS256',
  }],
}));

/** An opaque access token for alex, issued to the signed-answers client (password grant). */
async function accessToken(): Promise<string> {
  const r = await fetch(`${env.idp.issuer}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username: 'alex', password: 'doe', scope: 'openid email' }),
  });
  assert.equal(r.status, 200);
  return ((await r.json()) as { access_token: string }).access_token;
}

async function withGateway(config: string, fn: (gw: TestGateway) => Promise<void>): Promise<void> {
  const gw = await startGateway({ config: oidcDeck(env.echo.url, env.idp.issuer, `      client_id: [${client.client_id}]\n      client_secret: [${client.client_secret}]\n${config}`) });
  try {
    await fn(gw);
  } finally {
    await gw.close();
  }
}

test('introspection_accept application/token-introspection+jwt against oidc-provider: the signed answer authenticates and goes upstream', async () => {
  const token = await accessToken();
  await withGateway(`      auth_methods: [introspection]
      introspection_accept: application/token-introspection+jwt
      upstream_introspection_jwt_header: x-introspection-jwt
      upstream_headers_claims: [sub]
      upstream_headers_names: [x-sub]
`, async (gw) => {
    const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200);
    const echo = (await r.json()) as { headers: Record<string, string> };
    const jwt = echo.headers['x-introspection-jwt'];
    assert.equal(decodeProtectedHeader(jwt).typ, 'token-introspection+jwt');
    assert.equal((decodeJwt(jwt).token_introspection as { active: boolean }).active, true);
    assert.equal(echo.headers['x-sub'], 'alex');
  });
});

test('userinfo_accept application/jwt against oidc-provider: the signed user info authenticates and goes upstream', async () => {
  const token = await accessToken();
  await withGateway(`      auth_methods: [userinfo]
      userinfo_accept: application/jwt
      upstream_user_info_jwt_header: x-userinfo-jwt
      upstream_headers_claims: [email]
      upstream_headers_names: [x-email]
`, async (gw) => {
    const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200);
    const echo = (await r.json()) as { headers: Record<string, string> };
    const jwt = echo.headers['x-userinfo-jwt'];
    assert.equal(decodeJwt(jwt).sub, 'alex');
    assert.equal(decodeJwt(jwt).iss, env.idp.issuer);
    assert.ok(echo.headers['x-email']);
  });
});
