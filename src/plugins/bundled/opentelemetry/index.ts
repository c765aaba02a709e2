/**
 * opentelemetry — traces requests and exports them over OTLP/HTTP (protobuf, as Kong) with the
 * official OpenTelemetry JS SDK. Kong's fields: `traces_endpoint` (`endpoint` is its deprecated
 * alias), `headers`, `resource_attributes` (Kong's `service.name` = kong, `service.version`,
 * `service.instance.id` by default, overridable), `queue` (max_batch_size 200, coalescing delay,
 * max_entries; Kong's deprecated `batch_span_count` / `batch_flush_delay` are stored and, at other
 * than their old defaults 200 / 3, override them with Kong's warning), `send_timeout`,
 * `sampling_rate` (null = the node's PORTCULLIS_TRACING_SAMPLING_RATE, Kong's
 * `tracing_sampling_rate`, default 0.01), `propagation`
 * {extract, inject (+ `preserve`), clear, default_format} over `w3c`, `b3` and `b3-single`,
 * `http_response_header_for_traceid`, the deprecated `header_type` (used, as Kong, only while
 * `propagation` sets none of extract/inject/clear: see `effectiveConfig`). Priority 14.
 *
 * Spans (Kong's names): the root `kong` (server) with the request's attributes (the URL without
 * its query), `kong.router`, `kong.rewrite.plugin.<name>` / `kong.access.plugin.<name>` /
 * `kong.header_filter.plugin.<name>` for plugins' rewrite, access and response handlers,
 * `kong.balancer` per upstream attempt, and `kong.internal.request` for the openid-connect
 * plugin's calls to the identity provider. A global instance starts the trace in its rewrite
 * handler, before routing (rewrite handlers of higher priority run before it and are not
 * recorded); a route/service-scoped one starts it in its own access phase.
 *
 * Which spans: Kong's node setting `tracing_instrumentations` (PORTCULLIS_TRACING_INSTRUMENTATIONS,
 * PluginDeps.tracing). The root span is always recorded (as Kong), the children of the listed
 * kinds only. Deviation: Kong's default is `off` (the plugin then exports nothing); ours is `all`,
 * so a configured plugin traces with no other setting. `off`: no exporter is created and no span
 * recorded; the plugin only propagates (the incoming trace id and flags, or a new unsampled trace,
 * injected upstream; `http_response_header_for_traceid` still set).
 *
 * Refused rather than ignored: `logs_endpoint`, propagation formats other than w3c/b3/b3-single
 * (also as `header_type`), `connect_timeout`/`read_timeout` other than their defaults
 * (the exporter has one timeout: `send_timeout`), and `queue.max_bytes` (spans are not text).
 *
 * A request that is not sampled records nothing but is propagated all the same, as Kong does (a
 * new trace id with the sampled flag off, or the incoming one). Spans wait in Kong's queue (log-queue.ts);
 * an unreachable collector never slows a request, and export failures are logged once a minute.
 */
import { definePlugin, HTTP_PROTOCOLS } from '../../sdk.ts';
import { withLegacyQueueFields } from '../../log-queue.ts';
import { opentelemetrySchema, type Format, type OpentelemetryConfig } from './schema.ts';

/** Kong's extraction order for the deprecated `header_type` (the formats available here). */
const legacyExtract: Format[] = ['b3', 'w3c'];

/**
 * The configuration the handlers run with, derived as Kong derives it at runtime from its
 * deprecated fields (kong/tools/queue.lua `get_plugin_params`, tracing/propagation `get_plugin_params`):
 * - `batch_span_count` / `batch_flush_delay`, when set to other than their old defaults (200, 3),
 *   replace `queue.max_batch_size` / `queue.max_coalescing_delay`, with Kong's warning;
 * - when `propagation` sets none of extract/inject/clear, `header_type` decides: `preserve` (the
 *   default) extracts b3 then w3c and injects the incoming format; `ignore` extracts nothing and
 *   injects `default_format`; a format extracts as `preserve` and injects the incoming format and
 *   that one. Once any of them is set, an unset `extract` / `inject` means none (as Kong).
 */
export function effectiveConfig(config: OpentelemetryConfig, warn: (msg: string) => void): OpentelemetryConfig {
  const queue = withLegacyQueueFields(config.queue, [
    { name: 'batch_span_count', value: config.batch_span_count, oldDefault: 200, replaces: 'max_batch_size', message: 'the batch_span_count parameter is deprecated, please update your configuration to use queue.max_batch_size instead' },
    { name: 'batch_flush_delay', value: config.batch_flush_delay, oldDefault: 3, replaces: 'max_coalescing_delay', message: 'the batch_flush_delay parameter is deprecated, please update your configuration to use queue.max_coalescing_delay instead' },
  ], (_field, message) => warn(message));
  const p = config.propagation;
  let propagation: OpentelemetryConfig['propagation'];
  if (p.extract !== null || p.inject !== null || p.clear !== null) {
    propagation = { ...p, extract: p.extract ?? [], inject: p.inject ?? [], clear: p.clear ?? [] };
  } else if (config.header_type === 'ignore') {
    propagation = { ...p, extract: [], inject: [p.default_format], clear: [] };
  } else if (config.header_type === 'preserve') {
    propagation = { ...p, extract: legacyExtract, inject: ['preserve'], clear: [] };
  } else {
    propagation = { ...p, extract: legacyExtract, inject: ['preserve', config.header_type], clear: [] };
  }
  return { ...config, queue, propagation };
}

export { opentelemetrySchema, defaultSamplingRate, type OpentelemetryConfig } from './schema.ts';

export default definePlugin<OpentelemetryConfig>({
  name: 'opentelemetry',
  version: '0.1.0',
  priority: 14,
  // Kong's schema: protocols_http.
  protocols: HTTP_PROTOCOLS,
  schema: opentelemetrySchema,
  // Kong's plugin schema has no entity_checks of its own: its one check (at_least_one_of
  // traces_endpoint, logs_endpoint) is declared inside the `config` record
  // (kong/plugins/opentelemetry/schema.lua).
  kongEntityChecks: [],
  shorthands(config) {
    // Kong's one shorthand field: `endpoint` becomes `traces_endpoint`.
    const { endpoint, ...rest } = config as Record<string, unknown>;
    if (endpoint !== undefined && endpoint !== null) rest.traces_endpoint ??= endpoint;
    return rest;
  },
  async create(config, deps) {
    // The OpenTelemetry SDK is loaded only when an instance exists: every worker imports the
    // bundled plugins at start, most never trace.
    const { createTracing } = await import('./tracing.ts');
    return createTracing(effectiveConfig(config, (msg) => deps.log.warn({ plugin: 'opentelemetry' }, msg)), deps);
  },
});
