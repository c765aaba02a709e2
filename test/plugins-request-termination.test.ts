import { test } from 'node:test';
import assert from 'node:assert/strict';
import { echoGatewaySuite } from './helpers/echo-gateway.ts';

const t = echoGatewaySuite({
  routes: [
    { name: 'down', paths: ['/down'], plugins: [{ name: 'request-termination' }] },
    { name: 'gone', paths: ['/gone'], plugins: [{ name: 'request-termination', config: { status_code: 410, body: '<h1>gone</h1>', content_type: 'text/html' } }] },
    { name: 'maybe', paths: ['/maybe'], plugins: [{ name: 'request-termination', config: { status_code: 403, message: 'nope', trigger: 'X-Block' } }] },
    { name: 'debug', paths: ['/debug'], plugins: [{ name: 'request-termination', config: { echo: true, status_code: 200 } }] },
  ],
});
const call = (path: string, headers: Record<string, string> = {}) => t.call(path, headers);

test('request-termination default 503 with Kong message, upstream untouched', async () => {
  const before = t.echo.received.length;
  const r = await call('/down');
  assert.equal(r.status, 503);
  assert.deepEqual(JSON.parse(r.text), { message: 'Service unavailable' });
  assert.match(String(r.headers['content-type']), /application\/json/);
  assert.equal(t.echo.received.length, before);
});

test('request-termination raw body with content type', async () => {
  const r = await call('/gone');
  assert.equal(r.status, 410);
  assert.equal(r.text, '<h1>gone</h1>');
  assert.equal(r.headers['content-type'], 'text/html');
});

test('request-termination trigger', async () => {
  assert.equal((await call('/maybe')).status, 200);
  const r = await call('/maybe', { 'x-block': '1' });
  assert.equal(r.status, 403);
  assert.deepEqual(JSON.parse(r.text), { message: 'nope' });
  assert.equal((await call('/maybe?X-Block=1')).status, 403);
});

test('request-termination echo', async () => {
  const r = await call('/debug/thing?q=1', { 'x-probe': 'yes' });
  assert.equal(r.status, 200);
  const body = JSON.parse(r.text);
  assert.equal(body.request.method, 'GET');
  assert.equal(body.request.headers['x-probe'], 'yes');
  assert.deepEqual(body.request.query, { q: '1' });
  assert.equal(body.matched_route.name, 'debug');
});
