/**
 * openid-connect sessions while a store is down.
 *   - The config store (PostgreSQL, connections refused): cookie-stored sessions keep being
 *     served (what they read from the store, logout markers and the generated secret, comes from
 *     memory) and are checked against the store again once it is back; the Admin API answers 503.
 *   - The session store (Redis): requests that authenticated another way are served; the new
 *     session is not stored (logged, counted, no Set-Cookie); reading an existing session still
 *     fails closed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { randomUUID } from 'node:crypto';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { relay } from './helpers/tcp-relay.ts';
import { startIdp } from './helpers/idp.ts';
import { startBadIdp, type BadIdp } from './helpers/bad-idp.ts';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { oidcDeck } from './helpers/oidc-deck.ts';
import { parseExposition } from './helpers/prometheus.ts';
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

    // Each failed store operation is counted (issue 18: session store errors), by storage and operation.
    const m = parseExposition(await (await fetch(`${gw.adminUrl}/metrics`)).text());
    const failedWrites = m.find('portcullis_oidc_session_store_errors_total', { storage: 'redis' }).filter((x) => x.labels.operation !== 'get').reduce((n, x) => n + x.value, 0);
    assert.ok(failedWrites >= 3, `the three failed saves are counted (${failedWrites})`);
    assert.ok(m.value('portcullis_oidc_session_store_errors_total', { storage: 'redis', operation: 'get' }) >= 1, 'the failed read is counted');
  } finally {
    await gw.close();
  }
});

/** Admin API JSON request; the status and body. */
async function admin(gw: TestGateway, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const r = await fetch(`${gw.adminUrl}${path}`, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

function pgEnv(port: number, schema: string): Record<string, string> {
  return {
    PORTCULLIS_PG_HOST: '127.0.0.1',
    PORTCULLIS_PG_PORT: String(port),
    PORTCULLIS_PG_USER: 'postgres',
    PORTCULLIS_PG_DATABASE: 'test',
    PORTCULLIS_PG_SCHEMA: schema,
  };
}

test('PostgreSQL refusing connections: cookie sessions stay at 200, the Admin API answers 503, and the store is read again once back', async () => {
  const demo = await startIdp();
  const schema = `oidc_outage_${randomUUID().replaceAll('-', '')}`;
  const cut = relay(5432);
  const port = await cut.start();
  // Node A reaches PostgreSQL through the relay; node B directly (another node of the cluster).
  const a = await startGateway({ database: 'postgres', env: pgEnv(port, schema) });
  const b = await startGateway({ database: 'postgres', env: pgEnv(5432, schema) });
  try {
    assert.equal((await admin(a, 'POST', '/services', { name: 's', url: `${echo.url}/anything` })).status, 201);
    assert.equal((await admin(a, 'POST', '/services/s/routes', { name: 'r', paths: ['/api'] })).status, 201);
    const plugin = {
      name: 'openid-connect',
      config: {
        issuer: demo.issuer,
        auth_methods: ['password', 'session'],
        client_id: ['kong'],
        client_secret: ['kong-secret'],
        client_auth: ['client_secret_post'],
        logout_uri_suffix: '/logout',
        // No session_secret: generated once and kept in the database (Kong's behaviour).
      },
    };
    const created = await admin(a, 'POST', '/plugins', plugin);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    // Both nodes serve the route (the change reaches B through the database).
    const ready = async (gw: TestGateway) => {
      for (let i = 0; i < 100; i++) {
        const r = await fetch(`${gw.proxyUrl}/api`);
        await r.body?.cancel();
        if (r.status === 401) return;
        await new Promise((res) => setTimeout(res, 100));
      }
      assert.fail('the plugin did not reach the node');
    };
    await ready(a);
    await ready(b);

    const login = await fetch(`${a.proxyUrl}/api`, { headers: { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}` } });
    assert.equal(login.status, 200);
    await login.body?.cancel();
    const cookie = login.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    assert.match(cookie, /^session=/);
    const withCookie = async (gw: TestGateway) => {
      const r = await fetch(`${gw.proxyUrl}/api`, { headers: { cookie } });
      await r.body?.cancel();
      return r.status;
    };
    assert.equal(await withCookie(a), 200);

    await cut.stop();
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push(await withCookie(a));
    assert.deepEqual(statuses, new Array(20).fill(200), 'every cookie session request is served during the outage');
    const storeCalls = [
      ['GET', '/'], ['GET', '/config'], ['GET', '/tags'], ['GET', '/services/s'], ['PATCH', '/services/s', { retries: 2 }],
      ['GET', '/routes/r/service'], ['DELETE', '/consumers/x'], ['GET', '/consumers'], ['POST', '/consumers', { username: 'x' }],
      ['GET', '/plugins'], ['GET', '/openid-connect/issuers'], ['DELETE', '/openid-connect/issuers'], ['GET', '/openid-connect/jwks'],
    ] as const;
    for (const [method, path, body] of storeCalls) {
      const r = await admin(a, method, path, body);
      assert.equal(r.status, 503, `${method} ${path}: ${JSON.stringify(r.body)}`);
    }

    // Meanwhile the session is logged out on node B (its ended marker goes to the database).
    const out = await fetch(`${b.proxyUrl}/api/logout`, { method: 'POST', headers: { cookie }, redirect: 'manual' });
    assert.ok(out.status < 400, `logout on node B: ${out.status}`);
    await out.body?.cancel();
    assert.equal(await withCookie(a), 200, 'node A cannot know yet');

    await cut.start();
    let refused = false;
    for (let i = 0; i < 50 && !refused; i++) {
      await new Promise((res) => setTimeout(res, 100));
      refused = (await withCookie(a)) === 401;
    }
    assert.ok(refused, 'once PostgreSQL is back, node A reads the logout marker again');
  } finally {
    await a.close();
    await b.close();
    await cut.stop();
    await demo.close();
  }
});
