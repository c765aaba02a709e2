/**
 * Acceptance checks from the reference's §13 list that a Kong user would run with curl, against
 * the real gateway, the demo IdP and the echo upstream: session headers (#19), tampered session
 * cookies (#11), disable_session (#11), logout methods and query strings (#18), a missing claim
 * header (#19), a missing anonymous consumer (#16), a callback finishing with the client that
 * started the flow (#20), and logs free of tokens, secrets, cookies and codes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from './helpers/gateway.ts';
import type { TestGateway } from './helpers/gateway.ts';
import { startIdp } from '../demo/idp.ts';
import type { DemoIdp } from '../demo/idp.ts';
import { startEcho } from '../demo/echo.ts';
import type { EchoServer } from '../demo/echo.ts';
import { CookieJar, navigate, send } from './helpers/fake-ctx.ts';

let idp: DemoIdp;
let echo: EchoServer;
let gw: TestGateway;
/** Every token, secret, cookie value and code seen during the tests: none may reach the log. */
const secrets = new Set<string>(['kong-secret', 'kong-basic-secret', 'a-long-enough-session-secret-for-tests-0123456789']);

const basicAlex = `Basic ${Buffer.from('alex:doe').toString('base64')}`;
const api = { accept: 'application/json' };
const nav = { accept: 'text/html', 'sec-fetch-mode': 'navigate' };
type Echo = { headers: Record<string, string | undefined> };

function plugin(extra: string): string {
  return `    plugins:
      - name: openid-connect
        config:
          issuer: ${idp.issuer}
          client_id: [kong]
          client_secret: [kong-secret]
          client_auth: [client_secret_post]
          session_secret: a-long-enough-session-secret-for-tests-0123456789
${extra}`;
}

before(async () => {
  idp = await startIdp();
  echo = await startEcho();
  // debug: the log check at the end must hold at the most talkative level too (this file runs
  // in its own process under node --test, so the variable stays local to it)
  process.env.PORTCULLIS_TEST_LOG = 'trace';
  gw = await startGateway({
    config: `_format_version: "3.0"
services:
  - name: sess
    url: ${echo.url}/anything
    routes:
      - name: sess
        paths: [/sess]
${plugin(`          auth_methods: [session, password]
          session_request_headers: [id, timeout, subject]
          session_response_headers: [audience, timeout]
          logout_uri_suffix: /logout
          logout_methods: [POST]
          upstream_headers_claims: [no_such_claim, preferred_username]
          upstream_headers_names: [x-missing-claim, x-user]
          hide_credentials: false
`)}
  - name: code
    url: ${echo.url}/anything
    routes:
      - name: code
        paths: [/code]
${plugin(`          auth_methods: [session, password, authorization_code]
`)}
  - name: multi
    url: ${echo.url}/anything
    routes:
      - name: multi
        paths: [/multi]
    plugins:
      - name: openid-connect
        config:
          issuer: ${idp.issuer}
          client_id: [kong, kong-basic]
          client_secret: [kong-secret, kong-basic-secret]
          client_auth: [client_secret_post, client_secret_basic]
          auth_methods: [session, authorization_code]
          session_secret: a-long-enough-session-secret-for-tests-0123456789
  - name: nosess
    url: ${echo.url}/anything
    routes:
      - name: nosess
        paths: [/nosess]
${plugin(`          auth_methods: [session, password]
          disable_session: [password]
          cache_tokens: false
`)}
  - name: anon
    url: ${echo.url}/anything
    routes:
      - name: anon
        paths: [/anon]
${plugin(`          auth_methods: [bearer]
          anonymous: ghost-consumer
`)}
`,
  });
});
after(async () => {
  await gw.close();
  await echo.close();
  await idp.close();
});

function sessionCookie(setCookies: string[]): string {
  const c = setCookies.find((x) => x.startsWith('session=') && !/Max-Age=0/i.test(x));
  assert.ok(c, `no session cookie in ${JSON.stringify(setCookies)}`);
  return c;
}

/** Password grant with session: returns the `session=<value>` pair. */
async function passwordSession(path: string): Promise<string> {
  const r = await send(new CookieJar(), `${gw.proxyUrl}${path}`, { headers: { ...api, authorization: basicAlex } });
  assert.equal(r.status, 200, r.body);
  const body = JSON.parse(r.body) as Echo;
  secrets.add(String(body.headers.authorization).replace(/^Bearer /, ''));
  const pair = sessionCookie(r.setCookies).split(';')[0];
  secrets.add(pair.slice('session='.length));
  return pair;
}

test('#19 session_request_headers / session_response_headers; client-sent copies never reach the upstream', async () => {
  const r = await send(new CookieJar(), `${gw.proxyUrl}/sess/x`, { headers: { ...api, authorization: basicAlex, 'session-id': 'spoofed', 'x-missing-claim': 'spoofed' } });
  assert.equal(r.status, 200, r.body);
  // #11: Kong's default cookie attributes
  assert.match(sessionCookie(r.setCookies), /^session=[^;]+; Path=\/; SameSite=Lax; HttpOnly$/);
  const first = JSON.parse(r.body) as Echo;
  assert.ok(first.headers['session-id'] && first.headers['session-id'] !== 'spoofed');
  assert.equal(first.headers['session-subject'], 'alex');
  const timeout = Number(first.headers['session-timeout']);
  assert.ok(timeout > 800 && timeout <= 900, `Session-Timeout ${timeout} (idling timeout 900 s)`);
  // #19: a missing claim → no header, even though the client sent one; a present claim is mapped
  assert.equal(first.headers['x-missing-claim'], undefined);
  assert.equal(first.headers['x-user'], 'alex');
  assert.equal(r.headers.get('session-audience'), 'default');
  assert.ok(Number(r.headers.get('session-timeout')) > 0);
  assert.equal(r.headers.get('session-id'), null, 'only the configured response headers');

  // The cookie alone: same session id upstream, no IdP call.
  const cookie = sessionCookie(r.setCookies).split(';')[0];
  secrets.add(cookie.slice('session='.length));
  idp.resetCounts();
  const again = await send(new CookieJar(), `${gw.proxyUrl}/sess/y`, { headers: { ...api, cookie: `theme=dark; ${cookie}; authorization=x`, 'session-id': 'spoofed' } });
  assert.equal(again.status, 200, again.body);
  // Session and authorization cookies never go upstream, even with hide_credentials: false.
  assert.equal((JSON.parse(again.body) as Echo).headers.cookie, 'theme=dark');
  assert.equal((JSON.parse(again.body) as Echo).headers['session-id'], first.headers['session-id']);
  assert.deepEqual(again.setCookies, [], 'no new Set-Cookie for a fresh session');
  // Cookie headers are parsed and stripped once and remembered: headers that differ only before
  // the same long tail must each get their own result.
  for (const theme of ['light', 'dark', 'light']) {
    const r2 = await send(new CookieJar(), `${gw.proxyUrl}/sess/y`, { headers: { ...api, cookie: `theme=${theme}; ${cookie}; authorization=x` } });
    assert.equal(r2.status, 200, r2.body);
    assert.equal((JSON.parse(r2.body) as Echo).headers.cookie, `theme=${theme}`);
  }
  assert.deepEqual(idp.counts(), {});
});

test('#11 a tampered session cookie → 401; → 302 to the IdP when authorization_code is enabled', async () => {
  for (const path of ['/sess', '/code']) {
    const cookie = await passwordSession(path);
    const value = cookie.slice('session='.length);
    const ok = await send(new CookieJar(), `${gw.proxyUrl}${path}/p`, { headers: { ...nav, cookie } });
    assert.equal(ok.status, 200, `${path}: the untouched cookie works`);
    for (const bad of [`${value.slice(0, -3)}AAA`, value.slice(0, 50), `x${value}`]) {
      // curl's defaults (Accept: */*, no Sec-Fetch-*): a checker's request, treated as a navigation
      const r = await send(new CookieJar(), `${gw.proxyUrl}${path}/p`, { headers: { accept: '*/*', cookie: `session=${bad}` } });
      if (path === '/sess') {
        assert.equal(r.status, 401, `${path}: ${r.body}`);
        assert.deepEqual(JSON.parse(r.body), { message: 'Unauthorized' });
      } else {
        assert.equal(r.status, 302, `${path}: ${r.body}`);
        assert.ok(r.location?.startsWith(idp.issuer), String(r.location));
        assert.ok(r.setCookies.some((c) => c.startsWith('authorization=')), 'authorization cookie named authorization');
      }
      // the unreadable cookie is removed
      assert.ok(r.setCookies.some((c) => c.startsWith('session=') && /Max-Age=0/.test(c)), JSON.stringify(r.setCookies));
    }
  }
});

test('#11 disable_session: [password] → no session cookie', async () => {
  const r = await send(new CookieJar(), `${gw.proxyUrl}/nosess/x`, { headers: { ...api, authorization: basicAlex } });
  assert.equal(r.status, 200, r.body);
  assert.deepEqual(r.setCookies.filter((c) => c.startsWith('session')), []);
  secrets.add(String((JSON.parse(r.body) as Echo).headers.authorization).replace(/^Bearer /, ''));
});

test('#18 logout: GET ignored when only POST is allowed; POST /…/logout?x=1 logs out; the old cookie then → 401', async () => {
  const cookie = await passwordSession('/sess');
  const get = await send(new CookieJar(), `${gw.proxyUrl}/sess/logout`, { headers: { ...api, cookie } });
  assert.equal(get.status, 200, 'a GET is a normal request');
  assert.ok(!get.setCookies.some((c) => /Max-Age=0/.test(c)), 'no logout on GET');
  assert.equal((await send(new CookieJar(), `${gw.proxyUrl}/sess/a`, { headers: { ...api, cookie } })).status, 200, 'still signed in');

  const out = await send(new CookieJar(), `${gw.proxyUrl}/sess/logout?x=1`, { method: 'POST', headers: { ...api, cookie } });
  assert.equal(out.status, 302, out.body);
  const loc = new URL(out.location!);
  assert.equal(`${loc.origin}${loc.pathname}`.startsWith(idp.issuer), true, out.location!);
  assert.ok(loc.searchParams.get('id_token_hint'));
  assert.equal(loc.searchParams.get('client_id'), 'kong');
  assert.ok(out.setCookies.some((c) => c.startsWith('session=') && /Max-Age=0/.test(c)), 'session cookie expired');
  const replay = await send(new CookieJar(), `${gw.proxyUrl}/sess/a`, { headers: { ...api, cookie } });
  assert.equal(replay.status, 401, 'a copy of the old cookie no longer works');
});

test('#16 a configured but missing anonymous consumer → 500', async () => {
  const r = await send(new CookieJar(), `${gw.proxyUrl}/anon/x`, { headers: api });
  assert.equal(r.status, 500);
  assert.equal(echo.received.filter((x) => x.url.includes('/anon/')).length, 0, 'nothing reached the upstream');
});

test('#20 multiple clients: the callback completes with the client that started the flow', async () => {
  const jar = new CookieJar();
  const steps = await navigate(jar, `${gw.proxyUrl}/multi/page?client_id=kong-basic`, { credentials: { login: 'alex', password: 'doe' } });
  const toIdp = new URL(steps[0].location!);
  assert.equal(toIdp.searchParams.get('client_id'), 'kong-basic');
  assert.ok(steps[0].setCookies.some((c) => c.startsWith('authorization=')), 'authorization cookie named authorization');
  const cb = steps.find((s) => s.url.includes('code='))!;
  const cbUrl = new URL(cb.url);
  // The callback URL carries no client selector: only the flow knows which client started it.
  assert.equal(cbUrl.searchParams.get('client_id'), null);
  secrets.add(cbUrl.searchParams.get('code')!);
  const last = steps.at(-1)!;
  assert.equal(last.status, 200, `${last.url}: ${last.body.slice(0, 200)}`);
  const token = String((JSON.parse(last.body) as Echo).headers.authorization).replace(/^Bearer /, '');
  secrets.add(token);
  // kong-basic gets opaque access tokens from the demo IdP; kong would have got a JWT
  assert.notEqual(token.split('.').length, 3, 'token issued to kong-basic');
  for (const v of jar.cookies.get(new URL(gw.proxyUrl).hostname)?.values() ?? []) secrets.add(v);
});

test('#24 Admin API: GET/DELETE /openid-connect/issuers[/{id or issuer}]; a purge makes the plugin rediscover', async () => {
  const admin = async (method: string, path: string) => {
    const r = await fetch(`${gw.adminUrl}${path}`, { method });
    const text = await r.text();
    return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : null };
  };
  const list = await admin('GET', '/openid-connect/issuers');
  assert.equal(list.status, 200);
  assert.equal(list.body!.next, null);
  const data = list.body!.data as Array<{ id: string; issuer: string; created_at: number; configuration: Record<string, unknown>; keys: Array<Record<string, unknown>> }>;
  assert.equal(data.length, 1, 'one record per issuer, however many plugin instances use it');
  const rec = data[0];
  assert.equal(rec.issuer, idp.issuer);
  assert.equal(rec.configuration.issuer, idp.issuer);
  assert.equal(rec.configuration.token_endpoint, `${idp.issuer}/token`);
  assert.deepEqual(rec.keys.map((k) => k.kid), idp.jwks.keys.map((k) => k.kid));
  assert.ok(rec.keys.every((k) => k.d === undefined), 'public keys only');
  assert.equal(typeof rec.created_at, 'number');
  assert.match(rec.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

  assert.deepEqual((await admin('GET', `/openid-connect/issuers/${rec.id}`)).body, rec);
  assert.deepEqual((await admin('GET', `/openid-connect/issuers/${encodeURIComponent(idp.issuer)}`)).body, rec);
  assert.deepEqual((await admin('GET', `/openid-connect/issuers/${idp.issuer}`)).body, rec, 'the issuer URL as is, slashes and all');
  assert.equal((await admin('GET', '/openid-connect/issuers/no-such-issuer')).status, 404);

  assert.equal((await admin('DELETE', `/openid-connect/issuers/${rec.id}`)).status, 204);
  assert.equal((await admin('GET', `/openid-connect/issuers/${rec.id}`)).status, 404);
  assert.equal((await admin('DELETE', `/openid-connect/issuers/${rec.id}`)).status, 404);

  // The plugin notices the purge (checked every 2 s) and rediscovers on a later request.
  await new Promise((r) => setTimeout(r, 2100));
  idp.resetCounts();
  const grant = () => send(new CookieJar(), `${gw.proxyUrl}/nosess/x`, { headers: { ...api, authorization: basicAlex } });
  assert.equal((await grant()).status, 200);
  await new Promise((r) => setTimeout(r, 100));
  const again = await grant();
  assert.equal(again.status, 200);
  secrets.add(String((JSON.parse(again.body) as Echo).headers.authorization).replace(/^Bearer /, ''));
  assert.ok((idp.counts().discovery ?? 0) >= 1, `rediscovered: ${JSON.stringify(idp.counts())}`);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal((await admin('GET', `/openid-connect/issuers/${rec.id}`)).status, 200, 'recorded again');

  assert.equal((await admin('DELETE', '/openid-connect/issuers')).status, 204);
  assert.deepEqual((await admin('GET', '/openid-connect/issuers')).body, { data: [], next: null });
});

test('logs never contain tokens, secrets, cookies or codes (after a sign-in and password grants)', () => {
  const text = gw.logText();
  assert.match(text, /"level":(10|20),/, 'debug lines were written');
  for (const s of secrets) {
    if (!s || s === 'undefined' || s.length < 8) continue;
    assert.equal(text.includes(s), false, `log contains a secret value (${s.slice(0, 6)}…)`);
  }
});
