/**
 * The opentelemetry plugin's handlers (see index.ts for the fields and behaviour), loaded only
 * when an instance is created.
 */
import { randomFillSync, randomUUID } from 'node:crypto';
import { SpanKind, SpanStatusCode, ROOT_CONTEXT, TraceFlags, trace, type Attributes, type Context as OtelContext, type HrTime, type SpanContext, type SpanStatus, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator, hrTimeDuration, millisToHrTime, type InstrumentationScope } from '@opentelemetry/core';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { allInstrumentations, type Instrumentations, type PluginDeps, type PluginHandlers, type RequestContext, type RequestEnd, type RequestTrace, type SpanAttributes, type UpstreamRequest, unrecordedTrace } from '../../sdk.ts';
import { defaultSamplingRate, type Format, type OpentelemetryConfig } from './schema.ts';
import { LogQueue, pluginQueueHooks } from '../../log-queue.ts';

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
const setter: TextMapSetter<UpstreamRequest> = { set: (up, key, value) => up.setLowerHeader(key, value) };

const propagators: Record<Format, { inject(c: OtelContext, carrier: unknown, s: TextMapSetter): void; extract(c: OtelContext, carrier: unknown, g: TextMapGetter): OtelContext }> = {
  w3c: new W3CTraceContextPropagator(),
  b3: new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER }),
  'b3-single': new B3Propagator({ injectEncoding: B3InjectEncoding.SINGLE_HEADER }),
};

/** A performance.now() value as the epoch HrTime spans carry. */
function hrAt(perf: number): HrTime {
  return millisToHrTime(performance.timeOrigin + perf);
}

const statusUnset: SpanStatus = { code: SpanStatusCode.UNSET };
const noAttributes: Attributes = Object.freeze({}) as Attributes;

/**
 * A finished span as the OTLP exporter reads it (the SDK's `ReadableSpan` interface). The gateway knows each span's start and end when it records it, and
 * never hands a span to application code, so it is recorded as this plain record rather than
 * through the SDK's Tracer: recording a request's three spans that way (context, sampler,
 * attribute sanitising, span limits, clock anchoring) cost ~5 µs here, as these records ~1 µs;
 * the official serialiser's ~7.7 µs for them is unchanged (bench/NOTES.md, session 12).
 * Attributes come from the kernel and plugins as SpanAttributes: strings, numbers, booleans.
 */
class SpanRecord implements ReadableSpan {
  readonly name: string;
  readonly kind: SpanKind;
  readonly parentSpanContext: SpanContext | undefined;
  readonly startTime: HrTime;
  endTime: HrTime;
  status: SpanStatus = statusUnset;
  attributes: Attributes;
  readonly links = [];
  readonly events = [];
  readonly ended = true;
  readonly resource: Resource;
  readonly instrumentationScope: InstrumentationScope;
  readonly droppedAttributesCount = 0;
  readonly droppedEventsCount = 0;
  readonly droppedLinksCount = 0;
  readonly #context: SpanContext;
  constructor(name: string, kind: SpanKind, context: SpanContext, parent: SpanContext | undefined, start: HrTime, end: HrTime, attributes: Attributes | undefined, at: Origin) {
    this.name = name;
    this.kind = kind;
    this.#context = context;
    this.parentSpanContext = parent;
    this.startTime = start;
    this.endTime = end;
    this.attributes = attributes ?? noAttributes;
    this.resource = at.resource;
    this.instrumentationScope = at.scope;
  }
  spanContext(): SpanContext {
    return this.#context;
  }
  get duration(): HrTime {
    return hrTimeDuration(this.startTime, this.endTime);
  }
}

/** What every span of one plugin instance shares: the resource, the scope, where finished spans go. */
interface Origin {
  readonly resource: Resource;
  readonly scope: InstrumentationScope;
  finished(span: ReadableSpan): void;
}

class OtelTrace implements RequestTrace {
  readonly recording = true;
  /** The root `kong` span: its attributes grow and it ends in the log phase. */
  readonly root: SpanRecord;
  readonly #rootContext: SpanContext;
  readonly #at: Origin;
  readonly router: boolean;
  readonly balancer: boolean;
  readonly pluginRewrite: boolean;
  readonly pluginAccess: boolean;
  readonly pluginHeaderFilter: boolean;
  readonly httpClient: boolean;
  constructor(root: SpanRecord, at: Origin, on: Instrumentations) {
    this.root = root;
    this.#rootContext = root.spanContext();
    this.#at = at;
    this.router = on.router;
    this.balancer = on.balancer;
    this.pluginRewrite = on.pluginRewrite;
    this.pluginAccess = on.pluginAccess;
    this.pluginHeaderFilter = on.pluginHeaderFilter;
    this.httpClient = on.httpClient;
  }
  #child(): SpanContext {
    return { traceId: this.#rootContext.traceId, spanId: freshSpanId(), traceFlags: TraceFlags.SAMPLED };
  }
  span(name: string, start: number, end: number, attributes?: SpanAttributes): void {
    const kind = name === 'kong.balancer' ? SpanKind.CLIENT : SpanKind.INTERNAL;
    this.#at.finished(new SpanRecord(name, kind, this.#child(), this.#rootContext, hrAt(start), hrAt(end), attributes, this.#at));
  }
  begin(name: string, attributes?: SpanAttributes): (end?: { attributes?: SpanAttributes; error?: string }) => void {
    const start = performance.now();
    return (e) => {
      const s = new SpanRecord(name, SpanKind.CLIENT, this.#child(), this.#rootContext, hrAt(start), hrAt(performance.now()),
        e?.attributes ? { ...attributes, ...e.attributes } : attributes, this.#at);
      if (e?.error !== undefined) s.status = { code: SpanStatusCode.ERROR, message: e.error };
      this.#at.finished(s);
    };
  }
  end(request: RequestEnd): void {
    const root = this.root;
    const attributes = root.attributes;
    attributes['http.status_code'] = request.status;
    const route = request.route;
    if (route !== null) attributes['http.route'] = route.paths?.[0] ?? route.name ?? route.id;
    if (request.status >= 500) root.status = { code: SpanStatusCode.ERROR };
    root.endTime = hrAt(request.endPerf);
    this.#at.finished(root);
  }
}

/**
 * Trace and span ids: cryptographically random, from a pool filled 4 KB at a time and turned into
 * hex once per fill; an id is a slice of that hex string (V8 shares the pool's characters until the
 * id is written out). A synchronous randomBytes() per request cost ~10 µs here, an OpenSSL call
 * each time; a Buffer-to-hex call per id ~0.15 µs (bench/NOTES.md, session 13); the SDK's
 * RandomIdGenerator draws Math.random() four bytes at a time.
 */
const idPool = Buffer.allocUnsafe(24 * 170);
let hexPool = '';
let idAt = idPool.length;
/** `bytes` fresh random bytes as hex, never all zeros (a zero id is invalid and would be dropped by a collector). */
function take(bytes: number): string {
  for (;;) {
    if (idAt + bytes > idPool.length) {
      randomFillSync(idPool);
      hexPool = idPool.toString('hex');
      idAt = 0;
    }
    const from = idAt;
    idAt += bytes;
    // Zero bytes are checked in the pool: comparing the hex slice with a literal costs more.
    for (let i = from; i < idAt; i++) if (idPool[i] !== 0) return hexPool.slice(2 * from, 2 * idAt);
  }
}
/** A 16-hex-digit span id. */
function freshSpanId(): string {
  return take(8);
}
/** A 32-hex-digit trace id. */
function freshTraceId(): string {
  return take(16);
}

interface Extracted { readonly parent: OtelContext; readonly incoming: Format | null }
const noParent: Extracted = Object.freeze({ parent: ROOT_CONTEXT, incoming: null });

/** The incoming trace context of the first `extract` format that carries one, and that format as `preserve` answers it. */
function extractParent(headers: Record<string, string | string[] | undefined>, extract: readonly Format[]): Extracted {
  // Most requests carry no trace context: then nothing is parsed.
  if (headers.traceparent === undefined && headers.b3 === undefined && headers['x-b3-traceid'] === undefined) return noParent;
  for (const f of extract) {
    const c = propagators[f].extract(ROOT_CONTEXT, headers, getter);
    if (trace.getSpanContext(c) !== undefined) {
      return { parent: c, incoming: f === 'b3-single' ? 'b3-single' : f === 'b3' && headers.b3 !== undefined ? 'b3-single' : f };
    }
  }
  return noParent;
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
    /** With no incoming trace context, every format injected is w3c (and at least one is). */
    const freshW3cOnly = inject.length > 0 && inject.every((f) => (f === 'preserve' ? defaultFormat : f) === 'w3c');

    /**
     * Propagation upstream of `span` (the gateway's span, child of `parent`): the listed formats
     * (`preserve` = the incoming one, else default_format), the log record's `trace_id` by injected
     * format (as Kong's propagation: {"w3c": …}, {"b3": …}) and the trace id response header. A new
     * trace (no incoming context) with w3c out (freshW3cOnly), sampled or not, gets its traceparent
     * written as the W3C propagator writes it (tests hold the two equal) without building an
     * OpenTelemetry context for it: most requests.
     */
    const propagate = (ctx: RequestContext, parent: OtelContext, incoming: Format | null, span: SpanContext): void => {
      if (clear.length > 0) ctx.upstream.removeLowerHeaders(clear);
      const traceId = span.traceId;
      let formats: Record<string, string> | null = null;
      if (incoming === null && freshW3cOnly) {
        ctx.upstream.setLowerHeader('traceparent', `00-${traceId}-${span.spanId}-${(span.traceFlags & TraceFlags.SAMPLED) !== 0 ? '01' : '00'}`);
        formats = { w3c: traceId };
      } else {
        const spanCtx = trace.setSpanContext(parent, span);
        for (const f of inject) {
          const format = f === 'preserve' ? incoming ?? defaultFormat : f as Format;
          propagators[format].inject(spanCtx, ctx.upstream, setter);
          (formats ??= {})[format === 'w3c' ? 'w3c' : 'b3'] = traceId;
        }
      }
      if (formats !== null) ctx.setSerializeValue('trace_id', formats);
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
      propagate(ctx, parent, incoming, { traceId: from?.traceId ?? freshTraceId(), spanId: freshSpanId(), traceFlags: from?.traceFlags ?? 0, traceState: from?.traceState, isRemote: false });
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

    // Kong's queue (kong/tools/queue.lua, as http-log's): batches of queue.max_batch_size spans,
    // a failed batch retried with back-off until queue.max_retry_time, a full queue dropping its
    // oldest spans; each problem logged once a minute and counted.
    const exporter = new OTLPTraceExporter({ url: config.traces_endpoint, headers: config.headers ?? {}, timeoutMillis: config.send_timeout });
    const queue = new LogQueue<ReadableSpan>({ ...config.queue, max_bytes: null }, {
      send: (batch) => new Promise<void>((resolve, reject) => {
        exporter.export(batch, (result) => {
          if (result.code === 0) resolve();
          else reject(new Error(`${endpointForLog}: ${result.error?.message ?? 'export failed'}`));
        });
      }),
      ...pluginQueueHooks('opentelemetry', deps, endpointForLog, {
        queue: 'opentelemetry span queue', items: 'spans', gaveUp: 'opentelemetry gave up exporting a batch', failed: 'opentelemetry export failed',
      }),
    });
    const at: Origin = {
      resource: resourceFromAttributes({
        'service.name': 'kong',
        'service.version': '0.1.0',
        'service.instance.id': randomUUID(),
        ...(config.resource_attributes ?? {}),
      }),
      scope: { name: 'portcullis' },
      finished: (span) => queue.add(span),
    };

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
      // records whenever tracing is not off); the children follow PluginDeps.tracing. It is a
      // child of the incoming span (and keeps its tracestate), else the root of a new trace.
      const context: SpanContext = { traceId: parentSpan?.traceId ?? freshTraceId(), spanId: freshSpanId(), traceFlags: TraceFlags.SAMPLED, traceState: parentSpan?.traceState };
      const startTime = hrAt(ctx.startedPerf);
      const root = new SpanRecord('kong', SpanKind.SERVER, context, parentSpan, startTime, startTime, {
        'http.method': req.method, 'http.url': `${req.scheme}://${req.host}:${req.port}${req.path}`, 'http.host': req.host,
        'http.scheme': req.scheme, 'http.flavor': (req as { raw?: { httpVersion?: string } }).raw?.httpVersion ?? '1.1',
        'http.client_ip': req.clientIp, 'net.peer.ip': req.clientIp, 'kong.request.id': ctx.id,
      }, at);
      ctx.trace = new OtelTrace(root, at, on);
      propagate(ctx, parent, incoming, context);
    };

    return {
      ...entry(start),
      async close() {
        await queue.close();
        await exporter.shutdown().catch(() => {});
      },
    };
}
