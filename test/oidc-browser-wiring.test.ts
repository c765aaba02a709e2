/**
 * openid-connect through the real gateway with the browser flows wired into the step table:
 * a password grant starts a session, the session cookie alone then authenticates without any IdP
 * call, and a navigation without credentials is sent to the IdP's authorization endpoint.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startGateway } from './helpers/gateway.ts';
import type { TestGateway } from './helpers/gateway.ts';
import { startIdp } from '../demo/idp.ts';
import type { DemoIdp } from '../demo/idp.ts';
import { startEcho } from '../demo/echo.ts';
import { CookieJar, navigate as signIn, send } from './helpers/fake-ctx.ts';
import type { EchoServer } from '../demo/echo.ts';

let idp: DemoIdp;
let echo: EchoServer;
let gw: TestGateway;

before(async () => {
  idp = await startIdp();
  echo = await startEcho();
  gw = await startGateway({
    config: `_format_version: "3.0"
services:
  - name: s
    url: ${echo.url}/anything
    routes:
      - name: r
        paths: [/app]
      - name: forbidden
        paths: [/forbidden]
        plugins:
          - name: openid-connect
            config:
              issuer: ${idp.issuer}
              client_id: [kong]
              client_secret: [kong-secret]
              client_auth: [client_secret_post]
              auth_methods: [session, authorization_code]
              session_secret: a-long-enough-session-secret-for-tests-0123456789
              scopes: [openid, groups]
              groups_claim: [groups]
              groups_required: [nobody]
plugins:
  - name: openid-connect
    config:
      issuer: ${idp.issuer}
      client_id: [kong]
      client_secret: [kong-secret]
      client_auth: [client_secret_post]
      auth_methods: [session, password, authorization_code]
      session_secret: a-long-enough-session-secret-for-tests-0123456789
`,
  });
});
after(async () => {
  await gw.close();
  await echo.close();
  await idp.close();
});

type Echo = { headers: Record<string, string> };

test('password grant → session cookie → the cookie alone authenticates, no IdP call', async () => {
  const r1 = await fetch(`${gw.proxyUrl}/app`, { headers: { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}`, accept: 'application/json' } });
  assert.equal(r1.status, 200, await r1.clone().text());
  const setCookie = r1.headers.getSetCookie();
  const session = setCookie.find((c) => c.startsWith('session='));
  assert.ok(session, `no session cookie in ${JSON.stringify(setCookie)}`);
  assert.match(session, /HttpOnly/i);
  const token = ((await r1.json()) as Echo).headers.authorization;
  idp.resetCounts();
  const cookie = session.split(';')[0];
  const r2 = await fetch(`${gw.proxyUrl}/app`, { headers: { cookie, accept: 'application/json' } });
  assert.equal(r2.status, 200, await r2.clone().text());
  const e2 = (await r2.json()) as Echo;
  assert.equal(e2.headers.authorization, token);
  assert.equal(e2.headers.cookie, undefined, 'the session cookie is not forwarded upstream');
  assert.deepEqual(idp.counts(), {});
});

/** A browser-like GET (fetch() always says `Sec-Fetch-Mode: cors`, so use node:http). */
function navigate(url: string): Promise<{ status: number; location: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location }));
    });
    req.on('error', reject);
  });
}

test('a navigation without credentials is redirected to the authorization endpoint', async () => {
  const r = await navigate(`${gw.proxyUrl}/app?x=1`);
  assert.equal(r.status, 302);
  const location = new URL(r.location ?? '');
  assert.equal(location.origin, idp.issuer);
  assert.equal(location.searchParams.get('client_id'), 'kong');
  assert.equal(location.searchParams.get('response_type'), 'code');
  assert.ok(location.searchParams.get('state'));
});

test('a script request without credentials gets 401, not a redirect', async () => {
  const r = await fetch(`${gw.proxyUrl}/app`, { headers: { accept: 'application/json' }, redirect: 'manual' });
  assert.equal(r.status, 401);
  await r.body?.cancel();
});

test('a reload of the page a sign-in landed on (code and state still in the URL) is served by the session', async () => {
  // Default login_action (upstream): the browser stays on the callback URL. Reloading it or
  // opening it again must not fail the spent code and state: the session answers, no IdP call.
  const jar = new CookieJar();
  const steps = await signIn(jar, `${gw.proxyUrl}/app/page?x=1`, { credentials: { login: 'alex', password: 'doe' } });
  const landed = steps.at(-1)!;
  assert.equal(landed.status, 200, landed.body);
  assert.ok(new URL(landed.url).searchParams.has('code'), `landed on the callback URL: ${landed.url}`);
  idp.resetCounts();
  const reload = await send(jar, landed.url, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });
  assert.equal(reload.status, 200, reload.body);
  assert.match((JSON.parse(reload.body) as Echo).headers.authorization ?? '', /^Bearer /);
  assert.deepEqual(idp.counts(), {});
  // Without a session the same stale callback is refused (401), never a new sign-in loop.
  const fresh = await send(new CookieJar(), landed.url, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });
  assert.equal(fresh.status, 401);
});

test('a sign-in refused with 403 at the callback leaves no session behind (forbidden_destroy_session)', async () => {
  const jar = new CookieJar();
  const steps = await signIn(jar, `${gw.proxyUrl}/forbidden/page`, { credentials: { login: 'alex', password: 'doe' } });
  const landed = steps.at(-1)!;
  assert.equal(landed.status, 403, landed.body);
  // The session made at the callback is destroyed: the last Set-Cookie for it expires it ...
  const sessionCookies = landed.setCookies.filter((c) => c.startsWith('session='));
  assert.ok(sessionCookies.length > 0 && /Max-Age=0/i.test(sessionCookies.at(-1)!), JSON.stringify(sessionCookies));
  assert.equal(jar.get(gw.proxyUrl, 'session'), undefined);
  // ... and a copy of the cookie issued before it no longer opens a session (401, not 403).
  const issued = sessionCookies.find((c) => !/Max-Age=0/i.test(c));
  if (issued) {
    const r = await fetch(`${gw.proxyUrl}/forbidden/page`, { headers: { cookie: issued.split(';')[0], accept: 'application/json' } });
    assert.equal(r.status, 401, await r.text());
  }
});
