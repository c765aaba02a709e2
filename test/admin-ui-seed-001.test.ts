/**
 * The web admin UI, driven by a real Chromium, does what Kong's use case 001 does "Using Kong
 * Manager": create a gateway service and a route, add the openid-connect plugin to the route with
 * config.issuer, client_id, client_secret, redirect_uri and scopes, save — then, in the same
 * browser, sign in through that route as alex/doe at the demo IdP and reach the echo upstream.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startIdp, type DemoIdp } from '../demo/idp.ts';
import { waitFor } from './helpers/process.ts';
import { launchChromium, recordProblems, startUiGateway, uiSkip, type UiGateway } from './helpers/admin-ui.ts';

describe('admin UI: use case 001 through the UI', { skip: uiSkip() }, () => {
  let browser: Browser;
  let idp: DemoIdp;
  let echo: EchoServer;
  let ui: UiGateway;
  before(async () => {
    browser = await launchChromium();
    idp = await startIdp();
    echo = await startEcho();
    ui = await startUiGateway();
  });
  after(async () => {
    await browser?.close();
    await ui?.close();
    await idp?.close();
    await echo?.close();
  });

  test('service, route and openid-connect created in the UI; alex signs in through the route', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    const problems = recordProblems(page);
    const admin = ui.gw.adminUrl;
    const redirectUri = `${ui.gw.proxyUrl}/oidc`;

    // Gateway Services → New gateway service
    await page.goto(`${ui.guiUrl}services`);
    await page.getByRole('button', { name: /new gateway service/i }).first().click();
    await page.getByTestId('gateway-service-url-input').fill(`${echo.url}/anything`);
    await page.getByTestId('gateway-service-name-input').fill('example-service');
    await page.getByTestId('service-create-form-submit').click();
    await page.waitForURL(/\/services\/[0-9a-f-]{36}$/);
    const serviceId = page.url().split('/').pop()!;
    const services = await (await fetch(`${admin}/services`)).json() as { data: Array<{ id: string; name: string; host: string; path: string }> };
    assert.equal(services.data.length, 1);
    assert.equal(services.data[0].id, serviceId);
    assert.equal(services.data[0].name, 'example-service');
    assert.equal(services.data[0].path, '/anything');

    // The service's Routes tab → New route
    await page.getByRole('tab', { name: 'Routes' }).click();
    await page.waitForURL(/\/routes$/);
    await page.getByRole('button', { name: /new route/i }).first().click();
    await page.getByTestId('route-form-name').fill('example-route');
    // The form's basic mode makes HTTPS-only routes; the use case's route takes plain HTTP too.
    await page.getByTestId('route-form-config-type-advanced-label').click();
    await page.getByTestId('route-form-protocols').click();
    await page.getByTestId('select-item-http,https').click();
    await page.getByTestId('route-form-paths-input-1').fill('/oidc');
    await page.getByTestId('route-create-form-submit').click();
    await page.waitForURL(/\/routes\/[0-9a-f-]{36}$/);
    const routeId = page.url().split('/').pop()!;
    const route = await (await fetch(`${admin}/routes/${routeId}`)).json() as { name: string; paths: string[]; protocols: string[]; service: { id: string } };
    assert.equal(route.name, 'example-route');
    assert.deepEqual(route.paths, ['/oidc']);
    assert.deepEqual(route.protocols, ['http', 'https']);
    assert.equal(route.service.id, serviceId);

    // The route's Plugins tab → New plugin → OpenID Connect
    await page.getByRole('tab', { name: 'Plugins' }).click();
    await page.waitForURL(/\/plugins$/);
    await page.getByRole('button', { name: /new plugin/i }).first().click();
    await page.waitForURL(/\/plugins\/select/);
    await page.getByTestId('openid-connect-card').click();
    await page.waitForURL(/\/plugins\/openid-connect\/create/);
    await page.locator('#config-issuer').fill(idp.issuer);
    await page.getByTestId('add-config-client_id').click();
    await page.locator('#config-client_id input').first().fill('kong');
    await page.getByTestId('add-config-client_secret').click();
    await page.locator('#config-client_secret input').first().fill('kong-secret');
    await page.getByRole('tab', { name: 'Advanced' }).click();
    await page.getByTestId('add-config-redirect_uri').click();
    await page.locator('#config-redirect_uri input').first().fill(redirectUri);
    // scopes has a default (["openid"]): replace it with the use case's list.
    const scopeInputs = page.locator('#config-scopes input');
    if ((await scopeInputs.count()) === 0) await page.getByTestId('add-config-scopes').click();
    await scopeInputs.first().fill('openid');
    await page.getByTestId('add-config-scopes').click();
    await scopeInputs.nth(1).fill('profile');
    await page.getByTestId('plugin-create-form-submit').click();
    await page.waitForURL(new RegExp(`/routes/${routeId}/plugins$`));

    const plugins = await (await fetch(`${admin}/routes/${routeId}/plugins`)).json() as { data: Array<{ name: string; route: { id: string }; config: Record<string, unknown> }> };
    assert.equal(plugins.data.length, 1);
    const oidc = plugins.data[0];
    assert.equal(oidc.name, 'openid-connect');
    assert.equal(oidc.route.id, routeId);
    assert.equal(oidc.config.issuer, idp.issuer);
    assert.deepEqual(oidc.config.client_id, ['kong']);
    assert.deepEqual(oidc.config.client_secret, ['kong-secret']);
    assert.deepEqual(oidc.config.redirect_uri, [redirectUri]);
    assert.deepEqual(oidc.config.scopes, ['openid', 'profile']);

    // Same browser: the route now asks for a sign-in at the IdP, and alex reaches the upstream.
    // The store change reaches the proxy asynchronously: the route asks for a sign-in once it has.
    const app = await context.newPage();
    await waitFor(async () => {
      await app.goto(`${ui.gw.proxyUrl}/oidc`);
      return app.url().startsWith(idp.issuer);
    }, 15_000, `the route to send the browser to the IdP (${app.url()})`);
    await app.fill('input[name="login"]', 'alex');
    await app.fill('input[name="password"]', 'doe');
    await Promise.all([app.waitForURL(`${ui.gw.proxyUrl}/**`), app.click('[type="submit"]')]);
    const echoed = JSON.parse((await app.textContent('body')) ?? '{}') as { path: string; headers: Record<string, string> };
    assert.equal(echoed.path, '/anything', 'the echo upstream answered through the route');
    assert.match(echoed.headers.authorization ?? '', /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/, 'with the access token');

    assert.deepEqual(problems, [], 'no console error or failed request in the UI');
    await context.close();
  });
});
