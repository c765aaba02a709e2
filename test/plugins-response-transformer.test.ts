import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import responseTransformer from '../src/plugins/bundled/response-transformer/index.ts';
import { echoGatewaySuite } from './helpers/echo-gateway.ts';
import { adminJson, startGateway, type TestGateway } from './helpers/gateway.ts';
import { testClient } from './helpers/http.ts';

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

test('config: json and json_types validate as Kong\'s schema (accepted, entries checked)', async () => {
  const ok = await adminJson(t.gw.adminUrl, 'POST', '/schemas/plugins/validate', { name: 'response-transformer', config: { remove: { json: ['a'] }, rename: { json: ['a:b'] }, replace: { json: ['a:b'], json_types: ['number'] }, add: { json: ['a:b'] }, append: { json: ['a:1'], json_types: ['boolean'] } } });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  const bad = await adminJson(t.gw.adminUrl, 'POST', '/schemas/plugins/validate', { name: 'response-transformer', config: { add: { json: ['nocolon'], json_types: ['date'] } } });
  assert.equal(bad.status, 400);
  assert.match(JSON.stringify(bad.body), /invalid value: nocolon/);
  assert.match(JSON.stringify(bad.body), /json_types/);
});

/** The upstream's JSON object for the body tests. */
const upstreamJson = {
  keep: 'k', gone: 1, 'x.y': 2, old: 'o', rep: 'r', repfalse: false, addfalse: false, addnull: null,
  str: 's', arr: [1], num: 5, nested: { 'a.b': 1 },
};

/** /json (Content-Length), /json-chunked (none), /text, /problem (application/problem+json), /bad (not JSON), /array. */
async function startJsonUpstream() {
  const server = http.createServer((req, res) => {
    req.resume();
    const url = req.url ?? '';
    const body = JSON.stringify(upstreamJson);
    if (url.endsWith('/json')) {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
    } else if (url.endsWith('/json-chunked')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(body.slice(0, 10));
      setTimeout(() => res.end(body.slice(10)), 10);
    } else if (url.endsWith('/text')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
    } else if (url.endsWith('/problem')) {
      res.writeHead(404, { 'content-type': 'application/problem+json' });
      res.end('{"title":"not here"}');
    } else if (url.endsWith('/bad')) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '9' });
      res.end('{"broken"');
    } else if (url.endsWith('/array')) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '5' });
      res.end('[1,2]');
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

describe('json body edits, through a real gateway and upstream', () => {
  let up: Awaited<ReturnType<typeof startJsonUpstream>>;
  let gw: TestGateway;
  const client = testClient(() => gw.proxyUrl);
  const ops = {
    remove: { json: ['gone', 'x.y', 'nested.a.b'] },
    rename: { json: ['old:new', 'missing:never'] },
    replace: { json: ['rep:R', 'repfalse:R', 'absent:R'] },
    add: { json: ['added:A', 'keep:no', 'addfalse:now', 'addnull:no', 'empty:'] },
    append: { json: ['str:t', 'arr:2', 'num:6', 'fresh:f'], json_types: ['string', 'number'] },
  };
  before(async () => {
    up = await startJsonUpstream();
    gw = await startGateway({
      plugins: [responseTransformer],
      config: {
        services: [{
          name: 'json-up', host: '127.0.0.1', port: up.port, routes: [
            { name: 'ops', paths: ['/ops'], plugins: rt(ops) },
            {
              name: 'types', paths: ['/types'], plugins: rt({
                replace: { json: ['num:1.5', 'keep:true'], json_types: ['number', 'boolean'] },
                add: { json: ['n:42', 'b:true', 'f:yes', 's:7', 'bad:abc', 'h:0x10', 'q:say "hi"'], json_types: ['number', 'boolean', 'boolean', 'string', 'number', 'number'] },
              }),
            },
            {
              name: 'local', paths: ['/local'], plugins: [
                { name: 'request-termination', config: { status_code: 403, message: 'no' } },
                ...rt({ add: { json: ['extra:1'], json_types: ['number'] }, rename: { json: ['message:msg'] } }),
              ],
            },
          ],
        }],
      },
    });
  });
  after(async () => {
    await client.close();
    await gw.close();
    await up.close();
  });

  /** A response whose Content-Length header is its body's length. */
  const call = async (path: string, method = 'GET') => {
    const r = await client.call(path, { method });
    if (method !== 'HEAD') assert.equal(r.headers['content-length'], String(Buffer.byteLength(r.text)), `${path}: content-length matches the body sent`);
    return r;
  };

  test('remove → rename → replace → add → append, with Kong\'s presence rules and literal dotted keys', async () => {
    const expected = {
      keep: 'k', new: 'o', rep: 'R', repfalse: false, addfalse: 'now', addnull: null, str: ['s', 't'], arr: [1, 2], num: ['6'],
      nested: { 'a.b': 1 }, added: 'A', empty: 'null', fresh: ['f'],
    };
    const r = await call('/ops/json');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, expected);
    assert.equal(r.headers['transfer-encoding'], undefined);
    // A chunked upstream body (no Content-Length, held by response_buffering) is edited the same way.
    const c = await call('/ops/json-chunked');
    assert.deepEqual(c.body, expected);
  });

  test('json_types cast the values (number, boolean, string); a value that is no number is skipped', async () => {
    const r = await call('/types/json');
    assert.equal(r.body.num, 1.5);
    assert.equal(r.body.keep, true);
    assert.equal(r.body.n, 42);
    assert.equal(r.body.b, true);
    assert.equal(r.body.f, false);
    assert.equal(r.body.s, '7');
    assert.equal('bad' in r.body, false);
    assert.equal(r.body.h, 16);
    assert.equal(r.body.q, 'say "hi"');
  });

  test('application/<x>+json counts as JSON (Kong\'s is_json_body), whatever the status', async () => {
    const r = await call('/ops/problem');
    assert.equal(r.status, 404);
    assert.deepEqual(r.body, { title: 'not here', added: 'A', keep: 'no', addfalse: 'now', addnull: 'no', empty: 'null', str: ['t'], arr: [2], num: ['6'], fresh: ['f'] });
  });

  test('a non-JSON response, unparsable JSON and a top-level array pass untouched', async () => {
    const text = await call('/ops/text');
    assert.equal(text.text, JSON.stringify(upstreamJson));
    const bad = await call('/ops/bad');
    assert.equal(bad.text, '{"broken"');
    assert.ok(gw.logs.some((l) => typeof l.msg === 'string' && (l.msg as string).includes('body transform failed')), 'the failure is logged');
    assert.equal(gw.logText().includes('broken'), false, 'no body content in the log');
    const arr = await call('/ops/array');
    assert.equal(arr.text, '[1,2]');
  });

  test('HEAD: no body, the headers as Kong leaves them (Content-Length dropped)', async () => {
    const r = await call('/ops/json', 'HEAD');
    assert.equal(r.status, 200);
    assert.equal(r.text, '');
    assert.equal(r.headers['content-length'], undefined);
    assert.match(String(r.headers['content-type']), /application\/json/);
  });

  test('a local reply (request-termination) has its JSON body edited too', async () => {
    const r = await call('/local');
    assert.equal(r.status, 403);
    assert.deepEqual(r.body, { msg: 'no', extra: 1 });
  });
});
