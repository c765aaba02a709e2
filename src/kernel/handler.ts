/**
 * The phases of one request: rewrite (global plugins) → route → access (plugins in priority
 * order, consumer-aware precedence) → proxy → response phase → log phase. The upstream exchange
 * itself (dispatch handler, retries, X-Forwarded-*, request body, WebSocket tunnel) is proxy/'s;
 * the kernel hands it the request record (kernel/flight.ts) and runs the phases around it.
 */
import { ServerResponse, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { PassThrough, type Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { isGatewayError } from '../errors.ts';
import { upstreamHeadersFrom } from '../proxy/headers.ts';
import { upstreamError } from '../proxy/errors.ts';
import { grpcMessage, grpcStatusOf, grpcStatusTrailers, isGrpc } from '../proxy/grpc.ts';
import { forward, type ForwardSink } from '../proxy/forward.ts';
import { setForwardedHeaders } from '../proxy/forwarded.ts';
import { requestBody, type BodyPolicy } from '../proxy/request-body.ts';
import { openTunnel, spliceTunnel, type ClientUpgrade } from '../proxy/tunnel.ts';
import type { Logger, Reply } from '../plugins/sdk.ts';
import { Context, Incoming, ResponseHeaders, Upstream, isReply, type BodyLimits } from './context.ts';
import { Flight } from './flight.ts';
import { HeldResponseBody } from './body-hook.ts';
import { LogThrottle } from '../observability/log-throttle.ts';
import { resolveEntry, type ChainEntry, type Instance } from './plugins.ts';
import type { Snapshot } from './snapshot.ts';
import type { TrustedIps } from './trusted.ts';
import { proxiedPeerOf } from './preamble.ts';
import { pathNeedsCheck, type RouterInput } from '../router/index.ts';
import type { AccessLog } from '../observability/access-log.ts';
import { traceScope, type RequestTrace } from '../observability/trace-scope.ts';
import type { UpstreamTarget } from '../proxy/pools.ts';
import { noPeerMessage, type Peer } from '../proxy/balanced.ts';

export interface HandlerSettings {
  log: Logger;
  /** Request counters for GET /status (optional). */
  stats?: { requestStarted(): void; requestEnded(): void };
  trusted: TrustedIps;
  /**
   * Kong's `real_ip_header proxy_protocol`: the client address is the PROXY protocol source when
   * the connecting peer is in trusted_ips (X-Real-IP / X-Forwarded-For are not consulted for it).
   */
  realIpFromProxyProtocol?: boolean;
  /** Max request body in bytes (0 = unlimited, as Kong's default). */
  maxBodySize: number;
  /** Max bytes a plugin may buffer from a body; bodies held whole spill to a temporary file beyond it. */
  bufferCap: number;
  /** client_body_timeout in ms (0 = none). */
  clientBodyTimeout: number;
  /** The proxy access log; null = off. */
  accessLog: AccessLog | null;
  /** Kong's `headers` flags (X-Kong-* on responses) and `headers_upstream` (X-Kong-Request-Id upstream). */
  kongHeaders?: { proxyLatency: boolean; upstreamLatency: boolean; responseLatency: boolean; upstreamStatus: boolean; requestId: boolean; requestIdUpstream: boolean };
  /** `Server` value on the gateway's own replies (Kong: server_tokens); null = none. */
  serverHeader?: string | null;
  /** `Via` entry appended to proxied responses (RFC 9110 §7.6.3); null = none. */
  viaHeader?: string | null;
  /** Header (lower-case) carrying the verified client certificate upstream (URL-encoded PEM); null = none. */
  clientCertHeader?: string | null;
  now(): number;
}

const requestIdPattern = /^[\x21-\x7e]{1,200}$/;

function jsonBody(body: unknown): { buf: Buffer; type: string | null } {
  if (body === undefined || body === null) return { buf: Buffer.alloc(0), type: null };
  if (Buffer.isBuffer(body)) return { buf: body, type: null };
  if (typeof body === 'string') return { buf: Buffer.from(body), type: null };
  return { buf: Buffer.from(JSON.stringify(body)), type: 'application/json; charset=utf-8' };
}

function hostOf(header: string | undefined): string {
  if (header === undefined) return '';
  let h = header;
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    h = end > 0 ? h.slice(0, end + 1) : h;
  } else {
    const colon = h.indexOf(':');
    if (colon >= 0) h = h.slice(0, colon);
  }
  return h.toLowerCase();
}

function portOf(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  // Same as /:(\d+)$/ without a regex run per request: digits after the last colon.
  const colon = header.lastIndexOf(':');
  if (colon < 0 || colon === header.length - 1) return undefined;
  for (let i = colon + 1; i < header.length; i++) {
    const c = header.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
  }
  return Number(header.slice(colon + 1));
}

/** What the router reads of a request. */
function routerInput(req: Incoming): RouterInput {
  return {
    method: req.method, host: req.host, port: portOf(req.headers.host), path: req.path, headers: req.headers, scheme: req.scheme,
    sni: (req.raw.socket as { servername?: string }).servername || undefined,
    grpc: isGrpc(req.headers['content-type']),
  };
}

/** How many Host fields the request has (node:http keeps only the first in `headers`). */
function hostFieldCount(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === 4 && (name === 'Host' || name === 'host' || name.toLowerCase() === 'host')) n++;
  }
  return n;
}

/**
 * An absolute-form request target (`GET http://example.com/path HTTP/1.1`, RFC 9112 §3.2.2): the
 * authority replaces the Host header (which the server must ignore then) and the rest is the
 * origin-form target. Null when `url` is not one.
 */
function absoluteForm(url: string): { authority: string; target: string } | null {
  const m = /^https?:\/\/([^/?#]*)(.*)$/i.exec(url);
  if (m === null) return null;
  const rest = m[2];
  const at = m[1].lastIndexOf("@");
  return { authority: at >= 0 ? m[1].slice(at + 1) : m[1], target: rest === '' || rest[0] === '?' ? `/${rest}` : rest };
}

export class RequestHandler implements ForwardSink<Flight> {
  snapshot: Snapshot;
  readonly #s: HandlerSettings;
  readonly #body: BodyPolicy;
  readonly #limits: BodyLimits;
  /** Set by `stopKeepAlive` (SIGTERM drain): every response from now on closes its connection. */
  #draining = false;
  /** Response bodies above the buffer cap that a plugin asked to hold: one warning a minute. */
  readonly #bodyWarnings: LogThrottle;

  constructor(snapshot: Snapshot, settings: HandlerSettings) {
    this.snapshot = snapshot;
    this.#s = settings;
    this.#body = { maxBodySize: settings.maxBodySize, spillAbove: settings.bufferCap, clientBodyTimeout: settings.clientBodyTimeout };
    this.#limits = { maxBodySize: settings.maxBodySize, bufferCap: settings.bufferCap, bodyTimeout: settings.clientBodyTimeout };
    this.#bodyWarnings = new LogThrottle(60_000, () => settings.now());
  }

  /**
   * The node is draining: responses not yet started (in flight or arriving on connections that
   * are still open) say `Connection: close` and end their connection, so no client reuses a
   * connection that is about to close.
   */
  stopKeepAlive(): void {
    this.#draining = true;
  }

  /** node:http 'request' listener. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    this.#begin(req, res, null);
  };

  /**
   * node:http 'upgrade' listener (WebSocket): the same rewrite/route/access phases run first; a
   * local reply is written as a normal HTTP response, otherwise the connection is tunnelled.
   */
  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const res = new ServerResponse(req);
    res.assignSocket(socket as Socket);
    res.shouldKeepAlive = false;
    socket.on('error', () => socket.destroy());
    this.#begin(req, res, { socket, head });
  };

  #begin(req: IncomingMessage, res: ServerResponse, upgrade: ClientUpgrade | null): void {
    const snap = this.snapshot;
    snap.inflight++;
    const startedAt = this.#s.now();
    const t0 = performance.now();
    let url = req.url ?? '/';
    if (url.charCodeAt(0) !== 47 /* '/' */) {
      const abs = absoluteForm(url);
      if (abs !== null && abs.authority !== '') {
        url = abs.target;
        req.url = url;
        req.headers.host = abs.authority;
      }
    }
    let path = url, rawQuery = '';
    const q = url.indexOf('?');
    if (q >= 0) {
      path = url.slice(0, q);
      rawQuery = url.slice(q + 1);
    }
    const remote = req.socket.remoteAddress ?? '';
    const trusted = this.#s.trusted.has(remote);
    const encrypted = (req.socket as { encrypted?: boolean }).encrypted === true;
    let scheme: 'http' | 'https' = encrypted ? 'https' : 'http';
    if (trusted) {
      const p = req.headers['x-forwarded-proto'];
      if (p === 'https' || p === 'http') scheme = p;
    }
    let clientIp = remote;
    if (this.#s.realIpFromProxyProtocol === true) {
      if (trusted) clientIp = proxiedPeerOf(req.socket)?.address ?? remote;
    } else if (trusted) {
      clientIp = this.#s.trusted.clientIp(remote, req.headers);
    }
    const incomingId = req.headers['x-request-id'];
    const id = typeof incomingId === 'string' && requestIdPattern.test(incomingId) ? incomingId : randomUUID();
    const incoming = new Incoming(req, {
      // h2 requests carry the host in :authority (RFC 9113 §8.3.1), rarely in Host.
      scheme, host: hostOf(req.headers.host ?? (req.headers[':authority'] as string | undefined)), port: req.socket.localPort ?? 0, path, rawQuery, clientIp, trusted,
    }, this.#limits);
    const ctx = new Context({
      id, startedAt, request: incoming, upstream: new Upstream(upstreamHeadersFrom(req.headers), path, rawQuery, incoming.method),
      entities: snap.entities, log: this.#s.log, now: this.#s.now,
    });
    const f = new Flight(ctx, res, snap, upgrade, t0);
    ctx.t0 = t0;
    const stats = this.#s.stats;
    stats?.requestStarted();
    res.once('close', () => {
      stats?.requestEnded();
      if (!res.writableFinished) ctx.abortRequest(new Error('client closed the connection'));
      snap.inflight--;
      // A body a plugin held in a temporary file (`bodySize()`) goes with the request.
      incoming.heldBody?.dispose();
      this.#logPhase(f, performance.now() - t0);
    });
    let pending: void | Promise<void>;
    try {
      pending = this.#run(f);
    } catch (err) {
      this.#fail(f, err);
      return;
    }
    if (pending !== undefined) pending.catch((err: unknown) => this.#fail(f, err));
  }

  /**
   * The phases up to the proxy. Synchronous as long as every plugin answers synchronously; the
   * first plugin that returns a Promise moves the rest of the request onto that Promise.
   */
  #run(f: Flight): void | Promise<void> {
    if (hostFieldCount(f.ctx.request.raw.rawHeaders) > 1) {
      // RFC 9112 §3.2: a request with more than one Host field is answered 400.
      f.res.shouldKeepAlive = false;
      return this.#local(f, f.ctx.reply(400, { message: 'Bad request' }));
    }
    const max = this.#s.maxBodySize;
    if (max > 0 && Number(f.ctx.request.headers['content-length'] ?? 0) > max) {
      f.res.shouldKeepAlive = false;
      return this.#local(f, f.ctx.reply(413, { message: 'Payload too large' }));
    }
    // A path with more than one reading is refused before any plugin runs (router/path-safety.ts).
    if (pathNeedsCheck(f.ctx.request.path)) {
      const refusal = f.snap.router.pathRefusal(routerInput(f.ctx.request));
      if (refusal !== null) return this.#local(f, f.ctx.reply(400, { message: refusal }));
    }
    return this.#rewrite(f, 0);
  }

  #rewrite(f: Flight, from: number): void | Promise<void> {
    const ctx = f.ctx;
    const list = f.snap.chains.rewrite;
    const https = ctx.request.scheme === 'https';
    for (let k = from; k < list.length; k++) {
      const inst = list[k];
      if (!(https ? inst.https : inst.http)) continue;
      // The trace starts in the opentelemetry plugin's own rewrite handler: the ones after it are traced.
      const tr = ctx.trace;
      const r = tr === null || !(tr.pluginRewrite || tr.httpClient) ? inst.handlers.rewrite!(ctx) : tracedHandler(inst.handlers.rewrite!, inst, ctx, tr, tr.pluginRewrite, 'rewrite');
      if (r instanceof Promise) {
        return r.then((v) => (isReply(v) ? this.#rewriteReply(f, v) : this.#rewrite(f, k + 1)));
      }
      if (isReply(r)) return this.#rewriteReply(f, r);
    }
    return this.#route(f);
  }

  #rewriteReply(f: Flight, r: Reply): void {
    for (const e of f.snap.chains.global) this.#addResolved(f, e);
    this.#local(f, r);
  }

  #route(f: Flight): void | Promise<void> {
    const ctx = f.ctx;
    const req = ctx.request;
    const tr = ctx.trace !== null && ctx.trace.router ? ctx.trace : null;
    const rt0 = tr === null ? 0 : performance.now();
    const match = f.snap.router.match(routerInput(req));
    if (tr !== null) tr.span('kong.router', rt0, performance.now());
    if (match === null) {
      for (const e of f.snap.chains.global) this.#addResolved(f, e);
      return this.#local(f, ctx.reply(404, { message: 'no Route matched with those values' }));
    }
    if (match.httpsRedirect) {
      const code = match.route.https_redirect_status_code;
      ctx.route = match.route;
      if (code === 426) return this.#local(f, ctx.reply(426, { message: 'Please use HTTPS protocol' }, { connection: 'Upgrade', upgrade: 'TLS/1.2, HTTP/1.1' }));
      // As Kong: the host without its port (the client's port is the plain-http one), or a trusted
      // X-Forwarded-Host; the browser then uses https' default port.
      const xfh = req.trusted ? req.headers['x-forwarded-host'] : undefined;
      const host = typeof xfh === 'string' && xfh !== '' ? xfh : req.host;
      const location = `https://${host}${req.path}${req.rawQuery === '' ? '' : `?${req.rawQuery}`}`;
      return this.#local(f, ctx.reply(code, { message: 'Moved' }, { location }));
    }
    ctx.route = match.route;
    ctx.service = match.service;
    ctx.uriCaptures = match.uriCaptures;
    ctx.upstream.path = match.upstreamPath;
    f.match = match;
    f.chain = f.snap.chains.forRoute(match.route);
    return this.#access(f, 0);
  }

  /** The access phase from chain entry `from` on, then the proxy. */
  #access(f: Flight, from: number): void | Promise<void> {
    const ctx = f.ctx;
    const chain = f.chain;
    const https = ctx.request.scheme === 'https';
    for (let i = from; i < chain.length; i++) {
      const inst = resolveEntry(chain[i], ctx.consumer, ctx);
      if (inst === null || !(https ? inst.https : inst.http)) continue;
      f.plugins.push(inst);
      const access = inst.handlers.access;
      if (access === undefined) continue;
      const tr = ctx.trace;
      const r = tr === null || !(tr.pluginAccess || tr.httpClient) ? access.call(inst.handlers, ctx) : tracedHandler(access, inst, ctx, tr, tr.pluginAccess, 'access');
      if (r instanceof Promise) {
        return r.then((v) => (isReply(v) ? this.#accessReply(f, i, v) : this.#access(f, i + 1)));
      }
      if (isReply(r)) return this.#accessReply(f, i, r);
    }
    const service = f.match!.service;
    if (service === null) {
      return this.#local(f, ctx.reply(503, { message: 'no Service found with those values' }));
    }
    // A service whose host names an upstream: the balancer picks the peer (proxy/balanced.ts).
    const balanced = f.snap.balanced.get(service.id);
    let target: UpstreamTarget, peer: Peer | null = null;
    if (balanced === undefined) target = f.snap.targets.get(service.id)!;
    else {
      const key = balanced.hashKey(ctx, { path: f.match!.normalizedPath, captures: f.match!.uriCaptures });
      const a = balanced.first(key);
      if (a === null) return this.#local(f, ctx.reply(503, { message: noPeerMessage }));
      peer = { balanced, key, address: a, tried: null };
      target = balanced.targetFor(a);
    }
    this.#prepareUpstream(f, target.hostHeader);
    if (f.upgrade !== null) {
      if (peer !== null) peer.balanced.release(peer.address);
      return this.#tunnel(f, target.pool);
    }
    const up = ctx.upstream;
    const req = ctx.request;
    const body = requestBody(req.raw, up.body, req.bufferedBody, req.heldBody, up.headers, ctx.route!.request_buffering, this.#body, service.write_timeout, f.res);
    if (body instanceof Promise) return body.then((b) => forward(this, f, target, b, this.#s.bufferCap, peer));
    forward(this, f, target, body, this.#s.bufferCap, peer);
  }

  #accessReply(f: Flight, i: number, r: Reply): void {
    const chain = f.chain;
    for (let j = i + 1; j < chain.length; j++) this.#addResolved(f, chain[j]);
    this.#local(f, r);
  }

  /** Collects a plugin that applies to this request without running its access handler. */
  #addResolved(f: Flight, entry: ChainEntry): void {
    const ctx = f.ctx;
    const inst = resolveEntry(entry, ctx.consumer, ctx);
    if (inst !== null && (ctx.request.scheme === 'https' ? inst.https : inst.http)) f.plugins.push(inst);
  }

  /**
   * Host (a plugin's, else preserve_host or the service's), X-Forwarded-* and X-Request-Id on the
   * upstream request.
   */
  #prepareUpstream(f: Flight, hostHeader: string): void {
    const ctx = f.ctx;
    const req = ctx.request;
    const up = ctx.upstream;
    const h = up.headers;
    const route = ctx.route!;
    // A Host a plugin set wins, as Kong's set_header("Host") sets upstream_host (unless removed since).
    if (!up.hostSet || typeof h.host !== 'string') {
      const clientHost = req.headers.host ?? (req.headers[':authority'] as string | undefined);
      h.host = route.preserve_host && clientHost !== undefined ? clientHost : hostHeader;
    }
    const matchedPath = f.match!.matchedPath;
    const stripped = route.strip_path && matchedPath !== null && matchedPath !== '' && matchedPath !== '/' ? matchedPath : null;
    // With real_ip_header proxy_protocol the address the load balancer vouched for is the peer, as
    // nginx's realip module makes it $remote_addr.
    setForwardedHeaders(h, req, this.#s.realIpFromProxyProtocol === true ? req.clientIp : req.raw.socket.remoteAddress ?? '', stripped);
    h['x-request-id'] = ctx.id;
    if (this.#s.kongHeaders?.requestIdUpstream) h['x-kong-request-id'] = ctx.id;
    const certHeader = this.#s.clientCertHeader;
    if (certHeader) {
      // Only the gateway sets it: a value the client sent is never forwarded.
      const cc = req.clientCertificate;
      if (cc !== null) h[certHeader] = encodeURIComponent(cc.pem);
      else if (certHeader in h) h[certHeader] = undefined as unknown as string;
    }
  }

  /** ForwardSink: the upstream's response head arrived (proxy/forward.ts). */
  upstreamResponse(f: Flight, status: number, headers: OutgoingHttpHeaders): Writable {
    return this.#startResponse(f, status, headers, false);
  }

  /** ForwardSink: no upstream response, no attempt left. */
  upstreamFailed(f: Flight, err: unknown): void {
    const ctx = f.ctx;
    const res = f.res;
    if (res.headersSent) {
      // The response was already streaming: all we can do is cut the connection.
      res.destroy();
      return;
    }
    if (ctx.aborted) return;
    if (isGatewayError(err) && err.expose) {
      // The request body failed (408 client_body_timeout, 413 size): the rest of it is unread.
      res.shouldKeepAlive = false;
      return this.#local(f, ctx.reply(err.status, { message: err.message }));
    }
    const gw = upstreamError(err);
    ctx.log.error({ code: gw.code, detail: gw.detail, service: ctx.service?.name ?? ctx.service?.id }, 'upstream request failed');
    this.#local(f, ctx.reply(gw.status, { message: gw.message }));
  }

  /** Upgrade requests: the upstream's 101 goes through the response phase, then the tunnel (proxy/tunnel.ts). */
  async #tunnel(f: Flight, pool: Dispatcher): Promise<void> {
    const ctx = f.ctx;
    let up: Dispatcher.UpgradeData;
    try {
      const protocol = ctx.request.header('upgrade') ?? 'websocket';
      up = await openTunnel(pool, ctx.upstream.target(), ctx.upstream.method, ctx.upstream.headers, protocol, ctx.signal);
    } catch (err) {
      const gw = upstreamError(err);
      ctx.log.error({ code: gw.code, detail: gw.detail }, 'upstream upgrade failed');
      return this.#local(f, ctx.reply(gw.status, { message: gw.message }));
    }
    const rh = new ResponseHeaders(101, { ...(up.headers as Record<string, string | string[]>) }, false);
    ctx.response = rh;
    const pending = this.#responsePhase(f);
    if (pending !== null) await pending;
    spliceTunnel(f.res, f.upgrade!, up.socket, rh.headers);
  }

  /**
   * Runs the response phase on known headers and returns the stream the body goes to: the
   * client response itself, or a buffer in front of it while an async plugin finishes, or (a
   * plugin called `bufferBody()`) the HeldResponseBody that gathers it for the `body` handlers.
   */
  #startResponse(f: Flight, status: number, headers: OutgoingHttpHeaders, local: boolean): Writable {
    const ctx = f.ctx;
    const res = f.res;
    if (this.#draining) res.shouldKeepAlive = false;
    const rh = new ResponseHeaders(status, headers as Record<string, string | string[] | number>, local);
    rh.headers['x-request-id'] ??= ctx.id;
    // Set before the response phase so a plugin may still remove them.
    const kh = this.#s.kongHeaders;
    if (local) {
      if (this.#s.serverHeader) rh.headers.server ??= this.#s.serverHeader;
      ctx.responseLatency = performance.now() - ctx.t0;
      if (kh?.responseLatency) rh.headers['x-kong-response-latency'] = Math.round(ctx.responseLatency);
    } else {
      if (this.#s.viaHeader) {
        const prev = rh.headers.via;
        rh.headers.via = prev === undefined ? this.#s.viaHeader : `${Array.isArray(prev) ? prev.join(', ') : String(prev)}, ${this.#s.viaHeader}`;
      }
      if (kh !== undefined) {
        if (kh.upstreamLatency) rh.headers['x-kong-upstream-latency'] = Math.round(ctx.upstreamLatency ?? 0);
        if (kh.proxyLatency) rh.headers['x-kong-proxy-latency'] = Math.round(ctx.proxyLatency ?? 0);
        if (kh.upstreamStatus) rh.headers['x-kong-upstream-status'] = status;
      }
    }
    if (kh?.requestId) rh.headers['x-kong-request-id'] = ctx.id;
    if (ctx.extraHeaders !== null) {
      for (const [name, value, add] of ctx.extraHeaders) {
        if (add && typeof value === 'string') rh.addHeader(name, value);
        else rh.setHeader(name, value);
      }
    }
    ctx.response = rh;
    const pending = this.#responsePhase(f);
    if (pending === null) {
      if (rh.wantsBody) return this.#holdBody(f, rh);
      res.writeHead(rh.status, rh.headers);
      return res;
    }
    const buffer = new PassThrough();
    pending.then(() => {
      if (res.destroyed) return;
      if (rh.wantsBody) {
        buffer.pipe(this.#holdBody(f, rh));
        return;
      }
      res.writeHead(rh.status, rh.headers);
      buffer.pipe(res);
    }, () => res.destroy());
    return buffer;
  }

  /**
   * A plugin asked for the body (`bufferBody()`): where the response can carry one, a HeldResponseBody
   * (kernel/body-hook.ts) gathers it for the `body` handlers; elsewhere (gRPC, an upgrade,
   * 1xx/204/304, an upstream's answer to HEAD) the head is written and the body streams as usual.
   */
  #holdBody(f: Flight, rh: ResponseHeaders): Writable {
    const ctx = f.ctx;
    const res = f.res;
    const st = rh.status;
    const type = rh.headers['content-type'];
    const head = ctx.request.method === 'HEAD';
    if (f.upgrade !== null || st < 200 || st === 204 || st === 304 || isGrpc(ctx.request.headers['content-type'])
      || (typeof type === 'string' && isGrpc(type)) || (!rh.local && (head || ctx.upstream.method === 'HEAD'))) {
      res.writeHead(rh.status, rh.headers);
      return res;
    }
    const cap = this.#s.bufferCap;
    return new HeldResponseBody({
      ctx: ctx as Context & { response: ResponseHeaders }, res, plugins: f.plugins, cap, sendBody: !head,
      pluginFailed: (plugin, err) => this.#logPluginError(ctx, plugin, 'body', err),
      overCap: () => {
        if (this.#bodyWarnings.admit() !== null) ctx.log.warn({ cap, route: ctx.route?.name ?? ctx.route?.id ?? null }, 'response body above the buffer cap: sent unchanged, body handlers not run');
      },
    });
  }

  /** Runs response handlers; null when all finished synchronously. Failures are logged, never thrown. */
  #responsePhase(f: Flight): Promise<void> | null {
    const ctx = f.ctx;
    const plugins = f.plugins;
    const rctx = ctx as Context & { response: ResponseHeaders };
    // Kong's plugin_header_filter instrumentation: each response handler as kong.header_filter.plugin.<name>.
    const tr = ctx.trace !== null && ctx.trace.pluginHeaderFilter ? ctx.trace : null;
    let chain: Promise<void> | null = null;
    for (let i = 0; i < plugins.length; i++) {
      const h = plugins[i].handlers;
      if (h.response === undefined) continue;
      const name = plugins[i].entity.name;
      if (chain !== null) {
        chain = chain.then(() => (tr === null ? h.response!(rctx) : timedResponse(tr, name, h, rctx))).catch((err) => this.#logPluginError(ctx, name, 'response', err));
        continue;
      }
      try {
        const r = tr === null ? h.response(rctx) : timedResponse(tr, name, h, rctx);
        if (r instanceof Promise) chain = r.catch((err) => this.#logPluginError(ctx, name, 'response', err));
      } catch (err) {
        this.#logPluginError(ctx, name, 'response', err);
      }
    }
    return chain;
  }

  #local(f: Flight, reply: Reply): void {
    const res = f.res;
    if (res.headersSent || res.destroyed) return;
    if (isGrpc(f.ctx.request.headers['content-type'])) return this.#localGrpc(f, reply);
    const { buf, type } = jsonBody(reply.body);
    const headers: OutgoingHttpHeaders = {};
    if (type !== null) headers['content-type'] = type;
    if (reply.headers) for (const k in reply.headers) headers[k.toLowerCase()] = reply.headers[k];
    headers['content-length'] = String(buf.length);
    f.ctx.bytesSent = buf.length;
    const out = this.#startResponse(f, reply.status, headers, true);
    // A body held for the plugins' `body` handlers gets the reply's body even for HEAD: its
    // length is the Content-Length (node:http never sends a body for HEAD).
    out.end(f.ctx.request.method === 'HEAD' && out === f.res ? undefined : buf);
  }

  /**
   * A gateway reply to a gRPC client, as Kong answers one: no body, the status as `grpc-status`
   * and the message as `grpc-message` (kong/pdk/response.lua).
   */
  #localGrpc(f: Flight, reply: Reply): void {
    const headers: OutgoingHttpHeaders = { 'content-type': 'application/grpc' };
    if (reply.headers) for (const k in reply.headers) headers[k.toLowerCase()] = reply.headers[k];
    const body = reply.body as { message?: unknown } | string | undefined | null;
    const message = typeof body === 'string' ? body : typeof body?.message === 'string' ? body.message : undefined;
    headers['grpc-status'] = String(grpcStatusOf(reply.status));
    if (message !== undefined) headers['grpc-message'] = grpcMessage(message);
    const out = this.#startResponse(f, reply.status, headers, true);
    if (f.res.req.httpVersionMajor === 2) grpcStatusTrailers(f.res, f.ctx.response?.headers);
    out.end();
  }

  #fail(f: Flight, err: unknown): void {
    const ctx = f.ctx;
    const res = f.res;
    if (isGatewayError(err) && err.expose) {
      if (err.status >= 500) ctx.log.error({ code: err.code, detail: err.detail }, err.message);
      if (err.status === 413 || err.status === 408) res.shouldKeepAlive = false;
      return this.#local(f, ctx.reply(err.status, { message: err.message }, err.headers));
    }
    ctx.log.error({ err: errorForLog(err), route: ctx.route?.name ?? ctx.route?.id }, 'request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    this.#local(f, ctx.reply(500, { message: 'An unexpected error occurred', request_id: ctx.id }));
  }

  #logPluginError(ctx: Context, plugin: string, phaseName: string, err: unknown): void {
    ctx.log.error({ plugin, phase: phaseName, err: errorForLog(err) }, 'plugin failed');
  }

  #logPhase(f: Flight, totalMs: number): void {
    const ctx = f.ctx;
    const plugins = f.plugins;
    const status = f.res.statusCode;
    let logging = false;
    for (let i = 0; i < plugins.length && !logging; i++) logging = plugins[i].handlers.log !== undefined;
    if (logging) {
      ctx.response ??= new ResponseHeaders(status, {}, true);
      // Kong's latencies.kong: KONG_PROXY_LATENCY (until the upstream request went out) when
      // proxied, else KONG_RESPONSE_LATENCY (until the gateway's own response started).
      ctx.latencies = { total: totalMs, upstream: ctx.upstreamLatency, kong: ctx.proxyLatency ?? ctx.responseLatency ?? totalMs };
      ctx.bytes = { received: receivedBytes(ctx.request.raw), sent: sentBytes(f.res, ctx.bytesSent) };
      const lctx = ctx;
      for (const inst of plugins) {
        if (inst.handlers.log === undefined) continue;
        try {
          inst.handlers.log(lctx as never);
        } catch (err) {
          this.#logPluginError(ctx, inst.entity.name, 'log', err);
        }
      }
    }
    // A recorded trace ends after every log handler (an unrecorded one has nothing to end).
    const tr = ctx.trace;
    if (tr !== null && tr.recording) {
      try {
        tr.end({ status, route: ctx.route, endPerf: ctx.t0 + totalMs });
      } catch (err) {
        ctx.log.error({ err: errorForLog(err) }, 'ending the request trace failed');
      }
    }
    const access = this.#s.accessLog;
    if (access !== null) {
      const req = ctx.request;
      access.write({
        requestId: ctx.id,
        method: req.method,
        path: req.path,
        status,
        latency: totalMs,
        upstreamLatency: ctx.upstreamLatency,
        route: ctx.route?.name ?? ctx.route?.id ?? null,
        service: ctx.service?.name ?? ctx.service?.id ?? null,
        consumer: ctx.consumer?.username ?? ctx.consumer?.id ?? null,
        clientIp: req.clientIp,
        aborted: !f.res.writableFinished,
        bytesSent: ctx.bytesSent,
        referer: req.headers.referer,
        userAgent: req.headers['user-agent'],
        httpVersion: req.raw.httpVersion,
      }, this.#s.now());
    }
  }
}

type PhaseHandler = NonNullable<Instance['handlers']['access']>;

/**
 * A plugin's rewrite or access handler in a traced request: inside the request's trace scope when
 * the http_client instrumentation is on (openid-connect's IdP calls become kong.internal.request
 * spans), and recorded as `kong.<phase>.plugin.<name>` when `time` (plugin_rewrite / plugin_access).
 */
function tracedHandler(handler: PhaseHandler, inst: Instance, ctx: Context, tr: RequestTrace, time: boolean, phase: 'rewrite' | 'access'): ReturnType<PhaseHandler> {
  const call = (): ReturnType<PhaseHandler> => handler.call(inst.handlers, ctx);
  if (!time) return traceScope.run(tr, call);
  const start = performance.now();
  const r = tr.httpClient ? traceScope.run(tr, call) : call();
  const name = `kong.${phase}.plugin.${inst.entity.name}`;
  if (r instanceof Promise) return r.finally(() => tr.span(name, start, performance.now()));
  tr.span(name, start, performance.now());
  return r;
}

/** A response handler recorded as `kong.header_filter.plugin.<name>` (Kong's plugin_header_filter). */
function timedResponse(tr: RequestTrace, plugin: string, h: Instance['handlers'], rctx: Context & { response: ResponseHeaders }): void | Promise<void> {
  const start = performance.now();
  const name = `kong.header_filter.plugin.${plugin}`;
  let r: void | Promise<void>;
  try {
    r = h.response!(rctx);
  } catch (err) {
    tr.span(name, start, performance.now(), { error: true });
    throw err;
  }
  if (r instanceof Promise) return r.finally(() => tr.span(name, start, performance.now()));
  tr.span(name, start, performance.now());
}

/** Request line + header block + body as received (nginx's `$request_length`), computed at log time only. */
function receivedBytes(req: IncomingMessage): number {
  let n = req.method!.length + req.url!.length + 12; // "M U HTTP/1.1\r\n"
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) n += raw[i].length + raw[i + 1].length + 4;
  const cl = req.headers['content-length'];
  return n + 2 + (cl === undefined ? 0 : Number(cl) || 0);
}

/** Response head (as written by node:http) + body bytes (nginx's `$bytes_sent`). */
function sentBytes(res: ServerResponse, body: number): number {
  const head = (res as unknown as { _header?: string | null })._header;
  return (typeof head === 'string' ? head.length : 0) + body;
}

/** Error fields safe for a log line: no request data, only what the code itself produced. */
export function errorForLog(err: unknown): Record<string, unknown> {
  if (err instanceof Error) {
    return { type: err.name, message: err.message, code: (err as { code?: string }).code, stack: err.stack };
  }
  return { message: String(err) };
}
