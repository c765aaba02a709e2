import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, Redis } from 'ioredis';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisKv } from './redis.ts';
import { createRedisClient } from '../../../../storage/redis.ts';

// Clients connect lazily: these tests only look at how Kong's record maps to ioredis options.
describe('createRedisClient', () => {
  it('maps a single node with ACL user, database, TLS and timeouts', () => {
    const c = createRedisClient({ host: 'r.example', port: 6380, username: 'u', password: 'p', database: 3, ssl: true, ssl_verify: false, server_name: 'sni.example', connect_timeout: 1234, read_timeout: 500, send_timeout: 700 });
    assert.ok(c instanceof Redis);
    const o = (c as Redis).options;
    assert.equal(o.host, 'r.example');
    assert.equal(o.port, 6380);
    assert.equal(o.username, 'u');
    assert.equal(o.db, 3);
    assert.equal(o.connectTimeout, 1234);
    assert.equal(o.commandTimeout, 700);
    assert.deepEqual(o.tls, { rejectUnauthorized: false, servername: 'sni.example' });
    c.disconnect();
  });

  it('maps Sentinel settings with separate Sentinel credentials', () => {
    const c = createRedisClient({ sentinel_master: 'mymaster', sentinel_role: 'slave', sentinel_nodes: [{ host: 's1', port: 26379 }], sentinel_password: 'sp', password: 'dp' });
    const o = (c as Redis).options;
    assert.equal(o.name, 'mymaster');
    assert.equal(o.role, 'slave');
    assert.deepEqual(o.sentinels, [{ host: 's1', port: 26379 }]);
    assert.equal(o.sentinelPassword, 'sp');
    assert.equal(o.password, 'dp');
    c.disconnect();
  });

  it('maps sentinel_username (the session storage and the cluster cache build their clients here)', () => {
    const c = createRedisClient({ sentinel_master: 'mymaster', sentinel_nodes: [{ host: 's1', port: 26379 }], sentinel_username: 'su', sentinel_password: 'sp' });
    assert.equal((c as Redis).options.sentinelUsername, 'su');
    c.disconnect();
  });

  it('maps cluster_nodes to a Cluster', () => {
    const c = createRedisClient({ cluster_nodes: [{ ip: '10.0.0.1', port: 7000 }], cluster_max_redirections: 7 });
    assert.ok(c instanceof Cluster);
    assert.equal((c as Cluster).options.maxRedirections, 7);
    c.disconnect();
  });
});

describe('redis.socket', () => {
  it('the session store talks to a real Redis over its Unix socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-redis-sock-'));
    const socket = join(dir, 'redis.sock');
    const server = spawn('redis-server', ['--port', '0', '--unixsocket', socket, '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(existsSync(socket), 'redis-server opened its socket');
      const client = createRedisClient({ socket, host: 'not-used.invalid', port: 1 });
      assert.equal((client as Redis).options.path, socket);
      const kv = new RedisKv(client, 'sess');
      await kv.set('k', 'v', 5000);
      assert.equal(await kv.get('k'), 'v');
      assert.equal(await client.get('sess:k'), 'v', 'stored under the prefix, on the socket-connected server');
      await kv.close();
    } finally {
      server.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

