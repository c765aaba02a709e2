/**
 * Prometheus metrics with Kong's names, labels, types and buckets (kong/plugins/prometheus
 * exporter), plus `portcullis_*` series Kong does not have. One `ProcessMetrics` per process;
 * a multi-worker node's primary merges the workers' JSON with prom-client's
 * `AggregatorRegistry.aggregate` so one scrape returns the whole node (`NodeScrape`).
 *
 * The request path touches only cached label children (one Map lookup per request), so the
 * prometheus plugin costs a few increments per request.
 */
import { AggregatorRegistry, Counter, Gauge, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { OidcMetrics } from './oidc-metrics.ts';

export const kongLatencyBuckets = [1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 3000, 6000];
export const upstreamLatencyBuckets = [25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000];
export const prometheusContentType = 'text/plain; charset=UTF-8';
const workspace = 'default';

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** What the prometheus plugin records for one request (Kong's log-phase values). */
export interface RequestSample {
  /** Service name, else host ('' when none). */
  service: string;
  /** Route name, else id. */
  route: string;
  status: number;
  /** `service` when the upstream answered, `kong` when the gateway did. */
  source: 'service' | 'kong';
  /** Username with per_consumer, else ''. */
  consumer: string;
  requestLatency: number;
  upstreamLatency: number | null;
  kongLatency: number;
  ingressBytes: number;
  egressBytes: number;
}

/** What the prometheus plugin records for one stream session (Kong's stream log phase). */
export interface SessionSample {
  service: string;
  route: string;
  status: number;
  source: 'service' | 'kong';
  sessionLatency: number;
  kongLatency: number;
  ingressBytes: number;
  egressBytes: number;
}

export interface MetricGates {
  status_code_metrics: boolean;
  latency_metrics: boolean;
  bandwidth_metrics: boolean;
}

/** A histogram kept as plain numbers on the request path (Kong's buckets; `le` inclusive). */
class LocalHistogram {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  readonly #bounds: readonly number[];
  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(v: number): void {
    const b = this.#bounds;
    let i = 0;
    while (i < b.length && v > b[i]) i++;
    this.counts[i]++;
    this.sum += v;
    this.count++;
  }
  /** prom-client's JSON values of this histogram (cumulative buckets, then _sum and _count). */
  values(name: string, labels: Record<string, string>): MetricValue<string>[] {
    const out: MetricValue<string>[] = [];
    let acc = 0;
    for (let i = 0; i < this.#bounds.length; i++) {
      acc += this.counts[i];
      out.push({ labels: { ...labels, le: this.#bounds[i] }, value: acc, metricName: `${name}_bucket` } as MetricValue<string>);
    }
    acc += this.counts[this.#bounds.length];
    out.push({ labels: { ...labels, le: '+Inf' }, value: acc, metricName: `${name}_bucket` } as MetricValue<string>);
    out.push({ labels, value: this.sum, metricName: `${name}_sum` } as MetricValue<string>);
    out.push({ labels, value: this.count, metricName: `${name}_count` } as MetricValue<string>);
    return out;
  }
}

/** One more response of `status` from `source` (key: status * 2 + 1 when the gateway answered). */
function countCode(codes: Map<number, number>, status: number, source: 'service' | 'kong'): void {
  const code = status * 2 + (source === 'kong' ? 1 : 0);
  codes.set(code, (codes.get(code) ?? 0) + 1);
}

/** Everything recorded for one service/route/consumer. */
interface Series {
  service: string;
  route: string;
  consumer: string;
  /** status * 2 + (source kong ? 1 : 0) → count */
  codes: Map<number, number>;
  request: LocalHistogram | null;
  upstream: LocalHistogram | null;
  kong: LocalHistogram | null;
  ingress: number;
  egress: number;
}

/** Everything recorded for one stream service/route (no consumer on a stream session). */
interface StreamSeries {
  service: string;
  route: string;
  /** status * 2 + (source kong ? 1 : 0) → count */
  codes: Map<number, number>;
  session: LocalHistogram | null;
  kong: LocalHistogram | null;
  ingress: number;
  egress: number;
}

const help = {
  requests: 'HTTP status codes per consumer/service/route in Kong',
  kong: 'Latency added by Kong and enabled plugins for each service/route in Kong',
  upstream: 'Latency added by upstream response for each service/route in Kong',
  request: 'Total latency incurred during requests for each service/route in Kong',
  bandwidth: 'Total bandwidth (ingress/egress) throughput in bytes',
  sessions: 'Stream status codes per service/route in Kong',
  session: 'latency incurred in stream session for each service/route in Kong',
};

/** Counters of one process's listeners, as Kong's nginx stub_status names. */
export interface ConnectionCounts {
  connections_accepted: number;
  connections_active: number;
  connections_handled: number;
  connections_reading: number;
  connections_writing: number;
  connections_waiting: number;
  total_requests: number;
}

export class ProcessMetrics {
  readonly registry = new Registry();
  readonly oidc: OidcMetrics;
  readonly #connections: Gauge;
  readonly #nginxRequests: Gauge;
  readonly #timers: Gauge;
  readonly #vm: Gauge;
  /**
   * Kong's per-request families are kept as plain numbers per service/route/consumer (a Map
   * lookup and a few additions per request) and turned into prom-client's JSON at scrape time
   * (`json()`), instead of prom-client's label hashing on every observation.
   */
  readonly #series = new Map<string, Series>();
  /** Stream sessions, per service/route (Kong's stream subsystem families). */
  readonly #streamSeries = new Map<string, StreamSeries>();
  /** Series from the log plugins' queues (entries dropped when a queue is full). */
  readonly queueDropped: Counter;

  constructor() {
    const r = [this.registry];
    this.#connections = new Gauge({ name: 'kong_nginx_connections_total', help: 'Number of connections by subsystem', labelNames: ['node_id', 'subsystem', 'state'], registers: r });
    this.#nginxRequests = new Gauge({ name: 'kong_nginx_requests_total', help: 'Number of requests total', labelNames: ['node_id', 'subsystem'], registers: r });
    this.#timers = new Gauge({ name: 'kong_nginx_timers', help: 'Number of nginx timers', labelNames: ['state'], registers: r });
    this.#vm = new Gauge({ name: 'kong_memory_workers_lua_vms_bytes', help: 'Allocated bytes in worker Lua VM', labelNames: ['node_id', 'pid', 'kong_subsystem'], registers: r, aggregator: 'sum' });
    this.queueDropped = new Counter({ name: 'portcullis_log_queue_dropped_total', help: 'Log entries dropped because a plugin queue was full or delivery gave up', labelNames: ['plugin', 'reason'], registers: r });
    this.oidc = new OidcMetrics(this.registry);
  }

  /** Records one request, within the plugin's gates (Kong: status_code/latency/bandwidth_metrics). */
  record(s: RequestSample, gates: MetricGates): void {
    const key = s.consumer === '' ? `${s.service}\0${s.route}` : `${s.service}\0${s.route}\0${s.consumer}`;
    let c = this.#series.get(key);
    if (c === undefined) {
      c = { service: s.service, route: s.route, consumer: s.consumer, codes: new Map(), request: null, upstream: null, kong: null, ingress: 0, egress: 0 };
      this.#series.set(key, c);
    }
    if (gates.status_code_metrics) countCode(c.codes, s.status, s.source);
    if (gates.latency_metrics) {
      (c.request ??= new LocalHistogram(upstreamLatencyBuckets)).observe(s.requestLatency);
      if (s.upstreamLatency !== null) (c.upstream ??= new LocalHistogram(upstreamLatencyBuckets)).observe(s.upstreamLatency);
      (c.kong ??= new LocalHistogram(kongLatencyBuckets)).observe(s.kongLatency);
    }
    if (gates.bandwidth_metrics) {
      c.ingress += s.ingressBytes;
      c.egress += s.egressBytes;
    }
  }

  /**
   * Records one stream session (Kong's stream subsystem: kong_stream_sessions_total,
   * kong_session_duration_ms, and kong_kong_latency_ms / kong_bandwidth_bytes with an empty
   * consumer), within the same gates.
   */
  recordSession(s: SessionSample, gates: MetricGates): void {
    const key = `${s.service}\0${s.route}`;
    let c = this.#streamSeries.get(key);
    if (c === undefined) {
      c = { service: s.service, route: s.route, codes: new Map(), session: null, kong: null, ingress: 0, egress: 0 };
      this.#streamSeries.set(key, c);
    }
    if (gates.status_code_metrics) countCode(c.codes, s.status, s.source);
    if (gates.latency_metrics) {
      (c.session ??= new LocalHistogram(upstreamLatencyBuckets)).observe(s.sessionLatency);
      (c.kong ??= new LocalHistogram(kongLatencyBuckets)).observe(s.kongLatency);
    }
    if (gates.bandwidth_metrics) {
      c.ingress += s.ingressBytes;
      c.egress += s.egressBytes;
    }
  }

  /** Sets this process's gauges (connections, requests, memory) just before a scrape. */
  updateProcessGauges(nodeId: string, counts: ConnectionCounts): void {
    const c = this.#connections;
    c.set({ node_id: nodeId, subsystem: 'http', state: 'accepted' }, counts.connections_accepted);
    c.set({ node_id: nodeId, subsystem: 'http', state: 'handled' }, counts.connections_handled);
    c.set({ node_id: nodeId, subsystem: 'http', state: 'total' }, counts.connections_accepted);
    c.set({ node_id: nodeId, subsystem: 'http', state: 'active' }, counts.connections_active);
    c.set({ node_id: nodeId, subsystem: 'http', state: 'reading' }, counts.connections_reading);
    c.set({ node_id: nodeId, subsystem: 'http', state: 'writing' }, counts.connections_writing);
    c.set({ node_id: nodeId, subsystem: 'http', state: 'waiting' }, counts.connections_waiting);
    this.#nginxRequests.set({ node_id: nodeId, subsystem: 'http' }, counts.total_requests);
    // Node has no timer wheel to report; the series exist so dashboards built on them work.
    this.#timers.set({ state: 'running' }, 0);
    this.#timers.set({ state: 'pending' }, 0);
    this.#vm.reset();
    this.#vm.set({ node_id: nodeId, pid: String(process.pid), kong_subsystem: 'http' }, process.memoryUsage().heapUsed);
  }

  /** Kong's per-request families in prom-client's JSON shape (what `getMetricsAsJSON` gives). */
  #requestFamilies(): MetricsJson {
    const requests: MetricValue<string>[] = [];
    const bandwidth: MetricValue<string>[] = [];
    const hist = { kong: [] as MetricValue<string>[], upstream: [] as MetricValue<string>[], request: [] as MetricValue<string>[] };
    for (const c of this.#series.values()) {
      for (const [code, n] of c.codes) {
        requests.push({ labels: { service: c.service, route: c.route, code: String(code >> 1), source: (code & 1) === 1 ? 'kong' : 'service', workspace, consumer: c.consumer }, value: n });
      }
      const hl = { service: c.service, route: c.route, workspace };
      if (c.kong !== null) hist.kong.push(...c.kong.values('kong_kong_latency_ms', hl));
      if (c.upstream !== null) hist.upstream.push(...c.upstream.values('kong_upstream_latency_ms', hl));
      if (c.request !== null) hist.request.push(...c.request.values('kong_request_latency_ms', hl));
      if (c.ingress > 0 || c.egress > 0) {
        bandwidth.push({ labels: { service: c.service, route: c.route, direction: 'ingress', workspace, consumer: c.consumer }, value: c.ingress });
        bandwidth.push({ labels: { service: c.service, route: c.route, direction: 'egress', workspace, consumer: c.consumer }, value: c.egress });
      }
    }
    const sessions: MetricValue<string>[] = [];
    const sessionHist: MetricValue<string>[] = [];
    for (const c of this.#streamSeries.values()) {
      for (const [code, n] of c.codes) {
        sessions.push({ labels: { service: c.service, route: c.route, code: String(code >> 1), source: (code & 1) === 1 ? 'kong' : 'service', workspace }, value: n });
      }
      const hl = { service: c.service, route: c.route, workspace };
      if (c.kong !== null) hist.kong.push(...c.kong.values('kong_kong_latency_ms', hl));
      if (c.session !== null) sessionHist.push(...c.session.values('kong_session_duration_ms', hl));
      if (c.ingress > 0 || c.egress > 0) {
        bandwidth.push({ labels: { service: c.service, route: c.route, direction: 'ingress', workspace, consumer: '' }, value: c.ingress });
        bandwidth.push({ labels: { service: c.service, route: c.route, direction: 'egress', workspace, consumer: '' }, value: c.egress });
      }
    }
    const family = (name: string, h: string, type: string, values: MetricValue<string>[]) => ({ name, help: h, type, aggregator: 'sum', values }) as unknown as MetricsJson[number];
    const families = [
      family('kong_http_requests_total', help.requests, 'counter', requests),
      family('kong_kong_latency_ms', help.kong, 'histogram', hist.kong),
      family('kong_upstream_latency_ms', help.upstream, 'histogram', hist.upstream),
      family('kong_request_latency_ms', help.request, 'histogram', hist.request),
      family('kong_bandwidth_bytes', help.bandwidth, 'counter', bandwidth),
    ];
    // The stream families exist once a stream session was recorded (Kong appends them when
    // stream_listen is on).
    if (this.#streamSeries.size > 0) {
      families.push(family('kong_stream_sessions_total', help.sessions, 'counter', sessions), family('kong_session_duration_ms', help.session, 'histogram', sessionHist));
    }
    return families;
  }

  async json(): Promise<MetricsJson> {
    return [...this.#requestFamilies(), ...(await this.registry.getMetricsAsJSON())];
  }
}

const targetStates = ['healthchecks_off', 'healthy', 'unhealthy', 'dns_error'] as const;

/** Node-level series the control plane owns: node info, datastore reachability, shared dicts. */
export class NodeMetrics {
  readonly registry = new Registry();
  readonly #reachable: Gauge;
  readonly #info: Gauge;
  readonly #targetHealth: Gauge;
  constructor(nodeId: string, version: string) {
    const r = [this.registry];
    this.#info = new Gauge({ name: 'kong_node_info', help: 'Kong Node metadata information', labelNames: ['node_id', 'version'], registers: r, aggregator: 'first' });
    this.#info.set({ node_id: nodeId, version }, 1);
    this.#reachable = new Gauge({ name: 'kong_datastore_reachable', help: 'Datastore reachable from Kong, 0 is unreachable', registers: r, aggregator: 'first' });
    // No nginx shared dictionaries exist here; the families are declared for dashboards' sake.
    new Gauge({ name: 'kong_memory_lua_shared_dict_bytes', help: 'Allocated slabs in bytes in a shared_dict', labelNames: ['node_id', 'shared_dict', 'kong_subsystem'], registers: r, aggregator: 'first' });
    new Gauge({ name: 'kong_memory_lua_shared_dict_total_bytes', help: 'Total capacity in bytes of a shared_dict', labelNames: ['node_id', 'shared_dict', 'kong_subsystem'], registers: r, aggregator: 'first' });
    this.#targetHealth = new Gauge({ name: 'kong_upstream_target_health', help: 'Health status of targets of upstream. States = healthchecks_off|healthy|unhealthy|dns_error, value is 1 when state is populated.', labelNames: ['upstream', 'target', 'address', 'state', 'subsystem'], registers: r, aggregator: 'first' });
    new Counter({ name: 'kong_nginx_metric_errors_total', help: 'Number of nginx-lua-prometheus errors', registers: r, aggregator: 'first' });
  }

  setReachable(ok: boolean): void {
    this.#reachable.set(ok ? 1 : 0);
  }

  /**
   * `kong_upstream_target_health` as Kong's exporter writes it at each scrape: emptied, then four
   * series per address (one per state, 1 for the one it is in); nothing when no prometheus
   * instance has `upstream_health_metrics` (`series` null).
   */
  setTargetHealth(series: ReadonlyArray<{ upstream: string; target: string; address: string; state: string }> | null): void {
    this.#targetHealth.reset();
    if (series === null) return;
    for (const s of series) {
      for (const state of targetStates) this.#targetHealth.set({ upstream: s.upstream, target: s.target, address: s.address, state, subsystem: 'http' }, s.state === state ? 1 : 0);
    }
  }

  json(): Promise<MetricsJson> {
    return this.registry.getMetricsAsJSON();
  }
}

/** The kinds whose values only grow: kept from workers that exited, so the node's totals never drop. */
function monotonic(json: MetricsJson): MetricsJson {
  return json.filter((m) => String(m.type) === 'counter' || String(m.type) === 'histogram');
}

/**
 * Merges the node's registries into one exposition (prom-client's cluster aggregation). Workers
 * that exited leave their counters and histograms behind (`retire`), so a restart never lowers a
 * total; a worker that does not answer a scrape in time is represented by its last answer.
 */
export class NodeScrape {
  #retired: MetricsJson | null = null;
  readonly #last = new Map<number, MetricsJson>();

  /** A worker answered a scrape. */
  remember(workerId: number, json: MetricsJson): void {
    this.#last.set(workerId, json);
  }

  lastOf(workerId: number): MetricsJson | undefined {
    return this.#last.get(workerId);
  }

  /** A worker exited: its last counters become part of the node's retired totals. */
  async retire(workerId: number): Promise<void> {
    const last = this.#last.get(workerId);
    this.#last.delete(workerId);
    if (last === undefined) return;
    const parts = this.#retired === null ? [monotonic(last)] : [this.#retired, monotonic(last)];
    this.#retired = (await AggregatorRegistry.aggregate(parts).getMetricsAsJSON()) as MetricsJson;
  }

  async render(parts: MetricsJson[]): Promise<string> {
    const all = this.#retired === null ? parts : [...parts, this.#retired];
    return AggregatorRegistry.aggregate(all).metrics();
  }
}
