/**
 * The plugin's HTTP client for IdP calls: `http_proxy` / `https_proxy` with their
 * `*_proxy_authorization`, `no_proxy`, `keepalive` and `http_version`, through a real forward
 * proxy (test/helpers/forward-proxy.ts: absolute-form for http targets, CONNECT for https) in
 * front of the demo IdP and a TLS JWKS server.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { CookieJar, send } from './helpers/fake-ctx.ts';
import { baseConfig, setup } from './helpers/oidc-browser-setup.ts';
import { startForwardProxy, type ForwardProxy } from './helpers/forward-proxy.ts';
import { selfSigned } from './helpers/certs.ts';
import { oidcConfigSchema } from '../src/plugins/bundled/openid-connect/schema.ts';
import { bypassesProxy } from '../src/plugins/bundled/openid-connect/http.ts';

const basic = { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}` };
const proxyAuth = `Basic ${Buffer.from('gw:proxy-secret').toString('base64')}`;

function paths(p: ForwardProxy): string[] {
  return p.requests.map((r) => r.replace(/http:\/\/127\.0\.0\.1:\d+/, ''));
}

describe('http_proxy with http_proxy_authorization', () => {
  let proxy: ForwardProxy;
  before(async () => {
    proxy = await startForwardProxy({ authorization: proxyAuth });
  });
  after(() => proxy.close());

  it('discovery, token, JWKS and user info calls go through the proxy, with Proxy-Authorization', async () => {
    const s = await setup({
      ...baseConfig,
      auth_methods: ['password', 'userinfo'],
      http_proxy: proxy.url,
      http_proxy_authorization: proxyAuth,
      // a second, unused proxy setting for https targets: http:// IdP URLs never use it
      https_proxy: 'http://127.0.0.1:1',
    });
    try {
      proxy.reset();
      const login = await send(new CookieJar(), `${s.harness.url}/login`, { headers: basic });
      assert.equal(login.status, 200, login.body);
      const token = (JSON.parse(login.body) as { extra: { access_token: string } }).extra.access_token;
      // With only `userinfo` to check it, a bearer token is sent to the user info endpoint.
      await send(new CookieJar(), `${s.harness.url}/x`, { headers: { authorization: `Bearer ${token}` } });
      const seen = paths(proxy);
      assert.ok(seen.includes('GET /.well-known/openid-configuration'), seen.join(', '));
      assert.ok(seen.includes('POST /token'), seen.join(', '));
      assert.ok(seen.some((x) => x.startsWith('GET /jwks')), seen.join(', '));
      assert.ok(seen.some((x) => x.startsWith('GET /me') || x.startsWith('POST /me')), seen.join(', '));
      assert.equal(proxy.refused, 0);
    } finally {
      await s.close();
    }
  });

  it('a wrong proxy authorization: the proxy refuses (407), the login fails with a 500', async () => {
    const s = await setup({ ...baseConfig, http_proxy: proxy.url, http_proxy_authorization: 'Basic d3Jvbmc6d3Jvbmc=' });
    try {
      proxy.reset();
      const login = await send(new CookieJar(), `${s.harness.url}/login`, { headers: basic });
      assert.equal(login.status, 500);
      assert.ok(proxy.refused > 0);
      assert.deepEqual(proxy.requests, []);
    } finally {
      await s.close();
    }
  });

  it('no_proxy naming the IdP host: calls go direct', async () => {
    const s = await setup({ ...baseConfig, http_proxy: proxy.url, http_proxy_authorization: proxyAuth, no_proxy: 'idp.example, 127.0.0.1' });
    try {
      proxy.reset();
      const login = await send(new CookieJar(), `${s.harness.url}/login`, { headers: basic });
      assert.equal(login.status, 200);
      assert.deepEqual(proxy.requests, []);
      assert.equal(proxy.connections, 0);
    } finally {
      await s.close();
    }
  });
});

describe('keepalive', () => {
  let proxy: ForwardProxy;
  before(async () => {
    proxy = await startForwardProxy();
  });
  after(() => proxy.close());

  for (const keepalive of [true, false]) {
    it(`keepalive: ${keepalive}: ${keepalive ? 'sequential IdP calls share a connection' : 'one connection per IdP call'}`, async () => {
      const s = await setup({ ...baseConfig, http_proxy: proxy.url, keepalive });
      try {
        proxy.reset();
        const login = await send(new CookieJar(), `${s.harness.url}/login`, { headers: basic });
        assert.equal(login.status, 200);
        const calls = proxy.requests.length;
        assert.ok(calls >= 3, `discovery, token, jwks at least (${proxy.requests.join(', ')})`);
        if (keepalive) assert.ok(proxy.connections < calls, `${proxy.connections} connections for ${calls} calls`);
        else assert.equal(proxy.connections, calls);
      } finally {
        await s.close();
      }
    });
  }
});

describe('https_proxy with https_proxy_authorization (CONNECT)', () => {
  const cert = selfSigned('localhost');
  let proxy: ForwardProxy;
  let jwksServer: ReturnType<typeof createTlsServer>;
  let jwksUrl = '';
  let jwksHits = 0;
  before(async () => {
    proxy = await startForwardProxy({ authorization: proxyAuth });
    jwksServer = createTlsServer({ cert: cert.cert, key: cert.key }, (_req, res) => {
      jwksHits++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [] }));
    });
    await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', () => r()));
    jwksUrl = `https://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;
  });
  after(async () => {
    jwksServer.closeAllConnections();
    await new Promise<void>((r) => jwksServer.close(() => r()));
    await proxy.close();
  });

  it('https:// IdP URLs are tunnelled through https_proxy; http:// ones are not', async () => {
    const s = await setup({
      ...baseConfig,
      extra_jwks_uris: [jwksUrl],
      ssl_verify: false,
      https_proxy: proxy.url,
      https_proxy_authorization: proxyAuth,
    });
    try {
      proxy.reset();
      const login = await send(new CookieJar(), `${s.harness.url}/login`, { headers: basic });
      assert.equal(login.status, 200, login.body);
      assert.ok(jwksHits > 0, 'the extra JWKS was fetched');
      assert.deepEqual(proxy.requests, [`CONNECT ${new URL(jwksUrl).host}`]);
      assert.equal(proxy.refused, 0);
    } finally {
      await s.close();
    }
  });
});

describe('settings', () => {
  const parse = (c: Record<string, unknown>) => oidcConfigSchema.safeParse({ issuer: 'http://idp.example', ...c });
  const paths = (c: Record<string, unknown>) => {
    const r = parse(c);
    return r.success ? [] : r.error.issues.map((i) => i.path.join('.'));
  };

  it('http_version: 1.1 is accepted, 1.0 (and anything else) refused naming the field', () => {
    assert.deepEqual(paths({ http_version: 1.1 }), []);
    assert.deepEqual(paths({ http_version: 1.0 }), ['http_version']);
    assert.deepEqual(paths({ http_version: 2 }), ['http_version']);
  });

  it('proxy URLs must be http(s) URLs; an authorization needs its proxy', () => {
    assert.deepEqual(paths({ http_proxy: 'proxy:3128' }), ['http_proxy']);
    assert.deepEqual(paths({ https_proxy_authorization: 'Basic eA==' }), ['https_proxy_authorization']);
    assert.deepEqual(paths({ http_proxy_authorization: 'Basic eA==' }), ['http_proxy_authorization']);
  });

  it('no_proxy matching: hosts, subdomains, ports, *', () => {
    const u = new URL('https://login.idp.example:8443/x');
    assert.equal(bypassesProxy(u, 'idp.example'), true);
    assert.equal(bypassesProxy(u, '.idp.example'), true);
    assert.equal(bypassesProxy(u, 'other.example, login.idp.example:8443'), true);
    assert.equal(bypassesProxy(u, 'login.idp.example:443'), false);
    assert.equal(bypassesProxy(u, 'example.org'), false);
    assert.equal(bypassesProxy(u, 'dp.example'), false);
    assert.equal(bypassesProxy(u, '*'), true);
    assert.equal(bypassesProxy(u, null), false);
  });
});
