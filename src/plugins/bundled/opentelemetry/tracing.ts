/**
 * The opentelemetry plugin's handlers (see index.ts for the fields and behaviour), loaded only
 * when an instance is created.
 */
import { randomFillSync, randomUUID } from 'node:crypto';
import { SpanKind, SpanStatusCode, ROOT_CONTEXT, trace, type Context as OtelContext, type Span, type TextMapGetter, type TextMapSetter, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import { AlwaysOnSampler, BatchSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { allInstrumentations, type Instrumentations, type PluginDeps, type PluginHandlers, type RequestContext, type RequestEnd, type RequestTrace, type SpanAttributes, type UpstreamRequest, unrecordedTrace } from '../../sdk.ts';
import { defaultSamplingRate, type Format, type OpentelemetryConfig } from './schema.ts';
import { LogThrottle } from '../../../observability/log-throttle.ts';

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
/** Writes straight into the upstream request (no carrier object in between). */
const setter: TextMapSetter<UpstreamRequest> = { set: (up, key, value) => up.setHeader(key, value) };

const propagators: Record<Format, { inject(c: OtelContext, carrier: unknown, s: TextMapSetter): void; extract(c: OtelContext, carrier: unknown, g: TextMapGetter): OtelContext }> = {
  w3c: new W3CTraceContextPropagator(),
  b3: new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER }),
  'b3-single': new B3Propagator({ injectEncoding: B3InjectEncoding.SINGLE_HEADER }),
};

function epoch(perf: number): number {
  return performance.timeOrigin + perf;
}

class OtelTrace implements RequestTrace {
  readonly recording = true;
  readonly root: Span;
  readonly #tracer: Tracer;
  readonly #ctx: OtelContext;
  readonly router: boolean;
  readonly balancer: boolean;
  readonly pluginRewrite: boolean;
  readonly pluginAccess: boolean;
  readonly pluginHeaderFilter: boolean;
  readonly httpClient: boolean;
  constructor(tracer: Tracer, root: Span, ctx: OtelContext, on: Instrumentations) {
    this.#tracer = tracer;
    this.root = root;
    this.#ctx = ctx;
    this.router = on.router;
    this.balancer = on.balancer;
    this.pluginRewrite = on.pluginRewrite;
    this.pluginAccess = on.pluginAccess;
    this.pluginHeaderFilter = on.pluginHeaderFilter;
    this.httpClient = on.httpClient;
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
  end(request: RequestEnd): void {
    const root = this.root;
    root.setAttribute('http.status_code', request.status);
    const route = request.route;
    if (route !== null) root.setAttribute('http.route', route.paths?.[0] ?? route.name ?? route.id);
    if (request.status >= 500) root.setStatus({ code: SpanStatusCode.ERROR });
    root.end(epoch(request.endPerf));
  }
}

/**
 * A trace id and a span id (32 + 16 hex digits) for a request that is propagated but not
 * recorded: cryptographically random, from a pool filled 4 KB at a time (a synchronous
 * randomBytes() per request cost ~10 µs here, an OpenSSL call each time; the SDK's
 * RandomIdGenerator draws Math.random() four bytes at a time).
 */
const idPool = Buffer.allocUnsafe(24 * 170);
let idAt = idPool.length;
function freshIds(): string {
  if (idAt === idPool.length) {
    randomFillSync(idPool);
    idAt = 0;
  }
  idAt += 24;
  return idPool.toString('hex', idAt - 24, idAt);
}

/** The incoming trace context of the first `extract` format that carries one, and that format as `preserve` answers it. */
function extractParent(headers: Record<string, string | string[] | undefined>, extract: readonly Format[]): { parent: OtelContext; incoming: Format | null } {
  // Most requests carry no trace context: then nothing is parsed.
  if (headers.traceparent === undefined && headers.b3 === undefined && headers['x-b3-traceid'] === undefined) return { parent: ROOT_CONTEXT, incoming: null };
  for (const f of extract) {
    const c = propagators[f].extract(ROOT_CONTEXT, headers, getter);
    if (trace.getSpanContext(c) !== undefined) {
      return { parent: c, incoming: f === 'b3-single' ? 'b3-single' : f === 'b3' && headers.b3 !== undefined ? 'b3-single' : f };
    }
  }
  return { parent: ROOT_CONTEXT, incoming: null };
}

export function createTracing(config: OpentelemetryConfig, deps: PluginDeps): PluginHandlers {
    // Kong's node settings tracing_instrumentations / tracing_sampling_rate (PluginDeps.tracing).
    const off = deps.tracing?.off ?? false;
    const on = deps.tracing?.instrumentations ?? allInstrumentations;
    const rate = config.sampling_rate ?? deps.tracing?.samplingRate ?? defaultSamplingRate;
    const extract: readonly Format[] = (config.propagation.extract ?? ['w3c', 'b3']) as Format[];
    const inject = config.propagation.inject ?? ['preserve'];
    const clear = (config.propagation.clear ?? []).map((h) => h.toLowerCase());
    const defaultFormat = config.propagation.default_format as Format;
    // A global instance starts in rewrite (before routing), a scoped one in its access phase.
    const global = deps.entity.route === null && deps.entity.service === null && deps.entity.consumer === null;
    const entry = (handler: (ctx: RequestContext) => void): PluginHandlers => (global ? { rewrite: handler } : { access: handler });
    const traceHeader = config.http_response_header_for_traceid;

    /** Propagation upstream: the listed formats (`preserve` = the incoming one, else default_format). */
    const propagate = (ctx: RequestContext, spanCtx: OtelContext, incoming: Format | null, traceId: string): void => {
      for (const h of clear) ctx.upstream.removeHeader(h);
      const carrier = ctx.upstream;
      for (const f of inject) propagators[f === 'preserve' ? incoming ?? defaultFormat : f as Format].inject(spanCtx, carrier, setter);
      if (traceHeader !== null) ctx.downstreamHeaders.set(traceHeader, traceId);
    };

    /**
     * A request that is not recorded is still propagated, as Kong does: the incoming trace id and
     * sampled flag (or a new trace id, unsampled) with a span id of the gateway's own. Once per
     * request, whichever instance gets it first.
     */
    const propagateUnrecorded = (ctx: RequestContext, parent: OtelContext, incoming: Format | null): void => {
      // As a started trace does for a sampled request: the first instance (the global one's
      // rewrite) wins over a scoped one's access.
      ctx.trace = unrecordedTrace;
      const from = incoming !== null ? trace.getSpanContext(parent) : undefined;
      const fresh = freshIds();
      const traceId = from?.traceId ?? fresh.slice(0, 32);
      const spanCtx = trace.setSpanContext(parent, { traceId, spanId: fresh.slice(32), traceFlags: from?.traceFlags ?? 0, isRemote: false });
      propagate(ctx, spanCtx, incoming, traceId);
    };

    if (off) {
      // tracing_instrumentations = off, as Kong: no span is recorded or exported (so no exporter
      // exists), but every request is propagated.
      const propagateOnly = (ctx: RequestContext): void => {
        if (ctx.trace !== null) return;
        const { parent, incoming } = extractParent(ctx.request.headers as Record<string, string | string[] | undefined>, extract);
        propagateUnrecorded(ctx, parent, incoming);
      };
      return entry(propagateOnly);
    }

    const endpoint = new URL(config.traces_endpoint);
    const endpointForLog = `${endpoint.protocol}//${endpoint.host}${endpoint.pathname}`;

    // Export failures: logged once a minute, with how many failed since.
    const failures = new LogThrottle(60_000);
    const inner = new OTLPTraceExporter({ url: config.traces_endpoint, headers: config.headers ?? {}, timeoutMillis: config.send_timeout });
    const exporter: SpanExporter = {
      export(spans: ReadableSpan[], done) {
        inner.export(spans, (result) => {
          if (result.code !== 0) {
            deps.metrics?.queueDropped.labels('opentelemetry', 'export_failed').inc(spans.length);
            const held = failures.admit();
            if (held !== null) deps.log.error({ endpoint: endpointForLog, error: result.error?.message, failed_exports: held + 1 }, 'opentelemetry export failed; the spans are dropped');
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

    const start = (ctx: RequestContext): void => {
      if (ctx.trace !== null) return;
      const headers = ctx.request.headers as Record<string, string | string[] | undefined>;
      const { parent, incoming } = extractParent(headers, extract);
      const parentSpan = incoming !== null ? trace.getSpanContext(parent) : undefined;
      const sampled = parentSpan !== undefined ? (parentSpan.traceFlags & 1) === 1 : Math.random() < rate;
      if (!sampled) {
        propagateUnrecorded(ctx, parent, incoming);
        return;
      }
      const req = ctx.request;
      // The root span is recorded whatever the instrumentations list (Kong's `request`, which Kong
      // records whenever tracing is not off); the children follow PluginDeps.tracing.
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
      const t = new OtelTrace(tracer, root, rootCtx, on);
      ctx.trace = t;
      propagate(ctx, rootCtx, incoming, root.spanContext().traceId);
    };

    return {
      ...entry(start),
      async close() {
        await provider.shutdown().catch(() => {});
      },
    };
}
