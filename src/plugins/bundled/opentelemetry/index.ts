/**
 * opentelemetry — traces requests and exports them over OTLP/HTTP (protobuf, as Kong) with the
 * official OpenTelemetry JS SDK. Kong's fields: `traces_endpoint` (`endpoint` is its deprecated
 * alias), `headers`, `resource_attributes` (Kong's `service.name` = kong, `service.version`,
 * `service.instance.id` by default, overridable), `queue` (max_batch_size 200, coalescing delay,
 * max_entries; `batch_span_count` / `batch_flush_delay` are rewritten to them), `send_timeout`,
 * `sampling_rate` (null = Kong's `tracing_sampling_rate` default, 0.01), `propagation`
 * {extract, inject (+ `preserve`), clear, default_format} over `w3c`, `b3` and `b3-single`,
 * `http_response_header_for_traceid`. Priority 14.
 *
 * Spans (Kong's names): the root `kong` (server) with the request's attributes (the URL without
 * its query), `kong.router`, `kong.access.plugin.<name>` for each plugin's access phase,
 * `kong.balancer` per upstream attempt, and `kong.internal.request` for the openid-connect
 * plugin's calls to the identity provider. A global instance starts the trace before routing,
 * so everything is covered; a route/service-scoped one starts it in its own access phase.
 *
 * Refused rather than ignored: `logs_endpoint`, propagation formats other than w3c/b3/b3-single,
 * `header_type` other than `preserve`, `connect_timeout`/`read_timeout` other than their defaults
 * (the exporter has one timeout: `send_timeout`), and the queue's retry and byte-limit fields
 * (the SDK's exporter retries by its own policy).
 *
 * An unsampled request costs one random number. Spans wait in the SDK's bounded batch queue;
 * an unreachable collector never slows a request, and export failures are logged once a minute.
 */
import { randomUUID } from 'node:crypto';
import { SpanKind, SpanStatusCode, ROOT_CONTEXT, trace, type Context as OtelContext, type Span, type TextMapGetter, type TextMapSetter, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import { AlwaysOnSampler, BatchSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { z } from 'zod';
import { definePlugin, type LogContext, type RequestContext, type RequestTrace, type SpanAttributes } from '../../sdk.ts';
import { queueSchema } from '../../log-queue.ts';

const formats = ['w3c', 'b3', 'b3-single'] as const;
type Format = typeof formats[number];
const kongFormats = ['w3c', 'b3', 'b3-single', 'jaeger', 'ot', 'datadog', 'aws', 'gcp', 'instana'];

const format = z.string().refine((f) => (formats as readonly string[]).includes(f), {
  error: (i) => (kongFormats.includes(String(i.input)) ? `propagation format '${String(i.input)}' is not available here (w3c, b3, b3-single are)` : `unknown propagation format '${String(i.input)}'`),
});

const onlyDefault = <T extends z.ZodType>(schema: T, def: z.infer<T>, why: string) =>
  (schema as z.ZodType).default(def).refine((v) => v === def, { message: why });

const otelQueue = queueSchema.extend({
  max_batch_size: z.number().int().min(1).max(1_000_000).default(200),
  max_bytes: onlyDefault(z.number().nullable(), null, 'not available for opentelemetry: the span queue is bounded by max_entries'),
  max_retry_time: onlyDefault(z.number(), 60, 'not adjustable: the OTLP exporter retries by its own policy'),
  initial_retry_delay: onlyDefault(z.number(), 0.01, 'not adjustable: the OTLP exporter retries by its own policy'),
  max_retry_delay: onlyDefault(z.number(), 60, 'not adjustable: the OTLP exporter retries by its own policy'),
  concurrency_limit: onlyDefault(z.number(), 1, 'not adjustable for opentelemetry'),
});

export const opentelemetrySchema = z.strictObject({
  traces_endpoint: z.url({ protocol: /^https?$/, error: 'must be an http or https URL (OTLP/HTTP)' }),
  logs_endpoint: onlyDefault(z.string().nullable(), null, 'OpenTelemetry logs are not exported by this gateway; use file-log or http-log'),
  headers: z.record(z.string(), z.string()).nullable().default(null),
  resource_attributes: z.record(z.string(), z.string()).nullable().default(null),
  queue: otelQueue.default(otelQueue.parse({})),
  connect_timeout: onlyDefault(z.number().int(), 1000, 'not adjustable: the exporter has one timeout, send_timeout'),
  send_timeout: z.number().int().min(1).default(5000),
  read_timeout: onlyDefault(z.number().int(), 5000, 'not adjustable: the exporter has one timeout, send_timeout'),
  http_response_header_for_traceid: z.string().min(1).nullable().default(null),
  header_type: onlyDefault(z.string(), 'preserve', 'deprecated; only preserve is available (use propagation)'),
  sampling_rate: z.number().min(0).max(1).nullable().default(null),
  propagation: z.strictObject({
    extract: z.array(format).nullable().default(null),
    inject: z.array(z.string().refine((f) => f === 'preserve' || (formats as readonly string[]).includes(f), { message: 'must be preserve, w3c, b3 or b3-single' })).nullable().default(null),
    clear: z.array(z.string().min(1)).nullable().default(null),
    default_format: format.default('w3c'),
  }).default({ extract: null, inject: null, clear: null, default_format: 'w3c' }),
});

export type OpentelemetryConfig = z.infer<typeof opentelemetrySchema>;

/** Kong's `tracing_sampling_rate` default. */
export const defaultSamplingRate = 0.01;
/** Longer trace headers are ignored (a new trace starts), whatever they hold. */
const maxTraceHeader = 512;

const getter: TextMapGetter<Record<string, string | string[] | undefined>> = {
  get(carrier, key) {
    const v = carrier[key];
    if (v === undefined) return undefined;
    const s = Array.isArray(v) ? v[0] : v;
    return s.length > maxTraceHeader ? undefined : s;
  },
  keys: (carrier) => Object.keys(carrier),
};
const setter: TextMapSetter<Record<string, string>> = { set: (carrier, key, value) => (carrier[key] = value) };

const propagators: Record<Format, { inject(c: OtelContext, carrier: unknown, s: TextMapSetter): void; extract(c: OtelContext, carrier: unknown, g: TextMapGetter): OtelContext }> = {
  w3c: new W3CTraceContextPropagator(),
  b3: new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER }),
  'b3-single': new B3Propagator({ injectEncoding: B3InjectEncoding.SINGLE_HEADER }),
};

function epoch(perf: number): number {
  return performance.timeOrigin + perf;
}

class OtelTrace implements RequestTrace {
  readonly root: Span;
  readonly #tracer: Tracer;
  readonly #ctx: OtelContext;
  constructor(tracer: Tracer, root: Span, ctx: OtelContext) {
    this.#tracer = tracer;
    this.root = root;
    this.#ctx = ctx;
  }
  span(name: string, start: number, end: number, attributes?: SpanAttributes): void {
    const kind = name === 'kong.balancer' ? SpanKind.CLIENT : SpanKind.INTERNAL;
    this.#tracer.startSpan(name, { kind, startTime: epoch(start), attributes }, this.#ctx).end(epoch(end));
  }
  begin(name: string, attributes?: SpanAttributes): (end?: { attributes?: SpanAttributes; error?: string }) => void {
    const s = this.#tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, this.#ctx);
    return (e) => {
      if (e?.attributes) s.setAttributes(e.attributes);
      if (e?.error !== undefined) s.setStatus({ code: SpanStatusCode.ERROR, message: e.error });
      s.end();
    };
  }
}

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
  create(config, deps) {
    const rate = config.sampling_rate ?? defaultSamplingRate;
    const extract: readonly Format[] = (config.propagation.extract ?? ['w3c', 'b3']) as Format[];
    const inject = config.propagation.inject ?? ['preserve'];
    const clear = (config.propagation.clear ?? []).map((h) => h.toLowerCase());
    const defaultFormat = config.propagation.default_format as Format;
    const traceHeader = config.http_response_header_for_traceid;
    const endpoint = new URL(config.traces_endpoint);
    const endpointForLog = `${endpoint.protocol}//${endpoint.host}${endpoint.pathname}`;

    let lastReport = 0;
    let failedSinceReport = 0;
    const inner = new OTLPTraceExporter({ url: config.traces_endpoint, headers: config.headers ?? {}, timeoutMillis: config.send_timeout });
    const exporter: SpanExporter = {
      export(spans: ReadableSpan[], done) {
        inner.export(spans, (result) => {
          if (result.code !== 0) {
            deps.metrics?.queueDropped.labels('opentelemetry', 'export_failed').inc(spans.length);
            failedSinceReport++;
            const now = Date.now();
            if (now - lastReport >= 60_000) {
              lastReport = now;
              deps.log.error({ endpoint: endpointForLog, error: result.error?.message, failed_exports: failedSinceReport }, 'opentelemetry export failed; the spans are dropped');
              failedSinceReport = 0;
            }
          }
          done(result);
        });
      },
      shutdown: () => inner.shutdown(),
      forceFlush: () => inner.forceFlush(),
    };
    const q = config.queue;
    const provider = new TracerProvider({
      sampler: new AlwaysOnSampler(),
      resource: resourceFromAttributes({
        'service.name': 'kong',
        'service.version': '0.1.0',
        'service.instance.id': randomUUID(),
        ...(config.resource_attributes ?? {}),
      }),
      spanProcessors: [new BatchSpanProcessor({
        exporter,
        maxQueueSize: q.max_entries,
        maxExportBatchSize: Math.min(q.max_batch_size, q.max_entries),
        scheduledDelayMillis: q.max_coalescing_delay * 1000,
        exportTimeoutMillis: config.send_timeout,
      })],
    });
    const tracer = provider.getTracer('portcullis');
    const owned = new WeakSet<RequestTrace>();

    const start = (ctx: RequestContext): void => {
      if (ctx.trace !== null) return;
      const headers = ctx.request.headers as Record<string, string | string[] | undefined>;
      let parent: OtelContext = ROOT_CONTEXT;
      let incoming: Format | null = null;
      for (const f of extract) {
        const c = propagators[f].extract(ROOT_CONTEXT, headers, getter);
        if (trace.getSpanContext(c) !== undefined) {
          parent = c;
          incoming = f === 'b3-single' ? 'b3-single' : f === 'b3' && headers.b3 !== undefined ? 'b3-single' : f;
          break;
        }
      }
      const parentSpan = trace.getSpanContext(parent);
      const sampled = parentSpan !== undefined ? (parentSpan.traceFlags & 1) === 1 : Math.random() < rate;
      if (!sampled) return;
      const req = ctx.request;
      const root = tracer.startSpan('kong', {
        kind: SpanKind.SERVER,
        startTime: epoch(ctx.startedPerf),
        attributes: {
          'http.method': req.method, 'http.url': `${req.scheme}://${req.host}:${req.port}${req.path}`, 'http.host': req.host,
          'http.scheme': req.scheme, 'http.flavor': (req as { raw?: { httpVersion?: string } }).raw?.httpVersion ?? '1.1',
          'http.client_ip': req.clientIp, 'net.peer.ip': req.clientIp, 'kong.request.id': ctx.id,
        },
      }, parent);
      const rootCtx = trace.setSpan(parent, root);
      const t = new OtelTrace(tracer, root, rootCtx);
      owned.add(t);
      ctx.trace = t;
      // Propagation upstream: the listed formats (`preserve` = the incoming one, else default_format).
      for (const h of clear) ctx.upstream.removeHeader(h);
      const carrier: Record<string, string> = {};
      for (const f of inject) propagators[f === 'preserve' ? incoming ?? defaultFormat : f as Format].inject(rootCtx, carrier, setter);
      for (const k in carrier) ctx.upstream.setHeader(k, carrier[k]);
      if (traceHeader !== null) ctx.downstreamHeaders.set(traceHeader, root.spanContext().traceId);
    };

    const global = deps.entity.route === null && deps.entity.service === null && deps.entity.consumer === null;
    return {
      ...(global ? { rewrite: (ctx: RequestContext) => start(ctx) } : { access: (ctx: RequestContext) => start(ctx) }),
      log(ctx: LogContext) {
        const t = ctx.trace;
        if (t === null || !owned.has(t)) return;
        const root = (t as OtelTrace).root;
        root.setAttribute('http.status_code', ctx.response.status);
        if (ctx.route !== null) root.setAttribute('http.route', ctx.route.paths?.[0] ?? ctx.route.name ?? ctx.route.id);
        if (ctx.response.status >= 500) root.setStatus({ code: SpanStatusCode.ERROR });
        root.end(epoch(ctx.startedPerf + ctx.latencies.total));
      },
      async close() {
        await provider.shutdown().catch(() => {});
      },
    };
  },
});
