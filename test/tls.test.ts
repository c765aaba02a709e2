import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { selfSigned, type SelfSigned } from './helpers/certs.ts';
import { startGateway } from './helpers/gateway.ts';

describe('https upstreams', () => {
  let tls: SelfSigned;
  let upstream: https.Server;
  let port: number;
  before(async () => {
    tls = selfSigned();
    upstream = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ secure: true, path: req.url }));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    port = (upstream.address() as AddressInfo).port;
  });
  after(() => {
    upstream.closeAllConnections();
    upstream.close();
  });

  const config = (verify: boolean | null) => ({
    services: [{ name: 'secure', url: `https://localhost:${port}/api`, ...(verify === null ? {} : { tls_verify: verify }), routes: [{ name: 'r', paths: ['/s'] }] }],
  });

  test('tls_verify: an untrusted certificate is refused with 502', async () => {
    const gw = await startGateway({ config: config(true) });
    try {
      const r = await fetch(`${gw.proxyUrl}/s/x`);
      assert.equal(r.status, 502);
      assert.deepEqual(await r.json(), { message: 'An invalid response was received from the upstream server' });
    } finally {
      await gw.close();
    }
  });

  test('tls_verify with the CA bundle trusted: proxied over TLS', async () => {
    const gw = await startGateway({ config: config(true), env: { PORTCULLIS_UPSTREAM_CA_FILE: tls.certFile } });
    try {
      const r = await fetch(`${gw.proxyUrl}/s/x?q=1`);
      assert.equal(r.status, 200);
      assert.deepEqual(await r.json(), { secure: true, path: '/api/x?q=1' });
    } finally {
      await gw.close();
    }
  });

  test('tls_verify unset follows PORTCULLIS_UPSTREAM_TLS_VERIFY (off by default, as Kong)', async () => {
    const off = await startGateway({ config: config(null) });
    try {
      assert.equal((await fetch(`${off.proxyUrl}/s/x`)).status, 200);
    } finally {
      await off.close();
    }
    const on = await startGateway({ config: config(null), env: { PORTCULLIS_UPSTREAM_TLS_VERIFY: 'on' } });
    try {
      assert.equal((await fetch(`${on.proxyUrl}/s/x`)).status, 502);
    } finally {
      await on.close();
    }
  });
});

describe('trusted_ips', () => {
  let echo: EchoServer;
  before(async () => {
    echo = await startEcho();
  });
  after(async () => {
    await echo.close();
  });

  test('a trusted peer\'s X-Forwarded-* and X-Real-IP are kept', async () => {
    const gw = await startGateway({
      env: { PORTCULLIS_TRUSTED_IPS: '127.0.0.1,::1' },
      config: { services: [{ name: 'e', url: echo.url, routes: [{ name: 'r', paths: ['/'] }] }] },
    });
    try {
      const r = await fetch(`${gw.proxyUrl}/x`, {
        headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.example.com', 'x-forwarded-port': '443', 'x-real-ip': '203.0.113.9' },
      });
      const body = (await r.json()) as { headers: Record<string, string> };
      assert.equal(body.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
      assert.equal(body.headers['x-forwarded-proto'], 'https');
      assert.equal(body.headers['x-forwarded-host'], 'api.example.com');
      assert.equal(body.headers['x-forwarded-port'], '443');
      assert.equal(body.headers['x-real-ip'], '203.0.113.9');
      await new Promise((res) => setTimeout(res, 30));
      const line = gw.logs.find((l) => l.type === 'access' && l.path === '/x');
      assert.equal(line?.client_ip, '203.0.113.9');
    } finally {
      await gw.close();
    }
  });
});

describe('TLS proxy listener', () => {
  test('"ssl" proxy_listen serves https with the configured certificate', async () => {
    const tls = selfSigned();
    const echo = await startEcho();
    const { startGatewayProcess } = await import('./helpers/process.ts');
    const { freePort } = await import('./helpers/process.ts');
    const sslPort = await freePort();
    const gw = await startGatewayProcess({
      config: `_format_version: "3.0"\nservices:\n  - name: e\n    url: ${echo.url}\n    routes:\n      - { name: r, paths: [/] }\n`,
      env: { PORTCULLIS_SSL_CERT: tls.certFile, PORTCULLIS_SSL_CERT_KEY: tls.keyFile },
      args: [],
      extraProxyListen: `127.0.0.1:${sslPort} ssl`,
    });
    try {
      const body = await new Promise<string>((resolve, reject) => {
        https.get({ host: '127.0.0.1', port: sslPort, path: '/hello', ca: tls.cert, servername: 'localhost' }, (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve(text));
        }).on('error', reject);
      });
      const echoed = JSON.parse(body) as { path: string; headers: Record<string, string> };
      assert.equal(echoed.path, '/hello');
      assert.equal(echoed.headers['x-forwarded-proto'], 'https');
    } finally {
      await gw.stop();
      await echo.close();
    }
  });
});
