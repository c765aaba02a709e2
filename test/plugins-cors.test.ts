import { test } from 'node:test';
import assert from 'node:assert/strict';
import { echoGatewaySuite } from './helpers/echo-gateway.ts';

const t = echoGatewaySuite({
  routes: [
    {
      name: 'cors', paths: ['/cors'],
      plugins: [{ name: 'cors', config: { origins: ['http://a.example', '.*\\.b\\.example'], headers: ['X-Api-Key'], exposed_headers: ['X-Total'], credentials: true, max_age: 600 } }],
    },
    {
      name: 'cors-auth', paths: ['/cors-auth'],
      plugins: [{ name: 'cors', config: { origins: ['http://a.example'] } }, { name: 'request-termination', config: { status_code: 401 } }],
    },
    { name: 'cors-continue', paths: ['/continue'], plugins: [{ name: 'cors', config: { preflight_continue: true } }] },
  ],
});
const call = (path: string, method: string, headers: Record<string, string> = {}) => t.call(path, headers, method);

test('cors preflight is answered by the gateway', async () => {
  const before = t.echo.received.length;
  const r = await call('/cors/x', 'OPTIONS', { origin: 'https://api.b.example', 'access-control-request-method': 'PUT' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['access-control-allow-origin'], 'https://api.b.example');
  assert.equal(r.headers['access-control-allow-credentials'], 'true');
  assert.equal(r.headers['access-control-allow-headers'], 'X-Api-Key');
  assert.equal(r.headers['access-control-allow-methods'], 'GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT');
  assert.equal(r.headers['access-control-max-age'], '600');
  assert.equal(r.headers['vary'], 'Origin');
  assert.equal(t.echo.received.length, before, 'the upstream never saw the preflight');
});

test('cors actual request carries the headers; unknown origin gets none', async () => {
  const ok = await call('/cors/x', 'GET', { origin: 'http://a.example' });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['access-control-allow-origin'], 'http://a.example');
  assert.equal(ok.headers['access-control-expose-headers'], 'X-Total');
  assert.match(String(ok.headers['vary']), /Origin/);
  const bad = await call('/cors/x', 'GET', { origin: 'http://evil.example' });
  assert.equal(bad.status, 200);
  assert.equal(bad.headers['access-control-allow-origin'], undefined);
});

test('cors preflight_continue proxies the OPTIONS request', async () => {
  const before = t.echo.received.length;
  const r = await call('/continue', 'OPTIONS', { origin: 'http://a.example', 'access-control-request-method': 'GET' });
  assert.equal(r.status, 200);
  assert.equal(t.echo.received.length, before + 1);
  assert.equal(t.echo.received.at(-1)?.method, 'OPTIONS');
  assert.equal(r.headers['access-control-allow-methods'], undefined);
});

test('cors headers are added to local replies too (a 401 from a later plugin)', async () => {
  const r = await call('/cors-auth', 'GET', { origin: 'http://a.example' });
  assert.equal(r.status, 401);
  assert.equal(r.headers['access-control-allow-origin'], 'http://a.example');
  assert.equal(r.headers['vary'], 'Origin');
  // and a preflight is still answered before the later plugin can refuse it
  const p = await call('/cors-auth', 'OPTIONS', { origin: 'http://a.example', 'access-control-request-method': 'GET' });
  assert.equal(p.status, 200);
});
