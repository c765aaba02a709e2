/**
 * The one access pipeline (access.ts) against the demo IdP: it answers the steady states (a
 * cached bearer token, a remembered session) without a Promise and everything else (a first
 * token, a session write, a refusal) with one, making the same upstream request either way; and
 * it never serves from memory what it must refuse (an expired token, an idle or ended session, a
 * session due for a write).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startIdp, type DemoIdp } from '../../../../test/helpers/idp.ts';
import { makeConsumer, makeCtx, silentLogger, type FakeContext, type FakeRequest } from '../../../../test/helpers/plugin-ctx.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryKv, createSqliteKv } from '../../../storage/kv.ts';
import type { KeyValueStore } from '../../../storage/ports.ts';
import type { PluginHandlers, Reply } from '../../sdk.ts';
import { oidcConfigSchema } from './schema.ts';
import { createOidc } from './create.ts';
import { TtlCache, memoKey } from './caches.ts';
import type { Runtime, VerifiedToken } from './runtime.ts';
import { cachedVerification } from './steps/verify-token.ts';

let idp: DemoIdp;
before(async () => {
  idp = await startIdp({ accessTokenTtl: 3600 });
});
after(async () => {
  await idp.close();
});

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const consumers = [makeConsumer('c-alex', 'alex', 'cust-alex')];

async function accessToken(issuer = idp.issuer): Promise<string> {
  const r = await fetch(`${issuer}/token`, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'password', username: 'alex', password: 'doe', client_id: 'kong', client_secret: 'kong-secret', scope: 'openid' }),
  });
  assert.equal(r.status, 200);
  return ((await r.json()) as { access_token: string }).access_token;
}

/** The clock of the plugin made last: its requests arrive at its time (as the gateway's share one clock). */
let clock: () => number = Date.now;

function plugin(config: Record<string, unknown>, now: () => number = Date.now, issuer = idp.issuer, sharedKv: KeyValueStore = createMemoryKv({ now })): PluginHandlers {
  clock = now;
  const cfg = oidcConfigSchema.parse({
    issuer: `${issuer}/.well-known/openid-configuration`,
    client_id: ['kong'],
    client_secret: ['kong-secret'],
    client_auth: ['client_secret_post'],
    ...config,
  });
  return createOidc(cfg, { entity: {} as never, log: silentLogger(), sharedKv, workers: 1, now });
}

function request(req: FakeRequest, cookies: Record<string, string> = {}): FakeContext {
  const ctx = makeCtx({ consumers, now: clock, ...req });
  for (const [k, v] of Object.entries(cookies)) (ctx.request.cookies as Map<string, string>).set(k, v);
  return ctx;
}

/** Runs access (and response when proxied); `sync` tells whether access answered without a Promise. */
async function run(h: PluginHandlers, ctx: FakeContext): Promise<{ sync: boolean; reply: Reply | undefined }> {
  const r = h.access!(ctx);
  const sync = !(r instanceof Promise);
  const reply = (sync ? r : await r) ?? undefined;
  if (!reply) {
    ctx.setResponse(200, false);
    await h.response?.(ctx);
  }
  return { sync, reply };
}

/** Everything the plugin changed that later phases, the upstream or the client see. */
function effects(ctx: FakeContext) {
  return {
    upstream: [...ctx.upstreamHeaders.map],
    upstreamQuery: ctx.upstream.query.toString(),
    clientResponse: [...ctx.responseHeaders.map],
    setCookies: [...ctx.downstream.map],
    consumer: ctx.consumer?.id ?? null,
    credential: ctx.credential,
    groups: ctx.authenticatedGroups,
    state: ctx.state.get('openid-connect'),
  };
}

const headerOptions = {
  upstream_headers_claims: ['sub', 'groups'],
  upstream_headers_names: ['x-user', 'X-Consumer-Username'],
  downstream_headers_claims: ['sub'],
  downstream_headers_names: ['x-sub'],
  consumer_claims: [['preferred_username']],
  consumer_by: ['username'],
  authenticated_groups_claim: ['groups'],
};

/** Client-sent copies of plugin-written headers, which must not reach the upstream. */
const spoofed = { 'x-consumer-id': 'spoofed', 'x-user': 'spoofed', 'x-anonymous-consumer': 'true', 'x-credential-identifier': 'spoofed', 'x-other': 'kept' };

describe('openid-connect access pipeline: bearer', () => {
  it('a cached token is answered synchronously (a non-thenable) with the same changes as its first, asynchronous answer', async () => {
    const token = await accessToken();
    for (const options of [{}, headerOptions, { ...headerOptions, hide_credentials: false, upstream_access_token_header: 'x-token' }]) {
      const h = plugin({ auth_methods: ['bearer'], ...options });
      const headers = { authorization: `Bearer ${token}`, ...spoofed };
      const full = request({ headers });
      assert.deepEqual(await run(h, full), { sync: false, reply: undefined }, 'the first request verifies the signature');
      const fast = request({ headers });
      assert.deepEqual(await run(h, fast), { sync: true, reply: undefined }, 'the next one is answered without a Promise');
      assert.deepEqual(effects(fast), effects(full));
      assert.equal(fast.upstreamHeaders.get('x-consumer-id'), Object.keys(options).length > 0 ? 'c-alex' : undefined);
      await h.close?.();
    }
  });

  it('a cached token in the query is answered synchronously too, and hide_credentials removes it there', async () => {
    const token = await accessToken();
    const h = plugin({ auth_methods: ['bearer'], upstream_access_token_header: 'x-token:bearer' });
    const full = request({ rawQuery: `access_token=${token}&a=1` });
    assert.equal((await run(h, full)).sync, false);
    const fast = request({ rawQuery: `access_token=${token}&a=1` });
    assert.deepEqual(await run(h, fast), { sync: true, reply: undefined });
    assert.deepEqual(effects(fast), effects(full));
    assert.equal(fast.upstream.query.toString(), 'a=1');
    // The same token in a header now: the remembered outcome is for the query, so it is rebuilt.
    const header = request({ headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual(await run(h, header), { sync: true, reply: undefined });
    assert.equal(header.upstreamHeaders.get('authorization'), undefined, 'hidden where it was sent');
    assert.equal(header.upstreamHeaders.get('x-token'), `Bearer ${token}`);
    await h.close?.();
  });

  it('what needs I/O or is refused is answered asynchronously: two locations, a body, a refused claim', async () => {
    const token = await accessToken();
    const h = plugin({ auth_methods: ['bearer'] });
    assert.equal((await run(h, request({ headers: { authorization: `Bearer ${token}` } }))).sync, false);
    const twice = await run(h, request({ headers: { authorization: `Bearer ${token}` }, rawQuery: `access_token=${token}` }));
    assert.equal(twice.sync, false);
    assert.equal(twice.reply?.status, 400);
    const post = await run(h, request({ method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' }));
    assert.deepEqual(post, { sync: false, reply: undefined });
    await h.close?.();

    const strict = plugin({ auth_methods: ['bearer'], scopes_required: ['admin'] });
    for (let i = 0; i < 2; i++) {
      const r = await run(strict, request({ headers: { authorization: `Bearer ${token}` } }));
      assert.equal(r.sync, false);
      assert.equal(r.reply?.status, 403);
    }
    await strict.close?.();
  });

  it('an expired token is refused although its verification was cached', async () => {
    const shortIdp = await startIdp({ accessTokenTtl: 2 });
    try {
      const token = await accessToken(shortIdp.issuer);
      const h = plugin({ auth_methods: ['bearer'] }, Date.now, shortIdp.issuer);
      assert.equal((await run(h, request({ headers: { authorization: `Bearer ${token}` } }))).reply, undefined);
      assert.deepEqual(await run(h, request({ headers: { authorization: `Bearer ${token}` } })), { sync: true, reply: undefined });
      const exp = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp as number;
      await new Promise((r) => setTimeout(r, exp * 1000 - Date.now() + 50));
      const late = await run(h, request({ headers: { authorization: `Bearer ${token}` } }));
      assert.equal(late.sync, false);
      assert.equal(late.reply?.status, 401);
      await h.close?.();
    } finally {
      await shortIdp.close();
    }
  });
});

describe('verified-token cache', () => {
  const token = `${'a'.repeat(40)}.${'b'.repeat(40)}.${'c'.repeat(60)}`;
  const runtime = (now: () => number, leeway = 0) =>
    ({ cfg: { leeway }, caches: { verified: new TtlCache<VerifiedToken>({ maxEntries: 10, now }) }, now }) as unknown as Runtime;

  it('checks exp (with leeway) on every hit, whatever the entry lifetime', () => {
    let t = 1_000_000_000_000;
    const rt = runtime(() => t, 5);
    rt.caches.verified.set(memoKey(token), { token, claims: { exp: t / 1000 + 10 }, outcome: null, found: null }, 3_600_000);
    assert.ok(cachedVerification(rt, token, t));
    t += 14_000;
    assert.ok(cachedVerification(rt, token, t), 'within the leeway');
    t += 1_000;
    assert.equal(cachedVerification(rt, token, t), undefined);
    assert.equal(rt.caches.verified.size, 0, 'the expired entry is dropped');
  });

  it('compares the whole token: another token with the same tail is a miss', () => {
    const t = 1_000_000_000_000;
    const rt = runtime(() => t);
    rt.caches.verified.set(memoKey(token), { token, claims: { exp: t / 1000 + 100 }, outcome: null, found: null }, 60_000);
    const forged = `${'x'.repeat(40)}.${'b'.repeat(40)}.${'c'.repeat(60)}`;
    assert.equal(memoKey(forged), memoKey(token));
    assert.equal(cachedVerification(rt, forged, t), undefined);
    assert.ok(cachedVerification(rt, token, t));
  });
});

describe('openid-connect access pipeline: session (cookie storage)', () => {
  const sessionOptions = {
    auth_methods: ['password', 'session'],
    session_secret: 'fast-path-test-secret',
    session_request_headers: ['id', 'subject', 'timeout'],
    session_response_headers: ['audience', 'idling-timeout'],
    upstream_session_id_header: 'x-session',
    downstream_session_id_header: 'x-session-id',
    upstream_id_token_header: 'x-id-token',
  };

  async function login(h: PluginHandlers): Promise<Record<string, string>> {
    const ctx = request({ headers: { authorization: basic('alex', 'doe') } });
    assert.equal((await run(h, ctx)).reply, undefined);
    const set = ctx.downstream.get('set-cookie');
    const list = Array.isArray(set) ? set : [set!];
    return Object.fromEntries(list.map((c) => c.split(';')[0].split(/=(.*)/s).slice(0, 2)));
  }

  const withCookies = (cookies: Record<string, string>, more: FakeRequest = {}) =>
    request({ ...more, headers: { cookie: [...Object.entries(cookies).map(([k, v]) => `${k}=${v}`), 'theme=dark'].join('; '), ...spoofed, ...more.headers } }, cookies);

  it('a session cookie opened before is answered synchronously (a non-thenable) with the same changes as its first, asynchronous answer', async () => {
    for (const options of [{ auth_methods: ['password', 'session'], session_secret: 's' }, { ...sessionOptions, ...headerOptions }, { ...sessionOptions, auth_methods: ['authorization_code', 'password', 'session'] }]) {
      let t = Date.now();
      const h = plugin(options, () => t);
      const cookies = await login(h);
      t += 1000;
      const full = withCookies(cookies);
      assert.deepEqual(await run(h, full), { sync: false, reply: undefined }, 'the first request opens the cookie');
      const fast = withCookies(cookies);
      assert.deepEqual(await run(h, fast), { sync: true, reply: undefined });
      assert.deepEqual(effects(fast), effects(full));
      assert.equal(fast.upstreamHeaders.get('cookie'), 'theme=dark', 'the session cookie never goes upstream');
      await h.close?.();
    }
  });

  it('strips the gateway cookies from the Cookie header as an earlier plugin left it, not as the client sent it', async () => {
    const h = plugin(sessionOptions);
    const cookies = await login(h);
    for (let i = 0; i < 3; i++) {
      const sent = withCookies(cookies);
      assert.equal((await run(h, sent)).reply, undefined);
      assert.equal(sent.upstreamHeaders.get('cookie'), 'theme=dark');
      const changed = withCookies(cookies);
      // The kernel shares one parsed map among the requests of one long Cookie header.
      Object.assign(changed.request, { cookies: sent.request.cookies });
      changed.upstream.setHeader('cookie', `${String(changed.upstreamHeaders.get('cookie'))}; added=${i}`);
      assert.equal((await run(h, changed)).reply, undefined);
      assert.equal(changed.upstreamHeaders.get('cookie'), `theme=dark; added=${i}`);
    }
    await h.close?.();
  });

  it('a remembered cookie past its idle timeout is refused; an idle touch or a refresh is answered asynchronously', async () => {
    let t = Date.now();
    const h = plugin(sessionOptions, () => t);
    const cookies = await login(h);
    assert.equal((await run(h, withCookies(cookies))).sync, false);
    assert.equal((await run(h, withCookies(cookies))).sync, true);
    // A minute later the idle timeout is to be pushed back (a new cookie): written asynchronously.
    t += 61_000;
    const touch = withCookies(cookies);
    assert.deepEqual(await run(h, touch), { sync: false, reply: undefined });
    assert.match(String(touch.downstream.get('set-cookie')), /^session=/);
    // The old cookie, opened and remembered, idles out after 900 s all the same.
    t += 900_000;
    const idle = await run(h, withCookies(cookies));
    assert.equal(idle.sync, false);
    assert.equal(idle.reply?.status, 401);
    await h.close?.();

    // The access token expires (demo IdP: 1 hour): the session must refresh or end, not pass.
    let u = Date.now();
    const h2 = plugin({ ...sessionOptions, session_idling_timeout: 0, session_rolling_timeout: 0 }, () => u);
    const c2 = await login(h2);
    assert.equal((await run(h2, withCookies(c2))).sync, false);
    assert.equal((await run(h2, withCookies(c2))).sync, true);
    u += 3600_000;
    assert.equal((await run(h2, withCookies(c2))).sync, false);
    await h2.close?.();
  });

  it('a remembered cookie past its absolute timeout is refused (no idle or rolling timeout to write)', async () => {
    let t = Date.now();
    const h = plugin({ ...sessionOptions, session_idling_timeout: 0, session_rolling_timeout: 0, session_absolute_timeout: 120 }, () => t);
    const cookies = await login(h);
    assert.equal((await run(h, withCookies(cookies))).sync, false);
    t += 100_000;
    assert.deepEqual(await run(h, withCookies(cookies)), { sync: true, reply: undefined });
    t += 20_000;
    const late = await run(h, withCookies(cookies));
    assert.equal(late.sync, false);
    assert.equal(late.reply?.status, 401);
    await h.close?.();
  });

  it('with the SQLite store shared by two workers: the steady state is synchronous, and a logout on one worker ends the session on the other', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pc-fastpath-'));
    const kvA = createSqliteKv({ path: join(dir, 'kv.db') });
    const kvB = createSqliteKv({ path: join(dir, 'kv.db') });
    try {
      const options = { ...sessionOptions, logout_uri_suffix: '/logout' };
      const a = plugin(options, Date.now, idp.issuer, kvA);
      const b = plugin(options, Date.now, idp.issuer, kvB);
      const cookies = await login(a);
      assert.equal((await run(a, withCookies(cookies))).sync, false);
      assert.deepEqual(await run(a, withCookies(cookies)), { sync: true, reply: undefined }, 'worker A answers the remembered cookie synchronously');
      const out = await run(b, withCookies(cookies, { method: 'DELETE', path: '/app/logout' }));
      assert.ok(out.reply && [204, 302].includes(out.reply.status));
      const replay = await run(a, withCookies(cookies));
      assert.equal(replay.reply?.status, 401, 'worker A sees the logout written by worker B');
      await a.close?.();
      await b.close?.();
    } finally {
      await kvA.close();
      await kvB.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a session ended by logout is refused while its opened cookie is remembered', async () => {
    let t = Date.now();
    const h = plugin({ ...sessionOptions, logout_uri_suffix: '/logout' }, () => t);
    const cookies = await login(h);
    assert.equal((await run(h, withCookies(cookies))).sync, false);
    assert.equal((await run(h, withCookies(cookies))).sync, true);
    assert.equal((await run(h, withCookies(cookies, { method: 'DELETE', path: '/app/other' }))).sync, true, 'no logout trigger');
    const out = await run(h, withCookies(cookies, { method: 'DELETE', path: '/app/logout' }));
    assert.equal(out.sync, false);
    assert.ok(out.reply && [204, 302].includes(out.reply.status));
    t += 1000;
    const replay = await run(h, withCookies(cookies));
    assert.equal(replay.sync, false);
    assert.equal(replay.reply?.status, 401);
    await h.close?.();
  });
});
