/**
 * A person in a real browser (headless Chromium through playwright-core) opens a protected page
 * on the gateway, is sent to the demo IdP, signs in, comes back to the page first asked for, stays
 * signed in through the session cookie, and signs out. Skipped when Chromium is not installed
 * (CI installs it: .ci/run).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { startIdp, type DemoIdp } from '../demo/idp.ts';
import { startEcho, type EchoServer } from '../demo/echo.ts';

const executablePath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const skip = executablePath ? false : 'chromium is not installed';

let idp: DemoIdp;
let echo: EchoServer;
let gw: TestGateway;
let browser: Browser;

before(async () => {
  if (skip) return;
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
plugins:
  - name: openid-connect
    config:
      issuer: ${idp.issuer}
      client_id: [kong]
      client_secret: [kong-secret]
      client_auth: [client_secret_post]
      auth_methods: [authorization_code, session]
      session_secret: a-long-enough-session-secret-for-tests-0123456789
      login_action: redirect
      login_tokens: null
      preserve_query_args: true
      logout_uri_suffix: /logout
`,
  });
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
});

after(async () => {
  if (skip) return;
  await browser?.close();
  await gw?.close();
  await echo?.close();
  await idp?.close();
});

test('sign in with the authorization code flow, stay signed in, sign out', { skip, timeout: 60_000 }, async () => {
  // bypassCSP: the demo IdP's sign-in page sends `form-action 'self'`, and Chromium applies that to
  // the whole redirect chain after the form is posted, which ends at the gateway on another port.
  // Real IdPs allow the client's redirect URIs there; until the demo IdP does, the page CSP is off.
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  await page.goto(`${gw.proxyUrl}/app/page?x=1`);
  // the IdP's sign-in page
  assert.equal(new URL(page.url()).origin, idp.issuer);
  await page.fill('input[name=login]', 'alex');
  await page.fill('input[name=password]', 'doe');
  await Promise.all([page.waitForURL(`${gw.proxyUrl}/app/page?x=1`), page.click('button[type=submit]')]);
  // back on the page first asked for, proxied with the access token; no token in the address bar
  const seen = JSON.parse((await page.textContent('body')) ?? '{}') as { headers: Record<string, string> };
  assert.match(seen.headers.authorization ?? '', /^Bearer /);
  // (the IdP's own cookies are there: same host, another port — browsers do not separate ports)
  assert.doesNotMatch(seen.headers.cookie ?? '', /(^|; )(session|authorization\.[^=]*)=/, 'our cookies are not forwarded upstream');
  const cookies = await context.cookies(gw.proxyUrl);
  const session = cookies.find((c) => c.name === 'session');
  assert.ok(session);
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Lax');
  assert.equal(cookies.filter((c) => c.name.startsWith('authorization.')).length, 0);

  // later visits: the session cookie alone, no trip to the IdP
  idp.resetCounts();
  await page.goto(`${gw.proxyUrl}/app/other`);
  assert.equal(page.url(), `${gw.proxyUrl}/app/other`);
  assert.equal(idp.counts().authorization ?? 0, 0);

  // sign out (POST to the logout suffix): the session cookie is gone and the IdP is told
  // (a string, so this Node-typed file needs no DOM types)
  await page.evaluate(`(() => {
    const form = document.createElement('form');
    form.method = 'POST';
    form.action = ${JSON.stringify(`${gw.proxyUrl}/app/logout`)};
    document.body.append(form);
    form.submit();
  })()`);
  await page.waitForURL((u) => u.origin === idp.issuer);
  assert.equal((await context.cookies(gw.proxyUrl)).some((c) => c.name === 'session'), false);
  await context.close();
});
