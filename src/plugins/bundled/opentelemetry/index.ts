/**
 * opentelemetry — traces requests and exports them over OTLP/HTTP (protobuf, as Kong) with the
 * official OpenTelemetry JS SDK. Kong's fields: `traces_endpoint` (`endpoint` is its deprecated
 * alias), `headers`, `resource_attributes` (Kong's `service.name` = kong, `service.version`,
 * `service.instance.id` by default, overridable), `queue` (max_batch_size 200, coalescing delay,
 * max_entries; `batch_span_count` / `batch_flush_delay` are rewritten to them), `send_timeout`,
 * `sampling_rate` (null = the node's PORTCULLIS_TRACING_SAMPLING_RATE, Kong's
 * `tracing_sampling_rate`, default 0.01), `propagation`
 * {extract, inject (+ `preserve`), clear, default_format} over `w3c`, `b3` and `b3-single`,
 * `http_response_header_for_traceid`. Priority 14.
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
 * Refused rather than ignored: `logs_endpoint`, propagation formats other than w3c/b3/b3-single,
 * `header_type` other than `preserve`, `connect_timeout`/`read_timeout` other than their defaults
 * (the exporter has one timeout: `send_timeout`), and the queue's retry and byte-limit fields
 * (the SDK's exporter retries by its own policy).
 *
 * A request that is not sampled records nothing but is propagated all the same, as Kong does (a
 * new trace id with the sampled flag off, or the incoming one). Spans wait in the SDK's bounded batch queue;
 * an unreachable collector never slows a request, and export failures are logged once a minute.
 */
import { definePlugin } from '../../sdk.ts';
import { opentelemetrySchema, type OpentelemetryConfig } from './schema.ts';

export { opentelemetrySchema, defaultSamplingRate, type OpentelemetryConfig } from './schema.ts';

export default definePlugin<OpentelemetryConfig>({
  name: 'opentelemetry',
  version: '0.1.0',
  priority: 14,
  schema: opentelemetrySchema,
  shorthands(config) {
    const { endpoint, batch_span_count, batch_flush_delay, ...rest } = config as Record<string, unknown>;
    const out: Record<string, unknown> = { ...rest };
    if (endpoint !== undefined && endpoint !== null) out.traces_endpoint ??= endpoint;
    if ((batch_span_count ?? batch_flush_delay) !== undefined) {
      const queue = { ...(typeof rest.queue === 'object' && rest.queue !== null ? rest.queue as Record<string, unknown> : {}) };
      if (batch_span_count !== undefined && batch_span_count !== null) queue.max_batch_size ??= batch_span_count;
      if (batch_flush_delay !== undefined && batch_flush_delay !== null) queue.max_coalescing_delay ??= batch_flush_delay;
      out.queue = queue;
    }
    return out;
  },
  async create(config, deps) {
    // The OpenTelemetry SDK is loaded only when an instance exists: every worker imports the
    // bundled plugins at start, most never trace.
    const { createTracing } = await import('./tracing.ts');
    return createTracing(config, deps);
  },
});
