/**
 * Kong's `headers` / `headers_upstream` settings (PORTCULLIS_HEADERS, PORTCULLIS_HEADERS_UPSTREAM)
 * with Kong's defaults: `server_tokens, latency_tokens, X-Kong-Request-Id`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { parseHeadersSetting, readSettings, SettingsError } from '../src/kernel/settings.ts';
import { productToken } from '../src/kernel/version.ts';

const config = (url: string) => ({ services: [{ name: 's', url, routes: [{ name: 'r', paths: ['/p'] }] }] });

describe('Kong headers: defaults', () => {
  let echo: EchoServer;
  let gw: TestGateway;
  before(async () => {
    echo = await startEcho();
    gw = await startGateway({ config: config(echo.url) });
  });
  after(async () => {
    await gw.close();
    await echo.close();
  });

  test('proxied: X-Kong-Upstream-Latency, X-Kong-Proxy-Latency, X-Kong-Request-Id, Via; the upstream gets X-Kong-Request-Id', async () => {
    const r = await fetch(`${gw.proxyUrl}/p/x`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('x-kong-upstream-latency') ?? '', /^\d+$/);
    assert.match(r.headers.get('x-kong-proxy-latency') ?? '', /^\d+$/);
    assert.equal(r.headers.get('x-kong-response-latency'), null);
    const id = r.headers.get('x-kong-request-id');
    assert.ok(id);
    assert.equal(id, r.headers.get('x-request-id'));
    assert.equal(r.headers.get('via'), `1.1 ${productToken}`);
    const echoed = (await r.json()) as { headers: Record<string, string> };
    assert.equal(echoed.headers['x-kong-request-id'], id);
  });

  test('a reply of the gateway: X-Kong-Response-Latency and Server, no upstream latency', async () => {
    const r = await fetch(`${gw.proxyUrl}/nothing`);
    assert.equal(r.status, 404);
    assert.match(r.headers.get('x-kong-response-latency') ?? '', /^\d+$/);
    assert.equal(r.headers.get('x-kong-upstream-latency'), null);
    assert.equal(r.headers.get('server'), productToken);
    assert.ok(r.headers.get('x-kong-request-id'));
  });

  test('the Admin API answers with X-Kong-Admin-Latency', async () => {
    const r = await fetch(`${gw.adminUrl}/status`);
    assert.match(r.headers.get('x-kong-admin-latency') ?? '', /^\d+$/);
  });
});

describe('Kong headers: settings', () => {
  test('only the listed headers; X-Kong-Upstream-Status when asked; headers_upstream off', async () => {
    const echo = await startEcho();
    const gw = await startGateway({ config: config(echo.url), env: { PORTCULLIS_HEADERS: 'X-Kong-Upstream-Status, X-Kong-Upstream-Latency', PORTCULLIS_HEADERS_UPSTREAM: 'off' } });
    try {
      const r = await fetch(`${gw.proxyUrl}/p/status/201`);
      assert.equal(r.status, 201);
      assert.equal(r.headers.get('x-kong-upstream-status'), '201');
      assert.match(r.headers.get('x-kong-upstream-latency') ?? '', /^\d+$/);
      for (const h of ['x-kong-proxy-latency', 'x-kong-request-id', 'via']) assert.equal(r.headers.get(h), null, h);
      const echoed = (await (await fetch(`${gw.proxyUrl}/p/x`)).json()) as { headers: Record<string, string> };
      assert.equal(echoed.headers['x-kong-request-id'], undefined);
      assert.equal((await fetch(`${gw.adminUrl}/status`)).headers.get('x-kong-admin-latency'), null);
    } finally {
      await gw.close();
      await echo.close();
    }
  });

  test('off disables all; latency_tokens expands to the four latency headers', () => {
    const off = parseHeadersSetting('off');
    assert.ok(Object.values(off).every((v) => v === false));
    const lat = parseHeadersSetting('latency_tokens');
    assert.deepEqual(lat, { server: false, via: false, proxyLatency: true, responseLatency: true, adminLatency: true, upstreamLatency: true, upstreamStatus: false, requestId: false });
    const def = readSettings({}, {}).headers;
    assert.deepEqual(def, { server: true, via: true, proxyLatency: true, responseLatency: true, adminLatency: true, upstreamLatency: true, upstreamStatus: false, requestId: true });
  });

  test('a value Kong does not know is refused with its name', () => {
    assert.throws(() => readSettings({}, { PORTCULLIS_HEADERS: 'server_tokens, x-made-up' }), (e: Error) => e instanceof SettingsError && /x-made-up/.test(e.message));
    assert.throws(() => readSettings({}, { PORTCULLIS_HEADERS: 'off, via' }), SettingsError);
    assert.throws(() => readSettings({}, { PORTCULLIS_HEADERS_UPSTREAM: 'via' }), /PORTCULLIS_HEADERS_UPSTREAM/);
  });
});
