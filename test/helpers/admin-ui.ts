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

/** A string that runs script if a page ever renders it as HTML (sets window.__xss). */
export const xss = '<img src=x onerror="window.__xss=1">';

async function call(method: string, url: string, body?: unknown): Promise<Record<string, any>> {
  const res = await fetch(url, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) as Record<string, any> : {};
}

export interface Seeded {
  service: string;
  route: string;
  consumer: string;
  consumerGroup: string;
  oidcPlugin: string;
  terminationPlugin: string;
  upstream: string;
  certificate: string;
  caCertificate: string;
  sni: string;
}

/**
 * One of every entity the UI has pages for, through the Admin API, with script-looking text in
 * the free-text places (tags, a plugin message, a custom_id): the UI must show it as text.
 */
export async function seedEverything(admin: string, o: { issuer: string; echoUrl: string; proxyUrl: string; cert: { cert: string; key: string } }): Promise<Seeded> {
  const service = await call('POST', `${admin}/services`, { name: 'example-service', url: `${o.echoUrl}/anything`, tags: ['demo', xss] });
  const route = await call('POST', `${admin}/services/example-service/routes`, { name: 'example-route', paths: ['/anything'], tags: [xss] });
  await call('POST', `${admin}/services/example-service/routes`, { name: 'public-route', paths: ['/public'] });
  const oidc = await call('POST', `${admin}/routes/example-route/plugins`, {
    name: 'openid-connect',
    config: { issuer: o.issuer, client_id: ['kong'], client_secret: ['kong-secret'], redirect_uri: [`${o.proxyUrl}/anything`], scopes: ['openid', 'profile'] },
  });
  const termination = await call('POST', `${admin}/plugins`, { name: 'request-termination', enabled: false, config: { status_code: 503, message: xss }, tags: [xss] });
  await call('POST', `${admin}/plugins`, { name: 'correlation-id' });
  await call('POST', `${admin}/services/example-service/plugins`, { name: 'rate-limiting', config: { minute: 100, policy: 'local' } });
  const consumer = await call('POST', `${admin}/consumers`, { username: 'alex', custom_id: xss, tags: ['staff'] });
  await call('POST', `${admin}/consumers/alex/key-auth`, { key: 'alex-demo-key' });
  await call('POST', `${admin}/consumers/alex/basic-auth`, { username: 'alex', password: 'alex-password' });
  await call('POST', `${admin}/consumers/alex/acls`, { group: 'admins' });
  const group = await call('POST', `${admin}/consumer_groups`, { name: 'gold', tags: [xss] });
  await call('POST', `${admin}/consumer_groups/gold/consumers`, { consumer: 'alex' });
  const upstream = await call('POST', `${admin}/upstreams`, { name: 'echo-upstream', algorithm: 'round-robin' });
  const echo = new URL(o.echoUrl);
  await call('POST', `${admin}/upstreams/echo-upstream/targets`, { target: `${echo.hostname}:${echo.port}`, weight: 100 });
  await call('POST', `${admin}/upstreams/echo-upstream/targets`, { target: '127.0.0.1:9', weight: 10 });
  const certificate = await call('POST', `${admin}/certificates`, { cert: o.cert.cert, key: o.cert.key, tags: ['demo'] });
  const sni = await call('POST', `${admin}/snis`, { name: 'demo.example.test', certificate: { id: certificate.id } });
  const ca = await call('POST', `${admin}/ca_certificates`, { cert: o.cert.cert });
  return {
    service: service.id, route: route.id, consumer: consumer.id, consumerGroup: group.id, oidcPlugin: oidc.id,
    terminationPlugin: termination.id, upstream: upstream.id, certificate: certificate.id, caCertificate: ca.id, sni: sni.id,
  };
}

/** Every page of the UI for the seeded entities (paths relative to the UI's root). */
export function everyPage(s: Seeded): string[] {
  return [
    '', 'services', 'services/create', `services/${s.service}`, `services/${s.service}/routes`, `services/${s.service}/plugins`, `services/${s.service}/edit`,
    'routes', 'routes/create', `routes/${s.route}`, `routes/${s.route}/plugins`, `routes/${s.route}/edit`,
    'consumers', 'consumers/create', `consumers/${s.consumer}`, `consumers/${s.consumer}/credentials`, `consumers/${s.consumer}/groups`, `consumers/${s.consumer}/plugins`, `consumers/${s.consumer}/edit`,
    `consumers/${s.consumer}/credentials/key-auth/create`,
    'consumer-groups', 'consumer-groups/create', `consumer-groups/${s.consumerGroup}`, `consumer-groups/${s.consumerGroup}/consumers`, `consumer-groups/${s.consumerGroup}/edit`,
    'plugins', 'plugins/select', `plugins/openid-connect/${s.oidcPlugin}`, `plugins/openid-connect/${s.oidcPlugin}/edit`, 'plugins/openid-connect/create',
    `plugins/request-termination/${s.terminationPlugin}`, `plugins/request-termination/${s.terminationPlugin}/edit`, 'plugins/key-auth/create', 'plugins/rate-limiting/create',
    'upstreams', 'upstreams/create', `upstreams/${s.upstream}`, `upstreams/${s.upstream}/targets`, `upstreams/${s.upstream}/edit`,
    'certificates', 'certificates/create', `certificates/${s.certificate}`, `certificates/${s.certificate}/edit`,
    'ca-certificates', 'ca-certificates/create', `ca-certificates/${s.caCertificate}`,
    'snis', 'snis/create', `snis/${s.sni}/edit`,
    'issuers', 'no-such-page',
  ];
}
