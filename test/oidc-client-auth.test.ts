/**
 * openid-connect → IdP client authentication (client_secret_basic/post/jwt, private_key_jwt with
 * a configured `client_jwk` or the plugin-generated key published at the Admin API), and client
 * selection with `client_arg`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair } from 'jose';
import { startGateway } from './helpers/gateway.ts';
import type { TestGateway } from './helpers/gateway.ts';
import { startIdp } from '../demo/idp.ts';
import type { DemoIdp } from '../demo/idp.ts';
import { startEcho } from '../demo/echo.ts';
import type { EchoServer } from '../demo/echo.ts';
import { oidcDeck } from './helpers/oidc-deck.ts';

let echo: EchoServer;
before(async () => {
  echo = await startEcho();
});
after(async () => {
  await echo.close();
});

function deck(issuer: string, pluginConfig: string): string {
  return oidcDeck(echo.url, issuer, `      auth_methods: [password]\n${pluginConfig}`);
}

const alex = { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}` };
const isJwt = (t: string) => t.split('.').length === 3;

async function upstreamToken(gw: TestGateway, path = '/api', headers: Record<string, string> = alex): Promise<string> {
  const r = await fetch(`${gw.proxyUrl}${path}`, { headers });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  const auth = (JSON.parse(text) as { headers: Record<string, string> }).headers.authorization;
  assert.match(auth, /^Bearer /);
  return auth.slice(7);
}

test('client_secret_basic, client_secret_post and client_secret_jwt', async () => {
  const idp = await startIdp();
  try {
    for (const [id, secret, method] of [
      ['kong-basic', 'kong-basic-secret', 'client_secret_basic'],
      ['kong', 'kong-secret', 'client_secret_post'],
      ['kong-secret-jwt', 'kong-secret-jwt-secret-0123456789abcdef', 'client_secret_jwt'],
    ]) {
      const gw = await startGateway({ config: deck(idp.issuer, `      client_id: [${id}]\n      client_secret: [${secret}]\n      client_auth: [${method}]\n`) });
      try {
        assert.ok(await upstreamToken(gw), method);
        const wrong = await startGateway({ config: deck(idp.issuer, `      client_id: [${id}]\n      client_secret: [wrong-secret-0123456789abcdef-xx]\n      client_auth: [${method}]\n`) });
        try {
          const r = await fetch(`${wrong.proxyUrl}/api`, { headers: alex });
          assert.equal(r.status, 401, `${method} with a wrong secret`);
          await r.body?.cancel();
        } finally {
          await wrong.close();
        }
      } finally {
        await gw.close();
      }
    }
  } finally {
    await idp.close();
  }
});

test('private_key_jwt with a configured client_jwk', async () => {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const pub = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const priv = { ...(await exportJWK(privateKey)), kid: 'k1', alg: 'RS256' };
  const idp = await startIdp({ privateKeyJwtJwks: { keys: [pub] } });
  const gw = await startGateway({
    config: deck(idp.issuer, `      client_id: [kong-private-key-jwt]\n      client_auth: [private_key_jwt]\n      client_jwk:\n        - ${JSON.stringify(priv)}\n`),
  });
  try {
    assert.ok(await upstreamToken(gw));
  } finally {
    await gw.close();
    await idp.close();
  }
});

test('private_key_jwt: a client_jwk without alg signs with its key type; a key that cannot sign is a 500, not a 401', async () => {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const pub = { ...(await exportJWK(publicKey)), kid: 'ec1', alg: 'ES256', use: 'sig' };
  // decK exports write null for the members a JWK does not have.
  const priv = { ...(await exportJWK(privateKey)), kid: 'ec1', alg: null, use: null };
  const idp = await startIdp({ privateKeyJwtJwks: { keys: [pub] } });
  const base = `      client_id: [kong-private-key-jwt]\n      client_auth: [private_key_jwt]\n      client_jwk:\n        - ${JSON.stringify(priv)}\n`;
  const gw = await startGateway({ config: deck(idp.issuer, base) });
  // An EC key asked to sign RS256: the gateway's configuration is wrong, the caller's password is not.
  const broken = await startGateway({ config: deck(idp.issuer, `${base}      client_alg: [RS256]\n`) });
  try {
    assert.ok(await upstreamToken(gw));
    const r = await fetch(`${broken.proxyUrl}/api`, { headers: alex });
    assert.equal(r.status, 500);
    assert.deepEqual(await r.json(), { message: 'An unexpected error occurred' });
    assert.match(broken.logText(), /private_key_jwt for client 1: .*alg/);
    assert.ok(!broken.logText().includes(String(priv.d)), 'no private key in the log');
  } finally {
    await gw.close();
    await broken.close();
    await idp.close();
  }
});

test('private_key_jwt with the plugin-generated key, published at GET /openid-connect/jwks', async () => {
  // The IdP must know where the gateway publishes its keys, so the gateway starts first.
  const gw = await startGateway({ config: { _format_version: '3.0' } });
  let idp: DemoIdp | null = null;
  try {
    const before = await fetch(`${gw.adminUrl}/openid-connect/jwks`);
    assert.equal(before.status, 404);
    await before.body?.cancel();
    idp = await startIdp({ privateKeyJwtJwksUri: `${gw.adminUrl}/openid-connect/jwks` });
    assert.ok(await gw.reload(deck(idp.issuer, '      client_id: [kong-private-key-jwt]\n      client_auth: [private_key_jwt]\n')));
    assert.ok(await upstreamToken(gw));
    const r = await fetch(`${gw.adminUrl}/openid-connect/jwks`);
    assert.equal(r.status, 200);
    const jwks = (await r.json()) as { keys: Record<string, unknown>[] };
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0].kty, 'RSA');
    assert.equal(jwks.keys[0].d, undefined, 'private parts are never published');
  } finally {
    await gw.close();
    await idp?.close();
  }
});

test('client_arg selects the client by id or 1-based index; default is the first', async () => {
  const idp = await startIdp();
  // kong issues JWT access tokens, kong-basic opaque ones: the token shape shows which client ran.
  const gw = await startGateway({
    config: deck(idp.issuer, `      client_id: [kong, kong-basic]\n      client_secret: [kong-secret, kong-basic-secret]\n      client_auth: [client_secret_post, client_secret_basic]\n`),
  });
  try {
    assert.ok(isJwt(await upstreamToken(gw)));
    assert.ok(!isJwt(await upstreamToken(gw, '/api?client_id=2')));
    assert.ok(!isJwt(await upstreamToken(gw, '/api', { ...alex, client_id: 'kong-basic' })));
    assert.ok(isJwt(await upstreamToken(gw, '/api?client_id=unknown')));
  } finally {
    await gw.close();
    await idp.close();
  }
});

test('client_alg picks the assertion algorithm: client_secret_jwt with HS512, private_key_jwt with a generated ES256 or EdDSA key', async () => {
  const { startBadIdp } = await import('./helpers/bad-idp.ts');
  const { createLocalJWKSet, decodeProtectedHeader, jwtVerify } = await import('jose');
  const idp = await startBadIdp();
  idp.setTokenResponse({ access_token: 'opaque-access-token', token_type: 'Bearer', expires_in: 300 });
  const secret = 'a-long-client-secret-0123456789abcdef-0123456789abcdef-0123456789';
  const lastAssertion = (): string => {
    const req = idp.requests().filter((q) => q.endpoint === 'token').at(-1);
    const assertion = new URLSearchParams(req?.body ?? '').get('client_assertion');
    assert.ok(assertion, `a client assertion was sent: ${req?.body}`);
    return assertion;
  };
  try {
    const gw = await startGateway({ config: deck(idp.issuer, `      client_id: [c1]\n      client_secret: [${secret}]\n      client_auth: [client_secret_jwt]\n      client_alg: [HS512]\n`) });
    try {
      assert.ok(await upstreamToken(gw));
      const assertion = lastAssertion();
      assert.equal(decodeProtectedHeader(assertion).alg, 'HS512');
      const { payload } = await jwtVerify(assertion, new TextEncoder().encode(secret), { algorithms: ['HS512'], issuer: 'c1', subject: 'c1' });
      assert.ok(payload.jti && payload.exp && payload.aud, 'jti, exp and aud (RFC 7523 §3)');
    } finally {
      await gw.close();
    }
    for (const alg of ['ES256', 'EdDSA']) {
      const pk = await startGateway({ config: deck(idp.issuer, `      client_id: [c2]\n      client_auth: [private_key_jwt]\n      client_alg: [${alg}]\n`) });
      try {
        assert.ok(await upstreamToken(pk));
        const assertion = lastAssertion();
        assert.equal(decodeProtectedHeader(assertion).alg, alg);
        const jwks = (await (await fetch(`${pk.adminUrl}/openid-connect/jwks`)).json()) as { keys: Array<Record<string, unknown>> };
        assert.ok(jwks.keys.some((k) => k.alg === alg), `the ${alg} key is published: ${JSON.stringify(jwks.keys.map((k) => k.alg))}`);
        assert.ok(jwks.keys.every((k) => k.d === undefined));
        await jwtVerify(assertion, createLocalJWKSet(jwks as never), { algorithms: [alg], issuer: 'c2', subject: 'c2' });
      } finally {
        await pk.close();
      }
    }
  } finally {
    await idp.close();
  }
});

test('client_auth unset: the first advertised method the configured credentials allow (a secret is never passed over for none or a generated key)', async () => {
  const { startBadIdp } = await import('./helpers/bad-idp.ts');
  const idp = await startBadIdp({ discovery: { token_endpoint_auth_methods_supported: ['none', 'private_key_jwt', 'client_secret_post', 'client_secret_basic'] } });
  idp.setTokenResponse({ access_token: 'opaque-access-token', token_type: 'Bearer', expires_in: 300 });
  const lastToken = () => idp.requests().filter((q) => q.endpoint === 'token').at(-1)!;
  try {
    const withSecret = await startGateway({ config: deck(idp.issuer, '      client_id: [c1]\n      client_secret: [s3cret]\n') });
    try {
      assert.ok(await upstreamToken(withSecret));
      const form = new URLSearchParams(lastToken().body);
      assert.equal(form.get('client_secret'), 's3cret', 'client_secret_post, the first method a secret allows');
      assert.equal(form.get('client_assertion'), null);
    } finally {
      await withSecret.close();
    }
    const bare = await startGateway({ config: deck(idp.issuer, '      client_id: [c2]\n') });
    try {
      assert.ok(await upstreamToken(bare));
      const req = lastToken();
      assert.equal(new URLSearchParams(req.body).get('client_id'), 'c2', 'none: the client id alone');
      assert.equal(new URLSearchParams(req.body).get('client_assertion'), null);
      assert.equal(req.headers.authorization, undefined);
    } finally {
      await bare.close();
    }
  } finally {
    await idp.close();
  }
});
