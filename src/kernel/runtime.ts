/**
 * The proxy side of a node (one per worker process): Snapshot swaps, listeners, drain.
 * Config arrives as ConfigData (from the store in a single process, over IPC from the primary
 * with several workers); applying it builds a whole new Snapshot and swaps one reference.
 */
import { ConnectionStats } from './stats.ts';
import { productToken } from './version.ts';
import { readFileSync } from 'node:fs';
import type { ConfigData } from '../config/types.ts';
import { emptyConfig } from '../config/types.ts';
import type { PluginRegistry } from '../plugins/registry.ts';
import type { Logger } from '../plugins/sdk.ts';
import { ProxyPools } from '../proxy/pools.ts';
import { LocalBalancing, type Balancing } from '../balancer/balancing.ts';
import type { KeyValueStore } from '../storage/ports.ts';
import { RequestHandler } from './handler.ts';
import { drain, listen, type Listener } from './server.ts';
import type { Settings } from './settings.ts';
import { buildSnapshot, retiredInstances, type Snapshot } from './snapshot.ts';
import { parseTrustedIps } from './trusted.ts';
import { certificateStore, tlsMaterial } from '../tls/index.ts';
import type { CertificateStore } from '../tls/store.ts';
import { AccessLog } from '../observability/access-log.ts';
import { ProcessMetrics } from '../observability/metrics.ts';
import { pino } from 'pino';
import { StreamListener } from '../stream/proxy.ts';
import { streamConfigOf } from './stream.ts';
import { readProxyHeader } from './preamble.ts';

export interface ProxyRuntimeOptions {
  settings: Settings;
  registry: PluginRegistry;
  log: Logger;
  sharedKv: KeyValueStore;
  /** Worker processes on this node (plugins use it to refuse per-process secrets). */
  workers: number;
  reusePort: boolean;
  /** Balancers and health states of this process (default: a local set, health checks included). */
  balancing?: Balancing;
  now?: () => number;
}

export class ProxyRuntime {
  readonly #o: ProxyRuntimeOptions;
  readonly #pools: ProxyPools;
  readonly #balancing: Balancing;
  /** Whether this runtime created `#balancing` (and so closes it). */
  readonly #ownsBalancing: boolean;
  readonly #handler: RequestHandler;
  #listeners: Listener[] = [];
  /** Kong's stream_listen listeners (src/stream/). */
  #streamListeners: StreamListener[] = [];
  /** Certificates of the TLS listeners (null until listen(), or without ssl listeners). */
  #certificates: CertificateStore | null = null;
  /** Connection/request counters of this process's listeners (GET /status). */
  readonly stats = new ConnectionStats();
  /** This process's Prometheus metrics (plugins record into it; scraped by the node). */
  readonly metrics: ProcessMetrics;
  readonly #accessLog: AccessLog | null;
  #version = 0;
  /** The config the current Snapshot was built from (the certificate store reads it too). */
  #data: ConfigData;
  #applying: Promise<void> = Promise.resolve();
  #pending: ConfigData | null = null;
  #closed = false;
  readonly #retiring = new Set<Promise<void>>();

  private constructor(o: ProxyRuntimeOptions, first: Snapshot, pools: ProxyPools, metrics: ProcessMetrics, data: ConfigData, balancing: Balancing) {
    this.#o = o;
    this.#data = data;
    this.#pools = pools;
    this.#balancing = balancing;
    this.#ownsBalancing = o.balancing === undefined;
    this.metrics = metrics;
    const h = o.settings.headers;
    this.#accessLog = accessLogOf(o);
    this.#handler = new RequestHandler(first, {
      log: o.log,
      trusted: parseTrustedIps(o.settings.trustedIps),
      realIpFromProxyProtocol: o.settings.realIpHeader === 'proxy_protocol',
      maxBodySize: o.settings.maxBodySize,
      bufferCap: o.settings.bodyBufferCap,
      clientBodyTimeout: o.settings.clientBodyTimeout,
      accessLog: this.#accessLog,
      serverHeader: h.server ? productToken : null,
      viaHeader: h.via ? `1.1 ${productToken}` : null,
      kongHeaders: {
        proxyLatency: h.proxyLatency, upstreamLatency: h.upstreamLatency, responseLatency: h.responseLatency,
        upstreamStatus: h.upstreamStatus, requestId: h.requestId, requestIdUpstream: o.settings.headersUpstream.requestId,
      },
      clientCertHeader: o.settings.clientCertHeader,
      stats: this.stats,
      now: o.now ?? Date.now,
    });
  }

  static async create(o: ProxyRuntimeOptions, initial: ConfigData = emptyConfig()): Promise<ProxyRuntime> {
    const pools = new ProxyPools({
      tlsVerifyDefault: o.settings.upstreamTlsVerify,
      ca: o.settings.upstreamCaFile ? readFileSync(o.settings.upstreamCaFile, 'utf8') : undefined,
      leanClient: o.settings.upstreamClient !== 'undici',
    });
    const metrics = new ProcessMetrics();
    const balancing = o.balancing ?? new LocalBalancing(o.settings.dns, o.log, o.settings.upstreamCaFile ? readFileSync(o.settings.upstreamCaFile, 'utf8') : null);
    let first: Snapshot;
    try {
      first = await buildSnapshot(initial, 1, ProxyRuntime.#deps(o, pools, metrics, balancing), null);
    } catch (err) {
      if (o.balancing === undefined) balancing.close();
      throw err;
    }
    const rt = new ProxyRuntime(o, first, pools, metrics, initial, balancing);
    rt.#version = 1;
    return rt;
  }

  static #deps(o: ProxyRuntimeOptions, pools: ProxyPools, metrics: ProcessMetrics, balancing: Balancing) {
    return { registry: o.registry, pools, balancing, log: o.log, sharedKv: o.sharedKv, workers: o.workers, database: o.settings.database, escapedSlashes: o.settings.pathEscapedSlashes, metrics, tracing: o.settings.tracing, now: o.now ?? Date.now };
  }

  /** This process's balancers and health states. */
  get balancing(): Balancing {
    return this.#balancing;
  }

  get snapshot(): Snapshot {
    return this.#handler.snapshot;
  }

  /**
   * Builds and swaps in a new Snapshot. Calls are serialized; when several arrive while one is
   * being built, only the newest is applied. Rejects (leaving the running config) on failure.
   */
  apply(data: ConfigData): Promise<void> {
    this.#pending = data;
    const run = this.#applying.then(async () => {
      const next = this.#pending;
      if (next === null || this.#closed) return;
      this.#pending = null;
      const old = this.#handler.snapshot;
      const snap = await buildSnapshot(next, ++this.#version, ProxyRuntime.#deps(this.#o, this.#pools, this.metrics, this.#balancing), old);
      // New handshakes use the new certificates; open connections keep theirs.
      this.#certificates?.update(tlsMaterial(next));
      this.#data = next;
      this.#handler.snapshot = snap;
      this.#pools.retain(new Set([...[...snap.targets.values()].map((t) => t.key), ...[...snap.balanced.values()].flatMap((b) => b.poolKeys())]));
      this.#retire(old, snap);
    });
    this.#applying = run.catch(() => {});
    return run;
  }

  /** Closes the plugin instances the new Snapshot dropped, once the old one has no requests. */
  #retire(old: Snapshot, next: Snapshot): void {
    const dropped = retiredInstances(old, next);
    if (dropped.length === 0) return;
    const deadline = Date.now() + this.#o.settings.drainTimeout;
    const p = (async () => {
      while (old.inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await Promise.allSettled(dropped.map(async (i) => i.handlers.close?.()));
    })();
    this.#retiring.add(p);
    void p.finally(() => this.#retiring.delete(p));
  }

  async listen(): Promise<void> {
    const s = this.#o.settings;
    if (s.proxyListen.some((l) => l.ssl) || s.streamListen.some((l) => l.ssl)) {
      this.#certificates = await certificateStore(s);
      this.#certificates.update(tlsMaterial(this.#data));
    }
    const certificates = this.#certificates ?? undefined;
    for (const spec of s.proxyListen) {
      this.#listeners.push(await listen(spec, this.#handler, { maxHeaderSize: s.maxHeaderSize, certificates, reusePort: this.#o.reusePort, stats: this.stats, log: this.#o.log }));
    }
    const trusted = parseTrustedIps(s.trustedIps);
    const upstreamCa = s.upstreamCaFile ? readFileSync(s.upstreamCaFile, 'utf8') : null;
    for (const spec of s.streamListen) {
      this.#streamListeners.push(await StreamListener.open({
        spec, config: () => streamConfigOf(this.#handler.snapshot), certificates, trusted, readProxyHeader, reusePort: this.#o.reusePort, log: this.#o.log,
        upstream: { tlsVerifyDefault: s.upstreamTlsVerify, ca: upstreamCa },
      }));
    }
  }

  /** Bound stream ports, in stream_listen order. */
  streamPorts(): number[] {
    return this.#streamListeners.map((l) => l.port());
  }

  /** Bound ports, in proxy_listen order. */
  ports(): number[] {
    return this.#listeners.map((l) => l.port());
  }

  /** Stop accepting, let in-flight requests finish (bounded by drain_timeout), close everything. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#handler.stopKeepAlive();
    await Promise.all([drain(this.#listeners, this.#o.settings.drainTimeout), ...this.#streamListeners.map((l) => l.close(this.#o.settings.drainTimeout))]);
    await this.#applying;
    await Promise.allSettled([...this.#retiring]);
    const snap = this.#handler.snapshot;
    await Promise.allSettled([...new Set(snap.instances.values())].map(async (i) => i.handlers.close?.()));
    await this.#pools.close();
    if (this.#ownsBalancing) this.#balancing.close();
    await this.#accessLog?.close();
  }
}

/**
 * The access log sink: `stdout` writes into the logger's own destination (stdout in production,
 * the test's capture stream in tests), a path appends to that file.
 */
function accessLogOf(o: ProxyRuntimeOptions): AccessLog | null {
  const a = o.settings.accessLog;
  if (a.target === 'off') return null;
  const onError = (err: Error): void => o.log.error({ err: { message: err.message, code: (err as NodeJS.ErrnoException).code } }, 'access log cannot be written; access lines are dropped');
  if (a.target === 'stdout') {
    const stream = (o.log as unknown as Record<symbol, { write(s: string): unknown } | undefined>)[pino.symbols.streamSym];
    return new AccessLog(stream ?? process.stdout, a.format, onError);
  }
  return new AccessLog(a.target, a.format, onError);
}
