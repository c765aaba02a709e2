/**
 * The grant methods (password, client_credentials): which rejected credentials
 * may fall through to the client credentials grant, and what the token cache is keyed by.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startGateway } from './helpers/gateway.ts';
import type { TestGateway } from './helpers/gateway.ts';
import { startIdp } from '../demo/idp.ts';
import { oidcDeck } from './helpers/oidc-deck.ts';

import { idpEchoSuite } from './helpers/idp.ts';

const env = idpEchoSuite(startIdp);

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

async function withGateway(config: string, fn: (gw: TestGateway) => Promise<void>): Promise<void> {
  const gw = await startGateway({ config: oidcDeck(env.echo.url, env.idp.issuer, config) });
  try {
    await fn(gw);
  } finally {
    await gw.close();
  }
}

test('a wrong password in the query or body is an invalid credential (401 invalid_token), even with client_credentials enabled', async () => {
  await withGateway(`      client_id: [kong]
      client_secret: [kong-secret]
      auth_methods: [password, client_credentials]`, async (gw) => {
    const viaQuery = await fetch(`${gw.proxyUrl}/api?username=alex&password=wrong`);
    assert.equal(viaQuery.status, 401);
    assert.match(viaQuery.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    const viaBody = await fetch(`${gw.proxyUrl}/api`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'username=alex&password=wrong',
    });
    assert.equal(viaBody.status, 401);
    assert.match(viaBody.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    // The shared Basic header still goes on to the client credentials grant.
    env.idp.resetCounts();
    const shared = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: basic('service-client', 'service-secret') } });
    assert.equal(shared.status, 200);
    assert.equal(env.idp.counts()['token:client_credentials'], 1);
  });
});

test('cache_tokens: client headers passed to the token endpoint (token_headers_client) are part of the cache key', async () => {
  await withGateway(`      client_id: [kong]
      client_secret: [kong-secret]
      auth_methods: [password]
      token_headers_client: [x-tenant]`, async (gw) => {
    env.idp.resetCounts();
    const call = (tenant: string) => fetch(`${gw.proxyUrl}/api`, { headers: { authorization: basic('alex', 'doe'), 'x-tenant': tenant } });
    assert.equal((await call('a')).status, 200);
    assert.equal((await call('a')).status, 200);
    assert.equal(env.idp.counts()['token:password'], 1, 'same credentials, same headers: served from the cache');
    assert.equal((await call('b')).status, 200);
    assert.equal(env.idp.counts()['token:password'], 2, 'another header value may get another token: not the cached one');
  });
});

test('a token or user info endpoint that answers 200 with a body that is not JSON is an IdP failure (500), not a rejection (401)', async () => {
  // Discovery is fine; every other endpoint answers 200 with broken JSON.
  const idpSrv = createServer((req, res) => {
    const base = `http://127.0.0.1:${(idpSrv.address() as AddressInfo).port}`;
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') {
      res.end(JSON.stringify({ issuer: base, token_endpoint: `${base}/token`, userinfo_endpoint: `${base}/userinfo`, jwks_uri: `${base}/jwks` }));
      return;
    }
    req.resume();
    req.on('end', () => res.end('{"access_token": not json'));
  });
  await new Promise<void>((resolve) => idpSrv.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(idpSrv.address() as AddressInfo).port}`;
  const gw = await startGateway({
    config: oidcDeck(env.echo.url, issuer, `      client_id: [c]
      client_secret: [s]
      auth_methods: [userinfo, password]`),
  });
  try {
    const password = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: basic('alex', 'doe') } });
    assert.equal(password.status, 500);
    assert.deepEqual(await password.json(), { message: 'An unexpected error occurred' });
    const userinfo = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: 'Bearer some-opaque-token' } });
    assert.equal(userinfo.status, 500);
  } finally {
    await gw.close();
    idpSrv.closeAllConnections();
    await new Promise((resolve) => idpSrv.close(resolve));
  }
});
