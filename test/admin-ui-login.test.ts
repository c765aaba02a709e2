/**
 * The web admin UI when the Admin API asks for a token (PORTCULLIS_ADMIN_TOKEN): the login form
 * first, a wrong token refused with the form shown again, the right one sent as Kong-Admin-Token on
 * every call; a token the Admin API stops accepting brings the login back. A lost Admin API shows
 * a banner. Also: only the UI's origin gets CORS answers from the Admin API.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { launchChromium, recordProblems, startUiGateway, uiSkip, type UiGateway } from './helpers/admin-ui.ts';

const token = 'ui-test-admin-token-0123456789';

describe('admin UI: token login and a lost Admin API', { skip: uiSkip() }, () => {
  let browser: Browser;
  let ui: UiGateway;
  before(async () => {
    browser = await launchChromium();
    ui = await startUiGateway({ env: { PORTCULLIS_ADMIN_TOKEN: token } });
  });
  after(async () => {
    await browser?.close();
    await ui?.close();
  });

  test('the Admin API answers CORS for the UI origin only, preflights before the token check', async () => {
    const origin = `http://127.0.0.1:${ui.guiPort}`;
    const pre = await fetch(`${ui.gw.adminUrl}/services`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'kong-admin-token' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), origin);
    assert.match(pre.headers.get('access-control-allow-headers') ?? '', /kong-admin-token/i);
    const other = await fetch(`${ui.gw.adminUrl}/services`, { headers: { origin: 'http://evil.example', 'kong-admin-token': token } });
    assert.equal(other.headers.get('access-control-allow-origin'), null, 'another origin gets no CORS answer');
    // The refusal of a missing token is readable by the UI (so it can show the login form).
    const refused = await fetch(`${ui.gw.adminUrl}/`, { headers: { origin } });
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get('access-control-allow-origin'), origin);
  });

  test('login form, wrong token refused, right token used, a refused token shows the login again', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    // The 401s are what this test is about.
    const problems = recordProblems(page, (t) => /status of 401/.test(t));
    const sent: Array<string | undefined> = [];
    page.on('request', (req) => {
      if (req.url().startsWith(ui.gw.adminUrl) && req.method() !== 'OPTIONS') sent.push(req.headers()['kong-admin-token']);
    });

    await page.goto(ui.guiUrl);
    await page.getByTestId('login-form').waitFor();
    assert.equal(await page.getByTestId('api-down-banner').count(), 0, 'a 401 is not a lost Admin API');

    await page.getByTestId('login-token').fill('wrong-token');
    await page.getByTestId('login-submit').click();
    await page.getByTestId('login-error').waitFor();
    assert.match((await page.getByTestId('login-error').textContent()) ?? '', /refused/);
    assert.equal(await page.getByTestId('login-form').count(), 1, 'still the login form');

    await page.getByTestId('login-token').fill(token);
    await page.getByTestId('login-submit').click();
    await page.getByTestId('overview-counters').waitFor();
    await page.getByTestId('overview-node').getByText('Portcullis').first().waitFor();
    sent.length = 0;
    await page.getByTestId('sidebar-item-gateway-services').click();
    await page.getByRole('button', { name: /new gateway service/i }).first().waitFor();
    assert.ok(sent.length > 0 && sent.every((t) => t === token), `every Admin API call carries the token: ${JSON.stringify(sent)}`);

    // A token the Admin API no longer accepts (here: replaced in the session) → the login again.
    await page.evaluate(() => sessionStorage.setItem('portcullis-admin-token', 'revoked-token'));
    await page.reload();
    await page.getByTestId('login-form').waitFor();
    await page.getByTestId('login-error').waitFor();
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('a lost Admin API shows a banner', async () => {
    const own = await startUiGateway();
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    try {
      await page.goto(own.guiUrl);
      await page.getByTestId('overview-counters').waitFor();
      assert.equal(await page.getByTestId('api-down-banner').count(), 0);
      // The gateway stops: the page already loaded stays, its next Admin API call gets no answer.
      await own.gw.node.close();
      // The overview asks the Admin API for its counters every 5 s.
      await page.getByTestId('api-down-banner').waitFor({ timeout: 15_000 });
      assert.match((await page.getByTestId('api-down-banner').textContent()) ?? '', /cannot be reached/);
    } finally {
      await context.close();
      await own.close().catch(() => {});
    }
  });
});
