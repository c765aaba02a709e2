/**
 * `npm start`: a working demo on one machine with nothing else installed — the demo OpenID
 * Provider (users alex/doe, jane/doe2), an httpbin-style echo upstream, and the gateway on
 * :8000 (proxy), :8001 (Admin API) and :8002 (web admin UI) with the embedded SQLite store, seeded on first start
 * from demo/portcullis.yaml.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startIdp } from '../../demo/idp.ts';
import { startEcho } from '../../demo/echo.ts';
import { parseDeclarative } from '../config/index.ts';
import { createRegistry } from '../plugins/registry.ts';
import { enabledPlugins } from '../plugins/bundled/index.ts';
import { createLogger } from '../observability/logger.ts';
import { openConfigStore } from '../storage/index.ts';
import { readSettings, startSingle } from '../kernel/index.ts';

const root = new URL('../..', import.meta.url).pathname;
const dataDir = process.env.PORTCULLIS_DEMO_DIR ?? join(root, '.portcullis-demo');
mkdirSync(dataDir, { recursive: true });
const idpPort = Number(process.env.IDP_PORT ?? 9080);
const echoPort = Number(process.env.ECHO_PORT ?? 9000);

const idp = await startIdp({ port: idpPort, host: '127.0.0.1' });
const echo = await startEcho({ port: echoPort });
const env = {
  ...process.env,
  PORTCULLIS_SQLITE_PATH: process.env.PORTCULLIS_SQLITE_PATH ?? join(dataDir, 'portcullis.db'),
  DECK_ISSUER: idp.issuer,
  DECK_ECHO_URL: echo.url,
  DECK_SESSION_SECRET: process.env.DECK_SESSION_SECRET ?? 'portcullis-demo-session-secret-change-me',
};
const settings = readSettings({ database: 'sqlite', workers: process.env.PORTCULLIS_WORKERS ?? '1' }, env);
const log = createLogger({ level: settings.logLevel });
const registry = createRegistry(enabledPlugins(settings.env.PORTCULLIS_PLUGINS), { workers: settings.workers, database: settings.database });

// Seed the embedded store once; later changes made through the Admin API are kept.
const store = await openConfigStore({ database: 'sqlite', sqlitePath: env.PORTCULLIS_SQLITE_PATH });
const current = await store.load();
if (current.services.length === 0) {
  const text = readFileSync(join(root, 'demo', 'portcullis.yaml'), 'utf8');
  await store.replaceAll(parseDeclarative(text, { registry, env, filename: 'demo/portcullis.yaml' }));
}
await store.close();

const node = await startSingle(settings, registry, log);
const proxy = `http://localhost:${node.proxyPorts()[0]}`;
console.log(`
Portcullis demo is running.
  proxy       ${proxy}        (try: curl -u alex:doe ${proxy}/anything)
  admin API   http://127.0.0.1:${node.adminPorts()[0]}    (try: curl http://127.0.0.1:${node.adminPorts()[0]}/services)
  admin UI    ${node.guiPorts().length > 0 ? `http://localhost:${node.guiPorts()[0]}${settings.adminGuiPath}/` : '(off: PORTCULLIS_ADMIN_GUI_LISTEN)'}
  demo IdP    ${idp.issuer}   (users alex/doe, jane/doe2; client kong/kong-secret)
  upstream    ${echo.url}/anything (echo)
  browser     open ${proxy}/anything to sign in; ${proxy}/anything/logout signs out
Store: ${env.PORTCULLIS_SQLITE_PATH} (delete it to re-seed from demo/portcullis.yaml). Ctrl-C stops.
`);

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await node.close();
  await idp.close();
  await echo.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
process.on('SIGHUP', () => void node.reload());
