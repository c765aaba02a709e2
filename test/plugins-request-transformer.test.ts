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
    {
      name: 'multipart', paths: ['/multipart'], plugins: rt({
        remove: { body: ['secret', 'absent'] },
        rename: { body: ['old:new', 'dup:target', 'doc:$(headers.x_doc_name)'] },
        replace: { body: ['swap:swapped-$(headers.x_source)', 'nothere:x'] },
        add: { body: ['added:$(query_params.v)', 'keep:no'] },
        append: { body: ['keep:2', 'list:b'] },
      }),
    },
    { name: 'multipart-append', paths: ['/multipart-append'], plugins: rt({ append: { body: ['a:2', 'fresh:1'] } }) },
    { name: 'multipart-remove', paths: ['/multipart-remove'], plugins: rt({ remove: { body: ['secret'] } }) },
    { name: 'uri', paths: ['/uri'], plugins: rt({ replace: { uri: '/rewritten/$(headers.x_user)/$(query_params.id)' } }) },
    { name: 'uri-bad', paths: ['/uri-bad'], plugins: rt({ replace: { uri: '$(headers.x_user)' } }) },
    { name: 'method', paths: ['/method'], plugins: rt({ http_method: 'POST', add: { headers: ['x-seen:$(headers.x_source)'] } }) },
    { name: 'method-get', paths: ['/method-get'], plugins: rt({ http_method: 'GET' }) },
    { name: 'host', paths: ['/host'], preserve_host: false, plugins: rt({ replace: { headers: ['host:new.example'] } }) },
    { name: 'host-preserved', paths: ['/host-preserved'], preserve_host: true, plugins: rt({ replace: { headers: ['host:new.example'] } }) },
    { name: 'host-renamed', paths: ['/host-renamed'], preserve_host: true, plugins: rt({ rename: { headers: ['x-target:host'] } }) },
    { name: 'host-untouched', paths: ['/host-untouched'], preserve_host: true, plugins: rt({ add: { headers: ['host:never.example'] }, remove: { headers: ['host'] } }) },
    {
      name: 'captures-named', paths: ['~/users/(?<user>\\w+)$'],
      plugins: rt({ add: { headers: ['x-user:$(uri_captures.user)', 'x-first:$(uri_captures[1])'] }, replace: { uri: '/profile/$(uri_captures["user"])' } }),
    },
    { name: 'captures-numbered', paths: ['~/items/(\\d+)/(\\w+)$'], plugins: rt({ add: { headers: ['x-id:$(uri_captures[1])', 'x-kind:$(uri_captures[2])', 'x-none:[$(uri_captures.user)]'] } }) },
    { name: 'captures-prefix', paths: ['/plain'], plugins: rt({ add: { headers: ['x-none:[$(uri_captures[1])]'] } }) },
  ],
});

async function send(path: string, init: { method?: string; headers?: Record<string, string>; body?: string | FormData | Uint8Array<ArrayBuffer> } = {}) {
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

/** A multipart body built by the platform: its bytes and the Content-Type naming its boundary. */
async function multipart(entries: [string, string | File][]) {
  const fd = new FormData();
  for (const [k, v] of entries) fd.append(k, v);
  const res = new Response(fd);
  return { type: res.headers.get('content-type')!, bytes: new Uint8Array(await res.arrayBuffer()) };
}

/** The parts the echo upstream received, in order: text as a string, a file as name, type and bytes. */
async function upstreamParts(echoed: { data: string; headers: Record<string, string> }) {
  const fd = await new Response(Buffer.from(echoed.data, 'utf8'), { headers: { 'content-type': echoed.headers['content-type'] } }).formData();
  const out: [string, string | { filename: string; type: string; bytes: number[] }][] = [];
  for (const [k, v] of fd) out.push([k, typeof v === 'string' ? v : { filename: v.name, type: v.type, bytes: [...new Uint8Array(await v.arrayBuffer())] }]);
  return out;
}

/** File bytes with NUL, CRLF, a lone LF and non-ASCII: valid UTF-8, so the echo's text keeps them. */
const FILE_BYTES = [0x00, 0x01, 0x0d, 0x0a, 0x0a, 0xc3, 0xa9, 0x7f, 0x2d, 0x2d];
const file = () => new File([new Uint8Array(FILE_BYTES)], 'report "q1".bin', { type: 'image/png' });
const fileSeen = { filename: 'report "q1".bin', type: 'image/png', bytes: FILE_BYTES };

test('multipart body: Kong\'s order (rename, remove, replace, add; no append) with templates; a file part kept as sent', async () => {
  const m = await multipart([['secret', 's'], ['old', 'o'], ['swap', '1'], ['keep', 'k'], ['list', 'a'], ['upload', file()]]);
  const r = await send('/multipart?v=42', { headers: { 'content-type': m.type, 'x-source': 'hdr' }, body: m.bytes });
  assert.equal(r.status, 200);
  assert.deepEqual(await upstreamParts(r.body), [
    ['keep', 'k'], // add does not touch a present part, append is not applied to multipart
    ['list', 'a'],
    ['upload', fileSeen],
    ['new', 'o'], // rename: no `new` part, so it goes last
    ['swap', 'swapped-hdr'], // replace: the part is dropped and its new value goes last
    ['added', '42'],
  ]);
  // The upstream gets the new boundary and the new body's length.
  assert.notEqual(r.body.headers['content-type'], m.type);
  assert.match(r.body.headers['content-type'], /^multipart\/form-data; boundary=/);
  assert.equal(Number(r.body.headers['content-length']), Buffer.byteLength(r.body.data));
  assert.notEqual(Buffer.byteLength(r.body.data), m.bytes.length);
});

test('multipart body: rename takes the first of repeated parts to the place of the first existing one; a renamed file stays a file', async () => {
  const m = await multipart([['dup', '1'], ['target', 't1'], ['dup', '2'], ['target', 't2'], ['doc', file()], ['keep', 'k']]);
  const r = await send('/multipart', { headers: { 'content-type': m.type, 'x-doc-name': 'document' }, body: m.bytes });
  assert.equal(r.status, 200);
  assert.deepEqual(await upstreamParts(r.body), [
    ['target', '1'],
    ['target', 't2'],
    ['keep', 'k'],
    ['document', fileSeen],
    ['added', ''], // the template's query key is missing: an empty value, as Kong renders it
  ]);
});

test('multipart body: a file part survives untouched next to an edited text part', async () => {
  const m = await multipart([['upload', file()], ['swap', 'before']]);
  const r = await send('/multipart', { headers: { 'content-type': m.type, 'x-source': 'S' }, body: m.bytes });
  assert.equal(r.status, 200);
  const parts = await upstreamParts(r.body);
  assert.deepEqual(parts[0], ['upload', fileSeen]);
  assert.deepEqual(parts[1], ['swap', 'swapped-S']);
  assert.equal(Number(r.body.headers['content-length']), Buffer.byteLength(r.body.data));
});

test('multipart body: an empty one gets the added parts; removing every part leaves an empty body (Kong\'s encoder)', async () => {
  const empty = await send('/multipart?v=7', { headers: { 'content-type': 'multipart/form-data; boundary=client' }, body: '' });
  assert.equal(empty.status, 200);
  assert.deepEqual(await upstreamParts(empty.body), [['added', '7'], ['keep', 'no']]);
  assert.equal(Number(empty.body.headers['content-length']), Buffer.byteLength(empty.body.data));
  const m = await multipart([['secret', 's']]);
  const none = await send('/multipart-remove', { headers: { 'content-type': m.type }, body: m.bytes });
  assert.equal(none.status, 200);
  assert.equal(none.body.data, '');
  assert.equal(none.body.headers['content-length'], '0');
});

test('multipart body: unchanged bytes and boundary with no body op, with append only, and when no op matches', async () => {
  const m = await multipart([['a', '1'], ['upload', file()], ['text', 'x\ny']]);
  const sent = Buffer.from(m.bytes).toString('utf8');
  for (const path of ['/headers', '/multipart-append', '/multipart-remove']) {
    const r = await send(path, { headers: { 'content-type': m.type }, body: m.bytes });
    assert.equal(r.status, 200, path);
    assert.equal(r.body.data, sent, path);
    assert.equal(r.body.headers['content-type'], m.type, path);
    assert.equal(r.body.headers['content-length'], String(m.bytes.length), path);
  }
  // The same parts with one the op matches: rewritten.
  const matched = await multipart([['a', '1'], ['secret', 's'], ['upload', file()], ['text', 'x\ny']]);
  const r = await send('/multipart-remove', { headers: { 'content-type': matched.type }, body: matched.bytes });
  assert.deepEqual(await upstreamParts(r.body), [['a', '1'], ['upload', fileSeen], ['text', 'x\r\ny']]);
});

test('multipart body: a body that does not parse (wrong boundary, truncated) is forwarded unchanged', async () => {
  const m = await multipart([['secret', 's'], ['old', 'o']]);
  const sent = Buffer.from(m.bytes).toString('utf8');
  const wrong = await send('/multipart?v=1', { headers: { 'content-type': 'multipart/form-data; boundary=not-the-one' }, body: m.bytes });
  assert.equal(wrong.status, 200);
  assert.equal(wrong.body.data, sent);
  assert.equal(wrong.body.headers['content-type'], 'multipart/form-data; boundary=not-the-one');
  const cut = m.bytes.slice(0, m.bytes.length - 8);
  const truncated = await send('/multipart?v=1', { headers: { 'content-type': m.type }, body: cut });
  assert.equal(truncated.status, 200);
  assert.equal(truncated.body.data, Buffer.from(cut).toString('utf8'));
  assert.equal(truncated.body.headers['content-length'], String(cut.length));
  // The same bytes with their own Content-Type: edited.
  const ok = await send('/multipart?v=1', { headers: { 'content-type': m.type }, body: m.bytes });
  assert.deepEqual(await upstreamParts(ok.body), [['new', 'o'], ['added', '1'], ['keep', 'no']]);
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

test('http_method: the upstream receives the configured method; the client\'s stays for the response', async () => {
  const r = await t.call('/method?q=1', { 'x-source': 'hdr' }, 'GET');
  assert.equal(r.status, 200);
  assert.equal(r.body.method, 'POST');
  assert.deepEqual(r.body.args, { q: '1' });
  assert.equal(r.body.headers['x-seen'], 'hdr');
  assert.equal(t.echo.received.at(-1)!.method, 'POST');
  // HEAD from the client, POST upstream: the client still gets a body-less HEAD answer.
  const head = await fetch(t.gw.proxyUrl + '/method', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), '');
  assert.equal(t.echo.received.at(-1)!.method, 'POST');
});

test('http_method GET: a form body\'s fields are appended to the query string (Kong\'s transform_method)', async () => {
  const r = await send('/method-get?a=0', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1&b=two' });
  assert.equal(r.status, 200);
  assert.equal(r.body.method, 'GET');
  assert.deepEqual(r.body.args, { a: ['0', '1'], b: 'two' });
});

test('Host set by replace or a rename to Host reaches the upstream, over preserve_host false and true', async () => {
  const plain = await t.call('/host', {});
  assert.equal(plain.status, 200);
  assert.equal(plain.body.headers.host, 'new.example');
  const preserved = await t.call('/host-preserved', { host: 'client.example' });
  assert.equal(preserved.status, 200);
  assert.equal(preserved.body.headers.host, 'new.example');
  const renamed = await t.call('/host-renamed', { host: 'client.example', 'x-target': 'renamed.example' });
  assert.equal(renamed.body.headers.host, 'renamed.example');
  assert.equal(renamed.body.headers['x-target'], undefined);
  // add and remove of Host do nothing: preserve_host gives the client's Host.
  const untouched = await t.call('/host-untouched', { host: 'client.example' });
  assert.equal(untouched.body.headers.host, 'client.example');
});

test('uri_captures: named and numbered groups of the matched regex route', async () => {
  const named = await t.call('/users/ann', {});
  assert.equal(named.status, 200);
  assert.equal(named.body.headers['x-user'], 'ann');
  assert.equal(named.body.headers['x-first'], 'ann');
  assert.equal(named.body.path, '/profile/ann');
  const numbered = await t.call('/items/42/book', {});
  assert.equal(numbered.status, 200);
  assert.equal(numbered.body.headers['x-id'], '42');
  assert.equal(numbered.body.headers['x-kind'], 'book');
  assert.equal(numbered.body.headers['x-none'], '[]');
  const prefix = await t.call('/plain', {});
  assert.equal(prefix.body.headers['x-none'], '[]');
});

test('config: a Lua template, uri_captures[0] and a method set_method refuses are refused naming the field', async () => {
  const check = async (config: object, field: RegExp, msg: RegExp) => {
    const r = await adminJson(t.gw.adminUrl, 'POST', '/schemas/plugins/validate', { name: 'request-transformer', config });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    const text = JSON.stringify(r.body);
    assert.match(text, field);
    assert.match(text, msg);
  };
  await check({ add: { headers: ['x-a:$(string.upper(headers.x))'] } }, /headers/, /template '\$\(string\.upper\(headers\.x\)\)' is not supported/);
  await check({ replace: { uri: '/u/$(uri_captures[0])' } }, /uri/, /uri_captures are numbered from 1/);
  await check({ http_method: 'CONNECT' }, /http_method/, /http_method 'CONNECT' is not supported/);
  for (const config of [{ add: { headers: ['x-a:$(headers["x-b"])'] } }, { http_method: 'PATCH', replace: { uri: '/u/$(uri_captures[1])', headers: ['host:h.example'] } }]) {
    const ok = await adminJson(t.gw.adminUrl, 'POST', '/schemas/plugins/validate', { name: 'request-transformer', config });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  }
});
