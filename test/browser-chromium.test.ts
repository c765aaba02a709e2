/**
 * A real Chromium (Debian's `chromium`, driven by playwright-core) signs in through the gateway:
 * protected route → demo IdP login page → back to the page first asked for with the upstream
 * seeing the access token → reload served from the session (no IdP call) → logout ends the
 * session at the gateway and at the IdP. Run with cookie storage, Redis storage, and two workers.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startIdp, type DemoIdp } from '../demo/idp.ts';
import { startGateway } from './helpers/gateway.ts';
import { startGatewayProcess } from './helpers/process.ts';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

function deck(issuer: string, echoUrl: string, extra: string): string {
  const publicUrl = `${echoUrl}/signed-out`;
  return `_format_version: "3.0"
services:
  - name: example-service
    url: ${echoUrl}/anything
    routes:
      - name: example-route
        paths: [/anything]
  - name: public-service
    url: ${echoUrl}/public
    routes:
      - name: public-route
        paths: [/public]
plugins:
  - name: openid-connect
    service: example-service
    config:
      issuer: ${issuer}
      client_id: [kong]
      client_secret: [kong-secret]
      client_auth: [client_secret_post]
      auth_methods: [authorization_code, session]
      scopes: [openid, profile, email]
      session_secret: chromium-test-session-secret-0123456789
      logout_uri_suffix: /logout
      logout_methods: [GET, POST]
      logout_redirect_uri: [${publicUrl}]
      login_action: redirect
      login_tokens: null
      preserve_query_args: true
${extra}`;
}

interface Target {
  proxyUrl: string;
  close(): Promise<void>;
}

async function signInScenario(browser: Browser, idp: DemoIdp, proxyUrl: string, echoUrl: string, contextOptions: BrowserContextOptions = {}, onSignedIn?: (page: Page) => Promise<void>): Promise<void> {
  const context = await browser.newContext(contextOptions);
  try {
    const page = await context.newPage();
    await page.goto(`${proxyUrl}/anything/dashboard?tab=1`);
    // The IdP's login page.
    assert.ok(page.url().startsWith(idp.issuer), `on the IdP: ${page.url()}`);
    await page.fill('input[name="login"]', 'alex');
    await page.fill('input[name="password"]', 'doe');
    await Promise.all([page.waitForURL(`${proxyUrl}/**`), page.click('[type="submit"]')]);
    // Back on the page first asked for, served by the upstream with the access token.
    const url = new URL(page.url());
    assert.equal(url.pathname, '/anything/dashboard');
    assert.equal(url.searchParams.get('tab'), '1', 'login_action redirect: back to the URL first asked for');
    assert.equal(url.searchParams.get('code'), null, 'no code left in the address bar');
    assert.equal(url.searchParams.get('state'), null);
    const echoed = JSON.parse((await page.textContent('body')) ?? '{}') as { path: string; args: Record<string, string>; headers: Record<string, string> };
    assert.equal(echoed.path, '/anything/dashboard');
    assert.equal(echoed.args.tab, '1', 'preserve_query_args: the upstream gets the original query');
    assert.equal(echoed.args.code, undefined);
    assert.match(echoed.headers.authorization ?? '', /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    // (The IdP's own cookies share the host 127.0.0.1 with the gateway, so other cookies may be present.)
    assert.doesNotMatch(echoed.headers.cookie ?? '', /(^|;\s*)(session|authorization)=/, 'session cookies not sent upstream');
    await onSignedIn?.(page);

    // A reload is served from the session: no call to the IdP at all.
    idp.resetCounts();
    await page.reload();
    const again = JSON.parse((await page.textContent('body')) ?? '{}') as { path: string; headers: Record<string, string> };
    assert.equal(again.path, '/anything/dashboard');
    const calls = Object.values(idp.counts()).reduce((a, b) => a + b, 0);
    assert.equal(calls, 0, `IdP calls on reload: ${JSON.stringify(idp.counts())}`);

    // Logout: gateway session gone, IdP session gone (RP-initiated logout), then the configured
    // logout_redirect_uri.
    await page.goto(`${proxyUrl}/anything/logout`);
    await page.waitForURL(`${echoUrl}/signed-out**`, { timeout: 15_000 });
    const cookies = await context.cookies(proxyUrl);
    assert.equal(cookies.find((c) => c.name === 'session'), undefined, 'session cookie removed');
    await page.goto(`${proxyUrl}/anything/dashboard`);
    assert.ok(page.url().startsWith(idp.issuer), 'signed out at the gateway: sent to the IdP again');
    assert.ok((await page.locator('input[name="password"]').count()) > 0, 'signed out at the IdP: the login form is shown again');
  } finally {
    await context.close();
  }
}

// Under CI the browser is part of the machine (.ci/run installs it): missing, the tests fail.
describe('sign-in in a real browser', { skip: existsSync(chromiumPath) || process.env.CI === 'true' ? false : `no Chromium at ${chromiumPath}` }, () => {
  let browser: Browser;
  let idp: DemoIdp;
  let echo: EchoServer;
  before(async () => {
    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    idp = await startIdp();
    echo = await startEcho();
  });
  after(async () => {
    await browser?.close();
    await idp?.close();
    await echo?.close();
  });

  async function inProcess(extra: string): Promise<Target> {
    const gw = await startGateway({ config: deck(idp.issuer, echo.url, extra) });
    return { proxyUrl: gw.proxyUrl, close: () => gw.close() };
  }

  test('cookie session storage', async () => {
    const gw = await inProcess('');
    try {
      await signInScenario(browser, idp, gw.proxyUrl, echo.url);
    } finally {
      await gw.close();
    }
  });

  test('over HTTP/2: a TLS listener with http2 (ALPN h2)', async () => {
    const gw = await startGateway({ config: deck(idp.issuer, echo.url, ''), proxyListen: '127.0.0.1:0 ssl http2' });
    try {
      const proxyUrl = `https://localhost:${gw.node.proxyPorts()[0]}`;
      let protocol = '';
      await signInScenario(browser, idp, proxyUrl, echo.url, { ignoreHTTPSErrors: true }, async (page) => {
        // Runs in the page: the Navigation Timing entry's negotiated protocol.
        protocol = await page.evaluate('performance.getEntriesByType("navigation")[0].nextHopProtocol') as string;
      });
      assert.equal(protocol, 'h2');
    } finally {
      await gw.close();
    }
  });

  test('Redis session storage', async () => {
    // Keys unique to this test: other test files share the Redis server and run at the same time.
    const prefix = `portcullis-test-${randomBytes(6).toString('hex')}`;
    const gw = await inProcess(`      session_storage: redis\n      redis:\n        host: 127.0.0.1\n        port: 6379\n        prefix: ${prefix}\n`);
    const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });
    try {
      await signInScenario(browser, idp, gw.proxyUrl, echo.url);
      await redis.connect();
      assert.ok((await redis.keys(`${prefix}:oidc:*`)).length > 0, 'the gateway keeps its keys under the configured prefix');
    } finally {
      await gw.close();
      const keys = redis.status === 'ready' ? await redis.keys(`${prefix}:*`) : [];
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
  });

  test('two worker processes', async () => {
    const gp = await startGatewayProcess({ config: deck(idp.issuer, echo.url, ''), workers: 2 });
    try {
      await signInScenario(browser, idp, gp.proxyUrl, echo.url);
    } finally {
      await gp.stop();
    }
  });

  test('Kong defaults (login_action upstream): the landing page keeps code and state, and a reload uses the session', async () => {
    const gw = await startGateway({
      config: `_format_version: "3.0"
services:
  - name: example-service
    url: ${echo.url}/anything
    routes:
      - name: example-route
        paths: [/anything]
plugins:
  - name: openid-connect
    service: example-service
    config:
      issuer: ${idp.issuer}
      client_id: [kong]
      client_secret: [kong-secret]
      client_auth: [client_secret_post]
      session_secret: chromium-test-session-secret-0123456789
`,
    });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${gw.proxyUrl}/anything/home`);
      await page.fill('input[name="login"]', 'alex');
      await page.fill('input[name="password"]', 'doe');
      await Promise.all([page.waitForURL(`${gw.proxyUrl}/**`), page.click('[type="submit"]')]);
      assert.ok(new URL(page.url()).searchParams.has('code'), `the callback URL stays in the address bar: ${page.url()}`);
      idp.resetCounts();
      const reload = await page.reload();
      assert.equal(reload?.status(), 200, (await page.textContent('body')) ?? '');
      const echoed = JSON.parse((await page.textContent('body')) ?? '{}') as { path: string; headers: Record<string, string> };
      assert.equal(echoed.path, '/anything/home');
      assert.match(echoed.headers.authorization ?? '', /^Bearer /);
      assert.deepEqual(idp.counts(), {}, 'no IdP call on reload');
    } finally {
      await context.close();
      await gw.close();
    }
  });

  test('back-channel logout from the IdP ends the live session (beyond Kong)', async () => {
    // The IdP must know the gateway's URL and the gateway the IdP's issuer: start the gateway
    // first with the issuer of the shared IdP, then a second IdP that registers the gateway's
    // back-channel endpoint, and point the gateway at it.
    const gw = await startGateway({ config: deck(idp.issuer, echo.url, '') });
    const bclIdp = await startIdp({ backchannelLogoutUris: { kong: `${gw.proxyUrl}/anything/backchannel-logout` } });
    try {
      assert.equal(await gw.reload(deck(bclIdp.issuer, echo.url, '      backchannel_logout_uri_suffix: /backchannel-logout\n')), true);
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${gw.proxyUrl}/anything/app`);
      await page.fill('input[name="login"]', 'alex');
      await page.fill('input[name="password"]', 'doe');
      await Promise.all([page.waitForURL(`${gw.proxyUrl}/**`), page.click('[type="submit"]')]);
      await page.reload();
      assert.equal(new URL(page.url()).pathname, '/anything/app', 'signed in');
      await bclIdp.logoutUser('alex');
      // The IdP stops waiting for the delivery after its own 2.5 s timeout while the gateway may
      // still be verifying the logout token on a loaded machine: allow the marker a moment.
      const deadline = Date.now() + 5_000;
      await page.goto(`${gw.proxyUrl}/anything/app`);
      while (!page.url().startsWith(bclIdp.issuer) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        await page.goto(`${gw.proxyUrl}/anything/app`);
      }
      assert.ok(page.url().startsWith(bclIdp.issuer), `session ended by the logout token: ${page.url()}`);
      await context.close();
    } finally {
      await gw.close();
      await bclIdp.close();
    }
  });
});
