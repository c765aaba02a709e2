/**
 * Prometheus metrics with Kong's names, labels, types and buckets (kong/plugins/prometheus
 * exporter), plus `portcullis_*` series Kong does not have. One `ProcessMetrics` per process;
 * a multi-worker node's primary merges the workers' JSON with prom-client's
 * `AggregatorRegistry.aggregate` so one scrape returns the whole node (`NodeScrape`).
 *
 * The request path touches only cached label children (one Map lookup per request), so the
 * prometheus plugin costs a few increments per request.
 */
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { OidcMetrics } from './oidc-metrics.ts';

export const kongLatencyBuckets = [1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 3000, 6000];
export const upstreamLatencyBuckets = [25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000];
export const prometheusContentType = 'text/plain; charset=UTF-8';
const workspace = 'default';

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

export interface MetricGates {
  status_code_metrics: boolean;
  latency_metrics: boolean;
  bandwidth_metrics: boolean;
}

interface RouteChildren {
  codes: Map<string, { inc(v?: number): void }>;
  request: { observe(v: number): void } | null;
  upstream: { observe(v: number): void } | null;
  kong: { observe(v: number): void } | null;
  ingress: { inc(v?: number): void } | null;
  egress: { inc(v?: number): void } | null;
}

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
  readonly #requests: Counter;
  readonly #requestLatency: Histogram;
  readonly #upstreamLatency: Histogram;
  readonly #kongLatency: Histogram;
  readonly #bandwidth: Counter;
  readonly #connections: Gauge;
  readonly #nginxRequests: Gauge;
  readonly #timers: Gauge;
  readonly #vm: Gauge;
  readonly #children = new Map<string, RouteChildren>();
  /** Series from the log plugins' queues (entries dropped when a queue is full). */
  readonly queueDropped: Counter;

  constructor() {
    const r = [this.registry];
    this.#requests = new Counter({ name: 'kong_http_requests_total', help: 'HTTP status codes per consumer/service/route in Kong', labelNames: ['service', 'route', 'code', 'source', 'workspace', 'consumer'], registers: r });
    this.#kongLatency = new Histogram({ name: 'kong_kong_latency_ms', help: 'Latency added by Kong and enabled plugins for each service/route in Kong', labelNames: ['service', 'route', 'workspace'], buckets: kongLatencyBuckets, registers: r });
    this.#upstreamLatency = new Histogram({ name: 'kong_upstream_latency_ms', help: 'Latency added by upstream response for each service/route in Kong', labelNames: ['service', 'route', 'workspace'], buckets: upstreamLatencyBuckets, registers: r });
    this.#requestLatency = new Histogram({ name: 'kong_request_latency_ms', help: 'Total latency incurred during requests for each service/route in Kong', labelNames: ['service', 'route', 'workspace'], buckets: upstreamLatencyBuckets, registers: r });
    this.#bandwidth = new Counter({ name: 'kong_bandwidth_bytes', help: 'Total bandwidth (ingress/egress) throughput in bytes', labelNames: ['service', 'route', 'direction', 'workspace', 'consumer'], registers: r });
    this.#connections = new Gauge({ name: 'kong_nginx_connections_total', help: 'Number of connections by subsystem', labelNames: ['node_id', 'subsystem', 'state'], registers: r });
    this.#nginxRequests = new Gauge({ name: 'kong_nginx_requests_total', help: 'Number of requests total', labelNames: ['node_id', 'subsystem'], registers: r });
    this.#timers = new Gauge({ name: 'kong_nginx_timers', help: 'Number of nginx timers', labelNames: ['state'], registers: r });
    this.#vm = new Gauge({ name: 'kong_memory_workers_lua_vms_bytes', help: 'Allocated bytes in worker Lua VM', labelNames: ['node_id', 'pid', 'kong_subsystem'], registers: r, aggregator: 'sum' });
    this.queueDropped = new Counter({ name: 'portcullis_log_queue_dropped_total', help: 'Log entries dropped because a plugin queue was full or delivery gave up', labelNames: ['plugin', 'reason'], registers: r });
    this.oidc = new OidcMetrics(this.registry);
  }

  #route(s: RequestSample, gates: MetricGates): RouteChildren {
    const key = `${s.service}\0${s.route}\0${s.consumer}`;
    let c = this.#children.get(key);
    if (c === undefined) {
      c = {
        codes: new Map(),
        request: gates.latency_metrics ? this.#requestLatency.labels(s.service, s.route, workspace) : null,
        upstream: gates.latency_metrics ? this.#upstreamLatency.labels(s.service, s.route, workspace) : null,
        kong: gates.latency_metrics ? this.#kongLatency.labels(s.service, s.route, workspace) : null,
        ingress: gates.bandwidth_metrics ? this.#bandwidth.labels(s.service, s.route, 'ingress', workspace, s.consumer) : null,
        egress: gates.bandwidth_metrics ? this.#bandwidth.labels(s.service, s.route, 'egress', workspace, s.consumer) : null,
      };
      this.#children.set(key, c);
    }
    return c;
  }

  /** Records one request, within the plugin's gates (Kong: status_code/latency/bandwidth_metrics). */
  record(s: RequestSample, gates: MetricGates): void {
    const c = this.#route(s, gates);
    if (gates.status_code_metrics) {
      const codeKey = s.source === 'service' ? s.status : -s.status;
      let counter = c.codes.get(String(codeKey));
      if (counter === undefined) {
        counter = this.#requests.labels(s.service, s.route, String(s.status), s.source, workspace, s.consumer);
        c.codes.set(String(codeKey), counter);
      }
      counter.inc();
    }
    if (gates.latency_metrics) {
      (c.request ??= this.#requestLatency.labels(s.service, s.route, workspace)).observe(s.requestLatency);
      if (s.upstreamLatency !== null) (c.upstream ??= this.#upstreamLatency.labels(s.service, s.route, workspace)).observe(s.upstreamLatency);
      (c.kong ??= this.#kongLatency.labels(s.service, s.route, workspace)).observe(s.kongLatency);
    }
    if (gates.bandwidth_metrics) {
      (c.ingress ??= this.#bandwidth.labels(s.service, s.route, 'ingress', workspace, s.consumer)).inc(s.ingressBytes);
      (c.egress ??= this.#bandwidth.labels(s.service, s.route, 'egress', workspace, s.consumer)).inc(s.egressBytes);
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

  json(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    return this.registry.getMetricsAsJSON();
  }
}

/** Node-level series the control plane owns: node info, datastore reachability, shared dicts. */
export class NodeMetrics {
  readonly registry = new Registry();
  readonly #reachable: Gauge;
  readonly #info: Gauge;
  constructor(nodeId: string, version: string) {
    const r = [this.registry];
    this.#info = new Gauge({ name: 'kong_node_info', help: 'Kong Node metadata information', labelNames: ['node_id', 'version'], registers: r, aggregator: 'first' });
    this.#info.set({ node_id: nodeId, version }, 1);
    this.#reachable = new Gauge({ name: 'kong_datastore_reachable', help: 'Datastore reachable from Kong, 0 is unreachable', registers: r, aggregator: 'first' });
    // No nginx shared dictionaries exist here; the families are declared for dashboards' sake.
    new Gauge({ name: 'kong_memory_lua_shared_dict_bytes', help: 'Allocated slabs in bytes in a shared_dict', labelNames: ['node_id', 'shared_dict', 'kong_subsystem'], registers: r, aggregator: 'first' });
    new Gauge({ name: 'kong_memory_lua_shared_dict_total_bytes', help: 'Total capacity in bytes of a shared_dict', labelNames: ['node_id', 'shared_dict', 'kong_subsystem'], registers: r, aggregator: 'first' });
    new Gauge({ name: 'kong_upstream_target_health', help: 'Health status of targets of upstream. States = healthchecks_off|healthy|unhealthy|dns_error, value is 1 when state is populated.', labelNames: ['upstream', 'target', 'address', 'state', 'subsystem'], registers: r, aggregator: 'first' });
    new Counter({ name: 'kong_nginx_metric_errors_total', help: 'Number of nginx-lua-prometheus errors', registers: r, aggregator: 'first' });
  }

  setReachable(ok: boolean): void {
    this.#reachable.set(ok ? 1 : 0);
  }

  json(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    return this.registry.getMetricsAsJSON();
  }
}

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

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
