import { test } from 'node:test';
import assert from 'node:assert/strict';
import responseTransformer from '../src/plugins/bundled/response-transformer/index.ts';
import { echoGatewaySuite } from './helpers/echo-gateway.ts';
import { adminJson } from './helpers/gateway.ts';

const rt = (config: object) => [{ name: 'response-transformer', config }];

const t = echoGatewaySuite({
  plugins: [responseTransformer],
  routes: [
    {
      name: 'edit', paths: ['/edit'], plugins: [{ name: 'cors', config: { origins: ['*'] } }, ...rt({
        remove: { headers: ['access-control-allow-origin', 'x-not-sent'] },
        replace: { headers: ['content-type:application/vnd.test+json', 'x-absent:never'] },
        add: { headers: ['x-added:a', 'content-type:not-added', 'access-control-allow-origin:not-re-added'] },
        append: { headers: ['x-appended:1', 'x-appended:2'] },
      })],
    },
    { name: 'cors-only', paths: ['/cors-only'], plugins: [{ name: 'cors', config: { origins: ['*'] } }] },
    { name: 'rename', paths: ['/rename'], plugins: rt({ rename: { headers: ['content-type:x-upstream-type', 'x-missing:x-never'] } }) },
    {
      name: 'local', paths: ['/local'], plugins: [
        { name: 'request-termination', config: { status_code: 403, message: 'no' } },
        ...rt({ add: { headers: ['x-added:on-local-reply'] } }),
      ],
    },
  ],
});

test('headers: remove, replace only when present, add only when absent (as the response arrived), append', async () => {
  // cors (priority 2000) sets Access-Control-Allow-Origin before this plugin (800) runs.
  assert.equal((await t.call('/cors-only', { origin: 'http://a.example' })).headers['access-control-allow-origin'], '*');
  const r = await t.call('/edit', { origin: 'http://a.example' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['access-control-allow-origin'], undefined);
  assert.equal(r.headers['content-type'], 'application/vnd.test+json');
  assert.equal(r.headers['x-absent'], undefined);
  assert.equal(r.headers['x-added'], 'a');
  assert.deepEqual(r.headers['x-appended'], ['1', '2']);
  assert.equal(r.body.path, '/', 'the body is untouched');
});

test('headers: rename moves the value to the new name', async () => {
  const r = await t.call('/rename');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], undefined);
  assert.equal(r.headers['x-upstream-type'], 'application/json');
  assert.equal(r.headers['x-never'], undefined);
});

test('headers: local replies are transformed too', async () => {
  const r = await t.call('/local');
  assert.equal(r.status, 403);
  assert.equal(r.headers['x-added'], 'on-local-reply');
});

test('config: JSON body fields are refused naming the field, header-only configs pass', async () => {
  for (const config of [{ add: { json: ['a:b'] } }, { remove: { json: ['a'] } }, { rename: { json: ['a:b'] } }, { replace: { json: ['a:b'], json_types: ['number'] } }, { append: { json: ['a:1'] } }]) {
    const r = await adminJson(t.gw.adminUrl, 'POST', '/schemas/plugins/validate', { name: 'response-transformer', config });
    assert.equal(r.status, 400, JSON.stringify(config));
    assert.match(JSON.stringify(r.body), /json.*JSON body transformations are not supported/);
  }
  const ok = await adminJson(t.gw.adminUrl, 'POST', '/schemas/plugins/validate', { name: 'response-transformer', config: { add: { headers: ['x-a:b'] } } });
  assert.equal(ok.status, 200);
});
