/**
 * Proxy behaviours a Kong user sees, checked against Kong's proxy and router documentation:
 * Server/Via product tokens (Kong's `headers = server_tokens`), the no-route 404, trailing
 * slashes in prefix paths, strip_path with regex paths, hosts with a port, and
 * https_redirect_status_code.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { parseHeadersSetting } from '../src/kernel/settings.ts';
import { productToken } from '../src/kernel/version.ts';

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** GET with full control of headers (fetch forbids setting Host). */
function get(url: string, headers: Record<string, string> = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const config = (echoUrl: string) => `
_format_version: "3.0"
services:
  - name: echo
    url: ${echoUrl}/base
    routes:
      - name: slash
        paths: [/slash/]
      - name: regex
        paths: ["~/re/(?<id>\\\\d+)"]
      - name: host-port
        hosts: ["example.com:8080"]
        paths: [/hp]
      - name: wild-host
        hosts: ["*.example.org"]
        paths: [/wild]
      - name: secure
        protocols: [https]
        paths: [/secure]
        https_redirect_status_code: 301
      - name: secure-default
        protocols: [https]
        paths: [/upgrade]
`;

describe('proxy: Kong behaviours', () => {
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

  test('no route: 404 with Kong\'s body and a Server product token', async () => {
    const r = await get(`${gw.proxyUrl}/nothing-here`);
    assert.equal(r.status, 404);
    assert.deepEqual(JSON.parse(r.body), { message: 'no Route matched with those values' });
    assert.equal(r.headers.server, productToken);
    assert.equal(r.headers.via, undefined);
    // The Admin API answers carry it too, as Kong's do.
    const admin = await get(`${gw.adminUrl}/status`);
    assert.equal(admin.headers.server, productToken);
  });

  test('proxied responses carry Via (appended to the upstream\'s own), no Server of ours', async () => {
    const r = await get(`${gw.proxyUrl}/slash/x`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.via, `1.1 ${productToken}`);
    assert.notEqual(r.headers.server, productToken);
  });

  test('a prefix path with a trailing slash does not match the path without it', async () => {
    assert.equal((await get(`${gw.proxyUrl}/slash`)).status, 404);
    const r = await get(`${gw.proxyUrl}/slash/a?q=1`);
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).url, '/base/a?q=1');
  });

  test('strip_path with a regex path strips the matched part only', async () => {
    const r = await get(`${gw.proxyUrl}/re/123/tail`);
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).url, '/base/tail');
    assert.equal((await get(`${gw.proxyUrl}/re/abc`)).status, 404);
  });

  test('hosts with a port match only that port; wildcard hosts match subdomains', async () => {
    assert.equal((await get(`${gw.proxyUrl}/hp`, { host: 'example.com:8080' })).status, 200);
    assert.equal((await get(`${gw.proxyUrl}/hp`, { host: 'example.com' })).status, 404);
    assert.equal((await get(`${gw.proxyUrl}/wild`, { host: 'a.example.org' })).status, 200);
    assert.equal((await get(`${gw.proxyUrl}/wild`, { host: 'example.org' })).status, 404);
  });

  test('https-only routes over http: the configured redirect, or 426 by default', async () => {
    const moved = await get(`${gw.proxyUrl}/secure/p?x=1`, { host: 'api.test' });
    assert.equal(moved.status, 301);
    assert.equal(moved.headers.location, 'https://api.test/secure/p?x=1');
    // The client's port is the plain-http one: the redirect drops it, as Kong's does.
    const noPort = await get(`${gw.proxyUrl}/secure`, { host: 'api.test:8000' });
    assert.equal(noPort.headers.location, 'https://api.test/secure');
    const upgrade = await get(`${gw.proxyUrl}/upgrade`);
    assert.equal(upgrade.status, 426);
    assert.deepEqual(JSON.parse(upgrade.body), { message: 'Please use HTTPS protocol' });
    assert.equal(upgrade.headers.upgrade, 'TLS/1.2, HTTP/1.1');
  });
});

describe('proxy: PORTCULLIS_HEADERS=off', () => {
  test('no Server or Via headers', async () => {
    const echo = await startEcho();
    const gw = await startGateway({ config: config(echo.url), env: { PORTCULLIS_HEADERS: 'off' } });
    try {
      assert.equal((await get(`${gw.proxyUrl}/nothing`)).headers.server, undefined);
      assert.equal((await get(`${gw.proxyUrl}/slash/x`)).headers.via, undefined);
      assert.equal((await get(`${gw.adminUrl}/status`)).headers.server, undefined);
    } finally {
      await gw.close();
      await echo.close();
    }
  });

  test('the setting parses as Kong\'s `headers` list', () => {
    // Server/Via part of the parsed setting (the latency and request-id flags are tested in observability-headers).
    const sv = (h: { server: boolean; via: boolean }) => ({ server: h.server, via: h.via });
    assert.deepEqual(sv(parseHeadersSetting('server_tokens')), { server: true, via: true });
    assert.deepEqual(sv(parseHeadersSetting('server_tokens, latency_tokens')), { server: true, via: true });
    assert.deepEqual(sv(parseHeadersSetting('Via')), { server: false, via: true });
    assert.deepEqual(sv(parseHeadersSetting('off')), { server: false, via: false });
  });
});
