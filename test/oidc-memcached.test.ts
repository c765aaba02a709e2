/**
 * `session_storage: memcached` (and its alias `memcache`) with the `session_memcached_*` fields,
 * against a real memcached started per test (Debian's package; TLS with a self-signed
 * certificate), the demo IdP, and the plugin's whole access pipeline.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemcacheClient } from 'memcache-client';
import { CookieJar, send } from './helpers/fake-ctx.ts';
import { baseConfig, setup, type Setup } from './helpers/oidc-browser-setup.ts';
import { startMemcached, type Memcached } from './helpers/memcached.ts';
import { selfSigned } from './helpers/certs.ts';
import { sessionSettingsIssues } from '../src/plugins/bundled/openid-connect/browser/config.ts';

const basic = { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}` };
const api = { accept: 'application/json' };

function sid(body: string): string {
  return (JSON.parse(body) as { extra: { sid: string } }).extra.sid;
}

async function rawGet(port: number, key: string, tls?: object): Promise<string | null> {
  const c = new MemcacheClient({ server: `127.0.0.1:${port}`, ...(tls ? { tls } : {}) });
  try {
    const r = await c.get<string>(key);
    return r === undefined ? null : String(r.value);
  } finally {
    c.shutdown();
  }
}

describe('session_storage: memcached', () => {
  let mc: Memcached;
  let s: Setup;
  before(async () => {
    mc = await startMemcached();
    s = await setup({
      ...baseConfig,
      session_storage: 'memcached',
      session_memcached_host: '127.0.0.1',
      session_memcached_port: mc.port,
      session_memcached_prefix: 'kong-sessions',
      logout_uri_suffix: '/logout',
      logout_methods: ['POST'],
    });
  });
  after(async () => {
    await s.close();
    await mc.close();
  });

  it('keeps the session in memcached under the prefix, with only a reference in the cookie', async () => {
    const jar = new CookieJar();
    const login = await send(jar, `${s.harness.url}/login`, { headers: basic });
    assert.equal(login.status, 200);
    const id = sid(login.body);
    const record = await rawGet(mc.port, `kong-sessions:oidc:session:${id}`);
    assert.ok(record, 'record stored under session_memcached_prefix');
    assert.ok(!record.includes('alex'), 'the record is sealed');
    const cookie = jar.get(s.harness.url, 'session')!;
    assert.ok(cookie.length < 600, `cookie carries a reference only (${cookie.length} bytes)`);
    assert.equal((await send(jar, `${s.harness.url}/x`, { headers: api })).status, 200);
  });

  it('another node with the same memcached opens the session', async () => {
    const jar = new CookieJar();
    await send(jar, `${s.harness.url}/login`, { headers: basic });
    const node = await s.addNode();
    const other = new CookieJar();
    other.store(node.harness.url, [`session=${jar.get(s.harness.url, 'session')}`]);
    assert.equal((await send(other, `${node.harness.url}/x`, { headers: api })).status, 200);
  });

  it('logout deletes the record: the old cookie no longer opens', async () => {
    const jar = new CookieJar();
    const id = sid((await send(jar, `${s.harness.url}/login`, { headers: basic })).body);
    const cookie = jar.get(s.harness.url, 'session')!;
    const out = await send(jar, `${s.harness.url}/logout`, { method: 'POST' });
    assert.ok(out.status < 400);
    assert.equal(await rawGet(mc.port, `kong-sessions:oidc:session:${id}`), null);
    const replay = new CookieJar();
    replay.store(s.harness.url, [`session=${cookie}`]);
    assert.equal((await send(replay, `${s.harness.url}/x`, { headers: api })).status, 401);
  });

  it('memcached unreachable: the login is served but no session is stored (no cookie)', async () => {
    const dead = await setup({ ...baseConfig, session_storage: 'memcache', session_memcached_port: 1 });
    try {
      const r = await send(new CookieJar(), `${dead.harness.url}/login`, { headers: basic });
      assert.equal(r.status, 200);
      assert.ok(!r.setCookies.some((c) => c.startsWith('session=')));
    } finally {
      await dead.close();
    }
  });
});

describe('session_memcached_ssl / session_memcached_ssl_verify', () => {
  const cert = selfSigned('localhost');
  let mc: Memcached;
  before(async () => {
    mc = await startMemcached({ tls: cert });
  });
  after(() => mc.close());

  it('TLS to memcached; a self-signed certificate is refused unless ssl_verify is off', async () => {
    const verified = await setup({ ...baseConfig, session_storage: 'memcache', session_memcached_port: mc.port, session_memcached_ssl: true });
    try {
      // The handshake fails: the login is served, but no session could be stored.
      const r = await send(new CookieJar(), `${verified.harness.url}/login`, { headers: basic });
      assert.equal(r.status, 200);
      assert.ok(!r.setCookies.some((c) => c.startsWith('session=')), 'no session without a verified memcached');
    } finally {
      await verified.close();
    }
    const unverified = await setup({
      ...baseConfig,
      session_storage: 'memcache',
      session_memcached_port: mc.port,
      session_memcached_ssl: true,
      session_memcached_ssl_verify: false,
    });
    try {
      const jar = new CookieJar();
      const login = await send(jar, `${unverified.harness.url}/login`, { headers: basic });
      assert.equal(login.status, 200, login.body);
      assert.ok(await rawGet(mc.port, `oidc:session:${sid(login.body)}`, { rejectUnauthorized: false }));
      assert.equal((await send(jar, `${unverified.harness.url}/x`, { headers: api })).status, 200);
    } finally {
      await unverified.close();
    }
  });
});

describe('session_memcached_socket', () => {
  it('is refused, naming the field (the client connects over TCP)', () => {
    const issues = sessionSettingsIssues({ session_storage: 'memcached', session_memcached_socket: '/run/memcached.sock' }, 1);
    assert.deepEqual(issues.map((i) => i.path), ['session_memcached_socket']);
  });
});
