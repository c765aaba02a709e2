/**
 * End-to-end browser flows against the demo IdP (oidc-provider): sign-in with the authorization
 * code flow, the session afterwards, bad callbacks, several tabs, form_post, password-grant
 * sessions (seed 000), logout.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CookieJar, navigate, send, type UpstreamEcho } from './helpers/fake-ctx.ts';
import { baseConfig, setup, type Setup } from './helpers/oidc-browser-setup.ts';

const alex = { login: 'alex', password: 'doe' };
const nav = { accept: 'text/html', 'sec-fetch-mode': 'navigate' };

function echo(body: string): UpstreamEcho & { extra: Record<string, unknown> } {
  return JSON.parse(body) as UpstreamEcho & { extra: Record<string, unknown> };
}

describe('authorization code flow (login_action=redirect, preserve_query_args)', () => {
  let s: Setup;
  before(async () => {
    s = await setup({ ...baseConfig, login_action: 'redirect', login_tokens: null, preserve_query_args: true, scopes: ['openid', 'profile'] });
  });
  after(() => s.close());

  it('sends a navigation to the IdP with state, nonce, PKCE S256, scope and redirect_uri', async () => {
    const jar = new CookieJar();
    const r = await send(jar, `${s.harness.url}/app/page?x=1`, { headers: nav });
    assert.equal(r.status, 302);
    const loc = new URL(r.location!);
    assert.equal(loc.origin, s.idp.issuer);
    assert.equal(loc.searchParams.get('response_type'), 'code');
    assert.equal(loc.searchParams.get('client_id'), 'kong');
    assert.equal(loc.searchParams.get('scope'), 'openid profile');
    assert.equal(loc.searchParams.get('redirect_uri'), `${s.harness.url}/app/page`);
    assert.equal(loc.searchParams.get('code_challenge_method'), 'S256');
    assert.ok((loc.searchParams.get('state') ?? '').length >= 32);
    assert.ok((loc.searchParams.get('nonce') ?? '').length >= 32);
    assert.equal(loc.searchParams.get('response_mode'), null);
    // The first pending sign-in uses exactly authorization_cookie_name (reference §13 #12).
    const authCookie = r.setCookies.find((c) => c.startsWith('authorization='));
    assert.ok(authCookie, `authorization cookie set: ${JSON.stringify(r.setCookies)}`);
    assert.match(authCookie, /; Max-Age=600; HttpOnly$/);
    assert.doesNotMatch(authCookie, /SameSite/);
  });

  it('signs in, returns to the page first asked for and keeps the person signed in', async () => {
    const jar = new CookieJar();
    const steps = await navigate(jar, `${s.harness.url}/app/page?x=1`, { credentials: alex });
    const last = steps.at(-1)!;
    assert.equal(last.url, `${s.harness.url}/app/page?x=1`);
    assert.equal(last.status, 200);
    const body = echo(last.body);
    assert.equal(body.extra.method, 'session');
    assert.equal(body.extra.sub, 'alex');
    // the session cookie came with the callback's redirect, and cookies never reach the upstream
    const cb = steps.find((x) => x.url.includes('code='))!;
    assert.equal(cb.status, 302);
    assert.ok(cb.setCookies.some((c) => /^session=[^;]+; Path=\/; SameSite=Lax; HttpOnly$/.test(c)));
    assert.ok(cb.setCookies.some((c) => isAuthCookie(c) && c.includes('Max-Age=0')), 'authorization cookie removed');
    assert.equal(jar.names(s.harness.url).filter((n) => isAuthName(n)).length, 0);
    const upstreamCookie = String(body.headers.cookie ?? '');
    assert.doesNotMatch(upstreamCookie, /(^|; )session=/);
    // later requests: only the cookie, no IdP call
    s.idp.resetCounts();
    const again = await send(jar, `${s.harness.url}/app/other`, { headers: nav });
    assert.equal(again.status, 200);
    assert.equal(echo(again.body).extra.sub, 'alex');
    assert.equal(again.setCookies.length, 0, 'no Set-Cookie on a fresh session');
    assert.equal(Object.values(s.idp.counts()).reduce((a, b) => a + b, 0), 0);
  });

  it('answers 401 (not a redirect) to fetch/XHR requests', async () => {
    const variants: Record<string, string>[] = [{ accept: 'application/json' }, { 'sec-fetch-mode': 'cors' }, { 'x-requested-with': 'XMLHttpRequest', accept: 'text/html' }];
    for (const headers of variants) {
      const r = await send(new CookieJar(), `${s.harness.url}/api/data`, { headers });
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.equal(r.location, null);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer realm=/);
      assert.deepEqual(r.setCookies, []);
    }
  });

  it('rejects a replayed callback with 401 and no session', async () => {
    const jar = new CookieJar();
    const steps = await navigate(jar, `${s.harness.url}/app/page`, { credentials: alex });
    const cb = steps.find((x) => x.url.includes('code='))!;
    // an attacker (or the back button) replays the callback with the same authorization cookie
    const replayJar = new CookieJar();
    const authCookie = steps.flatMap((x) => x.setCookies).find((c) => isAuthCookie(c) && !c.includes('Max-Age=0'))!;
    replayJar.store(s.harness.url, [authCookie.split(';')[0]]);
    const r = await send(replayJar, cb.url, { headers: nav });
    assert.equal(r.status, 401);
    assert.match(r.body, /Unauthorized/);
    assert.ok(!r.setCookies.some((c) => c.startsWith('session=') && !c.includes('Max-Age=0')));
  });

  it('rejects a callback without its authorization cookie (401, no new sign-in, no loop)', async () => {
    const jar = new CookieJar();
    const first = await send(jar, `${s.harness.url}/app/page`, { headers: nav });
    const state = new URL(first.location!).searchParams.get('state')!;
    const r = await send(new CookieJar(), `${s.harness.url}/app/page?code=abc&state=${state}`, { headers: nav });
    assert.equal(r.status, 401);
    assert.equal(r.location, null);
    assert.match(r.headers.get('content-type') ?? '', /text\/html/);
    const missing = await send(jar, `${s.harness.url}/app/page?code=abc&state=not-the-state`, { headers: nav });
    assert.equal(missing.status, 401);
  });

  it('turns an IdP error response at the callback into 401', async () => {
    const jar = new CookieJar();
    const first = await send(jar, `${s.harness.url}/app/page`, { headers: nav });
    const state = new URL(first.location!).searchParams.get('state')!;
    const r = await send(jar, `${s.harness.url}/app/page?error=access_denied&state=${state}`, { headers: nav });
    assert.equal(r.status, 401);
    assert.ok(!r.setCookies.some((c) => c.startsWith('session=')));
  });

  it('lets several tabs sign in at the same time', async () => {
    const jar = new CookieJar();
    const a = await send(jar, `${s.harness.url}/tab/a`, { headers: nav });
    const b = await send(jar, `${s.harness.url}/tab/b`, { headers: nav });
    assert.equal(jar.names(s.harness.url).filter((n) => isAuthName(n)).length, 2);
    assert.ok(jar.names(s.harness.url).includes('authorization'), 'the first tab has the plain cookie name');
    // finish tab b first, then tab a
    const stepsB = await navigate(jar, b.location!, { credentials: alex });
    assert.equal(stepsB.at(-1)!.url, `${s.harness.url}/tab/b`);
    const stepsA = await navigate(jar, a.location!, {});
    assert.equal(stepsA.at(-1)!.url, `${s.harness.url}/tab/a`);
    assert.equal(stepsA.at(-1)!.status, 200);
  });

  it('bounds the number of pending sign-ins', async () => {
    const jar = new CookieJar();
    for (let i = 0; i < 8; i++) await send(jar, `${s.harness.url}/many/${i}`, { headers: nav });
    assert.equal(jar.names(s.harness.url).filter((n) => isAuthName(n)).length, 5);
  });

  it('rejects a tampered or truncated session cookie and starts a new sign-in', async () => {
    const jar = new CookieJar();
    await navigate(jar, `${s.harness.url}/app/page`, { credentials: alex });
    const value = jar.get(s.harness.url, 'session')!;
    // The last two characters replaced by others (a tag that already ended in "AA" would make
    // "AA" no tampering at all: one run in 256 did).
    const retagged = `${value.slice(0, -2)}${value.endsWith('AA') ? 'BA' : 'AA'}`;
    assert.notEqual(retagged, value);
    for (const bad of [value.slice(0, -5), value.slice(0, 40), retagged]) {
      const j = new CookieJar();
      j.store(s.harness.url, [`session=${bad}`]);
      const r = await send(j, `${s.harness.url}/app/page`, { headers: nav });
      assert.equal(r.status, 302);
      assert.equal(new URL(r.location!).origin, s.idp.issuer);
      assert.ok(r.setCookies.some((c) => c.startsWith('session=;') && c.includes('Max-Age=0')), 'bad cookie removed');
    }
  });
});

describe('authorization code flow: form_post, login_action=upstream and response', () => {
  let s: Setup;
  before(async () => {
    s = await setup({ ...baseConfig, response_mode: 'form_post', login_action: 'upstream' });
  });
  after(() => s.close());

  it('completes a form_post callback and proxies it without the protocol parameters', async () => {
    const jar = new CookieJar();
    const first = await send(jar, `${s.harness.url}/fp?keep=1`, { headers: nav });
    assert.equal(new URL(first.location!).searchParams.get('response_mode'), 'form_post');
    const steps = await navigate(jar, first.location!, { credentials: alex });
    const last = steps.at(-1)!;
    assert.equal(last.status, 200, last.body);
    const body = echo(last.body);
    assert.equal(body.extra.method, 'authorization_code');
    assert.equal(body.extra.sub, 'alex');
    assert.ok(last.setCookies.some((c) => c.startsWith('session=')));
    // the authorization cookie (and the protocol parameters) never reach the upstream
    assert.doesNotMatch(String(body.headers.cookie ?? ''), /authorization\./);
    assert.equal(new URLSearchParams(body.query).has('code'), false);
  });
});

describe('nonce mismatch', () => {
  let s: Setup;
  before(async () => {
    s = await setup({ ...baseConfig, require_proof_key_for_code_exchange: false, display_errors: true });
  });
  after(() => s.close());

  it('rejects a code whose ID token carries another flow’s nonce', async () => {
    const jar = new CookieJar();
    const one = await send(jar, `${s.harness.url}/n`, { headers: nav });
    const two = await send(jar, `${s.harness.url}/n`, { headers: nav });
    // sign in for flow one but stop at the callback
    const steps = await navigate(jar, one.location!, { credentials: alex, maxSteps: 15 }).catch(() => []);
    const cb = steps.find((x) => x.url.includes('code='));
    assert.ok(cb);
    // the callback of flow one has already been used by navigate(); get a fresh code for flow one's nonce
    const again = await send(jar, one.location!.replace(/state=[^&]+/, `state=${new URL(two.location!).searchParams.get('state')}`), { headers: nav });
    // the IdP redirects straight back (already signed in) with a code bound to flow one's nonce and flow two's state
    assert.ok(again.status >= 300 && again.status < 400 && again.location?.startsWith(s.harness.url));
    const back = await navigate(jar, again.location!, {});
    const final = back.at(-1)!;
    assert.equal(final.status, 401);
    assert.match(final.body, /nonce/);
    assert.ok(!final.setCookies.some((c) => c.startsWith('session=') && !c.includes('Max-Age=0')));
  });
});

describe('session made by the password grant (seed 000)', () => {
  let s: Setup;
  before(async () => {
    s = await setup({ ...baseConfig });
  });
  after(() => s.close());

  it('authenticates later requests that carry only the cookie', async () => {
    const jar = new CookieJar();
    const first = await send(jar, `${s.harness.url}/anything`, { headers: { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}` } });
    assert.equal(first.status, 200);
    assert.ok(first.setCookies.some((c) => /^session=[^;]+; Path=\/; SameSite=Lax; HttpOnly$/.test(c)));
    s.idp.resetCounts();
    const second = await send(jar, `${s.harness.url}/anything`, { headers: { accept: 'application/json' } });
    assert.equal(second.status, 200);
    assert.equal(echo(second.body).extra.method, 'session');
    assert.equal(echo(second.body).extra.sub, 'alex');
    assert.equal(s.idp.counts()['token:password'] ?? 0, 0);
  });
});

describe('disable_session', () => {
  let s: Setup;
  before(async () => {
    s = await setup({ ...baseConfig, disable_session: ['password'] });
  });
  after(() => s.close());

  it('issues no session cookie for a listed method', async () => {
    const r = await send(new CookieJar(), `${s.harness.url}/anything`, { headers: { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}` } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.setCookies, []);
  });
});

describe('login_action=response and redirect with default login_tokens', () => {
  it('answers the callback with the ID token as JSON (no-store)', async () => {
    const s = await setup({ ...baseConfig, login_action: 'response', authorization_query_args_names: ['prompt'], authorization_query_args_values: ['login'] });
    try {
      const jar = new CookieJar();
      const first = await send(jar, `${s.harness.url}/r`, { headers: nav });
      assert.equal(new URL(first.location!).searchParams.get('prompt'), 'login');
      const steps = await navigate(jar, first.location!, { credentials: alex });
      const last = steps.at(-1)!;
      assert.equal(last.status, 200);
      assert.equal(last.headers.get('cache-control'), 'no-store');
      const body = JSON.parse(last.body) as Record<string, string>;
      assert.deepEqual(Object.keys(body), ['id_token']);
      assert.equal(body.id_token.split('.').length, 3);
    } finally {
      await s.close();
    }
  });

  it('login_tokens: tokens is the token endpoint response as a JSON object in a response body', async () => {
    const s = await setup({ ...baseConfig, login_action: 'response', login_tokens: ['access_token', 'tokens'] });
    try {
      const steps = await navigate(new CookieJar(), `${s.harness.url}/r`, { credentials: alex });
      const last = steps.at(-1)!;
      assert.equal(last.status, 200, last.body);
      const body = JSON.parse(last.body) as { access_token: string; tokens: Record<string, unknown> };
      assert.equal(typeof body.tokens, 'object', `tokens is an object: ${last.body.slice(0, 200)}`);
      assert.equal(body.tokens.access_token, body.access_token);
      assert.equal(typeof body.tokens.id_token, 'string');
    } finally {
      await s.close();
    }
  });

  it('puts the ID token in the fragment of the original URL; the configured redirect_uri is used for the exchange', async () => {
    const s = await setup({ ...baseConfig, login_action: 'redirect' });
    try {
      const jar = new CookieJar();
      const first = await send(jar, `${s.harness.url}/deep/page?q=1`, { headers: nav });
      const steps = await navigate(jar, first.location!, { credentials: alex });
      const cb = steps.find((x) => x.url.includes('code='))!;
      assert.match(cb.location!, new RegExp(`^${s.harness.url}/deep/page#id_token=[\\w-]+\\.[\\w-]+\\.[\\w-]+$`));
    } finally {
      await s.close();
    }
    const s2 = await setup({ ...baseConfig, login_action: 'redirect', login_tokens: null, redirect_uri: ['http://127.0.0.1:1/never-used-as-is'] });
    try {
      const first = await send(new CookieJar(), `${s2.harness.url}/x`, { headers: nav });
      assert.equal(new URL(first.location!).searchParams.get('redirect_uri'), 'http://127.0.0.1:1/never-used-as-is');
    } finally {
      await s2.close();
    }
  });
});

describe('pushed authorization requests (require_pushed_authorization_requests)', () => {
  it('sends only client_id and request_uri through the browser and still signs in', async () => {
    const s = await setup({ ...baseConfig, require_pushed_authorization_requests: true, login_action: 'redirect', login_tokens: null });
    try {
      const jar = new CookieJar();
      const first = await send(jar, `${s.harness.url}/par`, { headers: nav });
      assert.equal(first.status, 302);
      const loc = new URL(first.location!);
      assert.deepEqual([...loc.searchParams.keys()].sort(), ['client_id', 'request_uri']);
      const steps = await navigate(jar, first.location!, { credentials: alex });
      const last = steps.at(-1)!;
      assert.equal(last.url, `${s.harness.url}/par`);
      assert.equal(last.status, 200);
      assert.equal(echo(last.body).extra.sub, 'alex');
    } finally {
      await s.close();
    }
  });
});

describe('search_user_info', () => {
  it('fetches user info once at sign-in and keeps it in the session', async () => {
    const s = await setup({ ...baseConfig, search_user_info: true, scopes: ['openid', 'email'] });
    try {
      const jar = new CookieJar();
      await navigate(jar, `${s.harness.url}/u`, { credentials: alex });
      assert.equal(s.idp.counts().userinfo, 1);
      const later = await send(jar, `${s.harness.url}/u`, { headers: nav });
      const info = echo(later.body).extra.userinfo as Record<string, unknown>;
      assert.equal(info.sub, 'alex');
      assert.equal(typeof info.email, 'string');
      assert.equal(s.idp.counts().userinfo, 1);
    } finally {
      await s.close();
    }
  });
});

/** A pending sign-in's cookie: `authorization` for the first, `authorization.<tag>` while it is pending. */
function isAuthName(n: string): boolean {
  return n === 'authorization' || n.startsWith('authorization.');
}

function isAuthCookie(setCookie: string): boolean {
  return isAuthName(setCookie.slice(0, setCookie.indexOf('=')));
}
