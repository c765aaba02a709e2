/**
 * `redis` record options of the session storage: `connection_is_proxied` (through a Redis proxy
 * that knows only data commands, test/helpers/redis-proxy.ts), `sentinel_username` (a real
 * Sentinel, `redis-server --sentinel`, with an ACL user), and the options that cannot apply
 * (`cloud_authentication`, `keepalive_pool_size`, `keepalive_backlog`) refused naming the field.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { CookieJar, send } from './helpers/fake-ctx.ts';
import { baseConfig, setup } from './helpers/oidc-browser-setup.ts';
import { startRedisProxy, type RedisProxy } from './helpers/redis-proxy.ts';
import { freePort, waitFor } from './helpers/process.ts';
import { oidcConfigSchema } from '../src/plugins/bundled/openid-connect/schema.ts';

const basic = { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}` };
const api = { accept: 'application/json' };
const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });
after(() => redis.disconnect());

function sid(body: string): string {
  return (JSON.parse(body) as { extra: { sid: string } }).extra.sid;
}

describe('redis.connection_is_proxied', () => {
  let proxy: RedisProxy;
  before(async () => {
    proxy = await startRedisProxy();
  });
  after(() => proxy.close());

  for (const proxied of [false, true]) {
    it(`connection_is_proxied: ${proxied}: ${proxied ? 'only data commands reach the proxy; sessions work' : 'the client starts with HELLO (RESP3), which the proxy refuses: no session'}`, async () => {
      const prefix = `proxied-${randomBytes(4).toString('hex')}`;
      const s = await setup({
        ...baseConfig,
        session_storage: 'redis',
        redis: { host: '127.0.0.1', port: proxy.port, prefix, connection_is_proxied: proxied, connect_timeout: 500, read_timeout: 500, send_timeout: 500 },
      });
      try {
        const jar = new CookieJar();
        const login = await send(jar, `${s.harness.url}/login`, { headers: basic });
        assert.equal(login.status, 200, login.body);
        if (proxied) {
          assert.equal(await redis.exists(`${prefix}:oidc:session:${sid(login.body)}`), 1);
          assert.equal((await send(jar, `${s.harness.url}/x`, { headers: api })).status, 200);
          assert.ok(!proxy.refused.length, `refused: ${proxy.refused.join(', ')}`);
        } else {
          assert.ok(!login.setCookies.some((c) => c.startsWith('session=')), 'no session could be stored');
          assert.ok(proxy.refused.includes('HELLO'), proxy.refused.join(', '));
        }
      } finally {
        await s.close();
        const keys = await redis.keys(`${prefix}*`);
        if (keys.length > 0) await redis.del(...keys);
        proxy.refused.length = 0;
      }
    });
  }

  it('with a proxy: database must be 0, and no cluster or sentinel', () => {
    const paths = (r: Record<string, unknown>) => {
      const p = oidcConfigSchema.safeParse({ issuer: 'http://idp.example', redis: { connection_is_proxied: true, ...r } });
      return p.success ? [] : p.error.issues.map((i) => i.path.join('.'));
    };
    assert.deepEqual(paths({}), []);
    assert.deepEqual(paths({ database: 2 }), ['redis.database']);
    assert.deepEqual(paths({ cluster_nodes: [{ ip: '127.0.0.1', port: 7000 }] }), ['redis.connection_is_proxied']);
  });
});

describe('redis.sentinel_username (Sentinel with an ACL user)', () => {
  let dir: string;
  let sentinel: ChildProcess;
  let port: number;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-sentinel-'));
    port = await freePort();
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(conf, [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      'sentinel monitor mymaster 127.0.0.1 6379 1',
      // Only the ACL user may talk to this Sentinel.
      'user default off',
      'user kong-sentinel on >sentinel-secret +@all',
      '',
    ].join('\n'));
    sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    await waitFor(() => new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
      c.on('error', () => resolve(false));
    }), 10_000, 'sentinel');
  });
  after(async () => {
    if (sentinel.exitCode === null) {
      const exited = new Promise((r) => sentinel.once('exit', r));
      sentinel.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  async function login(record: Record<string, unknown>): Promise<{ stored: boolean; status: number }> {
    const prefix = `sentinel-${randomBytes(4).toString('hex')}`;
    const s = await setup({ ...baseConfig, session_storage: 'redis', redis: { sentinel_master: 'mymaster', sentinel_nodes: [{ host: '127.0.0.1', port }], prefix, connect_timeout: 1000, ...record } });
    try {
      const r = await send(new CookieJar(), `${s.harness.url}/login`, { headers: basic });
      const stored = r.status === 200 && (await redis.exists(`${prefix}:oidc:session:${sid(r.body)}`)) === 1;
      return { stored, status: r.status };
    } finally {
      await s.close();
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
    }
  }

  it('the Sentinel is asked for the master as sentinel_username; the session lands on the master', async () => {
    assert.deepEqual(await login({ sentinel_username: 'kong-sentinel', sentinel_password: 'sentinel-secret' }), { stored: true, status: 200 });
  });

  it('without sentinel_username (password only, the disabled default user) the Sentinel refuses: no session', async () => {
    assert.deepEqual(await login({ sentinel_password: 'sentinel-secret' }), { stored: false, status: 200 });
  });
});

describe('options the Redis client cannot apply are refused, naming the field', () => {
  const paths = (r: Record<string, unknown>) => {
    const p = oidcConfigSchema.safeParse({ issuer: 'http://idp.example', redis: r });
    return p.success ? [] : p.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('cloud_authentication (AWS, Azure, GCP)', () => {
    const cloud = [
      { auth_provider: 'aws', aws_access_key_id: 'AKIA', aws_secret_access_key: 's', aws_region: 'eu-west-1', aws_cache_name: 'c', aws_is_serverless: false, aws_assume_role_arn: 'arn:aws:iam::1:role/r', aws_role_session_name: 'n' },
      { auth_provider: 'azure', azure_client_id: 'id', azure_client_secret: 's', azure_tenant_id: 't' },
      { auth_provider: 'gcp', gcp_service_account_json: '{}' },
    ];
    for (const c of cloud) {
      const issues = paths({ cloud_authentication: c });
      assert.equal(issues.length, 1);
      assert.match(issues[0], /^redis\.cloud_authentication: not supported: cloud \(AWS\/Azure\/GCP\) authentication/);
    }
    assert.deepEqual(paths({ cloud_authentication: null }), []);
  });

  it('keepalive_pool_size and keepalive_backlog: only their defaults', () => {
    assert.deepEqual(paths({ keepalive_pool_size: 256, keepalive_backlog: null }), []);
    assert.match(paths({ keepalive_pool_size: 10 })[0], /^redis\.keepalive_pool_size: not supported: sessions use one multiplexed Redis connection/);
    assert.match(paths({ keepalive_backlog: 5 })[0], /^redis\.keepalive_backlog: not supported/);
  });
});
