import { test } from 'node:test';
import assert from 'node:assert/strict';
import requestTransformer from '../src/plugins/bundled/request-transformer/index.ts';
import { echoGatewaySuite } from './helpers/echo-gateway.ts';
import { adminJson } from './helpers/gateway.ts';

const rt = (config: object) => [{ name: 'request-transformer', config }];

const t = echoGatewaySuite({
  plugins: [requestTransformer],
  routes: [
    {
      name: 'headers', paths: ['/headers'], plugins: rt({
        remove: { headers: ['x-remove-me', 'host'] },
        rename: { headers: ['x-old-name:x-new-name', 'x-missing:x-never'] },
        replace: { headers: ['x-replace-me:replaced', 'x-absent:never'] },
        add: { headers: ['x-added:$(headers["x-source"])', 'x-present:not-added', 'x-from-query:v=$(query_params.v)', 'x-lookup-missing:[$(headers.x_nothing)]', 'host:never.example'] },
        append: { headers: ['x-multi:second', 'x-fresh:only'] },
      }),
    },
    {
      name: 'query', paths: ['/query'], plugins: rt({
        remove: { querystring: ['drop'] },
        rename: { querystring: ['old:new'] },
        replace: { querystring: ['swap:swapped', 'nothere:x'] },
        add: { querystring: ['added:$(headers.x_source)', 'keep:no'] },
        append: { querystring: ['keep:2', 'tpl:$(query_params["keep"])'] },
      }),
    },
    {
      name: 'body', paths: ['/body'], plugins: rt({
        remove: { body: ['secret'] },
        rename: { body: ['old:new'] },
        replace: { body: ['swap:swapped', 'nothere:x'] },
        add: { body: ['added:$(headers.x_source)', 'keep:no'] },
        append: { body: ['list:b', 'keep:2'] },
      }),
    },
    { name: 'uri', paths: ['/uri'], plugins: rt({ replace: { uri: '/rewritten/$(headers.x_user)/$(query_params.id)' } }) },
    { name: 'uri-bad', paths: ['/uri-bad'], plugins: rt({ replace: { uri: '$(headers.x_user)' } }) },
  ],
});

async function send(path: string, init: { method?: string; headers?: Record<string, string>; body?: string | FormData } = {}) {
  const res = await fetch(t.gw.proxyUrl + path, { method: init.method ?? 'POST', headers: init.headers, body: init.body });
  const text = await res.text();
  return { status: res.status, text, body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : null };
}

test('headers: remove, rename, replace only when present, add only when absent, append', async () => {
  const r = await t.call('/headers?v=42', {
    'x-remove-me': '1', 'x-old-name': 'moved', 'x-replace-me': 'orig', 'x-source': 'src-value', 'x-present': 'kept', 'x-multi': 'first',
  });
  assert.equal(r.status, 200);
  const h = r.body.headers;
  assert.equal(h['x-remove-me'], undefined);
  assert.equal(h['x-old-name'], undefined);
  assert.equal(h['x-new-name'], 'moved');
  assert.equal(h['x-never'], undefined);
  assert.equal(h['x-replace-me'], 'replaced');
  assert.equal(h['x-absent'], undefined);
  assert.equal(h['x-added'], 'src-value');
  assert.equal(h['x-present'], 'kept');
  assert.equal(h['x-from-query'], 'v=42');
  assert.equal(h['x-lookup-missing'], '[]');
  assert.equal(h['x-multi'], 'first, second');
  assert.equal(h['x-fresh'], 'only');
  // Host is neither removed nor added (Kong's rules); the proxy's Host reaches the upstream.
  assert.match(h.host, /^127\.0\.0\.1:\d+$/);
});

test('querystring: remove, rename, replace, add, append (multi-valued) with template lookups', async () => {
  const r = await t.call('/query?drop=1&old=a&old=b&swap=s&keep=1', { 'x-source': 'hdr' });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.args, { keep: ['1', '2'], swap: 'swapped', new: ['a', 'b'], added: 'hdr', tpl: '1' });
  assert.equal(r.body.args.nothere, undefined);
});

test('json body: every op, Content-Length recomputed', async () => {
  const r = await send('/body', {
    headers: { 'content-type': 'application/json', 'x-source': 'hdr' },
    body: JSON.stringify({ secret: 's', old: 'o', swap: 1, keep: 'k', list: ['a'] }),
  });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.json, { new: 'o', swap: 'swapped', keep: ['k', '2'], list: ['a', 'b'], added: 'hdr' });
  assert.equal(Number(r.body.headers['content-length']), Buffer.byteLength(r.body.data));
});

test('json body: an empty body gets only add/append; an unparsable one is forwarded untouched', async () => {
  const empty = await send('/body', { headers: { 'content-type': 'application/json', 'x-source': 'h' }, body: '' });
  assert.deepEqual(empty.body.json, { added: 'h', keep: ['no', '2'], list: ['b'] });
  const broken = await send('/body', { headers: { 'content-type': 'application/json' }, body: '{"secret": ' });
  assert.equal(broken.body.data, '{"secret": ');
});

test('form-urlencoded body: every op', async () => {
  const r = await send('/body', {
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-source': 'hdr' },
    body: 'secret=s&old=o&swap=1&keep=k',
  });
  assert.equal(r.status, 200);
  const form = new URLSearchParams(r.body.data);
  assert.equal(form.has('secret'), false);
  assert.equal(form.get('new'), 'o');
  assert.equal(form.has('old'), false);
  assert.equal(form.get('swap'), 'swapped');
  assert.equal(form.has('nothere'), false);
  assert.deepEqual(form.getAll('keep'), ['k', '2']);
  assert.equal(form.get('added'), 'hdr');
  assert.deepEqual(form.getAll('list'), ['b']);
});

test('multipart body: forwarded untouched', async () => {
  const fd = new FormData();
  fd.append('secret', 's');
  const r = await send('/body', { body: fd });
  assert.equal(r.status, 200);
  assert.match(r.body.data, /name="secret"\r\n\r\ns\r\n/);
  assert.doesNotMatch(r.body.data, /added/);
});

test('replace.uri: the upstream path is the rendered template; a path not starting with / fails with 500', async () => {
  const r = await t.call('/uri/ignored?id=7', { 'x-user': 'ann' });
  assert.equal(r.status, 200);
  assert.equal(r.body.path, '/rewritten/ann/7');
  assert.equal(r.body.args.id, '7');
  const before = t.echo.received.length;
  const bad = await t.call('/uri-bad', {});
  assert.equal(bad.status, 500);
  assert.deepEqual(bad.body, { message: 'An unexpected error occurred' });
  assert.equal(t.echo.received.length, before);
});

test('config: a Lua template, uri_captures and http_method are refused naming the field', async () => {
  const check = async (config: object, field: RegExp, msg: RegExp) => {
    const r = await adminJson(t.gw.adminUrl, 'POST', '/schemas/plugins/validate', { name: 'request-transformer', config });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    const text = JSON.stringify(r.body);
    assert.match(text, field);
    assert.match(text, msg);
  };
  await check({ add: { headers: ['x-a:$(string.upper(headers.x))'] } }, /headers/, /template '\$\(string\.upper\(headers\.x\)\)' is not supported/);
  await check({ replace: { uri: '/u/$(uri_captures[1])' } }, /uri/, /uri_captures/);
  await check({ http_method: 'POST' }, /http_method/, /http_method is not supported/);
  const ok = await adminJson(t.gw.adminUrl, 'POST', '/schemas/plugins/validate', { name: 'request-transformer', config: { add: { headers: ['x-a:$(headers["x-b"])'] } } });
  assert.equal(ok.status, 200);
});
