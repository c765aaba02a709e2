/**
 * Plugin configurations stored by an earlier version: a row that lacks fields added since gets
 * their defaults when the node builds the plugin (as a Kong migration would fill them), and a row
 * the schema now refuses keeps working as stored, with a warning naming the problem.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { startEcho } from '../demo/echo.ts';
import { startGateway, adminJson } from './helpers/gateway.ts';
import { waitFor } from './helpers/process.ts';

test('a stored plugin config missing fields added since gets their defaults; one the schema now refuses runs as stored, with a warning', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-stored-'));
  const dbPath = join(dir, 'portcullis.db');
  const echo = await startEcho();
  const gw = await startGateway({ database: 'sqlite', env: { PORTCULLIS_SQLITE_PATH: dbPath } });
  const admin = async (method: string, path: string, body?: unknown) => {
    const r = await adminJson(gw.adminUrl, method, path, body);
    assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  try {
    await admin('POST', '/services', { name: 'svc', url: echo.url });
    await admin('POST', '/services/svc/routes', { name: 'old', paths: ['/old'] });
    await admin('POST', '/services/svc/routes', { name: 'strict', paths: ['/strict'] });
    const oldPlugin = await admin('POST', '/routes/old/plugins', { name: 'correlation-id', config: { echo_downstream: true } });
    const strictPlugin = await admin('POST', '/routes/strict/plugins', { name: 'cors', config: { origins: ['https://a.example'] } });

    // What an older version would have stored: correlation-id without header_name and generator,
    // cors with an empty exposed header (refused since).
    const db = new DatabaseSync(dbPath);
    try {
      const row = db.prepare('SELECT data FROM plugins WHERE id = ?').get(oldPlugin.id) as { data: string };
      const data = JSON.parse(row.data);
      delete data.config.header_name;
      delete data.config.generator;
      db.prepare('UPDATE plugins SET data = ? WHERE id = ?').run(JSON.stringify(data), oldPlugin.id);
      const row2 = db.prepare('SELECT data FROM plugins WHERE id = ?').get(strictPlugin.id) as { data: string };
      const data2 = JSON.parse(row2.data);
      data2.config.exposed_headers = ['X-Total', ''];
      db.prepare('UPDATE plugins SET data = ? WHERE id = ?').run(JSON.stringify(data2), strictPlugin.id);
    } finally {
      db.close();
    }
    // Any write makes the node load the whole configuration again.
    await admin('POST', '/consumers', { username: 'trigger' });

    await waitFor(async () => {
      const r = await fetch(`${gw.proxyUrl}/old/x`);
      return r.status === 200 && /^[0-9a-f-]{36}#\d+$/.test(r.headers.get('kong-request-id') ?? '');
    }, 10_000, 'the default header_name and generator in use');
    const r = await fetch(`${gw.proxyUrl}/old/x`);
    const echoed = await r.json() as { headers: Record<string, string> };
    assert.equal(echoed.headers['kong-request-id'], r.headers.get('kong-request-id'), 'the default header went upstream and came back');

    await waitFor(() => gw.logs.some((l) => /does not meet the current schema/.test(String(l.msg)) && l.plugin === 'cors'), 10_000, 'the warning about the cors row');
    const warning = gw.logs.find((l) => /does not meet the current schema/.test(String(l.msg)) && l.plugin === 'cors')!;
    assert.match(JSON.stringify(warning.problems), /exposed_headers/);
    const cors = await fetch(`${gw.proxyUrl}/strict/x`, { headers: { origin: 'https://a.example' } });
    assert.equal(cors.status, 200);
    assert.equal(cors.headers.get('access-control-allow-origin'), 'https://a.example', 'the cors plugin still runs as stored');
  } finally {
    await gw.close();
    await echo.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
