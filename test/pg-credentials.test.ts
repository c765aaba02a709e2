/**
 * Two gateway nodes on one PostgreSQL (fresh schema per run): a key-auth credential created on
 * node A authenticates on node B within 1 s, and a token issued by node A's oauth2 endpoint is
 * accepted by node B (tokens live in the shared database, not in the configuration).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { createRegistry } from '../src/plugins/registry.ts';
import { bundledPlugins } from '../src/plugins/bundled/index.ts';
import { readSettings, startSingle, type RunningNode } from '../src/kernel/index.ts';

const pgBase = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };
const schema = `e2e_${randomUUID().replaceAll('-', '')}`;

async function startNode(): Promise<{ node: RunningNode; proxy: string; admin: string }> {
  const env = {
    ...process.env,
    PORTCULLIS_PG_HOST: pgBase.host, PORTCULLIS_PG_PORT: String(pgBase.port), PORTCULLIS_PG_USER: pgBase.user,
    PORTCULLIS_PG_DATABASE: pgBase.database, PORTCULLIS_PG_SCHEMA: schema, PORTCULLIS_DRAIN_TIMEOUT: '2',
    PORTCULLIS_TRUSTED_IPS: '127.0.0.1',
  };
  const settings = readSettings({ database: 'postgres', workers: '1', proxyListen: '127.0.0.1:0', adminListen: '127.0.0.1:0', logLevel: 'silent' }, env);
  const node = await startSingle(settings, createRegistry(bundledPlugins, { workers: 1, database: 'postgres' }), pino({ level: 'silent' }));
  return { node, proxy: `http://127.0.0.1:${node.proxyPorts()[0]}`, admin: `http://127.0.0.1:${node.adminPorts()[0]}` };
}

async function post(url: string, body: unknown): Promise<any> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = await res.json();
  assert.equal(res.status, 201, JSON.stringify(json));
  return json;
}

async function within(ms: number, fn: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < ms) {
    if (await fn()) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 20));
  }
  return -1;
}

describe('credentials across two PostgreSQL nodes', () => {
  let upstream: Server;
  let a: Awaited<ReturnType<typeof startNode>>;
  let b: Awaited<ReturnType<typeof startNode>>;

  before(async () => {
    upstream = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ path: req.url, consumer: req.headers['x-consumer-username'] ?? null }));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
    a = await startNode();
    b = await startNode();
    await post(`${a.admin}/services`, { name: 'svc', url });
    await post(`${a.admin}/services/svc/routes`, { name: 'keyed', paths: ['/keyed'] });
    await post(`${a.admin}/routes/keyed/plugins`, { name: 'key-auth' });
    await post(`${a.admin}/services/svc/routes`, { name: 'oauth', paths: ['/oauth'] });
    await post(`${a.admin}/routes/oauth/plugins`, { name: 'oauth2', config: { enable_client_credentials: true, accept_http_if_already_terminated: true } });
    await post(`${a.admin}/consumers`, { username: 'pat' });
    await post(`${a.admin}/consumers/pat/oauth2`, { name: 'pat-app', client_id: 'pat-client', client_secret: 'pat-secret' });
    assert.ok((await within(3000, async () => (await fetch(`${b.proxy}/oauth/x`)).status === 401)) >= 0, 'node B has the config');
  });

  after(async () => {
    await a?.node.close();
    await b?.node.close();
    await new Promise<void>((r) => upstream.close(() => r()));
    const c = new pg.Client(pgBase);
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  });

  test('a key created on node A authenticates on node B within 1 s', async () => {
    assert.equal((await fetch(`${b.proxy}/keyed`, { headers: { apikey: 'pat-key-1' } })).status, 401);
    await post(`${a.admin}/consumers/pat/key-auth`, { key: 'pat-key-1' });
    const took = await within(1000, async () => (await fetch(`${b.proxy}/keyed`, { headers: { apikey: 'pat-key-1' } })).status === 200);
    assert.ok(took >= 0, 'node B accepted the key within 1 s');
  });

  test('a token issued by node A is accepted by node B', async () => {
    const res = await fetch(`${a.proxy}/oauth/oauth2/token`, {
      method: 'POST', headers: { 'x-forwarded-proto': 'https' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'pat-client', client_secret: 'pat-secret' }),
    });
    const token = (await res.json()) as { access_token: string };
    assert.equal(res.status, 200, JSON.stringify(token));
    const took = await within(1000, async () => (await fetch(`${b.proxy}/oauth/data`, { headers: { authorization: `Bearer ${token.access_token}` } })).status === 200);
    assert.ok(took >= 0, 'node B accepted the token within 1 s');
    const body = await (await fetch(`${b.proxy}/oauth/data`, { headers: { authorization: `Bearer ${token.access_token}` } })).json() as { consumer: string };
    assert.equal(body.consumer, 'pat');
  });
});
