/**
 * openid-connect when the IdP misbehaves at the network level: a hanging IdP is cut off by
 * `timeout`, an IdP that was down at start-up is used once it comes up, endpoint overrides.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from './helpers/gateway.ts';
import { startBadIdp } from './helpers/bad-idp.ts';
import type { BadIdp } from './helpers/bad-idp.ts';
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

function deck(issuer: string, extra = ''): string {
  return oidcDeck(echo.url, issuer, `      auth_methods: [bearer, password]\n      client_id: [c]\n      client_secret: [s]\n${extra}`);
}

test('a hanging IdP is cut off by `timeout`: 500 quickly, the gateway stays up', async () => {
  const idp = await startBadIdp();
  idp.setDiscoveryFailure('hang');
  const gw = await startGateway({ config: deck(idp.issuer, '      timeout: 300\n') });
  try {
    const t0 = Date.now();
    const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${await idp.sign({ sub: 'a' })}` } });
    assert.equal(r.status, 500);
    await r.body?.cancel();
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
  } finally {
    await gw.close();
    idp.setDiscoveryFailure(null);
    await idp.close();
  }
});

test('an IdP that is down at start-up is used once it is up (after the 5 s back-off)', async () => {
  // Reserve a port, free it, and start the IdP there later.
  const probe = await startBadIdp();
  const port = probe.port;
  await probe.close();
  const issuer = `http://127.0.0.1:${port}`;
  const gw = await startGateway({ config: deck(issuer) });
  let idp: BadIdp | null = null;
  try {
    const r1 = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: 'Bearer a.b.c' } });
    assert.equal(r1.status, 500);
    await r1.body?.cancel();
    idp = await startBadIdp({ port });
    await new Promise((r) => setTimeout(r, 5200));
    const r2 = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${await idp.sign({ sub: 'a' })}` } });
    assert.equal(r2.status, 200);
    await r2.body?.cancel();
  } finally {
    await gw.close();
    await idp?.close();
  }
});

test('endpoint overrides: token_endpoint from the config wins over discovery', async () => {
  const idp = await startBadIdp();
  const other = await startBadIdp();
  const at = await idp.sign({ sub: 'alex' });
  other.setTokenResponse({ access_token: at, token_type: 'Bearer', expires_in: 60 });
  const gw = await startGateway({ config: deck(idp.issuer, `      token_endpoint: ${other.issuer}/token\n`) });
  try {
    const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}` } });
    assert.equal(r.status, 200);
    await r.body?.cancel();
    assert.equal(other.counts().token, 1);
    assert.equal(idp.counts().token ?? 0, 0);
  } finally {
    await gw.close();
    await other.close();
    await idp.close();
  }
});

test('ssl_verify: an IdP with an untrusted certificate is refused by default and accepted with ssl_verify: false', async () => {
  const { selfSigned } = await import('./helpers/certs.ts');
  const https = await import('node:https');
  const keys = await startBadIdp();
  const tls = selfSigned();
  const server = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const issuer = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
    else if (req.url === '/jwks') res.end(JSON.stringify(keys.jwks()));
    else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  const token = await keys.sign({ sub: 'alex', iss: issuer });
  try {
    for (const [sslVerify, status] of [['true', 500], ['false', 200]] as const) {
      const gw = await startGateway({ config: deck(issuer, `      ssl_verify: ${sslVerify}\n`) });
      try {
        const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(r.status, status, `ssl_verify: ${sslVerify}`);
        await r.body?.cancel();
      } finally {
        await gw.close();
      }
    }
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await keys.close();
  }
});

test('a plugin config change while the IdP is down keeps the discovered document and keys (the recorded discovery cache)', async () => {
  const idp = await startBadIdp();
  const gw = await startGateway({ config: deck(idp.issuer) });
  const call = async (sub: string): Promise<number> => {
    const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${await idp.sign({ sub })}` } });
    await r.body?.cancel();
    return r.status;
  };
  try {
    assert.equal(await call('a'), 200);
    idp.setDiscoveryFailure('http500');
    idp.setJwksFailure('http500');
    // A changed setting makes a new plugin instance, with empty caches of its own.
    assert.ok(await gw.reload(deck(idp.issuer, '      leeway: 5\n')));
    assert.equal(await call('b'), 200, 'the new instance verifies with the keys recorded before the outage');
    // A purge through the Admin API removes the record: nothing left to fall back on.
    const del = await fetch(`${gw.adminUrl}/openid-connect/issuers`, { method: 'DELETE' });
    assert.equal(del.status, 204);
    assert.ok(await gw.reload(deck(idp.issuer, '      leeway: 6\n')));
    assert.equal(await call('c'), 500);
  } finally {
    await gw.close();
    idp.setDiscoveryFailure(null);
    idp.setJwksFailure(null);
    await idp.close();
  }
});
