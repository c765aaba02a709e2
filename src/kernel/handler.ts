/**
 * The path of one request: rewrite (global plugins) → route → access (plugins in priority order,
 * consumer-aware precedence) → proxy (streamed) → response phase → log phase.
 */
import { ServerResponse, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { PassThrough, Transform, type Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { GatewayError, isGatewayError } from '../errors.ts';
import { downstreamHeadersFromRaw, upstreamHeadersFrom } from '../proxy/headers.ts';
import { isConnectFailure, upstreamError } from '../proxy/errors.ts';
import type { Logger, Reply } from '../plugins/sdk.ts';
import { Context, Incoming, ResponseHeaders, Upstream, isReply } from './context.ts';
import { resolveEntry, type ChainEntry, type Instance } from './plugins.ts';
import type { Snapshot } from './snapshot.ts';
import type { TrustedIps } from './trusted.ts';
import type { RouteMatch } from '../router/index.ts';
import type { UpstreamTarget } from '../proxy/pools.ts';
import { noPeerMessage, type BalancedService } from '../proxy/balanced.ts';
import type { Address } from '../balancer/address.ts';

export interface HandlerSettings {
  log: Logger;
  /** Request counters for GET /status (optional). */
  stats?: { requestStarted(): void; requestEnded(): void };
  trusted: TrustedIps;
  /** Max request body in bytes (0 = unlimited, as Kong's default). */
  maxBodySize: number;
  /** Max bytes a plugin may buffer from a body. */
  bufferCap: number;
  accessLog: boolean;
  /** `Server` value on the gateway's own replies (Kong: server_tokens); null = none. */
  serverHeader?: string | null;
  /** `Via` entry appended to proxied responses (RFC 9110 §7.6.3); null = none. */
  viaHeader?: string | null;
  now(): number;
}

type Upgrade = { socket: Duplex; head: Buffer };

const idempotent = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
/** Methods the lean upstream client takes when the request has no body (proxy/h1.ts). */
const leanMethods = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE']);
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

/** Counts streamed request bytes and fails once the limit is passed (chunked uploads). */
function limitStream(limit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > limit) cb(new GatewayError('GW_REQUEST_TOO_LARGE', 'Payload too large', { status: 413 }));
      else cb(null, chunk);
    },
  });
}

export class RequestHandler {
  snapshot: Snapshot;
  readonly #s: HandlerSettings;

  constructor(snapshot: Snapshot, settings: HandlerSettings) {
    this.snapshot = snapshot;
    this.#s = settings;
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

  #begin(req: IncomingMessage, res: ServerResponse, upgrade: Upgrade | null): void {
    const snap = this.snapshot;
    snap.inflight++;
    const startedAt = this.#s.now();
    const t0 = performance.now();
    const url = req.url ?? '/';
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
    const clientIp = trusted ? this.#s.trusted.clientIp(remote, req.headers) : remote;
    const incomingId = req.headers['x-request-id'];
    const id = typeof incomingId === 'string' && requestIdPattern.test(incomingId) ? incomingId : randomUUID();
    const incoming = new Incoming(req, {
      scheme, host: hostOf(req.headers.host), port: req.socket.localPort ?? 0, path, rawQuery, clientIp, trusted,
    }, { maxBodySize: this.#s.maxBodySize, bufferCap: this.#s.bufferCap });
    const ctx = new Context({
      id, startedAt, request: incoming, upstream: new Upstream(upstreamHeadersFrom(req.headers), path, rawQuery),
      entities: snap.entities, log: this.#s.log, now: this.#s.now,
    });
    const phase: Instance[] = [];
    const stats = this.#s.stats;
    stats?.requestStarted();
    res.once('close', () => {
      stats?.requestEnded();
      if (!res.writableFinished) ctx.abortRequest(new Error('client closed the connection'));
      snap.inflight--;
      this.#logPhase(ctx, phase, res, performance.now() - t0);
    });
    let pending: void | Promise<void>;
    try {
      pending = this.#run(ctx, phase, snap, res, upgrade);
    } catch (err) {
      this.#fail(ctx, phase, res, err);
      return;
    }
    if (pending !== undefined) pending.catch((err: unknown) => this.#fail(ctx, phase, res, err));
  }

  /**
   * The phases up to the proxy. Synchronous as long as every plugin answers synchronously; the
   * first plugin that returns a Promise moves the rest of the request onto that Promise.
   */
  #run(ctx: Context, phase: Instance[], snap: Snapshot, res: ServerResponse, upgrade: Upgrade | null): void | Promise<void> {
    const max = this.#s.maxBodySize;
    if (max > 0 && Number(ctx.request.headers['content-length'] ?? 0) > max) {
      res.shouldKeepAlive = false;
      return this.#local(ctx, phase, res, ctx.reply(413, { message: 'Payload too large' }));
    }
    return this.#rewrite(ctx, phase, snap, res, upgrade, 0);
  }

  #rewrite(ctx: Context, phase: Instance[], snap: Snapshot, res: ServerResponse, upgrade: Upgrade | null, from: number): void | Promise<void> {
    const list = snap.chains.rewrite;
    const https = ctx.request.scheme === 'https';
    for (let k = from; k < list.length; k++) {
      const inst = list[k];
      if (!(https ? inst.https : inst.http)) continue;
      const r = inst.handlers.rewrite!(ctx);
      if (r instanceof Promise) {
        return r.then((v) => (isReply(v) ? this.#rewriteReply(ctx, phase, snap, res, v) : this.#rewrite(ctx, phase, snap, res, upgrade, k + 1)));
      }
      if (isReply(r)) return this.#rewriteReply(ctx, phase, snap, res, r);
    }
    return this.#route(ctx, phase, snap, res, upgrade);
  }

  #rewriteReply(ctx: Context, phase: Instance[], snap: Snapshot, res: ServerResponse, r: Reply): void {
    for (const e of snap.chains.global) this.#addResolved(phase, e, ctx);
    this.#local(ctx, phase, res, r);
  }

  #route(ctx: Context, phase: Instance[], snap: Snapshot, res: ServerResponse, upgrade: Upgrade | null): void | Promise<void> {
    const req = ctx.request;
    const match = snap.router.match({
      method: req.method, host: req.host, port: portOf(req.headers.host), path: req.path, headers: req.headers, scheme: req.scheme,
      sni: (req.raw.socket as { servername?: string }).servername || undefined,
    });
    if (match === null) {
      for (const e of snap.chains.global) this.#addResolved(phase, e, ctx);
      return this.#local(ctx, phase, res, ctx.reply(404, { message: 'no Route matched with those values' }));
    }
    if (match.httpsRedirect) {
      const code = match.route.https_redirect_status_code;
      ctx.route = match.route;
      if (code === 426) return this.#local(ctx, phase, res, ctx.reply(426, { message: 'Please use HTTPS protocol' }, { connection: 'Upgrade', upgrade: 'TLS/1.2, HTTP/1.1' }));
      // As Kong: the host without its port (the client's port is the plain-http one), or a trusted
      // X-Forwarded-Host; the browser then uses https' default port.
      const xfh = req.trusted ? req.headers['x-forwarded-host'] : undefined;
      const host = typeof xfh === 'string' && xfh !== '' ? xfh : req.host;
      const location = `https://${host}${req.path}${req.rawQuery === '' ? '' : `?${req.rawQuery}`}`;
      return this.#local(ctx, phase, res, ctx.reply(code, { message: 'Moved' }, { location }));
    }
    ctx.route = match.route;
    ctx.service = match.service;
    ctx.upstream.path = match.upstreamPath;
    return this.#access(ctx, phase, snap, res, upgrade, match, snap.chains.forRoute(match.route), 0);
  }

  #access(ctx: Context, phase: Instance[], snap: Snapshot, res: ServerResponse, upgrade: Upgrade | null, match: RouteMatch, chain: readonly ChainEntry[], from: number): void | Promise<void> {
    const https = ctx.request.scheme === 'https';
    for (let i = from; i < chain.length; i++) {
      const inst = resolveEntry(chain[i], ctx.consumer);
      if (inst === null || !(https ? inst.https : inst.http)) continue;
      phase.push(inst);
      const access = inst.handlers.access;
      if (access === undefined) continue;
      const r = access.call(inst.handlers, ctx);
      if (r instanceof Promise) {
        return r.then((v) => (isReply(v)
          ? this.#accessReply(ctx, phase, res, chain, i, v)
          : this.#access(ctx, phase, snap, res, upgrade, match, chain, i + 1)));
      }
      if (isReply(r)) return this.#accessReply(ctx, phase, res, chain, i, r);
    }
    const service = match.service;
    if (service === null) {
      return this.#local(ctx, phase, res, ctx.reply(503, { message: 'no Service found with those values' }));
    }
    const balanced = snap.balanced.get(service.id);
    let target: UpstreamTarget, peer: Peer | null = null;
    if (balanced === undefined) target = snap.targets.get(service.id)!;
    else {
      const key = balanced.hashKey(ctx, { path: match.normalizedPath, captures: match.uriCaptures });
      const a = balanced.first(key);
      if (a === null) return this.#local(ctx, phase, res, ctx.reply(503, { message: noPeerMessage }));
      peer = { balanced, key, address: a, tried: null };
      target = balanced.targetFor(a);
    }
    this.#prepareUpstream(ctx, match.matchedPath, target.hostHeader);
    if (upgrade !== null) {
      if (peer !== null) peer.balanced.release(peer.address);
      return this.#tunnel(ctx, phase, res, target.pool, upgrade);
    }
    this.#proxy(ctx, phase, res, target, service.retries, service.read_timeout, peer);
  }

  #accessReply(ctx: Context, phase: Instance[], res: ServerResponse, chain: readonly ChainEntry[], i: number, r: Reply): void {
    for (let j = i + 1; j < chain.length; j++) this.#addResolved(phase, chain[j], ctx);
    this.#local(ctx, phase, res, r);
  }

  #addResolved(phase: Instance[], entry: ChainEntry, ctx: Context): void {
    const inst = resolveEntry(entry, ctx.consumer);
    if (inst !== null && (ctx.request.scheme === 'https' ? inst.https : inst.http)) phase.push(inst);
  }

  #prepareUpstream(ctx: Context, matchedPath: string | null, hostHeader: string): void {
    const req = ctx.request;
    const h = ctx.upstream.headers;
    const raw = req.headers;
    const trusted = req.trusted;
    const remote = req.raw.socket.remoteAddress ?? '';
    h.host = ctx.route!.preserve_host && raw.host !== undefined ? raw.host : hostHeader;
    const xff = raw['x-forwarded-for'];
    h['x-forwarded-for'] = trusted && xff !== undefined ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${remote}` : remote;
    h['x-forwarded-proto'] = trusted && typeof raw['x-forwarded-proto'] === 'string' ? raw['x-forwarded-proto'] : req.scheme;
    h['x-forwarded-host'] = trusted && typeof raw['x-forwarded-host'] === 'string' ? raw['x-forwarded-host'] : req.host;
    h['x-forwarded-port'] = trusted && typeof raw['x-forwarded-port'] === 'string' ? raw['x-forwarded-port'] : String(req.port);
    h['x-forwarded-path'] = trusted && typeof raw['x-forwarded-path'] === 'string' ? raw['x-forwarded-path'] : req.path;
    const prefix = trusted && typeof raw['x-forwarded-prefix'] === 'string' ? raw['x-forwarded-prefix']
      : ctx.route!.strip_path && matchedPath !== null && matchedPath !== '' && matchedPath !== '/' ? matchedPath : undefined;
    if (prefix !== undefined) h['x-forwarded-prefix'] = prefix;
    else if ('x-forwarded-prefix' in h) h['x-forwarded-prefix'] = undefined;
    h['x-real-ip'] = req.clientIp;
    h['x-request-id'] = ctx.id;
  }

  /**
   * Sends the request upstream through undici's dispatcher API with our own handler (`Forward`):
   * the response streams straight into the client response, without the promise, async resource
   * and end-of-stream listeners of `pool.stream()` (measured in bench/: several µs per request).
   */
  #proxy(ctx: Context, phase: Instance[], res: ServerResponse, first: UpstreamTarget, retries: number, readTimeout: number, peer: Peer | null): void {
    const req = ctx.request;
    const method = req.method;
    let body: Buffer | NodeJS.ReadableStream | null = ctx.upstream.body ?? req.bufferedBody ?? null;
    if (body === null) {
      const cl = req.headers['content-length'];
      const hasBody = (cl !== undefined && cl !== '0') || req.headers['transfer-encoding'] !== undefined;
      if (hasBody) {
        body = this.#s.maxBodySize > 0 && cl === undefined ? req.raw.pipe(limitStream(this.#s.maxBodySize)) : req.raw;
      }
    } else if (ctx.upstream.body === undefined) {
      ctx.upstream.headers['content-length'] = String((body as Buffer).length);
    }
    const canRetry = idempotent.has(method) && (body === null || Buffer.isBuffer(body));
    const opts: Dispatcher.DispatchOptions = {
      path: ctx.upstream.target(), method, headers: ctx.upstream.headers, body: body as Dispatcher.DispatchOptions['body'],
      headersTimeout: readTimeout, bodyTimeout: readTimeout,
    };
    // Body-less requests to a plain-HTTP upstream take the lean client (proxy/h1.ts).
    const lean = body === null && leanMethods.has(method);
    const h1Opts = !lean ? null : { path: opts.path as string, method, headers: ctx.upstream.headers, clientHeaders: req.headers, readTimeout };
    const dispatch = (attempt: number, target: UpstreamTarget): void => {
      const forward = new Forward(this, ctx, phase, res, performance.now(), (err) => {
        if (peer !== null) {
          // Balanced: the failure counts against this address; a retry goes to another one.
          peer.balanced.failed(peer.address, err);
          peer.balanced.release(peer.address);
        }
        if (canRetry && attempt < retries && isConnectFailure(err)) {
          if (peer === null) {
            dispatch(attempt + 1, target);
            return true;
          }
          (peer.tried ??= []).push(peer.address);
          const next = peer.balanced.next(peer.key, peer.tried);
          if (next !== null) {
            peer.address = next;
            const t = peer.balanced.targetFor(next);
            if (!ctx.route!.preserve_host) ctx.upstream.headers.host = t.hostHeader;
            dispatch(attempt + 1, t);
            return true;
          }
        }
        return false;
      }, peer);
      if (h1Opts !== null && target.h1 !== null) target.h1.dispatch(h1Opts, forward);
      else target.pool.dispatch(opts, forward);
    };
    dispatch(0, first);
  }

  /** Forward's callbacks into the handler (kept off the class's public surface otherwise). */
  startResponse(ctx: Context, phase: Instance[], res: ServerResponse, status: number, headers: OutgoingHttpHeaders): Writable {
    return this.#startResponse(ctx, phase, res, status, headers, false);
  }

  upstreamFailed(ctx: Context, phase: Instance[], res: ServerResponse, err: unknown): void {
    if (res.headersSent) {
      // The response was already streaming: all we can do is cut the connection.
      res.destroy();
      return;
    }
    if (ctx.aborted) return;
    if (isGatewayError(err) && err.status === 413) {
      res.shouldKeepAlive = false;
      return this.#local(ctx, phase, res, ctx.reply(413, { message: 'Payload too large' }));
    }
    const gw = upstreamError(err);
    ctx.log.error({ request_id: ctx.id, code: gw.code, detail: gw.detail, service: ctx.service?.name ?? ctx.service?.id }, 'upstream request failed');
    this.#local(ctx, phase, res, ctx.reply(gw.status, { message: gw.message }));
  }

  async #tunnel(ctx: Context, phase: Instance[], res: ServerResponse, pool: Dispatcher, upgrade: { socket: Duplex; head: Buffer }): Promise<void> {
    let up: Dispatcher.UpgradeData;
    try {
      const protocol = ctx.request.header('upgrade') ?? 'websocket';
      up = await pool.upgrade({ path: ctx.upstream.target(), method: ctx.request.method, headers: ctx.upstream.headers, protocol, signal: ctx.signal });
    } catch (err) {
      const gw = upstreamError(err);
      ctx.log.error({ request_id: ctx.id, code: gw.code, detail: gw.detail }, 'upstream upgrade failed');
      return this.#local(ctx, phase, res, ctx.reply(gw.status, { message: gw.message }));
    }
    const client = upgrade.socket;
    const upstream = up.socket;
    const rh = new ResponseHeaders(101, { ...(up.headers as Record<string, string | string[]>) }, false);
    ctx.response = rh;
    const pending = this.#responsePhase(ctx, phase);
    if (pending !== null) await pending;
    res.statusCode = 101;
    let head = 'HTTP/1.1 101 Switching Protocols\r\n';
    for (const [k, v] of Object.entries(rh.headers)) {
      for (const one of Array.isArray(v) ? v : [v]) head += `${k}: ${one}\r\n`;
    }
    res.detachSocket(client as Socket);
    client.write(`${head}\r\n`);
    if (upgrade.head.length > 0) upstream.write(upgrade.head);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('close', () => {
      upstream.destroy();
      res.emit('close');
    });
    upstream.pipe(client);
    client.pipe(upstream);
  }

  /**
   * Runs the response phase on known headers and returns the stream the body goes to: the
   * client response itself, or a buffer in front of it while an async plugin finishes.
   */
  #startResponse(ctx: Context, phase: Instance[], res: ServerResponse, status: number, headers: OutgoingHttpHeaders, local: boolean): Writable {
    const rh = new ResponseHeaders(status, headers as Record<string, string | string[] | number>, local);
    rh.headers['x-request-id'] ??= ctx.id;
    // Set before the response phase so a plugin may still remove them.
    if (local) {
      if (this.#s.serverHeader) rh.headers.server ??= this.#s.serverHeader;
    } else if (this.#s.viaHeader) {
      const prev = rh.headers.via;
      rh.headers.via = prev === undefined ? this.#s.viaHeader : `${Array.isArray(prev) ? prev.join(', ') : String(prev)}, ${this.#s.viaHeader}`;
    }
    if (ctx.extraHeaders !== null) {
      for (const [name, value, add] of ctx.extraHeaders) {
        if (add && typeof value === 'string') rh.addHeader(name, value);
        else rh.setHeader(name, value);
      }
    }
    ctx.response = rh;
    const pending = this.#responsePhase(ctx, phase);
    if (pending === null) {
      res.writeHead(rh.status, rh.headers);
      return res;
    }
    const buffer = new PassThrough();
    pending.then(() => {
      if (res.destroyed) return;
      res.writeHead(rh.status, rh.headers);
      buffer.pipe(res);
    }, () => res.destroy());
    return buffer;
  }

  /** Runs response handlers; null when all finished synchronously. Failures are logged, never thrown. */
  #responsePhase(ctx: Context, phase: Instance[]): Promise<void> | null {
    const rctx = ctx as Context & { response: ResponseHeaders };
    let chain: Promise<void> | null = null;
    for (let i = 0; i < phase.length; i++) {
      const h = phase[i].handlers;
      if (h.response === undefined) continue;
      const name = phase[i].entity.name;
      if (chain !== null) {
        chain = chain.then(() => h.response!(rctx)).catch((err) => this.#logPluginError(ctx, name, 'response', err));
        continue;
      }
      try {
        const r = h.response(rctx);
        if (r instanceof Promise) chain = r.catch((err) => this.#logPluginError(ctx, name, 'response', err));
      } catch (err) {
        this.#logPluginError(ctx, name, 'response', err);
      }
    }
    return chain;
  }

  #local(ctx: Context, phase: Instance[], res: ServerResponse, reply: Reply): void {
    if (res.headersSent || res.destroyed) return;
    const { buf, type } = jsonBody(reply.body);
    const headers: OutgoingHttpHeaders = {};
    if (type !== null) headers['content-type'] = type;
    if (reply.headers) for (const k in reply.headers) headers[k.toLowerCase()] = reply.headers[k];
    headers['content-length'] = String(buf.length);
    const out = this.#startResponse(ctx, phase, res, reply.status, headers, true);
    out.end(ctx.request.method === 'HEAD' ? undefined : buf);
  }

  #fail(ctx: Context, phase: Instance[], res: ServerResponse, err: unknown): void {
    if (isGatewayError(err) && err.expose) {
      if (err.status >= 500) ctx.log.error({ request_id: ctx.id, code: err.code, detail: err.detail }, err.message);
      if (err.status === 413) res.shouldKeepAlive = false;
      return this.#local(ctx, phase, res, ctx.reply(err.status, { message: err.message }, err.headers));
    }
    ctx.log.error({ request_id: ctx.id, err: errorForLog(err), route: ctx.route?.name ?? ctx.route?.id }, 'request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    this.#local(ctx, phase, res, ctx.reply(500, { message: 'An unexpected error occurred', request_id: ctx.id }));
  }

  #logPluginError(ctx: Context, plugin: string, phaseName: string, err: unknown): void {
    ctx.log.error({ request_id: ctx.id, plugin, phase: phaseName, err: errorForLog(err) }, 'plugin failed');
  }

  #logPhase(ctx: Context, phase: Instance[], res: ServerResponse, totalMs: number): void {
    const status = res.statusCode;
    let logging = false;
    for (let i = 0; i < phase.length && !logging; i++) logging = phase[i].handlers.log !== undefined;
    if (logging) {
      ctx.response ??= new ResponseHeaders(status, {}, true);
      ctx.latencies = { total: totalMs, upstream: ctx.upstreamLatency };
      const lctx = ctx;
      for (const inst of phase) {
        if (inst.handlers.log === undefined) continue;
        try {
          inst.handlers.log(lctx as never);
        } catch (err) {
          this.#logPluginError(ctx, inst.entity.name, 'log', err);
        }
      }
    }
    if (this.#s.accessLog) {
      this.#s.log.info({
        type: 'access',
        request_id: ctx.id,
        method: ctx.request.method,
        path: ctx.request.path,
        status,
        latency_ms: Math.round(totalMs * 100) / 100,
        upstream_latency_ms: ctx.upstreamLatency === null ? null : Math.round(ctx.upstreamLatency * 100) / 100,
        route: ctx.route?.name ?? ctx.route?.id ?? null,
        service: ctx.service?.name ?? ctx.service?.id ?? null,
        consumer: ctx.consumer?.username ?? ctx.consumer?.id ?? null,
        client_ip: ctx.request.clientIp,
        aborted: !res.writableFinished,
      });
    }
  }
}

/**
 * undici dispatch handler (the callback interface `pool.stream()` itself is built on) for one
 * attempt: upstream response headers → response phase → client; body chunks with backpressure;
 * failures → retry (connection failures of idempotent requests) or a Kong-style 502/504.
 */
/** A balanced request's peer state: the address of the current try and those that failed. */
interface Peer {
  readonly balanced: BalancedService;
  readonly key: string;
  address: Address;
  tried: Address[] | null;
}

class Forward implements Dispatcher.DispatchHandler {
  readonly #h: RequestHandler;
  readonly #peer: Peer | null;
  readonly #ctx: Context;
  readonly #phase: Instance[];
  readonly #res: ServerResponse;
  readonly #t0: number;
  readonly #retry: (err: Error) => boolean;
  #out: Writable | null = null;
  #resume: (() => void) | null = null;

  constructor(h: RequestHandler, ctx: Context, phase: Instance[], res: ServerResponse, t0: number, retry: (err: Error) => boolean, peer: Peer | null) {
    this.#h = h;
    this.#peer = peer;
    this.#ctx = ctx;
    this.#phase = phase;
    this.#res = res;
    this.#t0 = t0;
    this.#retry = retry;
  }

  onConnect(abort: (err?: Error) => void): void {
    const ctx = this.#ctx;
    if (ctx.aborted) {
      abort(new Error('client closed the connection'));
      return;
    }
    ctx.cancelUpstream = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx interim responses are not forwarded
    const ctx = this.#ctx;
    ctx.upstreamLatency = performance.now() - this.#t0;
    if (this.#peer !== null) this.#peer.balanced.answered(this.#peer.address, statusCode, ctx.upstreamLatency, Date.now());
    this.#resume = resume;
    this.#out = this.#h.startResponse(ctx, this.#phase, this.#res, statusCode, downstreamHeadersFromRaw(rawHeaders));
    return true;
  }

  onData(chunk: Buffer): boolean {
    const out = this.#out!;
    if (out.destroyed) return true;
    if (out.write(chunk)) return true;
    out.once('drain', this.#resume!);
    return false;
  }

  onComplete(): void {
    this.#ctx.cancelUpstream = null;
    if (this.#peer !== null) this.#peer.balanced.release(this.#peer.address);
    this.#out!.end();
  }

  onError(err: Error): void {
    const ctx = this.#ctx;
    ctx.cancelUpstream = null;
    if (this.#out !== null) {
      // Mid-body failure: the client sees a cut connection, as with any proxy.
      if (this.#peer !== null) this.#peer.balanced.release(this.#peer.address);
      this.#out.destroy();
      this.#res.destroy();
      return;
    }
    if (this.#peer !== null && (this.#res.headersSent || ctx.aborted)) {
      this.#peer.balanced.release(this.#peer.address);
      return this.#h.upstreamFailed(ctx, this.#phase, this.#res, err);
    }
    if (!this.#res.headersSent && !ctx.aborted && this.#retry(err)) return;
    this.#h.upstreamFailed(ctx, this.#phase, this.#res, err);
  }
}

/** Error fields safe for a log line: no request data, only what the code itself produced. */
export function errorForLog(err: unknown): Record<string, unknown> {
  if (err instanceof Error) {
    return { type: err.name, message: err.message, code: (err as { code?: string }).code, stack: err.stack };
  }
  return { message: String(err) };
}
