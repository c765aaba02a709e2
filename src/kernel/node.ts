/**
 * A gateway node: one process (workers = 1) or a primary with N worker processes (node:cluster).
 * The primary owns the config source, the Admin API and reloads; workers own the proxy listeners
 * (SO_REUSEPORT, so the kernel spreads connections) and receive every config over IPC.
 */
import { processMemory, sumStats, type ServerStats } from './stats.ts';
import cluster, { type Worker } from 'node:cluster';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigData } from '../config/types.ts';
import type { PluginRegistry } from '../plugins/registry.ts';
import type { Logger } from '../plugins/sdk.ts';
import { ControlPlane, openSharedKv } from './control.ts';
import { ProxyRuntime } from './runtime.ts';
import { LocalBalancing, WorkerBalancing, type HealthToPrimary, type HealthToWorker } from '../balancer/balancing.ts';
import { targetHealthSeries } from '../balancer/target-health.ts';
import type { Settings } from './settings.ts';
import { NodeMetrics, NodeScrape } from '../observability/metrics.ts';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { version } from './version.ts';
import { certificatesById } from '../tls/index.ts';
import { applyTrustedCertificates } from '../tls/trust-store.ts';

/** The trust store of HTTPS health checks: PORTCULLIS_UPSTREAM_CA_FILE, as for proxied requests. */
export function probeCaOf(settings: Settings): string | null {
  return settings.upstreamCaFile ? readFileSync(settings.upstreamCaFile, 'utf8') : null;
}

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

export interface RunningNode {
  /** Bound proxy ports (single-process mode; empty in a cluster primary). */
  proxyPorts(): number[];
  /** Bound stream_listen ports (single-process mode; empty in a cluster primary). */
  streamPorts(): number[];
  adminPorts(): number[];
  /** Bound Status API ports (PORTCULLIS_STATUS_LISTEN). */
  statusPorts(): number[];
  /** Bound web admin UI ports (admin_gui_listen order). */
  guiPorts(): number[];
  /** SIGHUP equivalent: reload the config; false when the new config was rejected. */
  reload(): Promise<boolean>;
  /** SIGTERM equivalent: drain and close everything. */
  close(): Promise<void>;
  readonly control: ControlPlane | null;
  readonly runtime: ProxyRuntime | null;
}

type PrimaryMessage = { type: 'config'; data: ConfigData } | { type: 'shutdown' } | { type: 'stats'; id: number } | { type: 'metrics'; id: number; nodeId: string } | { type: 'log-level'; level: string }
  | HealthToWorker;
type WorkerStats = { server: ServerStats; memory: ReturnType<typeof processMemory> };
type WorkerMessage = { type: 'ready' } | { type: 'applied'; ok: boolean; error?: string } | ({ type: 'stats'; id: number } & WorkerStats)
  | { type: 'metrics'; id: number; json: MetricsJson } | HealthToPrimary;

/** How long a /metrics scrape waits for each worker before using that worker's previous answer. */
const metricsTimeoutMs = 5000;

/** The control plane's own series (node info, datastore reachability) for one scrape. */
async function nodeSeries(node: NodeMetrics, control: ControlPlane, balancing: LocalBalancing): Promise<MetricsJson> {
  try {
    await control.store.version();
    node.setReachable(true);
  } catch {
    node.setReachable(false);
  }
  // Kong: `upstream_health_metrics` is a node-wide switch, on when any prometheus instance has it.
  const healthOn = control.config?.plugins.some((p) => p.name === 'prometheus' && p.enabled !== false && (p.config as { upstream_health_metrics?: boolean }).upstream_health_metrics === true) ?? false;
  node.setTargetHealth(healthOn ? targetHealthSeries(balancing.balancers, balancing.states) : null);
  return node.json();
}

/** How long GET /status waits for the workers' counters. */
const statsTimeoutMs = 500;

/** Everything in one process: the usual mode for tests and small installs. */
export async function startSingle(settings: Settings, registry: PluginRegistry, log: Logger): Promise<RunningNode> {
  applyTrustedCertificates(settings.luaSslTrustedCertificate);
  let runtime = null as ProxyRuntime | null;
  // Balancers, DNS and health checks of the node, shared by the proxy and the Admin API.
  const balancing = new LocalBalancing(settings.dns, log, probeCaOf(settings));
  const control: ControlPlane = new ControlPlane({
    settings,
    registry,
    log,
    balancing,
    onConfig: async (data) => {
      if (runtime === null) runtime = await ProxyRuntime.create({ settings, registry, log, sharedKv: control.sharedKv, workers: 1, reusePort: false, balancing }, data);
      else await runtime.apply(data);
    },
    status: (): Record<string, unknown> => ({
      database: { reachable: true, kind: settings.database },
      server: { workers: 1, uptime_s: Math.round((Date.now() - control.startedAt) / 1000), ...(runtime?.stats.snapshot() ?? sumStats([])) },
      memory: { workers_lua_vms: [processMemory()], lua_shared_dicts: {} },
      configuration_version: runtime?.snapshot.version ?? 0,
    }),
    proxyPorts: () => runtime?.ports() ?? [],
    metrics: async () => {
      const rt = runtime!;
      rt.metrics.updateProcessGauges(control.nodeId, rt.stats.snapshot());
      return scrape.render([await rt.metrics.json(), await nodeSeries(nodeMetrics ??= new NodeMetrics(control.nodeId, version), control, balancing)]);
    },
  });
  const scrape = new NodeScrape();
  let nodeMetrics: NodeMetrics | null = null;
  try {
    await control.start();
    await runtime!.listen();
  } catch (err) {
    await runtime?.close().catch(() => {});
    await control.close().catch(() => {});
    balancing.close();
    throw err;
  }
  const rt = runtime!;
  return {
    proxyPorts: () => rt.ports(),
    streamPorts: () => rt.streamPorts(),
    adminPorts: () => control.adminPorts(),
    statusPorts: () => control.statusPorts(),
    guiPorts: () => control.guiPorts(),
    reload: () => control.reload(),
    async close() {
      await rt.close();
      await control.close();
      balancing.close();
    },
    control,
    runtime: rt,
  };
}

/** The primary of a multi-worker node. */
export async function startPrimary(settings: Settings, registry: PluginRegistry, log: Logger): Promise<RunningNode> {
  applyTrustedCertificates(settings.luaSslTrustedCertificate);
  // Without a database the processes of this node share plugin state (generated keys, refresh
  // locks) through a SQLite file of their own.
  let kvFile: string | null = null;
  if (settings.database === 'off' && !settings.env.PORTCULLIS_KV_PATH) {
    kvFile = join(tmpdir(), `portcullis-${process.pid}-kv.db`);
    settings.env.PORTCULLIS_KV_PATH = kvFile;
  }
  let last: ConfigData | null = null;
  let stopping = false;
  const workers = new Set<Worker>();
  const send = (w: Worker, m: PrimaryMessage): void => {
    // A worker exiting (drain on SIGTERM) can close its channel between the check and the write:
    // with a callback the EPIPE is handed to it instead of crashing the primary as an 'error' event.
    if (w.isConnected()) w.send(m, undefined, undefined, () => {});
  };
  // Health checks run here, once for the node; workers get the states and send passive outcomes.
  const balancing = new LocalBalancing(settings.dns, log, probeCaOf(settings));
  let healthTimer: NodeJS.Timeout | null = null;
  const healthMessage = (): HealthToWorker => ({ type: 'health', entries: balancing.states.entries() });
  balancing.states.subscribe(() => {
    healthTimer ??= setTimeout(() => {
      healthTimer = null;
      const m = healthMessage();
      for (const w of workers) send(w, m);
    }, 2);
  });
  // GET /status asks every worker for its counters; a worker that does not answer in time is left out.
  let statsSeq = 0;
  const statsWaiters = new Map<number, (s: WorkerStats) => void>();
  const collectStats = (): Promise<WorkerStats[]> => Promise.all([...workers].map((w) => new Promise<WorkerStats | null>((resolve) => {
    const id = ++statsSeq;
    const timer = setTimeout(() => {
      statsWaiters.delete(id);
      resolve(null);
    }, statsTimeoutMs);
    statsWaiters.set(id, (s) => {
      clearTimeout(timer);
      statsWaiters.delete(id);
      resolve(s);
    });
    send(w, { type: 'stats', id });
  }))).then((all) => all.filter((s): s is WorkerStats => s !== null));
  // GET /metrics asks every worker for its registry as JSON and merges (prom-client's
  // aggregation); a worker that is restarting or slow is represented by its previous answer,
  // and an exited worker's counters stay in the totals (NodeScrape.retire).
  const scrape = new NodeScrape();
  let nodeMetrics: NodeMetrics | null = null;
  const metricsWaiters = new Map<number, (json: MetricsJson) => void>();
  const collectMetrics = (): Promise<MetricsJson[]> => Promise.all([...workers].map((w) => new Promise<MetricsJson | null>((resolve) => {
    const id = ++statsSeq;
    const timer = setTimeout(() => {
      metricsWaiters.delete(id);
      resolve(scrape.lastOf(w.id) ?? null);
    }, metricsTimeoutMs);
    metricsWaiters.set(id, (json) => {
      clearTimeout(timer);
      metricsWaiters.delete(id);
      scrape.remember(w.id, json);
      resolve(json);
    });
    send(w, { type: 'metrics', id, nodeId: control.nodeId });
  }))).then((all) => all.filter((j): j is MetricsJson => j !== null));
  const control: ControlPlane = new ControlPlane({
    settings,
    registry,
    log,
    balancing,
    // PUT /debug/node/log-level: every worker takes the primary's new level.
    onLogLevel: (level) => {
      for (const w of workers) send(w, { type: 'log-level', level });
    },
    onConfig: async (data) => {
      last = data;
      for (const w of workers) send(w, { type: 'config', data });
      await balancing.apply(data.upstreams, data.targets, certificatesById(data));
    },
    status: async (): Promise<Record<string, unknown>> => {
      const replies = await collectStats();
      return {
        database: { reachable: true, kind: settings.database },
        server: { workers: workers.size, uptime_s: Math.round((Date.now() - control.startedAt) / 1000), ...sumStats(replies.map((r) => r.server)) },
        memory: { workers_lua_vms: replies.map((r) => r.memory), lua_shared_dicts: {} },
      };
    },
    metrics: async () => {
      const parts = await collectMetrics();
      parts.push(await nodeSeries(nodeMetrics ??= new NodeMetrics(control.nodeId, version), control, balancing));
      return scrape.render(parts);
    },
  });
  await control.start();

  const fork = (): Promise<void> => new Promise((resolve, reject) => {
    const w = cluster.fork({ PORTCULLIS_ROLE: 'worker', ...(settings.env.PORTCULLIS_KV_PATH ? { PORTCULLIS_KV_PATH: settings.env.PORTCULLIS_KV_PATH } : {}) });
    workers.add(w);
    w.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') {
        // The node's health states, once the worker listens (and after every change).
        send(w, healthMessage());
        resolve();
      }
      else if (m.type === 'stats') statsWaiters.get(m.id)?.({ server: m.server, memory: m.memory });
      else if (m.type === 'metrics') metricsWaiters.get(m.id)?.(m.json);
      else if (m.type === 'health-report') for (const [u, k, code] of m.events) balancing.report(u, k, code);
      else if (m.type === 'applied' && !m.ok) log.error({ worker: w.id, error: m.error }, 'worker rejected the new configuration; it keeps the previous one');
    });
    w.once('exit', (code, signal) => {
      workers.delete(w);
      void scrape.retire(w.id);
      if (stopping) return;
      reject(new Error(`worker exited during start (code ${code}, signal ${signal})`));
      log.error({ worker: w.id, code, signal }, 'worker died; starting a new one');
      setTimeout(() => void fork().catch((err: unknown) => log.error({ err: { message: (err as Error).message } }, 'worker restart failed')), 500);
    });
    w.once('online', () => {
      // A worker started while a dynamic log level is in force takes it (Kong: from the shm).
      if (control.logLevel.level !== control.logLevel.configured) send(w, { type: 'log-level', level: control.logLevel.level });
      if (last !== null) send(w, { type: 'config', data: last });
    });
  });
  await Promise.all(Array.from({ length: settings.workers }, () => fork()));
  log.info({ workers: settings.workers, proxy_listen: settings.proxyListen, admin_listen: settings.adminListen, ...(settings.streamListen.length > 0 ? { stream_listen: settings.streamListen } : {}) }, 'portcullis started');

  return {
    proxyPorts: () => [],
    streamPorts: () => [],
    adminPorts: () => control.adminPorts(),
    statusPorts: () => control.statusPorts(),
    guiPorts: () => control.guiPorts(),
    reload: () => control.reload(),
    async close() {
      stopping = true;
      const exits = [...workers].map((w) => new Promise<void>((r) => {
        if (!w.isConnected() && w.isDead()) return r();
        w.once('exit', () => r());
        send(w, { type: 'shutdown' });
      }));
      await Promise.all(exits);
      if (healthTimer !== null) clearTimeout(healthTimer);
      balancing.close();
      await control.close();
      if (kvFile !== null) await Promise.allSettled(['', '-wal', '-shm'].map((suffix) => rm(kvFile + suffix, { force: true })));
    },
    control,
    runtime: null,
  };
}

/** A worker process: waits for its first config, listens, applies later ones, drains on shutdown. */
export async function runWorker(settings: Settings, registry: PluginRegistry, log: Logger): Promise<void> {
  applyTrustedCertificates(settings.luaSslTrustedCertificate);
  // Listen for the primary before anything is awaited: the IPC channel keeps a worker alive only
  // while it has 'message' listeners (a connection pool that lets idle sockets go would not).
  const kvReady = openSharedKv(settings);
  let runtime: ProxyRuntime | null = null;
  const balancing = new WorkerBalancing(settings.dns, log, (m) => process.send?.(m satisfies WorkerMessage));
  let closing = false;
  let queue: Promise<void> = Promise.resolve();
  const shutdown = async (): Promise<void> => {
    if (closing) return;
    closing = true;
    await queue.catch(() => {});
    await runtime?.close();
    balancing.close();
    await (await kvReady.catch(() => null))?.close();
    process.exit(0);
  };
  const apply = async (data: ConfigData): Promise<void> => {
    try {
      const sharedKv = await kvReady;
      if (runtime === null) {
        runtime = await ProxyRuntime.create({ settings, registry, log, sharedKv, workers: settings.workers, reusePort: true, balancing }, data);
        await runtime.listen();
        process.send?.({ type: 'ready' } satisfies WorkerMessage);
      } else {
        await runtime.apply(data);
        process.send?.({ type: 'applied', ok: true } satisfies WorkerMessage);
      }
    } catch (err) {
      log.error({ err: { message: (err as Error).message } }, 'applying configuration failed');
      if (runtime === null) process.exit(1);
      process.send?.({ type: 'applied', ok: false, error: (err as Error).message } satisfies WorkerMessage);
    }
  };
  process.on('message', (m: PrimaryMessage) => {
    if (m.type === 'shutdown') {
      void shutdown();
      return;
    }
    if (m.type === 'config') queue = queue.then(() => apply(m.data));
    else if (m.type === 'health') balancing.receive(m);
    else if (m.type === 'log-level') log.level = m.level;
    else if (m.type === 'stats') {
      process.send?.({ type: 'stats', id: m.id, server: runtime?.stats.snapshot() ?? sumStats([]), memory: processMemory() } satisfies WorkerMessage);
    } else if (m.type === 'metrics') {
      const rt = runtime;
      if (rt === null) return;
      rt.metrics.updateProcessGauges(m.nodeId, rt.stats.snapshot());
      void rt.metrics.json().then((json) => process.send?.({ type: 'metrics', id: m.id, json } satisfies WorkerMessage));
    }
  });
  // The terminal's Ctrl-C reaches the whole process group; the primary coordinates the drain.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => void shutdown());
  process.on('disconnect', () => void shutdown());
  await kvReady.catch((err: unknown) => {
    log.fatal({ err: { message: (err as Error).message } }, 'worker could not open the shared key-value store');
    process.exit(1);
  });
}
