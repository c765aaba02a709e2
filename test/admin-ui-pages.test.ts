/**
 * Every page of the web admin UI, in Chromium, with one of every entity in the store: no console
 * error, no uncaught exception, no failed or 5xx request anywhere. Script-looking text stored in
 * tags, a plugin's message and a consumer's custom_id is shown as text, never run; a client
 * secret is masked on the plugin page; the issuer page shows the discovery document, the keys and
 * a test sign-in link for the route that uses the issuer.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startIdp, type DemoIdp } from '../demo/idp.ts';
import { selfSigned } from './helpers/certs.ts';
import { waitFor } from './helpers/process.ts';
import { everyPage, launchChromium, recordProblems, seedEverything, startUiGateway, uiSkip, xss, type Seeded, type UiGateway } from './helpers/admin-ui.ts';

describe('admin UI: every page', { skip: uiSkip() }, () => {
  let browser: Browser;
  let idp: DemoIdp;
  let echo: EchoServer;
  let ui: UiGateway;
  let seeded: Seeded;
  before(async () => {
    browser = await launchChromium();
    idp = await startIdp();
    echo = await startEcho();
    ui = await startUiGateway();
    seeded = await seedEverything(ui.gw.adminUrl, { issuer: idp.issuer, echoUrl: echo.url, proxyUrl: ui.gw.proxyUrl, cert: selfSigned('demo.example.test') });
  });
  after(async () => {
    await browser?.close();
    await ui?.close();
    await idp?.close();
    await echo?.close();
  });

  test('the GUI listener: content types, SPA fallback, kconfig.js, 404 for a missing asset', async () => {
    const index = await fetch(`${ui.guiUrl}services/some/deep/page`);
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type') ?? '', /^text\/html/);
    const html = await index.text();
    assert.match(html, /<base href="\/">/);
    const script = /src="\.?\/?(assets\/index-[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(script, 'index.html names its script');
    const js = await fetch(`${ui.guiUrl}${script}`, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.match(js.headers.get('cache-control') ?? '', /immutable/);
    const kconfig = await (await fetch(`${ui.guiUrl}kconfig.js`)).text();
    assert.match(kconfig, new RegExp(`"ADMIN_API_URL": "${ui.gw.adminUrl.replace(/\./g, '\\.')}"`));
    assert.match(kconfig, new RegExp(`"PROXY_URL": "${ui.gw.proxyUrl.replace(/\./g, '\\.')}"`));
    assert.equal((await fetch(`${ui.guiUrl}assets/missing-file.js`)).status, 404);
    assert.equal((await fetch(ui.guiUrl, { method: 'POST' })).status, 405);
  });

  test('walk: no console error or failed request on any page; stored markup rendered as text', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const problems = recordProblems(page);
    let xssText = 0;
    for (const path of everyPage(seeded)) {
      await page.goto(`${ui.guiUrl}${path}`);
      await page.waitForLoadState('networkidle');
      // The app rendered something (not a blank page).
      await page.locator('#app h1, #app .page-header').first().waitFor({ timeout: 10_000 });
      if ((await page.locator('body').innerText()).includes(xss)) xssText++;
      assert.equal(await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss), undefined, `script ran on ${path}`);
      assert.equal(await page.locator('img[src="x"]').count(), 0, `markup from the store became an element on ${path}`);
    }
    assert.ok(xssText >= 4, `the stored markup is visible as text on the list and detail pages (${xssText} pages)`);
    assert.deepEqual(problems, []);
    await page.close();
  });

  test('secrets masked: the openid-connect page does not show the client secret', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(`${ui.guiUrl}plugins/openid-connect/${seeded.oidcPlugin}`);
    await page.getByTestId('client_secret-property-value').waitFor();
    assert.equal(await page.getByTestId('client_secret-property-value').innerText(), '*****');
    assert.ok(!(await page.locator('body').innerText()).includes('kong-secret'));
    assert.ok((await page.locator('body').innerText()).includes(idp.issuer), 'the rest of the configuration is shown');
    await page.goto(`${ui.guiUrl}certificates/${seeded.certificate}`);
    await page.waitForLoadState('networkidle');
    assert.ok(!(await page.locator('body').innerText()).includes('PRIVATE KEY'), 'no private key on the certificate page');
    await page.close();
  });

  test('issuer page: discovery document, keys, cache statistics, and a test sign-in that runs the code flow', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    // The gateway discovers the issuer when a browser first comes through the route.
    const first = await context.newPage();
    await first.goto(`${ui.gw.proxyUrl}/anything`);
    assert.ok(first.url().startsWith(idp.issuer));
    await first.close();
    await waitFor(async () => ((await (await fetch(`${ui.gw.adminUrl}/openid-connect/issuers`)).json()) as { data: unknown[] }).data.length > 0, 15_000, 'the issuer to be discovered');
    const page = await context.newPage();
    const problems = recordProblems(page);
    await page.goto(`${ui.guiUrl}issuers`);
    await page.getByTestId('issuer-list').getByRole('link', { name: idp.issuer }).click();
    await page.getByTestId('issuer-discovery').waitFor();
    assert.match(await page.getByTestId('issuer-discovery').innerText(), /"authorization_endpoint"/);

    // "Test sign-in" opens the route in a new tab, which goes to the IdP and back.
    const link = page.getByTestId('test-sign-in').first();
    assert.equal(await link.getAttribute('target'), '_blank');
    const [tab] = await Promise.all([context.waitForEvent('page'), link.click()]);
    await tab.waitForURL(`${idp.issuer}/**`);
    await tab.fill('input[name="login"]', 'alex');
    await tab.fill('input[name="password"]', 'doe');
    await Promise.all([tab.waitForURL(`${ui.gw.proxyUrl}/**`), tab.click('[type="submit"]')]);
    const echoed = JSON.parse((await tab.textContent('body')) ?? '{}') as { headers: Record<string, string> };
    assert.match(echoed.headers.authorization ?? '', /^Bearer /);

    // A bearer call with the access token makes the gateway fetch the issuer's keys.
    assert.equal((await fetch(`${ui.gw.proxyUrl}/anything`, { headers: { authorization: echoed.headers.authorization } })).status, 200);
    await waitFor(async () => ((await (await fetch(`${ui.gw.adminUrl}/openid-connect/issuers`)).json()) as { data: Array<{ keys: unknown[] }> }).data.some((r) => r.keys.length > 0), 15_000, 'the keys to be recorded');
    await page.reload();
    await page.getByTestId('issuer-keys').locator('tbody tr').first().waitFor();
    assert.match(await page.getByTestId('issuer-keys').innerText(), /RS256|ES256|PS256|EdDSA/);
    assert.match(await page.getByTestId('issuer-keys').innerText(), new RegExp(String(new Date().getFullYear())), 'with the time the keys were fetched');
    assert.match(await page.getByTestId('issuer-cache-stats').innerText(), /portcullis_oidc_/);
    assert.deepEqual(problems, []);
    await context.close();
  });
});
