/**
 * The admin_gui_* settings and the GUI listener without a browser: settings refused by name,
 * `admin_gui_path` (redirect from /, assets and kconfig.js under the path, <base href>),
 * `admin_gui_api_url` in kconfig.js, `admin_gui_url` as the only CORS origin, `off`, an unbuilt
 * UI answered with 503; and the Admin API accepting Kong Manager's service body (url + the port
 * it derived).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSettings } from '../src/kernel/settings.ts';
import { startGuiServer, guiBuilt } from '../src/admin-gui/server.ts';
import { startGateway } from './helpers/gateway.ts';

test('admin_gui_* settings: defaults, and bad values refused naming the variable', () => {
  const s = readSettings({}, {});
  assert.deepEqual(s.adminGuiListen.map((l) => `${l.host}:${l.port}`), ['127.0.0.1:8002']);
  assert.equal(s.adminGuiPath, '');
  assert.equal(s.adminGuiApiUrl, null);
  assert.deepEqual(readSettings({}, { PORTCULLIS_ADMIN_GUI_LISTEN: 'off' }).adminGuiListen, []);
  assert.equal(readSettings({}, { PORTCULLIS_ADMIN_GUI_PATH: '/manager' }).adminGuiPath, '/manager');
  assert.throws(() => readSettings({}, { PORTCULLIS_ADMIN_GUI_PATH: 'manager' }), /PORTCULLIS_ADMIN_GUI_PATH/);
  assert.throws(() => readSettings({}, { PORTCULLIS_ADMIN_GUI_PATH: '/manager/' }), /PORTCULLIS_ADMIN_GUI_PATH.*must not end with/);
  assert.throws(() => readSettings({}, { PORTCULLIS_ADMIN_GUI_PATH: '/a/../b' }), /PORTCULLIS_ADMIN_GUI_PATH/);
  assert.throws(() => readSettings({}, { PORTCULLIS_ADMIN_GUI_API_URL: 'ftp://x' }), /PORTCULLIS_ADMIN_GUI_API_URL/);
  assert.throws(() => readSettings({}, { PORTCULLIS_ADMIN_GUI_URL: 'not a url' }), /PORTCULLIS_ADMIN_GUI_URL/);
  assert.throws(() => readSettings({}, { PORTCULLIS_ADMIN_GUI_LISTEN: '127.0.0.1:8002 ssl' }), /admin_gui_listen.*'ssl'/);
});

test('admin_gui_path, admin_gui_api_url and admin_gui_url', { skip: guiBuilt() ? false : 'the admin UI is not built' }, async () => {
  const gw = await startGateway({
    env: {
      PORTCULLIS_ADMIN_GUI_LISTEN: '127.0.0.1:0',
      PORTCULLIS_ADMIN_GUI_PATH: '/manager',
      PORTCULLIS_ADMIN_GUI_API_URL: 'https://admin.example.test:9443',
      PORTCULLIS_ADMIN_GUI_URL: 'https://ui.example.test',
    },
  });
  try {
    const base = `http://127.0.0.1:${gw.node.guiPorts()[0]}`;
    const root = await fetch(`${base}/`, { redirect: 'manual' });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get('location'), '/manager/');
    assert.equal((await fetch(`${base}/services`)).status, 404, 'nothing outside the path');
    const page = await fetch(`${base}/manager/services/x`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<base href="\/manager\/">/);
    const kconfig = await (await fetch(`${base}/manager/kconfig.js`)).text();
    assert.match(kconfig, /"ADMIN_GUI_PATH": "\/manager"/);
    assert.match(kconfig, /"ADMIN_API_URL": "https:\/\/admin\.example\.test:9443"/);
    // admin_gui_url's origin is the only one the Admin API answers CORS for.
    const allowed = await fetch(`${gw.adminUrl}/services`, { headers: { origin: 'https://ui.example.test' } });
    assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://ui.example.test');
    const own = await fetch(`${gw.adminUrl}/services`, { headers: { origin: base } });
    assert.equal(own.headers.get('access-control-allow-origin'), null, 'the listener origin is not added when admin_gui_url is set');
  } finally {
    await gw.close();
  }
});

test("admin_gui_listen off: no listener; the helpers' default", async () => {
  const gw = await startGateway();
  try {
    assert.deepEqual(gw.node.guiPorts(), []);
  } finally {
    await gw.close();
  }
});

test('an unbuilt UI: the listener answers 503 saying how to build it, kconfig.js still answers', async () => {
  const empty = await mkdtemp(join(tmpdir(), 'portcullis-gui-'));
  const gui = await startGuiServer('127.0.0.1', 0, { path: '', dist: empty, kconfig: () => ({ ADMIN_API_URL: 'http://x' }), serverHeader: null, onError: () => {} });
  try {
    const res = await fetch(`http://127.0.0.1:${gui.port()}/`);
    assert.equal(res.status, 503);
    assert.match(await res.text(), /npm run build:ui/);
    assert.equal((await fetch(`http://127.0.0.1:${gui.port()}/kconfig.js`)).status, 200);
  } finally {
    await gui.close();
    await rm(empty, { recursive: true, force: true });
  }
});

test("Kong Manager's service body: url with the port it derived is accepted; a port that disagrees is refused", async () => {
  const gw = await startGateway({ database: 'sqlite' });
  try {
    const post = (body: unknown) => fetch(`${gw.adminUrl}/services`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const ok = await post({ name: 'km', url: 'http://127.0.0.1:9/anything', port: 9, retries: 5 });
    assert.equal(ok.status, 201);
    const created = await ok.json() as { host: string; port: number; path: string };
    assert.deepEqual([created.host, created.port, created.path], ['127.0.0.1', 9, '/anything']);
    const implicit = await post({ name: 'km2', url: 'https://example.test/x', port: 443, protocol: 'https' });
    assert.equal(implicit.status, 201, 'the default port of the scheme counts as what the URL says');
    const bad = await post({ name: 'km3', url: 'http://127.0.0.1:9/anything', port: 10 });
    assert.equal(bad.status, 400);
    assert.deepEqual((await bad.json() as { fields: unknown }).fields, { url: "cannot be set together with 'port'" });
  } finally {
    await gw.close();
  }
});

test("admin_gui_listen's reuseport flag: a second listener binds the same port", async () => {
  const opts = { path: '', kconfig: () => ({}), serverHeader: null, onError: () => {}, reusePort: true, backlog: 16 };
  const a = await startGuiServer('127.0.0.1', 0, opts);
  try {
    const b = await startGuiServer('127.0.0.1', a.port(), opts);
    assert.equal(b.port(), a.port());
    await b.close();
    await assert.rejects(startGuiServer('127.0.0.1', a.port(), { ...opts, reusePort: false }), /EADDRINUSE/);
  } finally {
    await a.close();
  }
});
