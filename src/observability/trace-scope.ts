/**
 * The trace of the request being handled, for code that runs on its behalf without holding the
 * request context (e.g. the openid-connect plugin's calls to the identity provider). The kernel
 * enters the scope around plugin handlers only when the request is traced (sampled), so an
 * untraced request pays nothing.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export type SpanAttributes = Record<string, string | number | boolean>;

/** What the kernel and plugins record into a traced request (implemented by the opentelemetry plugin). */
export interface RequestTrace {
  /** A finished child span of the request's root span; times are performance.now() values. */
  span(name: string, start: number, end: number, attributes?: SpanAttributes): void;
  /** Starts a child span now; call the returned function when it ends (with more attributes, or an error). */
  begin(name: string, attributes?: SpanAttributes): (end?: { attributes?: SpanAttributes; error?: string }) => void;
}

export const traceScope = new AsyncLocalStorage<RequestTrace>();
