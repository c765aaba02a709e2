/**
 * The control side of a node: where config comes from (declarative file in DB-less mode, or the
 * SQLite/PostgreSQL store), reloads (SIGHUP, --watch, store notifications), the shared key-value
 * store, and the Admin API. Runs in the single process, or in the primary with several workers.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { hostname } from 'node:os';
import type { IncomingMessage } from 'node:http';
import { createAdminServer, statusDocument } from '../admin/index.ts';
import { startStatusApi, type StatusApi } from '../observability/status-api.ts';
import { startGuiServer, guiBuilt, type GuiServer } from '../admin-gui/server.ts';
import { listenerOrigins } from '../admin/cors.ts';
import { loadDeclarativeFile } from '../config/index.ts';
import type { ConfigData } from '../config/types.ts';
import { ConfigError } from '../errors.ts';
import type { PluginRegistry } from '../plugins/registry.ts';
import type { Logger } from '../plugins/sdk.ts';
import { openConfigStore, openKvStore, readStoreSettings, type KvSettings } from '../storage/index.ts';
import type { ConfigStore, KeyValueStore } from '../storage/ports.ts';
import type { ListenSpec, Settings } from './settings.ts';
import type { LocalBalancing } from '../balancer/balancing.ts';

/** A listener as Kong prints it in GET / (`127.0.0.1:8001`, `0.0.0.0:8443 ssl`). */
function listenText(l: ListenSpec): string {
  return `${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}${l.ssl ? ' ssl' : ''}`;
}

import { adminApiVersion, productToken, version } from './version.ts';
import { LiveLogLevel } from '../observability/log-level.ts';

export { version };

export interface ControlPlaneOptions {
  settings: Settings;
  registry: PluginRegistry;
  log: Logger;
  /** Called with the whole config after every committed change (and once at start). */
  onConfig(data: ConfigData): Promise<void>;
  /** The node's balancers and health checker (Admin API health endpoints). */
  balancing?: LocalBalancing;
  /** GET /status body (server counters, memory); may ask the workers. */
  status(): Record<string, unknown> | Promise<Record<string, unknown>>;
  /** GET /metrics (Admin API and Status API): the whole node's Prometheus exposition. */
  metrics?(): Promise<string>;
  /** Bound proxy ports (proxy_listen order), for the admin UI's links to the proxy; default: the configured ports. */
  proxyPorts?(): number[];
  /** The node's other processes take a new log level (the primary tells its workers). */
  onLogLevel?(level: string): void;
}

/** Shared key-value entry of the cluster's log level (`PUT /debug/cluster/log-level/{level}`). */
const clusterLogLevelKey = 'portcullis:debug:cluster-log-level';
/** How often a node looks for a cluster log level set through another node (ms). */
const clusterLogLevelPollMs = 2000;

const wildcardHosts = new Set(['0.0.0.0', '::']);

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** The host name a request was addressed to (its Host header), for URLs that should point back at the same machine. */
function requestHostname(req: IncomingMessage): string {
  try {
    return new URL(`http://${req.headers.host ?? 'localhost'}`).hostname;
  } catch {
    return 'localhost';
  }
}

function kvSettingsFor(settings: Settings): KvSettings {
  // DB-less with several processes: a node-local SQLite file the primary names for its workers.
  if (settings.env.PORTCULLIS_KV_PATH) return { kind: 'sqlite', path: settings.env.PORTCULLIS_KV_PATH };
  const store = readStoreSettings({ ...settings.env, PORTCULLIS_DATABASE: settings.database });
  if (settings.database === 'sqlite') return { kind: 'sqlite', path: store.sqlitePath ?? 'portcullis.db' };
  if (settings.database === 'postgres') return { kind: 'postgres', pg: store.pg ?? {} };
  return { kind: 'memory' };
}

/** Opens the node-wide key-value store plugins share (what `PluginDeps.sharedKv` is). */
export function openSharedKv(settings: Settings): Promise<KeyValueStore> {
  return openKvStore(kvSettingsFor(settings));
}

export class ControlPlane {
  readonly #o: ControlPlaneOptions;
  store!: ConfigStore;
  sharedKv!: KeyValueStore;
  #admin: Awaited<ReturnType<typeof createAdminServer>> | null = null;
  #adminPorts: number[] = [];
  #statusApis: StatusApi[] = [];
  #guis: Array<{ spec: ListenSpec; server: GuiServer }> = [];
  #unsubscribe: (() => void) | null = null;
  #watcher: FSWatcher | null = null;
  #watchTimer: NodeJS.Timeout | null = null;
  #pushing: Promise<void> = Promise.resolve();
  #dirty = false;
  #pushFailed = false;
  readonly startedAt = Date.now();
  /**
   * The admin GUI listener's origins (cors.ts `listenerOrigins`), set by whoever starts that
   * listener; the Admin API answers CORS for them when PORTCULLIS_ADMIN_GUI_URL is unset.
   */
  guiListenerOrigins: readonly string[] = [];
  /** The configuration last pushed to the proxy (null before the first). */
  config: ConfigData | null = null;
  /** The node's log level, changed at runtime by the Admin API (Kong's /debug/node/log-level). */
  readonly logLevel: LiveLogLevel;
  #clusterLevelSeen: string | null = null;
  #clusterLevelPoll: NodeJS.Timeout | null = null;
  /** Identifies this node in `GET /` (new on every start, as each node process is a new member). */
  readonly nodeId = randomUUID();

  constructor(o: ControlPlaneOptions) {
    this.#o = o;
    this.logLevel = new LiveLogLevel(o.log, (level) => o.onLogLevel?.(level));
  }

  /**
   * A cluster log level is a shared key-value entry (in the node's database) that every node
   * looks for every few seconds, as Kong's cluster events are polled; the node that was asked
   * applies it at once.
   */
  async #setClusterLevel(level: string, timeoutSec: number): Promise<'changed' | 'same'> {
    const id = randomUUID();
    const until = timeoutSec > 0 ? Date.now() + timeoutSec * 1000 : 0;
    await this.sharedKv.set(clusterLogLevelKey, JSON.stringify({ id, level, until }), timeoutSec > 0 ? timeoutSec * 1000 : undefined);
    this.#clusterLevelSeen = id;
    return this.logLevel.set(level, timeoutSec);
  }

  #pollClusterLevel(): void {
    const look = async (): Promise<void> => {
      const raw = await this.sharedKv.get(clusterLogLevelKey);
      if (raw === null) return;
      const rec = JSON.parse(raw) as { id: string; level: string; until: number };
      if (rec.id === this.#clusterLevelSeen) return;
      this.#clusterLevelSeen = rec.id;
      const left = rec.until === 0 ? 0 : Math.ceil((rec.until - Date.now()) / 1000);
      if (rec.until !== 0 && left <= 0) return;
      this.logLevel.set(rec.level, left);
    };
    this.#clusterLevelPoll = setInterval(() => {
      look().catch((err: unknown) => this.#o.log.warn({ err: { message: (err as Error).message } }, 'could not read the cluster log level'));
    }, clusterLogLevelPollMs);
    this.#clusterLevelPoll.unref();
  }

  /** Loads the declarative file (throws ConfigError listing every problem). */
  async #readFile(): Promise<ConfigData> {
    return loadDeclarativeFile(this.#o.settings.declarativeConfig!, {
      registry: this.#o.registry, env: this.#o.settings.env, warn: (message) => this.#o.log.warn({ file: this.#o.settings.declarativeConfig }, message),
    });
  }

  async start(): Promise<void> {
    const s = this.#o.settings;
    const storeSettings = readStoreSettings({ ...s.env, PORTCULLIS_DATABASE: s.database });
    const declarative = s.database === 'off' && s.declarativeConfig ? await this.#readFile() : undefined;
    this.store = await openConfigStore({ ...storeSettings, declarative });
    this.sharedKv = await openSharedKv(s);
    await this.#push();
    this.#unsubscribe = this.store.onChange(() => this.#schedulePush());
    // A cluster log level set through another node (DB-less nodes share nothing: Kong refuses it there).
    if (s.database !== 'off') this.#pollClusterLevel();
    if (s.watch && s.database === 'off' && s.declarativeConfig) this.#watch(s.declarativeConfig);
    if (s.adminListen.length > 0) {
      const tls = s.adminSslCert && s.adminSslCertKey
        ? { cert: readFileSync(s.adminSslCert, 'utf8'), key: readFileSync(s.adminSslCertKey, 'utf8') }
        : undefined;
      this.#admin = await createAdminServer({
        store: this.store,
        registry: this.#o.registry,
        log: this.#o.log,
        token: s.adminToken ?? undefined,
        tls,
        maxBodySize: s.adminMaxBodySize,
        sharedKv: this.sharedKv,
        env: s.env as NodeJS.ProcessEnv,
        nodeInfo: () => ({
          version: adminApiVersion,
          portcullis_version: version,
          edition: 'community',
          tagline: 'Welcome to portcullis',
          node_id: this.nodeId,
          hostname: hostname(),
          pid: process.pid,
          // Kong's names for the settings (GET / "configuration"); never secrets.
          configuration: {
            proxy_listen: s.proxyListen.map(listenText),
            admin_listen: s.adminListen.map(listenText),
            // Kong prints ["off"] when there is no stream listener.
            stream_listen: s.streamListen.length > 0 ? s.streamListen.map(listenText) : ['off'],
            admin_gui_listen: s.adminGuiListen.map(listenText),
            admin_gui_path: s.adminGuiPath === '' ? '/' : s.adminGuiPath,
            declarative_config: s.declarativeConfig,
            nginx_worker_processes: s.workers,
            log_level: this.logLevel.level,
            trusted_ips: s.trustedIps === '' ? [] : s.trustedIps.split(',').map((x) => x.trim()),
            client_max_body_size: s.maxBodySize,
            plugins: ['bundled'],
          },
        }),
        status: () => this.#o.status(),
        balancing: this.#o.balancing,
        serverHeader: s.headers.server ? productToken : null,
        metrics: this.#o.metrics,
        adminLatencyHeader: s.headers.adminLatency,
        // admin_gui_url's origins; the GUI listener's own origins when that is unset (cors.ts).
        guiOrigins: () => (s.adminGuiUrl.length > 0 ? s.adminGuiUrl : this.guiListenerOrigins),
        workers: s.workers,
        logLevel: {
          current: () => this.logLevel.level,
          setNode: (level, timeoutSec) => this.logLevel.set(level, timeoutSec),
          setCluster: (level, timeoutSec) => this.#setClusterLevel(level, timeoutSec),
        },
      });
      for (const spec of s.adminListen) {
        if (spec.ssl && !tls) throw new Error('admin_listen has "ssl" but PORTCULLIS_ADMIN_SSL_CERT/_KEY are not set');
        const { port } = await this.#admin.listen(spec.host, spec.port);
        this.#adminPorts.push(port);
      }
    }
    for (const spec of s.statusListen) {
      if (spec.ssl) throw new Error('status_listen: "ssl" is not supported on the Status API');
      this.#statusApis.push(await startStatusApi(spec.host, spec.port, {
        status: () => statusDocument(this.store, this.#o.status),
        ready: async () => {
          try {
            await this.store.version();
          } catch {
            return { ready: false, message: 'failed to connect to database' };
          }
          return this.#pushFailed ? { ready: false, message: 'the last configuration could not be applied' } : { ready: true, message: 'ready' };
        },
        metrics: this.#o.metrics ?? (async () => ''),
        serverHeader: s.headers.server ? productToken : null,
        onError: (err, path) => this.#o.log.error({ path, err: { message: (err as Error).message } }, 'status API request failed'),
      }));
    }
    await this.#startGui();
  }

  /**
   * admin_gui_listen. When the listener is the default one (PORTCULLIS_ADMIN_GUI_LISTEN unset) and
   * its port is taken, the node starts without the UI and says so; a listener the operator asked
   * for must bind, as every other listener.
   */
  async #startGui(): Promise<void> {
    const s = this.#o.settings;
    if (s.adminGuiListen.length > 0 && !guiBuilt()) {
      this.#o.log.warn('admin_gui_listen: the web admin UI is not built (ui/dist is missing); run `npm install` or `npm run build:ui`. The listener answers 503 until then.');
    }
    for (const spec of s.adminGuiListen) {
      try {
        const server = await startGuiServer(spec.host, spec.port, {
          path: s.adminGuiPath,
          reusePort: spec.reuseport,
          backlog: spec.backlog,
          kconfig: (req) => this.#kconfig(req),
          serverHeader: s.headers.server ? productToken : null,
          onError: (err, path) => this.#o.log.error({ path, err: { message: (err as Error).message } }, 'admin GUI request failed'),
        });
        this.#guis.push({ spec, server });
        this.guiListenerOrigins = [...this.guiListenerOrigins, ...listenerOrigins(spec.host, server.port(), false)];
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' && s.env.PORTCULLIS_ADMIN_GUI_LISTEN === undefined) {
          this.#o.log.warn({ admin_gui_listen: listenText(spec) }, 'admin_gui_listen: the default address is in use; the web admin UI is off (set PORTCULLIS_ADMIN_GUI_LISTEN to another address, or off)');
          continue;
        }
        throw err;
      }
    }
  }

  /** Bound admin GUI ports (admin_gui_listen order). */
  guiPorts(): number[] {
    return this.#guis.map((g) => g.server.port());
  }

  /**
   * /kconfig.js of the admin GUI: Kong Manager's K_CONFIG names. The Admin API URL is
   * admin_gui_api_url, else the first admin listener (a wildcard host replaced by the host name
   * the browser used); the proxy URL likewise, for the issuer pages' test sign-in links.
   */
  #kconfig(req: IncomingMessage): Record<string, string> {
    const s = this.#o.settings;
    const reqHost = requestHostname(req);
    const at = (spec: ListenSpec, port: number) => `${spec.ssl ? 'https' : 'http'}://${wildcardHosts.has(spec.host) ? urlHost(reqHost) : urlHost(spec.host)}:${port}`;
    let api = s.adminGuiApiUrl ?? '';
    if (api === '' && s.adminListen.length > 0) api = at(s.adminListen[0], this.#adminPorts[0] ?? s.adminListen[0].port);
    const proxyPorts = this.#o.proxyPorts?.() ?? s.proxyListen.map((l) => l.port);
    const plainProxy = s.proxyListen.findIndex((l) => !l.ssl);
    const proxyIndex = plainProxy >= 0 ? plainProxy : 0;
    const proxy = s.proxyListen.length > 0 ? at(s.proxyListen[proxyIndex], proxyPorts[proxyIndex] ?? s.proxyListen[proxyIndex].port) : '';
    return {
      ADMIN_GUI_PATH: s.adminGuiPath === '' ? '/' : s.adminGuiPath,
      ADMIN_API_URL: api,
      ADMIN_API_PORT: String(this.#adminPorts[0] ?? ''),
      PROXY_URL: proxy,
    };
  }

  /** Bound Status API ports (status_listen order). */
  statusPorts(): number[] {
    return this.#statusApis.map((a) => a.port());
  }

  /**
   * --watch. The directory is watched, not the file: editors and tools that save atomically
   * (write a temp file, rename it over the old one: `sed -i`, vim, VS Code, Kubernetes ConfigMap
   * symlink swaps) give the path a new inode, and a watch on the file itself goes silent after
   * the first such save. Any event in the directory re-reads the file's identity (inode, size,
   * mtime, following symlinks) and reloads only when it changed.
   */
  #watch(file: string): void {
    const identity = (): string => {
      try {
        const st = statSync(file);
        return `${st.ino}:${st.size}:${st.mtimeMs}`;
      } catch {
        return 'missing';
      }
    };
    let seen = identity();
    this.#watcher = watch(dirname(resolve(file)), () => {
      if (this.#watchTimer) clearTimeout(this.#watchTimer);
      this.#watchTimer = setTimeout(() => {
        this.#watchTimer = null;
        const now = identity();
        // A file caught between unlink and rename is left for the next event.
        if (now === seen || now === 'missing') return;
        seen = now;
        void this.reload();
      }, 100);
    });
  }

  adminPorts(): number[] {
    return [...this.#adminPorts];
  }

  #schedulePush(): void {
    this.#dirty = true;
    this.#pushing = this.#pushing.then(async () => {
      if (!this.#dirty) return;
      this.#dirty = false;
      this.#pushFailed = false;
      await this.#push();
    }).catch((err: unknown) => {
      this.#pushFailed = true;
      this.#o.log.error({ err: { message: (err as Error).message } }, 'applying the new config failed; the previous config keeps serving');
    });
  }

  async #push(): Promise<void> {
    const data = await this.store.load();
    await this.#o.onConfig(data);
    this.config = data;
    this.#o.log.debug({ services: data.services.length, routes: data.routes.length, plugins: data.plugins.length }, 'configuration pushed to the proxy');
  }

  /**
   * SIGHUP / --watch: DB-less reads the file again (an invalid file changes nothing and every
   * problem is logged); with a database, reloads from the store.
   */
  async reload(): Promise<boolean> {
    const s = this.#o.settings;
    try {
      this.#o.log.debug({ database: s.database, file: s.declarativeConfig }, 'reload: reading the configuration');
      if (s.database === 'off' && s.declarativeConfig) {
        const data = await this.#readFile();
        this.#o.log.debug({ services: data.services.length, routes: data.routes.length, plugins: data.plugins.length }, 'reload: configuration valid; applying');
        await this.store.replaceAll(data);
        // replaceAll notifies onChange; wait for that push so callers see the new config live.
        this.#schedulePush();
      } else {
        this.#schedulePush();
      }
      await this.#pushing;
      // The push logged why it failed (e.g. the database is down): no "reloaded" after that.
      if (this.#pushFailed) return false;
      this.#o.log.info({ database: s.database }, 'configuration reloaded');
      return true;
    } catch (err) {
      if (err instanceof ConfigError) {
        this.#o.log.error({ problems: err.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)) }, 'new configuration is invalid; the running configuration is kept');
      } else {
        this.#o.log.error({ err: { message: (err as Error).message } }, 'reload failed; the running configuration is kept');
      }
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.#clusterLevelPoll !== null) clearInterval(this.#clusterLevelPoll);
    this.logLevel.close();
    this.#watcher?.close();
    if (this.#watchTimer) clearTimeout(this.#watchTimer);
    this.#unsubscribe?.();
    await this.#admin?.close();
    await Promise.all(this.#statusApis.map((a) => a.close()));
    await Promise.all(this.#guis.map((g) => g.server.close()));
    await this.#pushing;
    await this.store?.close();
    await this.sharedKv?.close();
  }
}
