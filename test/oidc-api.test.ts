/**
 * openid-connect, API-client methods end to end: gateway + demo IdP (oidc-provider) + echo upstream.
 * Includes Kong's two how-tos (password grant then `?access_token=`; client credentials with
 * `audience`) with their decK snippets, and caching proven by counting the IdP's requests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from './helpers/gateway.ts';
import { startIdp } from '../demo/idp.ts';

import { idpEchoSuite } from './helpers/idp.ts';

const env = idpEchoSuite(startIdp);

function deck(plugin: string): string {
  return `_format_version: "3.0"
services:
  - name: example-service
    url: ${env.echo.url}/anything
    routes:
      - name: example-route
        paths: [/anything]
${plugin}`;
}

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

test('how-to: password grant, then the token in ?access_token= (bearer_token_param_type: query)', async () => {
  // The how-to's decK snippet, variables substituted.
  const gw = await startGateway({
    config: deck(`plugins:
  - name: openid-connect
    service: example-service
    config:
      issuer: ${env.idp.issuer}
      client_id:
      - kong
      client_secret:
      - kong-secret
      client_auth:
      - client_secret_post
      auth_methods:
      - bearer
      - password
      bearer_token_param_type:
      - query
`),
  });
  try {
    const r1 = await fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: basic('alex', 'doe') } });
    assert.equal(r1.status, 200);
    const e1 = (await r1.json()) as { headers: Record<string, string> };
    const auth = e1.headers.authorization ?? e1.headers.Authorization;
    assert.match(auth, /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    const token = auth.slice('Bearer '.length);
    const r2 = await fetch(`${gw.proxyUrl}/anything?access_token=${token}`);
    assert.equal(r2.status, 200);
    const e2 = (await r2.json()) as { headers: Record<string, string>; args: Record<string, string> };
    assert.equal(e2.headers.authorization ?? e2.headers.Authorization, `Bearer ${token}`);
    assert.equal(e2.args.access_token, undefined, 'hide_credentials removes the query token');
    const r3 = await fetch(`${gw.proxyUrl}/anything`);
    assert.equal(r3.status, 401);
    assert.deepEqual(await r3.json(), { message: 'Unauthorized' });
    assert.match(r3.headers.get('www-authenticate') ?? '', /^Bearer realm="/);
    const r4 = await fetch(`${gw.proxyUrl}/anything?access_token=${token}x`);
    assert.equal(r4.status, 401);
    assert.match(r4.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    assert.doesNotMatch(gw.logText(), new RegExp(token.split('.')[2]));
  } finally {
    await gw.close();
  }
});

test('caching: 100 bearer requests → 1 JWKS fetch; 100 password requests → 1 token call', async () => {
  const gw = await startGateway({
    config: deck(`plugins:
  - name: openid-connect
    config:
      issuer: ${env.idp.issuer}
      client_id: [kong]
      client_secret: [kong-secret]
      client_auth: [client_secret_post]
      auth_methods: [bearer, password]
`),
  });
  try {
    env.idp.resetCounts();
    let token = '';
    for (let i = 0; i < 100; i++) {
      const r = await fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: basic('alex', 'doe') } });
      assert.equal(r.status, 200);
      const e = (await r.json()) as { headers: Record<string, string> };
      token = (e.headers.authorization ?? e.headers.Authorization).slice(7);
    }
    for (let i = 0; i < 100; i++) {
      const r = await fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, 200);
      await r.body?.cancel();
    }
    const c = env.idp.counts();
    assert.equal(c['token:password'] ?? c.token, 1);
    assert.equal(c.jwks, 1);
    assert.equal(c.discovery, 1);
  } finally {
    await gw.close();
  }
});

test('concurrent identical password requests share one token call', async () => {
  const gw = await startGateway({
    config: deck(`plugins:
  - name: openid-connect
    config:
      issuer: ${env.idp.issuer}
      client_id: [kong]
      client_secret: [kong-secret]
      client_auth: [client_secret_post]
      auth_methods: [password]
`),
  });
  try {
    // Warm discovery first so only the token call is concurrent.
    const warm = await fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: basic('jane', 'doe2') } });
    assert.equal(warm.status, 200);
    await warm.body?.cancel();
    env.idp.resetCounts();
    const all = await Promise.all(Array.from({ length: 20 }, () => fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: basic('alex', 'doe') } })));
    for (const r of all) {
      assert.equal(r.status, 200);
      await r.body?.cancel();
    }
    assert.equal(env.idp.counts()['token:password'] ?? env.idp.counts().token, 1);
  } finally {
    await gw.close();
  }
});

test('how-to: client credentials in the Basic header, audience sent to the IdP', async () => {
  const gw = await startGateway({
    config: deck(`plugins:
  - name: openid-connect
    config:
      issuer: ${env.idp.issuer}
      client_id: [kong]
      client_secret: [kong-secret]
      client_auth: [client_secret_post]
      auth_methods: [client_credentials]
      audience: [http://myhttpbin.dev]
      client_credentials_param_type: [header]
`),
  });
  try {
    const r = await fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: basic('service-client', 'service-secret') } });
    assert.equal(r.status, 200, await r.clone().text());
    const e = (await r.json()) as { headers: Record<string, string> };
    const at = (e.headers.authorization ?? e.headers.Authorization).slice(7);
    const payload = JSON.parse(Buffer.from(at.split('.')[1], 'base64url').toString()) as { aud: unknown; client_id?: string };
    assert.ok([payload.aud].flat().includes('http://myhttpbin.dev'));
    const bad = await fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: basic('service-client', 'wrong') } });
    assert.equal(bad.status, 401);
  } finally {
    await gw.close();
  }
});
