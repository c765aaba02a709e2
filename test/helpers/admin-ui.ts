/**
 * For the web admin UI tests: a gateway with the embedded store and the admin GUI listener on
 * port 0, a headless Debian Chromium, and a recorder of what a page did wrong (console errors,
 * uncaught exceptions, failed or 5xx requests).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startGateway, type TestGateway } from './gateway.ts';
import { guiBuilt } from '../../src/admin-gui/server.ts';

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Why the UI tests cannot run here, or false. Under CI a missing browser or build fails instead. */
export function uiSkip(): string | false {
  if (process.env.CI === 'true') return false;
  if (!existsSync(chromiumPath)) return `no Chromium at ${chromiumPath}`;
  if (!guiBuilt()) return 'the admin UI is not built (npm run build:ui)';
  return false;
}

export interface UiGateway {
  gw: TestGateway;
  /** http://localhost:<port><path>/ */
  guiUrl: string;
  guiPort: number;
  close(): Promise<void>;
}

export async function startUiGateway(options: { env?: Record<string, string>; config?: string | object; database?: 'off' | 'sqlite' } = {}): Promise<UiGateway> {
  const gw = await startGateway({
    database: options.database ?? 'sqlite',
    config: options.config,
    env: { PORTCULLIS_ADMIN_GUI_LISTEN: '127.0.0.1:0', ...options.env },
  });
  const guiPort = gw.node.guiPorts()[0];
  const path = options.env?.PORTCULLIS_ADMIN_GUI_PATH ?? '';
  return { gw, guiPort, guiUrl: `http://127.0.0.1:${guiPort}${path}/`, close: () => gw.close() };
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Collects every console error, page error and failed (or 5xx) request of a page. */
export function recordProblems(page: Page, ignore: (text: string) => boolean = () => false): string[] {
  const problems: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !ignore(msg.text())) problems.push(`console: ${msg.text()} @ ${page.url()}`);
  });
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message} @ ${page.url()}`));
  page.on('requestfailed', (req) => {
    const why = req.failure()?.errorText ?? '';
    // A navigation away cancels what the previous page still had in flight.
    if (why === 'net::ERR_ABORTED') return;
    const text = `requestfailed: ${req.method()} ${req.url()} ${why}`;
    if (!ignore(text)) problems.push(text);
  });
  page.on('response', (res) => {
    if (res.status() >= 500) problems.push(`HTTP ${res.status()}: ${res.request().method()} ${res.url()}`);
  });
  return problems;
}
