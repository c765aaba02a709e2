/**
 * Logs operators use: the proxy access log (PORTCULLIS_PROXY_ACCESS_LOG: stdout by default, a
 * file, off; JSON or combined), request_id on every line written while handling a request
 * (plugins included), and an audit line for each Admin API write without the body's secrets.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startGateway } from './helpers/gateway.ts';
import { waitFor } from './helpers/process.ts';
import { definePlugin } from '../src/plugins/sdk.ts';
import { parseAccessLogSetting } from '../src/observability/access-log.ts';
import { readSettings } from '../src/kernel/settings.ts';

const chatty = definePlugin({
  name: 'chatty',
  version: '0.0.0',
  priority: 500,
  schema: z.strictObject({}),
  create: () => ({
    access(ctx) {
      ctx.log.info({ step: 'access' }, 'chatty plugin says hello');
    },
  }),
});

describe('access log', () => {
  let echo: EchoServer;
  let dir: string;
  before(async () => {
    echo = await startEcho();
    dir = await mkdtemp(join(tmpdir(), 'portcullis-access-'));
  });
  after(async () => {
    await echo.close();
    await rm(dir, { recursive: true, force: true });
  });
  const config = () => ({ services: [{ name: 's', url: echo.url, routes: [{ name: 'r', paths: ['/a'], plugins: [{ name: 'chatty' }] }] }] });

  test('default: one JSON line per request on the log stream; plugin lines carry the request_id', async () => {
    const gw = await startGateway({ config: config(), plugins: [chatty] });
    try {
      const r = await fetch(`${gw.proxyUrl}/a/x?access_token=SECRET-Q`, { headers: { authorization: 'Bearer SECRET-B', 'x-request-id': 'req-abc-123' } });
      assert.equal(r.status, 200);
      await waitFor(() => gw.logs.some((l) => l.type === 'access'), 5000, 'the access line');
      const line = gw.logs.find((l) => l.type === 'access')!;
      assert.equal(line.request_id, 'req-abc-123');
      assert.equal(line.path, '/a/x');
      assert.equal(line.status, 200);
      assert.equal(line.route, 'r');
      assert.equal(typeof line.time, 'string');
      assert.ok(!Number.isNaN(Date.parse(line.time as string)));
      const said = gw.logs.find((l) => l.msg === 'chatty plugin says hello');
      assert.equal(said?.request_id, 'req-abc-123');
      assert.doesNotMatch(gw.logText(), /SECRET-/);
    } finally {
      await gw.close();
    }
  });

  test('a file path with the combined format: nginx combined fields and kong_request_id', async () => {
    const file = join(dir, 'access.log');
    const gw = await startGateway({ config: config(), plugins: [chatty], env: { PORTCULLIS_PROXY_ACCESS_LOG: `${file} combined` } });
    try {
      await fetch(`${gw.proxyUrl}/a/y?code=SECRET-CODE`, { headers: { 'user-agent': 'tester/1.0', referer: 'http://ref.example/page?token=SECRET-REF', 'x-request-id': 'rid-9' } });
      await waitFor(async () => (await readFile(file, 'utf8').catch(() => '')).includes('rid-9'), 5000, 'the access line');
      const text = await readFile(file, 'utf8');
      assert.match(text, /^127\.0\.0\.1 - - \[\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "GET \/a\/y HTTP\/1\.1" 200 \d+ "http:\/\/ref\.example\/page" "tester\/1\.0" kong_request_id: "rid-9"\n$/);
      assert.doesNotMatch(text, /SECRET-/);
      assert.equal(gw.logs.filter((l) => l.type === 'access').length, 0, 'nothing on the log stream');
    } finally {
      await gw.close();
    }
  });

  test('off: no access line; an unwritable file: requests succeed and the problem is logged once', async () => {
    const off = await startGateway({ config: config(), plugins: [chatty], env: { PORTCULLIS_PROXY_ACCESS_LOG: 'off' } });
    try {
      await fetch(`${off.proxyUrl}/a/x`);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(off.logs.filter((l) => l.type === 'access').length, 0);
    } finally {
      await off.close();
    }
    const bad = await startGateway({ config: config(), plugins: [chatty], env: { PORTCULLIS_PROXY_ACCESS_LOG: join(dir, 'no-such-dir', 'a.log') } });
    try {
      for (let i = 0; i < 5; i++) assert.equal((await fetch(`${bad.proxyUrl}/a/x`)).status, 200);
      await waitFor(() => bad.logs.some((l) => String(l.msg).startsWith('access log cannot be written')), 5000, 'the error');
      for (let i = 0; i < 5; i++) assert.equal((await fetch(`${bad.proxyUrl}/a/x`)).status, 200);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(bad.logs.filter((l) => String(l.msg).startsWith('access log cannot be written')).length, 1);
    } finally {
      await bad.close();
    }
  });

  test('the setting: stdout by default, off, a path, a format; bad formats refused', () => {
    assert.deepEqual(parseAccessLogSetting(undefined), { target: 'stdout', format: 'json' });
    assert.deepEqual(parseAccessLogSetting('on'), { target: 'stdout', format: 'json' });
    assert.deepEqual(parseAccessLogSetting('off'), { target: 'off', format: 'json' });
    assert.deepEqual(parseAccessLogSetting('/var/log/a.log combined'), { target: { path: '/var/log/a.log' }, format: 'combined' });
    assert.throws(() => readSettings({}, { PORTCULLIS_PROXY_ACCESS_LOG: 'stdout fancy' }), /fancy/);
  });
});

describe('Admin API audit lines', () => {
  test('a write logs method, path, entity type and id, outcome and client address; never the body', async () => {
    const gw = await startGateway({ database: 'sqlite' });
    try {
      const created = await fetch(`${gw.adminUrl}/consumers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', custom_id: 'SECRET-IN-BODY' }) });
      assert.equal(created.status, 201);
      const id = ((await created.json()) as { id: string }).id;
      const dup = await fetch(`${gw.adminUrl}/consumers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice' }) });
      assert.equal(dup.status, 409);
      assert.equal((await fetch(`${gw.adminUrl}/consumers/${id}`, { method: 'DELETE' })).status, 204);
      await new Promise((r) => setTimeout(r, 50));
      const audit = gw.logs.filter((l) => l.type === 'audit');
      assert.equal(audit.length, 3);
      assert.deepEqual(
        audit.map((a) => [a.method, a.path, a.entity, a.entity_id, a.status, a.outcome, a.client_ip]),
        [
          ['POST', '/consumers', 'consumers', id, 201, 'success', '127.0.0.1'],
          ['POST', '/consumers', 'consumers', null, 409, 'failure', '127.0.0.1'],
          ['DELETE', `/consumers/${id}`, 'consumers', id, 204, 'success', '127.0.0.1'],
        ],
      );
      assert.doesNotMatch(gw.logText(), /SECRET-IN-BODY/);
    } finally {
      await gw.close();
    }
  });
});
