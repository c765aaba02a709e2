/**
 * openid-connect sessions while a store is down. A session store (Redis) that is down must not
 * fail requests that authenticated another way: the new session is not stored (logged, counted,
 * no Set-Cookie) and the request goes on; reading an existing session still fails closed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { startGateway } from './helpers/gateway.ts';
import { startBadIdp, type BadIdp } from './helpers/bad-idp.ts';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { oidcDeck } from './helpers/oidc-deck.ts';
import { Sealer } from '../src/plugins/bundled/openid-connect/browser/seal.ts';

let echo: EchoServer;
let idp: BadIdp;
before(async () => {
  echo = await startEcho();
  idp = await startBadIdp();
});
after(async () => {
  await idp.close();
  await echo.close();
});

/** A port nothing listens on (taken, then freed). */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const secret = 'a-session-secret-for-the-outage-tests-0123456789';

test('Redis down: a bearer-authenticated request is served (200, no Set-Cookie); the failed save is logged and counted', async () => {
  const port = await deadPort();
  const config = [
    '      auth_methods: [bearer, session]',
    '      client_id: [c]',
    '      client_secret: [s]',
    `      session_secret: ${secret}`,
    '      session_storage: redis',
    '      redis:',
    '        host: 127.0.0.1',
    `        port: ${port}`,
    '        connect_timeout: 300',
    '        read_timeout: 300',
    '        send_timeout: 300',
    '',
  ].join('\n');
  const gw = await startGateway({ config: oidcDeck(echo.url, idp.issuer, config) });
  try {
    const token = await idp.sign({ sub: 'alex' });
    for (let i = 1; i <= 3; i++) {
      const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, 200, `request ${i}`);
      assert.equal(r.headers.get('set-cookie'), null, 'no session was stored: no cookie points at one');
      await r.body?.cancel();
    }
    const warnings = gw.logs.filter((l) => l.msg === 'openid-connect: the new session could not be stored; the request goes on without one');
    assert.deepEqual(warnings.map((l) => l.failures), [1, 2, 3]);
    assert.ok(!gw.logText().includes(token), 'the token is not logged');

    // A request that brings a session (sealed with the right secret, its record in Redis) fails closed.
    const cookie = await new Sealer([secret]).seal('session', { v: 1, aud: 'default', ref: 'some-session-id' });
    const r = await fetch(`${gw.proxyUrl}/api`, { headers: { cookie: `session=${cookie}` } });
    assert.equal(r.status, 500);
    await r.body?.cancel();
  } finally {
    await gw.close();
  }
});
