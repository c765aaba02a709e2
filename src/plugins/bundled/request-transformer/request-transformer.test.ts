import { test } from 'node:test';
import assert from 'node:assert/strict';
import plugin, { requestTransformerSchema } from './index.ts';
import { splitEntry } from '../../transformer-entries.ts';
import { compileTemplate, renderTemplate } from './template.ts';
import { makeCtx, makeDeps, type FakeRequest } from '../../../../test/helpers/plugin-ctx.ts';

const issues = (config: unknown): string[][] => {
  const r = requestTransformerSchema.safeParse(config);
  return r.success ? [] : r.error.issues.map((i) => [i.path.join('.'), i.message]);
};

async function run(config: unknown, req: FakeRequest) {
  const h = await plugin.create(requestTransformerSchema.parse(config), makeDeps('request-transformer'));
  const ctx = makeCtx(req);
  const reply = await h.access!(ctx);
  return { ctx, reply };
}

test('schema: every list defaults to [], uri and http_method to null', () => {
  const c = requestTransformerSchema.parse({});
  assert.deepEqual(c.remove, { body: [], headers: [], querystring: [] });
  assert.deepEqual(c.replace, { body: [], headers: [], querystring: [], uri: null });
  assert.deepEqual(c.append, { body: [], headers: [], querystring: [] });
  assert.equal(c.http_method, null);
  assert.equal(requestTransformerSchema.safeParse({ bogus: 1 }).success, false);
  assert.equal(requestTransformerSchema.safeParse({ add: { bogus: [] } }).success, false);
});

test('schema: Kong\'s entry checks and messages', () => {
  assert.deepEqual(issues({ add: { querystring: ['novalue'] } }), [['add.querystring.0', "key 'novalue' has no value"]]);
  assert.deepEqual(issues({ add: { body: ['k:'] } }), [['add.body.0', "key 'k' has no value"]]);
  assert.deepEqual(issues({ add: { headers: ['x-a'] } }), [['add.headers.0', 'invalid value: x-a']]);
  assert.deepEqual(issues({ add: { headers: ['x a:1'] } }), [['add.headers.0', "'x a' is not a valid header"]]);
  assert.deepEqual(issues({ rename: { headers: ['x-a:x b'] } }), [['rename.headers.0', "'x b' is not a valid header"]]);
  assert.deepEqual(issues({ remove: { headers: ['bad header'] } }), [['remove.headers.0', "'bad header' is not a valid header"]]);
  assert.deepEqual(issues({ add: { headers: ['x-empty:'] } }), []);
});

test('schema: http_method outside Kong\'s set_method list and unsupported templates are refused naming the field', () => {
  assert.deepEqual(issues({ http_method: 'get' }), [['http_method', 'invalid value']]);
  assert.deepEqual(issues({ http_method: 'POST' }), []);
  assert.deepEqual(issues({ http_method: 'PROPFIND' }), []);
  assert.match(issues({ http_method: 'CONNECT' })[0].join(' '), /^http_method http_method 'CONNECT' is not supported: the upstream method must be one of GET, HEAD, PUT, POST/);
  assert.deepEqual(issues({ replace: { headers: ['Host:x.example'] } }), []);
  assert.deepEqual(issues({ append: { headers: ['host:x'] } }), []);
  assert.deepEqual(issues({ rename: { headers: ['x-h:host'] } }), []);
  assert.deepEqual(issues({ add: { headers: ['host:x'] } }), []); // Kong never adds Host: skipped
  assert.match(issues({ add: { querystring: ['a:$(ERROR())'] } })[0].join(' '), /^add\.querystring\.0 template '\$\(ERROR\(\)\)' is not supported/);
  assert.deepEqual(issues({ replace: { uri: '/u/$(uri_captures.user)/$(uri_captures[1])/$(uri_captures["user"])' } }), []);
  assert.match(issues({ replace: { uri: '/u/$(uri_captures[0])' } })[0].join(' '), /^replace\.uri template '\$\(uri_captures\[0\]\)' is not supported: uri_captures are numbered from 1/);
  assert.match(issues({ add: { headers: ['x-a:$(headers[1])'] } })[0][1], /not supported/);
  assert.match(issues({ add: { headers: ['x-a:$(shared.x)'] } })[0][1], /not supported/);
  assert.deepEqual(issues({ add: { headers: ['x-a:$(headers.a or query_params["b"] or "none")'] } }), []);
  assert.match(issues({ add: { headers: ['x-a:$("b" or headers.a)'] } })[0][1], /a string literal may only end an `or` chain/);
  assert.match(issues({ add: { headers: ['x-a:$(headers.a and "b")'] } })[0][1], /not supported/);
  assert.match(issues({ add: { headers: ['x-a:$(headers.a or)'] } })[0][1], /not supported/);
});

test('templates: Kong\'s advanced `or` chains take the first operand that finds a value, else the literal', () => {
  const r = (v: string, headers: Record<string, string>, rawQuery: string) => {
    const t = compileTemplate(v);
    assert.ok('template' in t, v);
    return renderTemplate(t.template, { headers, query: new URLSearchParams(rawQuery), uriCaptures: { unnamed: ['42'], named: { 'user-id': '42' } } });
  };
  // The example of Kong's request-transformer documentation.
  const doc = '$(uri_captures["user-id"] or query_params["user"] or "unknown")';
  assert.equal(r(doc, {}, ''), '42');
  const noCapture = '$(uri_captures["missing"] or query_params["user"] or "unknown")';
  assert.equal(r(noCapture, {}, 'user=ann'), 'ann');
  assert.equal(r(noCapture, {}, ''), 'unknown');
  // Lua's `or`: an empty string is a value.
  assert.equal(r('[$(headers["x-a"] or "d")]', { 'x-a': '' }, ''), '[]');
  assert.equal(r("[$(headers.x_b or 'd e f')]", {}, ''), '[d e f]');
  // " or " inside a literal or a bracketed name is not an operator.
  assert.equal(r('$(headers["a or b"] or "x or y")', { 'a or b': 'v' }, ''), 'v');
  assert.equal(r('$(headers["a or b"] or "x or y")', {}, ''), 'x or y');
});

test('templates: uri_captures by name and by number; none (prefix route) or a missing group renders empty', () => {
  const r = (v: string, uriCaptures: { unnamed: (string | undefined)[]; named: Record<string, string | undefined> } | null) => {
    const t = compileTemplate(v);
    assert.ok('template' in t, v);
    return renderTemplate(t.template, { headers: {}, query: new URLSearchParams(), uriCaptures });
  };
  const caps = { unnamed: ['v1', 'ann', undefined], named: { version: 'v1', user: 'ann', opt: undefined } };
  assert.equal(r('$(uri_captures.user)|$(uri_captures["version"])|$(uri_captures[1])|$(uri_captures[2])', caps), 'ann|v1|v1|ann');
  assert.equal(r('[$(uri_captures[3])][$(uri_captures[9])][$(uri_captures.opt)][$(uri_captures.nope)][$(uri_captures.toString)]', caps), '[][][][][]');
  assert.equal(r('[$(uri_captures.user)][$(uri_captures[1])]', null), '[][]');
});

test('entries split as Kong splits them', () => {
  assert.deepEqual(splitEntry('a:b'), { name: 'a', value: 'b' });
  assert.deepEqual(splitEntry('a::b:c'), { name: 'a', value: 'b:c' });
  assert.deepEqual(splitEntry('a'), { name: 'a', value: '' });
  assert.equal(splitEntry(':b'), null);
});

test('templates: plain lookups render, a missing one renders empty, unbalanced $( stays literal', () => {
  const src = { headers: { 'x-a': 'A', 'x-multi': ['1', '2'] }, query: new URLSearchParams('q=Q&r=1&r=2'), uriCaptures: null };
  const r = (v: string) => {
    const t = compileTemplate(v);
    assert.ok('template' in t, v);
    return renderTemplate(t.template, src);
  };
  assert.equal(r('pre-$(headers.x_a)-$(headers["X-A"])-$(query_params.q)-$(query_params[\'q\'])'), 'pre-A-A-Q-Q');
  assert.equal(r('[$(headers.none)]'), '[]');
  assert.equal(r('$(headers["x-multi"])|$(query_params.r)'), '1, 2|1, 2');
  assert.equal(r('cost $(5'), 'cost $(5');
});

test('headers: remove, rename, replace only if present, add only if absent, append', async () => {
  const { ctx } = await run({
    remove: { headers: ['x-gone'] },
    rename: { headers: ['x-old:x-new'] },
    replace: { headers: ['x-rep:new', 'x-absent-rep:no'] },
    add: { headers: ['x-add:$(query_params.q)', 'x-rep:not-added', 'host:nope'] },
    append: { headers: ['x-app:two'] },
  }, { headers: { 'x-gone': '1', 'x-old': 'v', 'x-rep': 'old', 'x-app': 'one' }, rawQuery: 'q=fromquery' });
  const u = ctx.upstreamHeaders;
  assert.equal(u.get('x-gone'), undefined);
  assert.equal(u.get('x-old'), undefined);
  assert.equal(u.get('x-new'), 'v');
  assert.equal(u.get('x-rep'), 'new');
  assert.equal(u.get('x-absent-rep'), undefined);
  assert.equal(u.get('x-add'), 'fromquery');
  assert.equal(u.get('host'), undefined);
  assert.deepEqual(u.get('x-app'), ['one', 'two']);
});

test('json body: ops follow Lua truthiness; unparsable JSON is left alone', async () => {
  const config = { remove: { body: ['gone'] }, rename: { body: ['old:new'] }, replace: { body: ['rep:R', 'f:R'] }, add: { body: ['add:A', 'f2:A'] }, append: { body: ['s:x', 'n:x'] } };
  const { ctx } = await run(config, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ gone: 1, old: 'o', rep: 'r', f: false, f2: false, s: 'one', n: 5 }) });
  assert.deepEqual(JSON.parse(ctx.upstreamBody!), { new: 'o', rep: 'R', f: false, f2: 'A', add: 'A', s: ['one', 'x'], n: ['x'] });
  const bad = await run(config, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
  assert.equal(bad.ctx.upstreamBody, null);
});

test('form body and query string', async () => {
  const { ctx } = await run({
    remove: { body: ['gone'], querystring: ['qgone'] },
    rename: { body: ['old:new'], querystring: ['qold:qnew'] },
    add: { body: ['a:$(headers["x-id"])'], querystring: ['qa:1', 'keep:no'] },
    append: { querystring: ['keep:2'] },
    replace: { querystring: ['qrep:R'] },
  }, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-id': 'ID' }, body: 'gone=1&old=o', rawQuery: 'qgone=1&qold=a&qold=b&keep=1&qrep=r' });
  assert.equal(ctx.upstreamBody, 'new=o&a=ID');
  assert.equal(ctx.upstream.query.toString(), 'keep=1&qrep=R&qnew=a&qnew=b&qa=1&keep=2');
});

test('replace.uri: rendered path; one not starting with / fails the request with 500', async () => {
  const ok = await run({ replace: { uri: '/v2/$(headers.x_user)' } }, { headers: { 'x-user': 'ann' } });
  assert.equal(ok.ctx.upstream.path, '/v2/ann');
  const bad = await run({ replace: { uri: '$(headers.x_user)' } }, { headers: {} });
  assert.equal(bad.reply && bad.reply.status, 500);
});

test('Host: replace (sent or not), append and a rename to Host set it; remove, add and a rename from Host do not', async () => {
  const rep = await run({ replace: { headers: ['Host:new.example'] } }, { headers: {} });
  assert.equal(rep.ctx.upstreamHeaders.get('host'), 'new.example');
  const app = await run({ append: { headers: ['host:app.example'] } }, { headers: { host: 'client.example' } });
  assert.equal(app.ctx.upstreamHeaders.get('host'), 'app.example');
  const ren = await run({ rename: { headers: ['x-target:host'] } }, { headers: { host: 'client.example', 'x-target': 'ren.example' } });
  assert.equal(ren.ctx.upstreamHeaders.get('host'), 'ren.example');
  assert.equal(ren.ctx.upstreamHeaders.get('x-target'), undefined);
  const multi = await run({ rename: { headers: ['x-target:host'] } }, { headers: { 'x-target': ['a', 'b'] } });
  assert.equal(multi.reply && multi.reply.status, 500);
  const none = await run({ remove: { headers: ['host'] }, rename: { headers: ['host:x-was-host'] }, add: { headers: ['host:added.example'] } }, { headers: { host: 'client.example' } });
  assert.equal(none.ctx.upstreamHeaders.get('host'), 'client.example');
  assert.equal(none.ctx.upstreamHeaders.get('x-was-host'), undefined);
});

test('http_method: set on the upstream request only; to GET a form body\'s fields are appended to the query', async () => {
  const post = await run({ http_method: 'POST' }, { method: 'GET' });
  assert.equal(post.ctx.upstream.method, 'POST');
  assert.equal(post.ctx.request.method, 'GET');
  const moved = await run({ http_method: 'GET', add: { querystring: ['added:1'] } }, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1&b=x+y', rawQuery: 'a=0' });
  assert.equal(moved.ctx.upstream.method, 'GET');
  assert.equal(moved.ctx.upstream.query.toString(), 'a=0&a=1&b=x+y&added=1');
  assert.equal(moved.ctx.upstreamBody, null); // the body itself is sent as it came
  const json = await run({ http_method: 'GET' }, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}', rawQuery: 'q=1' });
  assert.equal(json.ctx.upstream.query.toString(), 'q=1');
  const put = await run({ http_method: 'PUT' }, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1', rawQuery: 'q=1' });
  assert.equal(put.ctx.upstream.method, 'PUT');
  assert.equal(put.ctx.upstream.query.toString(), 'q=1');
});

test('uri_captures reach the templates from the request context', async () => {
  const { ctx } = await run({ add: { headers: ['x-user:$(uri_captures.user)', 'x-first:$(uri_captures[1])'] } }, { uriCaptures: { unnamed: ['ann'], named: { user: 'ann' } } });
  assert.equal(ctx.upstreamHeaders.get('x-user'), 'ann');
  assert.equal(ctx.upstreamHeaders.get('x-first'), 'ann');
});

test('multipart body: read only when rename, remove, replace or add is set (append alone is not applied, as Kong)', async () => {
  const body = '--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--b--\r\n';
  const cases: [object, number][] = [[{ append: { body: ['a:1'] } }, 0], [{ add: { headers: ['x-a:1'] } }, 0], [{ add: { body: ['a:1'] } }, 1]];
  for (const [config, reads] of cases) {
    const h = await plugin.create(requestTransformerSchema.parse(config), makeDeps('request-transformer'));
    const ctx = makeCtx({ method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=b' }, body });
    let n = 0;
    const read = ctx.request.body;
    Object.assign(ctx.request, { body: () => { n++; return read(); } });
    await h.access!(ctx);
    assert.equal(n, reads, JSON.stringify(config));
    if (reads === 0) assert.equal(ctx.upstreamBody, null);
    else assert.match(ctx.upstreamBody!, /name="x"\r\n\r\n1\r\n.*name="a"\r\n\r\n1\r\n/s);
  }
});
