/**
 * The web admin UI in Chromium against a real gateway: a consumer and its key-auth credential
 * created in the UI open a key-auth route through the proxy; the Admin API's field errors show
 * beside the plugin form's field and what was typed stays; a delete asks for confirmation first
 * (typing the name) and only then removes the entity.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { waitFor } from './helpers/process.ts';
import { launchChromium, recordProblems, startUiGateway, uiSkip, type UiGateway } from './helpers/admin-ui.ts';

async function post(url: string, body: unknown): Promise<Record<string, any>> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.ok(res.status < 300, `${url}: ${res.status} ${await res.clone().text()}`);
  return res.json() as Promise<Record<string, any>>;
}

describe('admin UI: entities', { skip: uiSkip() }, () => {
  let browser: Browser;
  let echo: EchoServer;
  let ui: UiGateway;
  before(async () => {
    browser = await launchChromium();
    echo = await startEcho();
    ui = await startUiGateway();
  });
  after(async () => {
    await browser?.close();
    await ui?.close();
    await echo?.close();
  });

  async function newPage(): Promise<{ page: Page; problems: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    // The refused write of the validation test is expected; everything else must be clean.
    const problems = recordProblems(page, (t) => /status of 400/.test(t));
    return { page, problems };
  }

  test('a consumer and its key-auth credential, made in the UI, open a key-auth route', async () => {
    const admin = ui.gw.adminUrl;
    await post(`${admin}/services`, { name: 'keyed', url: `${echo.url}/anything` });
    await post(`${admin}/services/keyed/routes`, { name: 'keyed-route', paths: ['/keyed'] });
    await post(`${admin}/routes/keyed-route/plugins`, { name: 'key-auth' });
    const { page, problems } = await newPage();

    await page.goto(`${ui.guiUrl}consumers`);
    await page.getByRole('button', { name: /new consumer/i }).first().click();
    await page.getByTestId('consumer-form-username').fill('alice');
    await page.getByTestId('consumer-create-form-submit').click();
    await page.waitForURL(/\/consumers\/[0-9a-f-]{36}$/);
    const consumerId = page.url().split('/').pop()!;

    await page.getByRole('tab', { name: 'Credentials' }).click();
    await page.getByTestId('credentials-key-auth').getByRole('button', { name: /new key auth credential/i }).click();
    await page.waitForURL(/\/credentials\/key-auth\/create$/);
    await page.locator('#key').fill('alice-key-0123456789');
    await page.getByTestId('plugin-create-form-submit').click();
    await page.waitForURL(/\/credentials$/);
    // The list shows the new credential.
    await page.getByTestId('credentials-key-auth').locator('tbody tr').first().waitFor();

    const creds = await (await fetch(`${admin}/consumers/${consumerId}/key-auth`)).json() as { data: Array<{ key: string }> };
    assert.deepEqual(creds.data.map((c) => c.key), ['alice-key-0123456789']);
    await waitFor(async () => (await fetch(`${ui.gw.proxyUrl}/keyed`, { headers: { apikey: 'alice-key-0123456789' } })).status === 200, 15_000, 'the key to open the route');
    const echoed = await (await fetch(`${ui.gw.proxyUrl}/keyed`, { headers: { apikey: 'alice-key-0123456789' } })).json() as { headers: Record<string, string> };
    assert.equal(echoed.headers['x-consumer-username'], 'alice');
    assert.equal((await fetch(`${ui.gw.proxyUrl}/keyed`, { headers: { apikey: 'wrong' } })).status, 401);
    assert.deepEqual(problems, []);
    await page.close();
  });

  test("the Admin API's field error is shown beside the field, and what was typed stays", async () => {
    const { page, problems } = await newPage();
    await page.goto(`${ui.guiUrl}plugins/openid-connect/create`);
    await page.locator('#config-issuer').fill('not a url');
    await page.getByTestId('plugin-create-form-submit').click();
    const note = page.getByTestId('field-error-config.issuer');
    await note.waitFor();
    assert.match((await note.textContent()) ?? '', /url|URL/);
    // Placed right after the issuer input's group, and the input keeps its value.
    const placed = await page.evaluate(() => {
      // (runs in the page)
      interface El { previousElementSibling: El | null; contains(e: El | null): boolean }
      const doc = (globalThis as unknown as { document: { querySelector(s: string): El | null } }).document;
      const before = doc.querySelector('[data-testid="field-error-config.issuer"]')?.previousElementSibling ?? null;
      return before !== null && before.contains(doc.querySelector('#config-issuer'));
    });
    assert.ok(placed, 'the error sits beside the issuer field');
    assert.equal(await page.locator('#config-issuer').inputValue(), 'not a url');
    assert.match(page.url(), /\/plugins\/openid-connect\/create$/, 'still on the form');
    const plugins = await (await fetch(`${ui.gw.adminUrl}/plugins`)).json() as { data: Array<{ name: string }> };
    assert.equal(plugins.data.filter((p) => p.name === 'openid-connect').length, 0, 'nothing saved');
    assert.deepEqual(problems, []);
    await page.close();
  });

  test('delete asks for confirmation: cancel keeps the service, confirming with its name removes it', async () => {
    const admin = ui.gw.adminUrl;
    await post(`${admin}/services`, { name: 'doomed', url: `${echo.url}/anything` });
    const { page, problems } = await newPage();
    await page.goto(`${ui.guiUrl}services`);
    const row = page.locator('tbody tr', { hasText: 'doomed' });
    await row.getByTestId('row-actions-dropdown-trigger').click();
    await page.locator('[data-testid="action-entity-delete"]:visible').click();
    // The modal (Kong's EntityDeleteModal) is the page's only one.
    const modal = page;
    await modal.getByTestId('confirmation-input').waitFor();
    await modal.getByTestId('modal-cancel-button').click();
    await modal.getByTestId('confirmation-input').waitFor({ state: 'hidden' });
    assert.equal((await fetch(`${admin}/services/doomed`)).status, 200, 'cancel deletes nothing');

    await row.getByTestId('row-actions-dropdown-trigger').click();
    await page.locator('[data-testid="action-entity-delete"]:visible').click();
    await modal.getByTestId('confirmation-input').waitFor();
    assert.ok(await modal.getByTestId('modal-action-button').isDisabled(), 'confirm is disabled until the name is typed');
    await modal.getByTestId('confirmation-input').fill('doomed');
    await modal.getByTestId('modal-action-button').click();
    await row.waitFor({ state: 'detached' });
    assert.equal((await fetch(`${admin}/services/doomed`)).status, 404);
    assert.deepEqual(problems, []);
    await page.close();
  });
});
