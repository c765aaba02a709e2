/**
 * Hostile Admin API input: prototype pollution through the form notation, absurd nesting, and
 * oversized bodies are refused with 400/413, and nothing stored or later served is affected.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createAdminServer, type AdminServer } from '../src/admin/index.ts';
import { openMemoryConfigStore } from '../src/storage/index.ts';
import { createRegistry } from '../src/plugins/registry.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { readSettings } from '../src/kernel/settings.ts';

describe('Admin API input limits', () => {
  let server: AdminServer;
  let url: string;
  const send = async (method: string, path: string, body: string, type: string) => {
    const res = await fetch(url + path, { method, body, headers: { 'content-type': type } });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  const form = (path: string, body: string) => send('POST', path, body, 'application/x-www-form-urlencoded');

  before(async () => {
    server = await createAdminServer({
      store: openMemoryConfigStore({ readOnly: false }), registry: createRegistry([]), log: silentLogger(),
      nodeInfo: () => ({}), status: () => ({}), maxBodySize: 64 * 1024,
    });
    url = `http://127.0.0.1:${(await server.listen('127.0.0.1', 0)).port}`;
  });
  after(() => server.close());

  test('`__proto__.tags=p` in a form body is a 400 and poisons nothing', async () => {
    const bad = await form('/services', 'name=a&host=a.test&__proto__.tags=p');
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /__proto__/);
    assert.equal((await form('/services', 'name=b&host=b.test&constructor.prototype.tags=p')).status, 400);
    assert.equal(({} as Record<string, unknown>).tags, undefined);
    const ok = await form('/services', 'name=c&host=c.test');
    assert.equal(ok.status, 201);
    assert.equal(ok.body.tags, null, 'a later write is not affected');
    const json = await send('POST', '/services', '{"name":"d","host":"d.test","__proto__":{"tags":["p"]}}', 'application/json');
    assert.equal(json.status, 400);
  });

  test('a form key nested 50,000 levels deep, or a JSON body as deep, is a 400 (not a 500)', async () => {
    const deepKey = await form('/services', `name=e&host=e.test&${'a.'.repeat(50_000)}b=1`);
    assert.equal(deepKey.status, 413, 'beyond the body limit first');
    const deeper = await form('/services', `name=e&host=e.test&${'a.'.repeat(5_000)}b=1`);
    assert.equal(deeper.status, 400);
    assert.match(deeper.body.message, /deeper than/);
    const deepJson = await send('POST', '/services', `${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}`, 'application/json');
    assert.equal(deepJson.status, 400);
  });

  test('a body over the limit is a 413', async () => {
    const big = await send('POST', '/services', JSON.stringify({ name: 'big', host: 'big.test', tags: ['x'.repeat(100 * 1024)] }), 'application/json');
    assert.equal(big.status, 413);
    assert.equal((await fetch(`${url}/services/big`)).status, 404);
  });

  test('PORTCULLIS_ADMIN_CLIENT_MAX_BODY_SIZE: default 1m, sizes with suffixes, no "unlimited"', () => {
    assert.equal(readSettings({}, {}).adminMaxBodySize, 1024 * 1024);
    assert.equal(readSettings({}, { PORTCULLIS_ADMIN_CLIENT_MAX_BODY_SIZE: '10k' }).adminMaxBodySize, 10 * 1024);
    assert.throws(() => readSettings({}, { PORTCULLIS_ADMIN_CLIENT_MAX_BODY_SIZE: '0' }), /at least 1 byte/);
  });
});
