/**
 * The trace of the request being handled, for code that runs on its behalf without holding the
 * request context (e.g. the openid-connect plugin's calls to the identity provider). The kernel
 * enters the scope around plugin handlers only when the request is traced (sampled) and the
 * `http_client` instrumentation is on, so an untraced request pays nothing.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export type SpanAttributes = Record<string, string | number | boolean>;

/**
 * Which child spans a traced request records (Kong's `tracing_instrumentations`, read once at
 * start: PORTCULLIS_TRACING_INSTRUMENTATIONS). The root `kong` span is recorded whenever tracing
 * is not `off`, as in Kong.
 */
export interface Instrumentations {
  /** `kong.router`. */
  readonly router: boolean;
  /** `kong.balancer`, one per upstream attempt. */
  readonly balancer: boolean;
  /** `kong.rewrite.plugin.<name>`: rewrite handlers that run once the trace has started. */
  readonly pluginRewrite: boolean;
  /** `kong.access.plugin.<name>`. */
  readonly pluginAccess: boolean;
  /** `kong.header_filter.plugin.<name>`: plugins' response handlers. */
  readonly pluginHeaderFilter: boolean;
  /** `kong.internal.request`: HTTP calls plugins make on a request's behalf (openid-connect's IdP calls). */
  readonly httpClient: boolean;
}

/** Kong's tracing node settings as read at start (settings.ts). */
export interface TracingSetting {
  /** `tracing_instrumentations = off`: the opentelemetry plugin propagates trace headers, records no span. */
  readonly off: boolean;
  readonly instrumentations: Instrumentations;
  /** Kong's `tracing_sampling_rate`: what an opentelemetry instance with `sampling_rate: null` samples. */
  readonly samplingRate: number;
}

/** Portcullis' default: every span kind (Kong's default is `off`; see docs/configuration.md). */
export const allInstrumentations: Instrumentations = {
  router: true, balancer: true, pluginRewrite: true, pluginAccess: true, pluginHeaderFilter: true, httpClient: true,
};

/**
 * What the kernel and plugins record into a traced request (implemented by the opentelemetry
 * plugin). Its Instrumentations flags say which spans to record; the kernel reads them once per
 * site, so a span kind that is off costs one property read.
 */
export interface RequestTrace extends Instrumentations {
  /** False for {@link unrecordedTrace}: the kernel then has nothing to end. */
  readonly recording: boolean;
  /** A finished child span of the request's root span; times are performance.now() values. */
  span(name: string, start: number, end: number, attributes?: SpanAttributes): void;
  /** Starts a child span now; call the returned function when it ends (with more attributes, or an error). */
  begin(name: string, attributes?: SpanAttributes): (end?: { attributes?: SpanAttributes; error?: string }) => void;
  /**
   * Ends the request's root span; the kernel calls it once per recording trace, in the log
   * phase after the plugins' log handlers. `endPerf` is a performance.now() value.
   */
  end(request: RequestEnd): void;
}

/** What the kernel knows of a finished request, for the root span. */
export interface RequestEnd {
  readonly status: number;
  readonly route: { readonly id: string; readonly name?: string | null; readonly paths?: readonly string[] | null } | null;
  readonly endPerf: number;
}

/**
 * The trace of a request that is propagated but not recorded (not sampled, or tracing
 * `off`): it records no span of any kind. A tracing plugin sets it so later instances know the
 * request was taken care of, and the kernel's checks of the flags skip every span site.
 */
export const unrecordedTrace: RequestTrace = Object.freeze({
  recording: false,
  router: false, balancer: false, pluginRewrite: false, pluginAccess: false, pluginHeaderFilter: false, httpClient: false,
  span(): void {},
  begin: () => () => {},
  end(): void {},
});

export const traceScope = new AsyncLocalStorage<RequestTrace>();
