/**
 * The web admin UI's performance on loopback (issue 19): (1) first load in Debian's Chromium — a
 * fresh browser context each round (empty cache), navigation timing of the overview page and the
 * time until its live counters show; (2) the Admin API answering the UI's list calls with 1,000
 * routes in the store (the route list's first page, a page of 1,000, a service's routes, the
 * plugin list and GET /). Prints medians; not a test (the numbers depend on the machine's load).
 * Run: node bench/admin-ui-load.ts [rounds]
 */
import { launchChromium, startUiGateway } from '../test/helpers/admin-ui.ts';

const rounds = Number(process.argv[2] ?? 5);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const ui = await startUiGateway();
const browser = await launchChromium();
try {
  const admin = ui.gw.adminUrl;
  const post = async (path: string, body: unknown) => {
    const r = await fetch(`${admin}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (r.status >= 300) throw new Error(`${path}: ${r.status} ${await r.text()}`);
    return r.json() as Promise<{ id: string }>;
  };
  const svc = await post('/services', { name: 'bench-service', url: 'http://127.0.0.1:9/' });
  for (let i = 0; i < 1000; i++) await post('/services/bench-service/routes', { name: `route-${i}`, paths: [`/r${i}`] });

  // (1) First load.
  const dcl: number[] = [];
  const load: number[] = [];
  const counters: number[] = [];
  const bytes: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    let transferred = 0;
    page.on('response', async (res) => {
      const len = Number(res.headers()['content-length'] ?? 0);
      if (res.url().startsWith(ui.guiUrl)) transferred += len;
    });
    const started = Date.now();
    await page.goto(ui.guiUrl, { waitUntil: 'load' });
    await page.getByTestId('counter-total_requests').locator('.value').filter({ hasText: /\d/ }).waitFor();
    counters.push(Date.now() - started);
    const nav = await page.evaluate(() => JSON.parse(JSON.stringify((globalThis as unknown as { performance: { getEntriesByType(t: string): unknown[] } }).performance.getEntriesByType('navigation')[0])) as { domContentLoadedEventEnd: number; loadEventEnd: number });
    dcl.push(nav.domContentLoadedEventEnd);
    load.push(nav.loadEventEnd);
    bytes.push(transferred);
    await context.close();
  }
  console.log(`first load of the UI (fresh context, ${rounds} rounds, medians):`);
  console.log(`  DOMContentLoaded ${median(dcl).toFixed(0)} ms, load ${median(load).toFixed(0)} ms, overview counters shown ${median(counters)} ms; ${(median(bytes) / 1024 / 1024).toFixed(2)} MB from the GUI listener (gzip)`);

  // (2) The UI's list calls with 1,000 routes.
  const calls = [
    '/routes?size=30',
    '/routes?size=1000',
    `/services/${svc.id}/routes?size=30`,
    '/routes?size=30&name=route-500',
    '/plugins?size=30',
    '/',
  ];
  console.log('Admin API with 1,000 routes (median of 20 calls each):');
  for (const path of calls) {
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      const r = await fetch(`${admin}${path}`);
      await r.arrayBuffer();
      times.push(performance.now() - t);
    }
    console.log(`  GET ${path.padEnd(40)} ${median(times).toFixed(1)} ms`);
  }
} finally {
  await browser.close();
  await ui.close();
}
