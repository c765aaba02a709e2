/**
 * One upstream exchange: the undici dispatch handler (`Forward`, the callback interface
 * `pool.stream()` itself is built on) that takes the upstream response straight into the client
 * response: headers → the kernel's response phase → client; body chunks with backpressure;
 * failures → another attempt (proxy/retry.ts) or the kernel's 502/503/504 reply. The lean client
 * (proxy/h1.ts) drives the same handler.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Service } from '../config/types.ts';
import type { H1DispatchOptions } from './h1.ts';
import { downstreamHeadersFromRaw } from './headers.ts';
import type { UpstreamTarget } from './pools.ts';
import { isReplayable, shouldRetry } from './retry.ts';
import type { Peer } from './balanced.ts';

/** What the handler needs of the request it carries (the kernel's per-request record). */
export interface ForwardedRequest {
  readonly ctx: {
    readonly aborted: boolean;
    /** Set while the exchange runs: a client that goes away cancels the upstream request. */
    cancelUpstream: ((reason: Error) => void) | null;
    upstreamLatency: number | null;
    /** Kong's latencies.proxy: from the request's start until the first attempt is sent. */
    proxyLatency: number | null;
    /** Attempts made (Kong's log record `tries`). */
    tries: number;
    /** Body bytes sent to the client (log record, access log). */
    bytesSent: number;
    /** performance.now() when the request arrived. */
    readonly t0: number;
  };
  readonly res: ServerResponse;
}

/** The kernel's side of the exchange: the response phase and the error replies. */
export interface ForwardSink<R extends ForwardedRequest> {
  /** Runs the response phase on the upstream's status and headers; returns where the body goes. */
  upstreamResponse(req: R, status: number, headers: OutgoingHttpHeaders): Writable;
  /** No response came and no attempt is left: the gateway's own error reply. */
  upstreamFailed(req: R, err: unknown): void;
}

/** The request body as it goes upstream: none, buffered, or streamed from the client. */
export type UpstreamBody = Buffer | NodeJS.ReadableStream | null;

/** Methods the lean upstream client takes when the request has no body (proxy/h1.ts). */
const leanMethods = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE']);

/**
 * Sends a request upstream: body-less requests to a plain-HTTP upstream through the lean client,
 * the rest through the target's undici pool.
 */
export function forward<R extends ForwardedRequest>(
  sink: ForwardSink<R>, req: R, target: UpstreamTarget, service: Service,
  method: string, path: string, headers: Record<string, string | string[] | undefined>, clientHeaders: IncomingHttpHeaders, body: UpstreamBody,
  peer: Peer | null = null,
): void {
  const readTimeout = service.read_timeout;
  const h1 = body === null && target.h1 !== null && leanMethods.has(method);
  const f = new Forward(sink, req, target, h1
    ? { path, method, headers, clientHeaders, readTimeout } satisfies H1DispatchOptions
    : { path, method, headers, body: body as Dispatcher.DispatchOptions['body'], headersTimeout: readTimeout, bodyTimeout: readTimeout } satisfies Dispatcher.DispatchOptions,
  h1, isReplayable(method, body) ? service.retries : 0, peer, peer !== null && !preserveHost(headers, target));
  f.dispatch();
}

/** Whether the Host header sent is not the target's own (the route's preserve_host). */
function preserveHost(headers: Record<string, string | string[] | undefined>, target: UpstreamTarget): boolean {
  return headers.host !== target.hostHeader;
}

export class Forward<R extends ForwardedRequest> implements Dispatcher.DispatchHandler {
  readonly #sink: ForwardSink<R>;
  readonly #req: R;
  #target: UpstreamTarget;
  /** Balanced service: the peer of this try (null: the service's own host). */
  readonly #peer: Peer | null;
  /** A retry on another peer sends that peer's Host header (not when the route preserves the client's). */
  readonly #peerHost: boolean;
  readonly #opts: H1DispatchOptions | Dispatcher.DispatchOptions;
  readonly #h1: boolean;
  readonly #retries: number;
  #attempt = 0;
  #t0 = 0;
  #out: Writable | null = null;
  #resume: (() => void) | null = null;

  constructor(sink: ForwardSink<R>, req: R, target: UpstreamTarget, opts: H1DispatchOptions | Dispatcher.DispatchOptions, h1: boolean, retries: number,
    peer: Peer | null = null, peerHost = false) {
    this.#sink = sink;
    this.#peer = peer;
    this.#peerHost = peerHost;
    this.#req = req;
    this.#target = target;
    this.#opts = opts;
    this.#h1 = h1;
    this.#retries = retries;
  }

  /** Starts (or, after a connection failure, restarts) the exchange. */
  dispatch(): void {
    const now = performance.now();
    this.#t0 = now;
    const ctx = this.#req.ctx;
    if (this.#attempt === 0) ctx.proxyLatency = now - ctx.t0;
    ctx.tries = this.#attempt + 1;
    if (this.#h1 && this.#target.h1 !== null) this.#target.h1.dispatch(this.#opts as H1DispatchOptions, this);
    else this.#target.pool.dispatch(this.#opts as Dispatcher.DispatchOptions, this);
  }

  onConnect(abort: (err?: Error) => void): void {
    const ctx = this.#req.ctx;
    if (ctx.aborted) {
      abort(new Error('client closed the connection'));
      return;
    }
    ctx.cancelUpstream = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx interim responses are not forwarded
    const req = this.#req;
    req.ctx.upstreamLatency = performance.now() - this.#t0;
    const peer = this.#peer;
    if (peer !== null) peer.balanced.answered(peer.address, statusCode, req.ctx.upstreamLatency, Date.now());
    this.#resume = resume;
    this.#out = this.#sink.upstreamResponse(req, statusCode, downstreamHeadersFromRaw(rawHeaders));
    return true;
  }

  onData(chunk: Buffer): boolean {
    const out = this.#out!;
    this.#req.ctx.bytesSent += chunk.length;
    if (out.destroyed) return true;
    if (out.write(chunk)) return true;
    out.once('drain', this.#resume!);
    return false;
  }

  onComplete(): void {
    this.#req.ctx.cancelUpstream = null;
    if (this.#peer !== null) this.#peer.balanced.release(this.#peer.address);
    this.#out!.end();
  }

  onError(err: Error): void {
    const req = this.#req;
    const ctx = req.ctx;
    ctx.cancelUpstream = null;
    const peer = this.#peer;
    if (peer !== null) {
      peer.balanced.release(peer.address);
      // A failure before any answer counts against this address (passive checks), unless the
      // client went away.
      if (this.#out === null && !ctx.aborted) peer.balanced.failed(peer.address, err);
    }
    if (this.#out !== null) {
      // Mid-body failure: the client sees a cut connection, as with any proxy.
      this.#out.destroy();
      req.res.destroy();
      return;
    }
    if (!req.res.headersSent && !ctx.aborted && shouldRetry(err, this.#attempt, this.#retries)) {
      if (peer !== null) {
        // Another address when one is usable: never the same failing one twice while another is.
        (peer.tried ??= []).push(peer.address);
        const next = peer.balanced.next(peer.key, peer.tried);
        if (next === null) return this.#sink.upstreamFailed(req, err);
        peer.address = next;
        const target = peer.balanced.targetFor(next);
        this.#target = target;
        if (this.#peerHost) this.#opts.headers = { ...(this.#opts.headers as Record<string, string | string[] | undefined>), host: target.hostHeader };
      }
      this.#attempt++;
      this.dispatch();
      return;
    }
    this.#sink.upstreamFailed(req, err);
  }
}
