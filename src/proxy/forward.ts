/**
 * One upstream exchange: the undici dispatch handler (`Forward`, the callback interface
 * `pool.stream()` itself is built on) that takes the upstream response straight into the client
 * response: headers → the kernel's response phase → client; body chunks with backpressure;
 * failures → another attempt (proxy/retry.ts) or the kernel's 502/503/504 reply. The lean client
 * (proxy/h1.ts) drives the same handler.
 *
 * response_buffering (Kong's default: on): the upstream is read ahead of a slow client (up to
 * 256 KiB, or client_body_buffer_size if smaller) so it is not held by the client's pace, and a response without
 * Content-Length (chunked or close-delimited) is held whole (memory, then a temporary file) and
 * sent with its Content-Length, unless the upstream says `X-Accel-Buffering: no` (nginx's
 * switch, for event streams). Off: every chunk goes to the client as it arrives, and a slow
 * client slows the upstream.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Route, Service } from '../config/types.ts';
import type { H1DispatchOptions } from './h1.ts';
import { downstreamHeadersFromRaw } from './headers.ts';
import { grpcStatusTrailers, type GrpcDispatchOptions } from './grpc.ts';
import type { UpstreamTarget } from './pools.ts';
import { StreamedBody, type UpstreamBody } from './request-body.ts';
import { isReplayable, shouldRetry } from './retry.ts';
import { upstreamError } from './errors.ts';
import { BodyCollector, HeldBody } from './spill.ts';
import type { Peer } from './balanced.ts';
import type { UpstreamTry } from '../plugins/sdk.ts';

/** What the handler needs of the request it carries (the kernel's per-request record). */
export interface ForwardedRequest {
  readonly ctx: {
    readonly aborted: boolean;
    /** Set while the exchange runs: a client that goes away cancels the upstream request. */
    cancelUpstream: ((reason: Error) => void) | null;
    upstreamLatency: number | null;
    /** Kong's latencies.proxy: from the request's start until the first attempt is sent. */
    proxyLatency: number | null;
    /** Attempts made (the length of upstreamTries). */
    readonly tries: number;
    /** Each attempt's address and start; an attempt followed by a retry says how it failed. */
    upstreamTries: readonly UpstreamTry[];
    /** Body bytes sent to the client (log record, access log). */
    bytesSent: number;
    /** performance.now() when the request arrived. */
    readonly t0: number;
    /** Epoch ms when the request arrived (the same instant as t0). */
    readonly startedAt: number;
    /** The request's trace when it is sampled (opentelemetry): the exchange adds its `kong.balancer` span when `balancer` is on. */
    readonly trace: { readonly balancer: boolean; span(name: string, start: number, end: number, attributes?: Record<string, string | number>): void } | null;
    readonly request: { readonly method: string; readonly headers: IncomingHttpHeaders };
    /** `method`: what is sent upstream (a plugin may have changed it); `hostSet`: a plugin set Host. */
    readonly upstream: { readonly headers: Record<string, string | string[] | undefined>; readonly method: string; readonly hostSet: boolean; target(): string };
    readonly route: Route | null;
    readonly service: Service | null;
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

/** Methods the lean upstream client takes when the request has no body (proxy/h1.ts). */
const leanMethods = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE']);
/** Buffers up to this size are written in one piece (the socket's buffer takes them at once). */
const oneWrite = 64 * 1024;
/** response_buffering: most bytes read ahead of a slow client per response (memory, not a file). */
const readAhead = 256 * 1024;

/**
 * Sends the request of `req` (the upstream view of its Context) to `target`: body-less requests
 * to a plain-HTTP upstream through the lean client, grpc/grpcs services through their HTTP/2
 * client (proxy/grpc.ts), the rest through the target's undici pool. `bufferSize` bounds what is
 * held in memory for response buffering.
 */
export function forward<R extends ForwardedRequest>(sink: ForwardSink<R>, req: R, target: UpstreamTarget, body: UpstreamBody, bufferSize: number, peer: Peer | null = null): void {
  const ctx = req.ctx;
  const service = ctx.service!;
  // The upstream request's method: the client's unless a plugin set another.
  const method = ctx.upstream.method;
  const path = ctx.upstream.target();
  const headers = ctx.upstream.headers;
  const readTimeout = service.read_timeout;
  const writeTimeout = service.write_timeout;
  // A large buffered body goes in slices, so an upstream that stops reading is noticed.
  if (Buffer.isBuffer(body) && body.length > oneWrite) body = new HeldBody(body.length, body, null);
  const held = body instanceof HeldBody ? body : null;
  const h1 = body === null && target.h1 !== null && leanMethods.has(method);
  const f = new Forward(sink, req, target, h1
    ? { path, method, headers, clientHeaders: ctx.request.headers, readTimeout, writeTimeout } satisfies H1DispatchOptions
    : { path, method, headers, body: held !== null ? null : body as Dispatcher.DispatchOptions['body'], headersTimeout: readTimeout, bodyTimeout: readTimeout } satisfies Dispatcher.DispatchOptions,
  h1, isReplayable(method, held !== null ? null : body) ? service.retries : 0, held, ctx.route!.response_buffering ? bufferSize : -1,
  peer, peer !== null && !ctx.upstream.hostSet && !preserveHost(headers, target));
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
  /** A body held whole: opened again for each attempt. */
  readonly #held: HeldBody | null;
  /** response_buffering: bytes held in memory before a temporary file takes the rest; -1 = off. */
  readonly #bufferSize: number;
  /** response_buffering: bytes that may wait for a slow client; -1 = off. */
  readonly #readAhead: number;
  #attempt = 0;
  #t0 = 0;
  #out: Writable | null = null;
  #resume: (() => void) | null = null;
  /** A response without Content-Length held whole (response_buffering). */
  #holding: { status: number; headers: OutgoingHttpHeaders; body: BodyCollector } | null = null;

  constructor(
    sink: ForwardSink<R>, req: R, target: UpstreamTarget, opts: H1DispatchOptions | Dispatcher.DispatchOptions, h1: boolean, retries: number,
    held: HeldBody | null, bufferSize: number, peer: Peer | null = null, peerHost = false,
  ) {
    this.#sink = sink;
    this.#peer = peer;
    this.#peerHost = peerHost;
    this.#req = req;
    this.#target = target;
    this.#opts = opts;
    this.#h1 = h1;
    this.#retries = retries;
    this.#held = held;
    this.#bufferSize = bufferSize;
    this.#readAhead = bufferSize < 0 ? -1 : Math.min(bufferSize, readAhead);
  }

  /** Starts (or, after a connection failure, restarts) the exchange. */
  dispatch(): void {
    const now = performance.now();
    this.#t0 = now;
    const ctx = this.#req.ctx;
    if (this.#attempt === 0) ctx.proxyLatency = now - ctx.t0;
    // Kong's tries[] entry: the address (the balanced peer, else the service's host) and when.
    const peer = this.#peer;
    const svc = ctx.service!;
    const attempt: UpstreamTry = { ip: peer !== null ? peer.address.ip : svc.host, port: peer !== null ? peer.address.port : svc.port, startMs: ctx.startedAt + Math.round(now - ctx.t0), failed: null };
    ctx.upstreamTries = this.#attempt === 0 ? [attempt] : [...ctx.upstreamTries, attempt];
    if (this.#h1 && this.#target.h1 !== null) {
      this.#target.h1.dispatch(this.#opts as H1DispatchOptions, this);
      return;
    }
    if (this.#target.grpc !== null) {
      this.#target.grpc.dispatch(this.#opts as GrpcDispatchOptions, this);
      return;
    }
    const opts = this.#opts as Dispatcher.DispatchOptions;
    if (this.#held !== null) opts.body = this.#held.open().pipe(new StreamedBody(0, 0, ctx.service!.write_timeout));
    this.#target.pool.dispatch(opts, this);
  }

  onConnect(abort: (err?: Error) => void): void {
    const ctx = this.#req.ctx;
    if (ctx.aborted) {
      abort(new Error('client closed the connection'));
      return;
    }
    ctx.cancelUpstream = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Array<Buffer | string>, resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx interim responses are not forwarded
    const req = this.#req;
    const now = performance.now();
    req.ctx.upstreamLatency = now - this.#t0;
    if (req.ctx.trace !== null && req.ctx.trace.balancer) req.ctx.trace.span('kong.balancer', this.#t0, now, { 'http.status_code': statusCode, 'kong.balancer.try': req.ctx.tries });
    const peer = this.#peer;
    if (peer !== null) peer.balanced.answered(peer.address, statusCode, req.ctx.upstreamLatency, Date.now());
    this.#resume = resume;
    const headers = downstreamHeadersFromRaw(rawHeaders);
    if (this.#bufferSize >= 0 && this.#target.grpc === null && headers['content-length'] === undefined && statusCode !== 204 && statusCode !== 304
      && req.ctx.upstream.method !== 'HEAD' && headers['x-accel-buffering'] !== 'no') {
      this.#holding = { status: statusCode, headers, body: new BodyCollector(this.#bufferSize) };
      return true;
    }
    this.#out = this.#sink.upstreamResponse(req, statusCode, headers);
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.#req.ctx.bytesSent += chunk.length;
    const holding = this.#holding;
    if (holding !== null) return holding.body.write(chunk, this.#resume!);
    const out = this.#out!;
    if (out.destroyed) return true;
    // Buffering on: read ahead of a slow client (bounded), so the upstream is not held at its pace.
    if (out.write(chunk) || out.writableLength <= this.#readAhead) return true;
    out.once('drain', this.#resume!);
    return false;
  }

  onComplete(trailers?: ReadonlyArray<Buffer | string> | null): void {
    this.#req.ctx.cancelUpstream = null;
    if (this.#peer !== null) this.#peer.balanced.release(this.#peer.address);
    const holding = this.#holding;
    if (holding === null) {
      // Response trailers (gRPC's grpc-status/grpc-message) go to an HTTP/2 client as trailers.
      const res = this.#req.res;
      if (res.req.httpVersionMajor === 2) {
        if (trailers && trailers.length > 0) res.addTrailers(downstreamHeadersFromRaw(trailers) as Record<string, string>);
        else grpcStatusTrailers(res, res.getHeaders() as Record<string, unknown>);
      }
      this.#out!.end();
      return;
    }
    this.#holding = null;
    holding.body.finish().then((body) => {
      const req = this.#req;
      if (req.res.destroyed) {
        body.dispose();
        return;
      }
      holding.headers['content-length'] = String(body.size);
      const out = this.#out = this.#sink.upstreamResponse(req, holding.status, holding.headers);
      if (body.buffer !== null) {
        out.end(body.buffer);
        return;
      }
      const file = body.open();
      file.once('close', () => body.dispose());
      file.on('error', () => req.res.destroy());
      file.pipe(out);
    }, (err: unknown) => this.#sink.upstreamFailed(this.#req, err));
  }

  onError(err: Error): void {
    const req = this.#req;
    const ctx = req.ctx;
    ctx.cancelUpstream = null;
    if (ctx.trace !== null && ctx.trace.balancer && this.#out === null) ctx.trace.span('kong.balancer', this.#t0, performance.now(), { error: err.name, 'kong.balancer.try': ctx.tries });
    const peer = this.#peer;
    if (peer !== null) {
      peer.balanced.release(peer.address);
      // A failure before any answer counts against this address (passive checks), unless the
      // client went away.
      if (this.#out === null && !ctx.aborted) peer.balanced.failed(peer.address, err);
    }
    if (this.#holding !== null) {
      // Nothing was sent yet: the client gets the gateway's error reply, as from nginx.
      this.#holding.body.discard();
      this.#holding = null;
      if (!ctx.aborted) this.#sink.upstreamFailed(req, err);
      return;
    }
    if (this.#out !== null) {
      // Mid-body failure: the client sees a cut connection, as with any proxy.
      this.#out.destroy();
      req.res.destroy();
      return;
    }
    if (!req.res.headersSent && !ctx.aborted && shouldRetry(err, this.#attempt, this.#retries)) {
      // As Kong's get_last_failure() for the try before a retry: "failed", 504 on a timeout.
      const last = ctx.upstreamTries[ctx.upstreamTries.length - 1];
      if (last !== undefined) last.failed = upstreamError(err).status === 504 ? 504 : 502;
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
