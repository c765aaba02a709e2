/**
 * Writes docs/screenshots/*.png: the main pages of the web admin UI over the demo entities (a
 * gateway with the embedded store, the demo IdP and echo upstream, everything on port 0), taken by
 * Debian's Chromium. Run after a change to the UI: `node scripts/admin-ui-screenshots.ts`.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startEcho } from '../demo/echo.ts';
import { startIdp } from '../demo/idp.ts';
import { selfSigned } from '../test/helpers/certs.ts';
import { launchChromium, seedEverything, startUiGateway } from '../test/helpers/admin-ui.ts';

const out = fileURLToPath(new URL('../docs/screenshots/', import.meta.url));
mkdirSync(out, { recursive: true });
const idp = await startIdp();
const echo = await startEcho();
const ui = await startUiGateway();
const browser = await launchChromium();
try {
  const s = await seedEverything(ui.gw.adminUrl, { issuer: idp.issuer, echoUrl: echo.url, proxyUrl: ui.gw.proxyUrl, cert: selfSigned('demo.example.test') });
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  // Some traffic for the overview's counters, and a discovered issuer for its page.
  for (let i = 0; i < 5; i++) await fetch(`${ui.gw.proxyUrl}/public`);
  await page.goto(`${ui.gw.proxyUrl}/anything`);
  // A password-grant call verifies a token: the issuer's keys get fetched (the issuer page lists them).
  await fetch(`${ui.gw.proxyUrl}/anything`, { headers: { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}` } });
  const shots: Array<[string, string, (() => Promise<void>)?]> = [
    ['overview', ''],
    ['services', 'services'],
    ['service-routes', `services/${s.service}/routes`],
    ['route-plugins', `routes/${s.route}/plugins`],
    ['plugin-select', `plugins/select?routeId=${s.route}`],
    ['openid-connect-form', `plugins/openid-connect/${s.oidcPlugin}/edit`],
    ['openid-connect-detail', `plugins/openid-connect/${s.oidcPlugin}`],
    ['plugins', 'plugins'],
    ['consumer-credentials', `consumers/${s.consumer}/credentials`],
    ['upstream-targets', `upstreams/${s.upstream}/targets`],
    ['certificates', 'certificates'],
    ['issuers', 'issuers'],
    ['issuer', 'issuers', async () => {
      await page.getByTestId('issuer-list').getByRole('link').first().click();
      await page.getByTestId('issuer-discovery').waitFor();
    }],
    ['validation-error', 'plugins/openid-connect/create', async () => {
      await page.locator('#config-issuer').fill('not a url');
      await page.getByTestId('plugin-create-form-submit').click();
      await page.getByTestId('field-error-config.issuer').waitFor();
      await page.locator('#config-issuer').scrollIntoViewIfNeeded();
    }],
  ];
  for (const [name, path, then] of shots) {
    await page.goto(`${ui.guiUrl}${path}`);
    await page.waitForLoadState('networkidle');
    if (then) await then();
    await page.waitForTimeout(300);
    await page.screenshot({ path: `${out}${name}.png` });
    console.log(`docs/screenshots/${name}.png`);
  }
  // The login form, from a gateway that asks for an admin token.
  const locked = await startUiGateway({ env: { PORTCULLIS_ADMIN_TOKEN: 'screenshot-token' } });
  try {
    await page.goto(locked.guiUrl);
    await page.getByTestId('login-form').waitFor();
    await page.screenshot({ path: `${out}login.png` });
    console.log('docs/screenshots/login.png');
  } finally {
    await locked.close();
  }
} finally {
  await browser.close();
  await ui.close();
  await idp.close();
  await echo.close();
}
