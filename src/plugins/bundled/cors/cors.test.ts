import { test } from 'node:test';
import assert from 'node:assert/strict';
import cors, { corsSchema } from './index.ts';
import { compileOrigins, normalizeOrigin } from './origins.ts';
import { makeCtx, makeDeps } from '../../../../test/helpers/plugin-ctx.ts';
import type { Reply } from '../../sdk.ts';

async function handlers(config: unknown) {
  return cors.create(corsSchema.parse(config), makeDeps('cors'));
}

const preflight = (origin: string, extra: Record<string, string> = {}) =>
  makeCtx({ method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', ...extra } });

test('schema: defaults and strictness', () => {
  const c = corsSchema.parse({});
  assert.deepEqual(c.methods, ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);
  assert.equal(c.credentials, false);
  assert.equal(c.preflight_continue, false);
  assert.equal(c.private_network, false);
  assert.equal(c.allow_origin_absent, true);
  assert.equal(c.origins, null);
  assert.equal(corsSchema.safeParse({ bogus: 1 }).success, false);
  assert.equal(corsSchema.safeParse({ origins: ['(unclosed'] }).success, false);
  assert.equal(corsSchema.safeParse({ methods: ['FETCH'] }).success, false);
});

test('schema: empty origin, header and exposed header strings are refused with Kong\'s message', () => {
  for (const field of ['origins', 'headers', 'exposed_headers']) {
    const r = corsSchema.safeParse({ [field]: ['https://a.example', ''] });
    assert.equal(r.success, false, field);
    assert.deepEqual(r.error!.issues.map((i) => [i.path.join('.'), i.message]), [[`${field}.1`, 'length must be at least 1']], field);
  }
  assert.equal(corsSchema.safeParse({ origins: ['*'], headers: ['X-A'], exposed_headers: ['X-B'] }).success, true);
});

test('origins: normalisation and matching rules', () => {
  assert.deepEqual(normalizeOrigin('https://a.example:443'), { domain: 'https://a.example', host: 'a.example' });
  assert.deepEqual(normalizeOrigin('http://a.example:8080'), { domain: 'http://a.example:8080', host: 'a.example' });
  const p = compileOrigins(['http://x.example', '.*\\.good\\.example', 'https://(a|b)\\.ex:8443']);
  assert.equal(p.match('http://x.example:80'), 'http://x.example');
  assert.equal(p.match('https://api.good.example'), 'https://api.good.example'); // regex without ':' matches the host
  assert.equal(p.match('https://api.good.example.evil'), null); // anchored at the end
  assert.equal(p.match('https://b.ex:8443'), 'https://b.ex:8443');
  assert.equal(p.match('https://c.ex:8443'), null);
  assert.equal(p.match('http://y.example'), null);
});

test('preflight is answered locally with 200 and Kong headers', async () => {
  const h = await handlers({ origins: ['http://a.example', 'http://b.example'], headers: ['X-One', 'X-Two'], max_age: 3600, credentials: true });
  const ctx = preflight('http://b.example');
  const r = (await h.access!(ctx)) as Reply;
  assert.equal(r.status, 200);
  assert.equal(r.headers!['Access-Control-Allow-Origin'], 'http://b.example');
  assert.equal(r.headers!['Vary'], 'Origin');
  assert.equal(r.headers!['Access-Control-Allow-Credentials'], 'true');
  assert.equal(r.headers!['Access-Control-Allow-Headers'], 'X-One,X-Two');
  assert.equal(r.headers!['Access-Control-Allow-Methods'], 'GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT');
  assert.equal(r.headers!['Access-Control-Max-Age'], '3600');
  // the response phase adds nothing on top of a preflight
  await h.response!(ctx);
  assert.equal(ctx.responseHeaders.map.size, 0);
});

test('preflight: disallowed origin gets no ACAO; requested headers are echoed when none configured', async () => {
  const h = await handlers({ origins: ['http://a.example', 'http://b.example'] });
  const r = (await h.access!(preflight('http://evil.example', { 'access-control-request-headers': 'X-Foo' }))) as Reply;
  assert.equal(r.status, 200);
  assert.equal(r.headers!['Access-Control-Allow-Origin'], undefined);
  assert.equal(r.headers!['Access-Control-Allow-Headers'], 'X-Foo');
});

test('preflight: wildcard with credentials echoes the origin; private network on request', async () => {
  const h = await handlers({ credentials: true, private_network: true });
  const r = (await h.access!(preflight('http://a.example', { 'access-control-request-private-network': 'true' }))) as Reply;
  assert.equal(r.headers!['Access-Control-Allow-Origin'], 'http://a.example');
  assert.equal(r.headers!['Access-Control-Allow-Credentials'], 'true');
  assert.equal(r.headers!['Vary'], 'Origin');
  assert.equal(r.headers!['Access-Control-Allow-Private-Network'], 'true');
});

test('preflight_continue lets the OPTIONS through and adds no headers', async () => {
  const h = await handlers({ preflight_continue: true });
  const ctx = preflight('http://a.example');
  assert.equal(await h.access!(ctx), undefined);
  await h.response!(ctx);
  assert.equal(ctx.responseHeaders.map.size, 0);
});

test('OPTIONS without Access-Control-Request-Method is not a preflight', async () => {
  const h = await handlers({});
  assert.equal(await h.access!(makeCtx({ method: 'OPTIONS', headers: { origin: 'http://a' } })), undefined);
});

test('actual request: ACAO, exposed headers, Vary appended once', async () => {
  const h = await handlers({ origins: ['http://a.example', '.*\\.b\\.example'], exposed_headers: ['X-Total'] });
  const ctx = makeCtx({ headers: { origin: 'https://x.b.example' } });
  await h.access!(ctx);
  ctx.setResponse(200, false, { vary: 'Accept-Encoding' });
  await h.response!(ctx);
  assert.equal(ctx.responseHeaders.get('access-control-allow-origin'), 'https://x.b.example');
  assert.equal(ctx.responseHeaders.get('access-control-expose-headers'), 'X-Total');
  assert.deepEqual(ctx.responseHeaders.get('vary'), ['Accept-Encoding', 'Origin']);
});

test('actual request: single plain origin is sent whatever the Origin; absent Origin respects allow_origin_absent', async () => {
  const h = await handlers({ origins: ['http://only.example'] });
  const ctx = makeCtx({ headers: { origin: 'http://other.example' } });
  await h.response!(ctx);
  assert.equal(ctx.responseHeaders.get('access-control-allow-origin'), 'http://only.example');
  const noOrigin = makeCtx();
  await h.response!(noOrigin);
  assert.equal(noOrigin.responseHeaders.get('access-control-allow-origin'), 'http://only.example');
  const strict = await handlers({ origins: ['http://only.example'], allow_origin_absent: false });
  const c2 = makeCtx();
  await strict.response!(c2);
  assert.equal(c2.responseHeaders.map.size, 0);
});

test('an empty Origin header counts as none (Kong\'s is_origin_provided)', async () => {
  const strict = await handlers({ origins: ['http://a.example', 'http://b.example'], allow_origin_absent: false });
  const empty = makeCtx({ headers: { origin: '' } });
  await strict.response!(empty);
  assert.equal(empty.responseHeaders.map.size, 0, 'allow_origin_absent false: nothing, as with no Origin');
  const credentials = await handlers({ credentials: true });
  const c = makeCtx({ headers: { origin: '' } });
  await credentials.response!(c);
  assert.equal(c.responseHeaders.get('access-control-allow-origin'), '*', 'no empty origin echoed back');
  assert.equal(c.responseHeaders.get('access-control-allow-credentials'), undefined);
});

test('actual request: upstream ACAO is removed when the origin is not allowed', async () => {
  const h = await handlers({ origins: ['http://a.example', 'http://b.example'] });
  const ctx = makeCtx({ headers: { origin: 'http://evil.example' } });
  ctx.setResponse(200, false, { 'access-control-allow-origin': '*' });
  await h.response!(ctx);
  assert.equal(ctx.responseHeaders.get('access-control-allow-origin'), undefined);
});
