/**
 * Sessions against the demo IdP: timeouts with an injectable clock, remember cookie, refresh in a
 * session (single flight in a process and across nodes), invalid_grant, logout, back-channel
 * logout, Redis storage.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import { SignJWT, generateKeyPair } from 'jose';
import { Redis } from 'ioredis';
import { CookieJar, navigate, send, type Step } from './helpers/fake-ctx.ts';
import { baseConfig, setup, type Setup } from './helpers/oidc-browser-setup.ts';

const alex = { login: 'alex', password: 'doe' };
const nav = { accept: 'text/html', 'sec-fetch-mode': 'navigate' };
const api = { accept: 'application/json' };
const basic = { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}` };

function extra(step: Step): Record<string, unknown> {
  return (JSON.parse(step.body) as { extra: Record<string, unknown> }).extra;
}

async function passwordSession(s: Setup, jar: CookieJar): Promise<void> {
  const r = await send(jar, `${s.harness.url}/login`, { headers: basic });
  assert.equal(r.status, 200);
  assert.ok(jar.get(s.harness.url, 'session'));
}

describe('session timeouts (injectable clock)', () => {
  let s: Setup;
  before(async () => {
    s = await setup({ ...baseConfig, session_idling_timeout: 100, session_rolling_timeout: 200, session_absolute_timeout: 300 }, { idp: { accessTokenTtl: 3600 } });
  });
  after(() => s.close());

  it('touches after a minute, ends after the idling timeout', async () => {
    s.clock.offsetMs = 0;
    const jar = new CookieJar();
    await passwordSession(s, jar);
    const old = jar.get(s.harness.url, 'session')!;
    s.clock.offsetMs = 30_000;
    const quiet = await send(jar, `${s.harness.url}/x`, { headers: api });
    assert.equal(quiet.status, 200);
    assert.equal(quiet.setCookies.length, 0, 'no write within the first minute');
    s.clock.offsetMs = 70_000;
    const touched = await send(jar, `${s.harness.url}/x`, { headers: api });
    assert.equal(touched.status, 200);
    assert.equal(touched.setCookies.length, 1, 'idle touch');
    // the old cookie's idle time started at 0: at 101 s it is over, the touched one is not
    s.clock.offsetMs = 101_000;
    const stale = new CookieJar();
    stale.store(s.harness.url, [`session=${old}`]);
    const expired = await send(stale, `${s.harness.url}/x`, { headers: api });
    assert.equal(expired.status, 401);
    assert.ok(expired.setCookies.some((c) => c.startsWith('session=;') && c.includes('Max-Age=0')));
    assert.equal((await send(jar, `${s.harness.url}/x`, { headers: api })).status, 200);
  });

  it('renews after 3/4 of the rolling timeout and ends at the absolute timeout', async () => {
    s.clock.offsetMs = 0;
    const jar = new CookieJar();
    await passwordSession(s, jar);
    for (const t of [90, 180, 270]) {
      s.clock.offsetMs = t * 1000;
      const r = await send(jar, `${s.harness.url}/x`, { headers: api });
      assert.equal(r.status, 200, `at ${t}s`);
      assert.equal(r.setCookies.length, 1, `written at ${t}s`);
    }
    s.clock.offsetMs = 301_000;
    assert.equal((await send(jar, `${s.harness.url}/x`, { headers: api })).status, 401);
  });
});

describe('session_remember', () => {
  let s: Setup;
  before(async () => {
    s = await setup({ ...baseConfig, session_remember: true, session_idling_timeout: 60 }, { idp: { accessTokenTtl: 3600 } });
  });
  after(() => s.close());

  it('restores an idle-expired session from the remember cookie', async () => {
    const jar = new CookieJar();
    const r = await send(jar, `${s.harness.url}/login`, { headers: basic });
    const remember = r.setCookies.find((c) => c.startsWith('remember='));
    assert.ok(remember);
    assert.match(remember, /; Max-Age=604800;/);
    s.clock.offsetMs = 120_000;
    const back = await send(jar, `${s.harness.url}/x`, { headers: api });
    assert.equal(back.status, 200);
    assert.ok(back.setCookies.some((c) => c.startsWith('session=') && !c.includes('Max-Age=0')));
  });
});

describe('refresh in a session', () => {
  let s: Setup;
  before(async () => {
    s = await setup({ ...baseConfig }, { idp: { accessTokenTtl: 300 } });
  });
  after(() => s.close());

  it('refreshes an expired access token once for N concurrent requests', async () => {
    s.clock.offsetMs = 0;
    const jar = new CookieJar();
    await navigate(jar, `${s.harness.url}/app`, { credentials: alex });
    const before = extra(await send(jar, `${s.harness.url}/x`, { headers: api }));
    s.idp.resetCounts();
    s.clock.offsetMs = 400_000;
    const results = await Promise.all(Array.from({ length: 8 }, () => send(jar, `${s.harness.url}/x`, { headers: api })));
    for (const r of results) {
      assert.equal(r.status, 200, r.body);
      assert.ok(r.setCookies.some((c) => c.startsWith('session=')));
    }
    assert.equal(s.idp.counts()['token:refresh_token'], 1);
    const tokens = new Set(results.map((r) => extra(r).access_token));
    assert.equal(tokens.size, 1);
    assert.notEqual([...tokens][0], before.access_token);
    // the new cookie carries the new tokens: no further refresh
    const after = await send(jar, `${s.harness.url}/x`, { headers: api });
    assert.equal(after.status, 200);
    assert.equal(s.idp.counts()['token:refresh_token'], 1);
  });

  it('refreshes once across two nodes sharing the store', async () => {
    s.clock.offsetMs = 0;
    const node2 = await s.addNode();
    const jar = new CookieJar();
    await send(jar, `${s.harness.url}/login`, { headers: basic });
    s.idp.resetCounts();
    s.clock.offsetMs = 400_000;
    const results = await Promise.all([
      ...Array.from({ length: 4 }, () => send(jar, `${s.harness.url}/x`, { headers: api })),
      ...Array.from({ length: 4 }, () => send(jar, `${node2.harness.url}/x`, { headers: api })),
    ]);
    for (const r of results) assert.equal(r.status, 200, r.body);
    assert.equal(s.idp.counts()['token:refresh_token'], 1);
  });

  it('ends the session on invalid_grant; the next navigation signs in again', async () => {
    s.clock.offsetMs = 0;
    const jar = new CookieJar();
    await passwordSession(s, jar);
    const rt = extra(await send(jar, `${s.harness.url}/x`, { headers: api })).refresh_token as string;
    assert.ok(rt);
    await oidc.tokenRevocation(await s.client(), rt, { token_type_hint: 'refresh_token' });
    s.clock.offsetMs = 400_000;
    const r = await send(jar, `${s.harness.url}/x`, { headers: nav });
    assert.equal(r.status, 302);
    assert.equal(new URL(r.location!).origin, s.idp.issuer);
    assert.ok(r.setCookies.some((c) => c.startsWith('session=;') && c.includes('Max-Age=0')));
  });
});

describe('refresh_tokens: false', () => {
  it('ends the session when the access token expires', async () => {
    const s = await setup({ ...baseConfig, refresh_tokens: false }, { idp: { accessTokenTtl: 300 } });
    try {
      const jar = new CookieJar();
      await passwordSession(s, jar);
      s.idp.resetCounts();
      s.clock.offsetMs = 400_000;
      const r = await send(jar, `${s.harness.url}/x`, { headers: api });
      assert.equal(r.status, 401);
      assert.equal(s.idp.counts()['token:refresh_token'] ?? 0, 0);
      assert.ok(r.setCookies.some((c) => c.startsWith('session=;') && c.includes('Max-Age=0')));
    } finally {
      await s.close();
    }
  });
});

describe('logout', () => {
  let s: Setup;
  before(async () => {
    s = await setup({
      ...baseConfig,
      logout_uri_suffix: '/logout',
      logout_revoke: true,
      logout_redirect_uri: ['http://127.0.0.1/after-logout'],
    });
  });
  after(() => s.close());

  it('ignores a method outside logout_methods', async () => {
    const jar = new CookieJar();
    await passwordSession(s, jar);
    const r = await send(jar, `${s.harness.url}/app/logout`, { headers: api });
    assert.equal(r.status, 200);
    assert.equal(extra(r).method, 'session');
  });

  it('destroys the session, revokes tokens and redirects to the end-session endpoint', async () => {
    const jar = new CookieJar();
    await navigate(jar, `${s.harness.url}/app`, { credentials: alex });
    s.idp.resetCounts();
    const r = await send(jar, `${s.harness.url}/app/logout?x=1`, { method: 'POST', headers: nav });
    assert.equal(r.status, 302);
    const loc = new URL(r.location!);
    assert.equal(loc.origin + loc.pathname, (await s.client()).serverMetadata().end_session_endpoint);
    assert.ok(loc.searchParams.get('id_token_hint'));
    assert.equal(loc.searchParams.get('post_logout_redirect_uri'), 'http://127.0.0.1/after-logout');
    assert.equal(loc.searchParams.get('client_id'), 'kong');
    assert.ok(r.setCookies.some((c) => c.startsWith('session=;') && c.includes('Max-Age=0')));
    assert.equal(s.idp.counts().revocation, 2);
    assert.equal(jar.get(s.harness.url, 'session'), undefined);
  });

  it('logs out a session whose access token expired as it is: no refresh first, id_token_hint kept, one Set-Cookie', async () => {
    s.clock.offsetMs = 0;
    const jar = new CookieJar();
    await navigate(jar, `${s.harness.url}/app`, { credentials: alex });
    s.idp.resetCounts();
    s.clock.offsetMs = 400_000;
    try {
      const r = await send(jar, `${s.harness.url}/app/logout`, { method: 'POST', headers: nav });
      assert.equal(r.status, 302);
      assert.equal(s.idp.counts()['token:refresh_token'] ?? 0, 0, 'no refresh at the IdP for a logout');
      assert.ok(new URL(r.location!).searchParams.get('id_token_hint'));
      assert.deepEqual(r.setCookies.filter((c) => c.startsWith('session=')).map((c) => c.includes('Max-Age=0')), [true]);
    } finally {
      s.clock.offsetMs = 0;
    }
  });
});

describe('back-channel logout', () => {
  let s: Setup;
  before(async () => {
    s = await setup({ ...baseConfig, backchannel_logout_uri_suffix: '/backchannel' }, { backchannelPath: '/backchannel' });
  });
  after(() => s.close());

  it('ends a live session when the IdP sends a logout token', async () => {
    const jar = new CookieJar();
    await navigate(jar, `${s.harness.url}/app`, { credentials: alex });
    assert.equal((await send(jar, `${s.harness.url}/x`, { headers: api })).status, 200);
    const ended = await s.idp.logoutUser('alex');
    assert.ok(ended >= 1);
    assert.equal(await statusSoon(() => send(jar, `${s.harness.url}/x`, { headers: api }), 401), 401);
  });

  it('rejects missing, forged and malformed logout tokens with 400', async () => {
    const post = (body: string) =>
      send(new CookieJar(), `${s.harness.url}/backchannel`, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal((await post('')).status, 400);
    assert.equal((await post('logout_token=not-a-jwt')).status, 400);
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT({ sid: 'x', events: { 'http://schemas.openid.net/event/backchannel-logout': {} } })
      .setProtectedHeader({ alg: 'RS256', typ: 'logout+jwt', kid: s.idp.jwks.keys[0].kid })
      .setIssuer(s.idp.issuer)
      .setAudience('kong')
      .setIssuedAt()
      .setJti(randomBytes(8).toString('hex'))
      .sign(privateKey);
    const r = await post(`logout_token=${forged}`);
    assert.equal(r.status, 400);
    assert.equal((JSON.parse(r.body) as { error: string }).error, 'invalid_request');
  });
});

/**
 * A setup with `session_storage: redis` under a fresh key prefix, plus a Redis client to look at
 * the store; started before the suite's tests, the keys removed after.
 */
function redisSessionSuite(config: Parameters<typeof setup>[0], opts: Parameters<typeof setup>[1] = {}): { readonly s: Setup; readonly redis: Redis; readonly prefix: string } {
  let s: Setup | undefined;
  const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });
  const prefix = `portcullis-test-${randomBytes(6).toString('hex')}`;
  before(async () => {
    await redis.connect();
    s = await setup({ ...config, session_storage: 'redis', redis: { host: '127.0.0.1', port: 6379, prefix } }, opts);
  });
  after(async () => {
    await s?.close();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });
  return { get s() { return s!; }, redis, prefix };
}

describe('session_storage: redis', () => {
  const redisEnv = redisSessionSuite({
    ...baseConfig,
    logout_uri_suffix: '/logout',
    backchannel_logout_uri_suffix: '/backchannel',
  }, { backchannelPath: '/backchannel' });

  it('keeps the session in Redis; the cookie holds only a sealed reference', async () => {
    const jar = new CookieJar();
    await passwordSession(redisEnv.s, jar);
    assert.ok(jar.get(redisEnv.s.harness.url, 'session')!.length < 400);
    assert.equal((await redisEnv.redis.keys(`${redisEnv.prefix}:oidc:session:*`)).length, 1);
    assert.equal(extra(await send(jar, `${redisEnv.s.harness.url}/x`, { headers: api })).sub, 'alex');
  });

  it('logout deletes the record, so a copied cookie stops working', async () => {
    const jar = new CookieJar();
    await passwordSession(redisEnv.s, jar);
    const copy = jar.get(redisEnv.s.harness.url, 'session')!;
    const r = await send(jar, `${redisEnv.s.harness.url}/logout`, { method: 'DELETE', headers: api });
    assert.equal(r.status, 302);
    const thief = new CookieJar();
    thief.store(redisEnv.s.harness.url, [`session=${copy}`]);
    assert.equal((await send(thief, `${redisEnv.s.harness.url}/x`, { headers: api })).status, 401);
  });

  it('refreshes once across two nodes (Redis lock) and honours back-channel logout', async () => {
    const node2 = await redisEnv.s.addNode();
    const jar = new CookieJar();
    await navigate(jar, `${redisEnv.s.harness.url}/app`, { credentials: alex });
    redisEnv.s.idp.resetCounts();
    redisEnv.s.clock.offsetMs = 400_000;
    const results = await Promise.all([
      ...Array.from({ length: 3 }, () => send(jar, `${redisEnv.s.harness.url}/x`, { headers: api })),
      ...Array.from({ length: 3 }, () => send(jar, `${node2.harness.url}/x`, { headers: api })),
    ]);
    for (const r of results) assert.equal(r.status, 200, r.body);
    assert.equal(redisEnv.s.idp.counts()['token:refresh_token'], 1);
    await redisEnv.s.idp.logoutUser('alex');
    assert.equal(await statusSoon(() => send(jar, `${node2.harness.url}/x`, { headers: api }), 401), 401);
    redisEnv.s.clock.offsetMs = 0;
  });
});

/**
 * The status of `request` once it is `want`, or the last status after 5 s. The demo IdP gives up
 * waiting for a back-channel logout delivery after its own HTTP timeout (2.5 s) and swallows the
 * error, while our endpoint may still be verifying the token (JWKS fetch) on a loaded machine
 * (several test files in parallel): the marker can land a moment after logoutUser() resolves.
 */
async function statusSoon(request: () => Promise<Step>, want: number): Promise<number> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const { status } = await request();
    if (status === want || Date.now() > deadline) return status;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('session_remember with session_storage: redis', () => {
  const redisEnv = redisSessionSuite({
    ...baseConfig,
    session_remember: true,
    session_idling_timeout: 60,
  }, { idp: { accessTokenTtl: 3600 } });

  it('restores an idle-expired session from the remember cookie (the record outlives the browser session)', async () => {
    redisEnv.s.clock.offsetMs = 0;
    const jar = new CookieJar();
    await passwordSession(redisEnv.s, jar);
    assert.ok(jar.get(redisEnv.s.harness.url, 'remember'));
    redisEnv.s.clock.offsetMs = 120_000;
    const back = await send(jar, `${redisEnv.s.harness.url}/x`, { headers: api });
    assert.equal(back.status, 200, back.body);
    assert.equal(extra(back).sub, 'alex');
    assert.ok(back.setCookies.some((c) => c.startsWith('session=') && !c.includes('Max-Age=0')));
    assert.equal((await send(jar, `${redisEnv.s.harness.url}/x`, { headers: api })).status, 200);
    redisEnv.s.clock.offsetMs = 0;
  });
});
