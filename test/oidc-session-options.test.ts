/**
 * Session options of lua-resty-session 4 as Kong exposes them: `session_bind` (ip, scheme,
 * user-agent), `session_hash_storage_key`, `session_store_metadata` and `session_hash_subject`,
 * against the demo IdP with Redis session storage (127.0.0.1:6379) where a store is needed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request } from 'undici';
import { Redis } from 'ioredis';
import { CookieJar, send } from './helpers/fake-ctx.ts';
import { baseConfig, setup, type Setup } from './helpers/oidc-browser-setup.ts';
import { startGateway } from './helpers/gateway.ts';
import { startIdp } from './helpers/idp.ts';
import { startEcho } from '../demo/echo.ts';

const basic = { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}` };
const api = { accept: 'application/json' };

function sid(body: string): string {
  return (JSON.parse(body) as { extra: { sid: string } }).extra.sid;
}

describe('session_bind: user-agent', () => {
  let s: Setup;
  before(async () => {
    s = await setup({ ...baseConfig, session_bind: ['user-agent'] });
  });
  after(() => s.close());

  it('a session opens only with the User-Agent it was created with', async () => {
    const jar = new CookieJar();
    const login = await send(jar, `${s.harness.url}/login`, { headers: { ...basic, 'user-agent': 'browser-A' } });
    assert.equal(login.status, 200);
    const cookie = jar.get(s.harness.url, 'session');
    assert.ok(cookie);
    assert.equal((await send(jar, `${s.harness.url}/x`, { headers: { ...api, 'user-agent': 'browser-A' } })).status, 200);
    // The same cookie copied into another browser.
    const thief = new CookieJar();
    thief.store(s.harness.url, [`session=${cookie}`]);
    const stolen = await send(thief, `${s.harness.url}/x`, { headers: { ...api, 'user-agent': 'browser-B' } });
    assert.equal(stolen.status, 401);
    assert.ok(stolen.setCookies.some((c) => c.startsWith('session=;') && c.includes('Max-Age=0')), 'the copy is removed');
    // The original browser still has its session (twice: the first open is remembered).
    assert.equal((await send(jar, `${s.harness.url}/x`, { headers: { ...api, 'user-agent': 'browser-A' } })).status, 200);
    assert.equal((await send(thief, `${s.harness.url}/x`, { headers: { ...api, 'user-agent': 'browser-B' } })).status, 401);
  });
});

describe('session_bind: ip', () => {
  let s: Setup;
  before(async () => {
    s = await setup({ ...baseConfig, session_bind: ['ip'] });
  });
  after(() => s.close());

  it('a session opens only from the client address it was created from', async () => {
    const jar = new CookieJar();
    assert.equal((await send(jar, `${s.harness.url}/login`, { headers: basic })).status, 200);
    const cookie = jar.get(s.harness.url, 'session')!;
    assert.equal((await send(jar, `${s.harness.url}/x`, { headers: api })).status, 200);
    // Same cookie, same User-Agent, from 127.0.0.2 (another loopback address).
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${s.harness.url}/x`, { localAddress: '127.0.0.2', headers: { ...api, cookie: `session=${cookie}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 401);
    assert.equal((await send(jar, `${s.harness.url}/x`, { headers: api })).status, 200);
  });
});

describe('session_bind: scheme (through the gateway, with an X-Forwarded-Proto from a trusted address)', () => {
  it('is refused for a scheme other than the one the session was created over', async (t) => {
    const idp = await startIdp();
    t.after(() => idp.close());
    const echo = await startEcho();
    t.after(() => echo.close());
    const gw = await startGateway({
      env: { PORTCULLIS_TRUSTED_IPS: '127.0.0.1' },
      config: {
        services: [{
          name: 'echo', url: `http://127.0.0.1:${echo.port}`,
          routes: [{ name: 'r', paths: ['/anything'] }],
          plugins: [{ name: 'openid-connect', config: {
            issuer: idp.issuer, client_id: ['kong'], client_secret: ['kong-secret'], client_auth: ['client_secret_post'],
            auth_methods: ['password', 'session'], session_secret: baseConfig.session_secret, session_bind: ['scheme'],
          } }],
        }],
      },
    });
    t.after(() => gw.close());
    const g = { proxy: gw.proxyUrl };
    const jar = new CookieJar();
    const login = await send(jar, `${g.proxy}/anything`, { headers: { ...basic, 'x-forwarded-proto': 'https' } });
    assert.equal(login.status, 200, login.body);
    const cookie = login.setCookies.find((c) => c.startsWith('session='))!.split(';')[0];
    const same = await request(`${g.proxy}/anything`, { headers: { cookie, 'x-forwarded-proto': 'https' } });
    await same.body.text();
    assert.equal(same.statusCode, 200);
    const other = await request(`${g.proxy}/anything`, { headers: { cookie, 'x-forwarded-proto': 'http' } });
    await other.body.text();
    assert.equal(other.statusCode, 401);
  });
});

describe('server-side options (Redis storage)', () => {
  const prefix = `opt-${randomBytes(4).toString('hex')}`;
  const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });
  after(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  async function withStore(extra: Record<string, unknown>, p: string, fn: (s: Setup) => Promise<void>): Promise<void> {
    const s = await setup({ ...baseConfig, session_storage: 'redis', redis: { host: '127.0.0.1', port: 6379, prefix: p }, ...extra });
    try {
      await fn(s);
    } finally {
      await s.close();
    }
  }

  it('without session_hash_storage_key the record is stored under the session id', async () => {
    await withStore({}, `${prefix}a`, async (s) => {
      const jar = new CookieJar();
      const id = sid((await send(jar, `${s.harness.url}/login`, { headers: basic })).body);
      assert.equal(await redis.exists(`${prefix}a:oidc:session:${id}`), 1);
    });
  });

  it('session_hash_storage_key: the store key is the SHA-256 of the session id, never the id', async () => {
    await withStore({ session_hash_storage_key: true }, `${prefix}b`, async (s) => {
      const jar = new CookieJar();
      const id = sid((await send(jar, `${s.harness.url}/login`, { headers: basic })).body);
      const hashed = createHash('sha256').update(id).digest('base64url');
      assert.equal(await redis.exists(`${prefix}b:oidc:session:${id}`), 0);
      assert.equal(await redis.exists(`${prefix}b:oidc:session:${hashed}`), 1);
      const keys = await redis.keys(`${prefix}b:*`);
      assert.ok(keys.every((k) => !k.includes(id)), 'no key names the session id');
      assert.equal((await send(jar, `${s.harness.url}/x`, { headers: api })).status, 200, 'the session still opens');
    });
  });

  it('session_store_metadata: the sessions of a subject per audience are listed, and a logout removes its own', async () => {
    await withStore({ session_store_metadata: true, session_audience: 'app1', logout_uri_suffix: '/logout', logout_methods: ['POST'] }, `${prefix}c`, async (s) => {
      const a = new CookieJar();
      const b = new CookieJar();
      const idA = sid((await send(a, `${s.harness.url}/login`, { headers: basic })).body);
      const idB = sid((await send(b, `${s.harness.url}/login`, { headers: basic })).body);
      const key = `${prefix}c:oidc:meta:app1:alex`;
      const meta = JSON.parse((await redis.get(key))!) as Record<string, number>;
      assert.deepEqual(Object.keys(meta).sort(), [idA, idB].sort());
      for (const expires of Object.values(meta)) assert.ok(expires > Date.now());
      const out = await send(a, `${s.harness.url}/logout`, { method: 'POST' });
      assert.ok(out.status < 400, String(out.status));
      assert.deepEqual(Object.keys(JSON.parse((await redis.get(key))!) as object), [idB]);
    });
  });

  it('session_hash_subject: the metadata key carries a hash of the subject, with the storage keys hashed too', async () => {
    await withStore({ session_store_metadata: true, session_hash_subject: true, session_hash_storage_key: true }, `${prefix}d`, async (s) => {
      const jar = new CookieJar();
      const id = sid((await send(jar, `${s.harness.url}/login`, { headers: basic })).body);
      const hashedSub = createHash('sha256').update('alex').digest().subarray(0, 16).toString('base64url');
      assert.equal(await redis.exists(`${prefix}d:oidc:meta:default:alex`), 0);
      const meta = JSON.parse((await redis.get(`${prefix}d:oidc:meta:default:${hashedSub}`))!) as Record<string, number>;
      assert.deepEqual(Object.keys(meta), [createHash('sha256').update(id).digest('base64url')]);
    });
  });
});

describe('settings that would do nothing are refused, naming the field', () => {
  it('metadata and hashed keys need server-side storage; hash_subject needs metadata', async () => {
    const { sessionSettingsIssues } = await import('../src/plugins/bundled/openid-connect/browser/config.ts');
    const paths = (c: Record<string, unknown>) => sessionSettingsIssues(c, 1).map((i) => i.path);
    assert.deepEqual(paths({ session_store_metadata: true }), ['session_store_metadata']);
    assert.deepEqual(paths({ session_hash_storage_key: true }), ['session_hash_storage_key']);
    assert.deepEqual(paths({ session_storage: 'redis', redis: {}, session_hash_subject: true }), ['session_hash_subject']);
    assert.deepEqual(paths({ session_storage: 'redis', redis: {}, session_store_metadata: true, session_hash_subject: true, session_hash_storage_key: true }), []);
  });
});

describe('several audiences in one cookie; session_enforce_same_subject', () => {
  // Two plugin instances (two routes) sharing the cookie name and secret, each its own audience.
  const jane = { authorization: `Basic ${Buffer.from('jane:doe2').toString('base64')}` };
  const sub = (body: string) => (JSON.parse(body) as { extra: { sub: string } }).extra.sub;

  async function pair(enforce: boolean): Promise<[Setup, Setup]> {
    const a = await setup({ ...baseConfig, session_audience: 'app-a', session_enforce_same_subject: enforce, logout_uri_suffix: '/logout', logout_methods: ['POST'] });
    const b = await setup({ ...baseConfig, session_audience: 'app-b', session_enforce_same_subject: enforce });
    return [a, b];
  }

  it('without it, each audience keeps its own session (and subject) in the shared cookie; a logout ends only its own', async () => {
    const [a, b] = await pair(false);
    try {
      const jar = new CookieJar();
      assert.equal((await send(jar, `${a.harness.url}/login`, { headers: basic })).status, 200);
      assert.equal((await send(jar, `${b.harness.url}/login`, { headers: jane })).status, 200);
      assert.equal(sub((await send(jar, `${a.harness.url}/x`, { headers: api })).body), 'alex');
      assert.equal(sub((await send(jar, `${b.harness.url}/x`, { headers: api })).body), 'jane');
      const out = await send(jar, `${a.harness.url}/logout`, { method: 'POST', headers: api });
      assert.ok(out.status < 400);
      assert.ok(jar.get(a.harness.url, 'session'), 'the cookie stays for app-b');
      assert.equal((await send(jar, `${a.harness.url}/x`, { headers: api })).status, 401);
      assert.equal(sub((await send(jar, `${b.harness.url}/x`, { headers: api })).body), 'jane');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("one audience's session timing out leaves the other's in the cookie", async () => {
    const a = await setup({ ...baseConfig, session_audience: 'app-a', session_idling_timeout: 60 });
    const b = await setup({ ...baseConfig, session_audience: 'app-b' });
    try {
      const jar = new CookieJar();
      await send(jar, `${a.harness.url}/login`, { headers: basic });
      await send(jar, `${b.harness.url}/login`, { headers: jane });
      a.clock.offsetMs = 120_000;
      const expired = await send(jar, `${a.harness.url}/x`, { headers: api });
      assert.equal(expired.status, 401);
      assert.ok(!expired.setCookies.some((c) => c.startsWith('session=;')), 'not cleared');
      assert.equal(sub((await send(jar, `${b.harness.url}/x`, { headers: api })).body), 'jane');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('with it, a session of another subject drops the other audiences; the same subject keeps them', async () => {
    const [a, b] = await pair(true);
    try {
      const same = new CookieJar();
      await send(same, `${a.harness.url}/login`, { headers: basic });
      await send(same, `${b.harness.url}/login`, { headers: basic });
      assert.equal((await send(same, `${a.harness.url}/x`, { headers: api })).status, 200, 'same subject: app-a kept');
      const jar = new CookieJar();
      await send(jar, `${a.harness.url}/login`, { headers: basic });
      await send(jar, `${b.harness.url}/login`, { headers: jane });
      assert.equal(sub((await send(jar, `${b.harness.url}/x`, { headers: api })).body), 'jane');
      assert.equal((await send(jar, `${a.harness.url}/x`, { headers: api })).status, 401, "another subject: app-a's session dropped");
    } finally {
      await a.close();
      await b.close();
    }
  });
});
