/**
 * Per-request context handed to plugins. Everything is lazy: a request that no plugin inspects
 * pays only for the object itself.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Consumer, Route, Service } from '../config/types.ts';
import type { ConsumerGroup } from '../config/credentials.ts';
import { TailMemo } from '../tail-memo.ts';
import { clientCertificateOf, tlsInfoOf } from '../tls/client-cert.ts';
import type { HeaderMap } from '../proxy/headers.ts';
import { holdRequestBody, payloadTooLarge } from '../proxy/request-body.ts';
import type { HeldBody } from '../proxy/spill.ts';
import { isGatewayError } from '../errors.ts';
import type { RequestTrace } from '../observability/trace-scope.ts';
import type {
  ClientCertificate, Credential, DownstreamResponse, EntityLookup, IncomingView, Logger, Reply, RequestContext, UpstreamRequest, UpstreamTry, UriCaptures,
} from '../plugins/sdk.ts';

/** No attempt yet (shared; replaced by the first attempt's own list). */
const noTries: readonly UpstreamTry[] = Object.freeze([]);

/** Parses a Cookie header (RFC 6265 §5.4); later duplicates do not override the first. */
export function parseCookies(header: string | string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (header === undefined) return out;
  const text = Array.isArray(header) ? header.join('; ') : header;
  for (const pair of text.split(';')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const name = pair.slice(0, eq).trim();
    if (name === '' || out.has(name)) continue;
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    out.set(name, value);
  }
  return out;
}

/**
 * Parsed long Cookie headers: a browser sends the same (session) cookie request after request,
 * and splitting kilobytes of it again costs more than the rest of a remembered session's
 * handling. Callers get the map read-only.
 */
const parsedCookies = new TailMemo<ReadonlyMap<string, string>>(1024);

function cookiesOf(header: string | string[] | undefined): ReadonlyMap<string, string> {
  if (typeof header !== 'string' || header.length < 128) return parseCookies(header);
  let cookies = parsedCookies.get(header);
  if (cookies === undefined) parsedCookies.set(header, (cookies = parseCookies(header)));
  return cookies;
}

export interface BodyLimits {
  /** Max bytes a plugin may buffer (and the proxy accepts) for one body; 0 = the buffer cap only. */
  maxBodySize: number;
  /** Hard cap for buffering a body in memory for plugins. */
  bufferCap: number;
  /** client_body_timeout: ms between two reads of the body (408 after); 0 = none. */
  bodyTimeout: number;
}

export class Incoming implements IncomingView {
  readonly method: string;
  readonly scheme: 'http' | 'https';
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly rawQuery: string;
  readonly headers: IncomingHttpHeaders;
  readonly clientIp: string;
  /** The peer is in trusted_ips: its X-Forwarded-* / X-Real-IP values are kept. */
  readonly trusted: boolean;
  readonly raw: IncomingMessage;
  #query: URLSearchParams | undefined;
  #cookies: ReadonlyMap<string, string> | undefined;
  #body: Promise<Buffer> | undefined;
  /** The buffered body once read (the proxy sends it instead of streaming). */
  bufferedBody: Buffer | undefined;
  #size: Promise<number> | undefined;
  /** The body `bodySize()` held (memory or a temporary file): the proxy sends it; the kernel removes its file when the response closes. */
  heldBody: HeldBody | undefined;
  readonly #limits: BodyLimits;

  constructor(req: IncomingMessage, fields: { scheme: 'http' | 'https'; host: string; port: number; path: string; rawQuery: string; clientIp: string; trusted: boolean }, limits: BodyLimits) {
    this.raw = req;
    this.method = req.method ?? 'GET';
    this.headers = req.headers;
    this.scheme = fields.scheme;
    this.host = fields.host;
    this.port = fields.port;
    this.path = fields.path;
    this.rawQuery = fields.rawQuery;
    this.clientIp = fields.clientIp;
    this.trusted = fields.trusted;
    this.#limits = limits;
  }

  get query(): URLSearchParams {
    return (this.#query ??= new URLSearchParams(this.rawQuery));
  }

  header(name: string): string | undefined {
    const v = this.headers[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  }

  get cookies(): ReadonlyMap<string, string> {
    return (this.#cookies ??= cookiesOf(this.headers.cookie));
  }

  get clientCertificate(): ClientCertificate | null {
    return clientCertificateOf(this.raw.socket as TLSSocket);
  }

  get tls(): { version: string; cipher: string; clientVerify: string } | null {
    const socket = this.raw.socket as TLSSocket;
    return socket.encrypted === true && typeof socket.getProtocol === 'function' ? tlsInfoOf(socket) : null;
  }

  get peerCertificate(): Buffer | null {
    const socket = this.raw.socket as TLSSocket;
    if (typeof socket.getPeerCertificate !== 'function') return null;
    const cert = socket.getPeerCertificate(false);
    return cert && cert.raw ? cert.raw : null;
  }

  body(): Promise<Buffer> {
    return (this.#body ??= this.#readBody());
  }

  bodySize(stopAbove = Infinity): Promise<number> {
    if (this.#body !== undefined) return this.#body.then((b) => b.length);
    return (this.#size ??= this.#holdBody(stopAbove));
  }

  async #holdBody(stopAbove: number): Promise<number> {
    const max = this.#limits.maxBodySize > 0 ? this.#limits.maxBodySize : Infinity;
    const declared = Number(this.headers['content-length'] ?? 0);
    if (declared > max) throw payloadTooLarge();
    const limit = Math.min(max, stopAbove);
    try {
      const held = await holdRequestBody(this.raw, limit === Infinity ? 0 : limit, this.#limits.bufferCap, this.#limits.bodyTimeout);
      this.heldBody = held;
      return held.size;
    } catch (err) {
      // Past the caller's bound (not the node's): larger than it asked about, nothing kept.
      if (isGatewayError(err) && err.status === 413 && stopAbove < max) return stopAbove + 1;
      throw err;
    }
  }

  async #readBody(): Promise<Buffer> {
    if (this.#size !== undefined) {
      // bodySize() held it: in memory it is the body; in a file it is more than plugins may buffer.
      await this.#size;
      const held = this.heldBody;
      if (held === undefined || held.buffer === null) throw payloadTooLarge();
      this.bufferedBody = held.buffer;
      return held.buffer;
    }
    const limit = this.#limits.maxBodySize > 0 ? Math.min(this.#limits.maxBodySize, this.#limits.bufferCap) : this.#limits.bufferCap;
    const declared = Number(this.headers['content-length'] ?? 0);
    if (declared > limit) throw payloadTooLarge();
    const held = await holdRequestBody(this.raw, limit, Infinity, this.#limits.bodyTimeout);
    this.bufferedBody = held.buffer!;
    return this.bufferedBody;
  }

  async form(): Promise<URLSearchParams | null> {
    const type = this.headers['content-type'];
    if (type === undefined || !type.toLowerCase().startsWith('application/x-www-form-urlencoded')) return null;
    return new URLSearchParams((await this.body()).toString('utf8'));
  }

  async json(): Promise<unknown> {
    const type = this.headers['content-type'];
    if (type === undefined || !/^application\/([a-z0-9.+-]*\+)?json/i.test(type)) return undefined;
    try {
      return JSON.parse((await this.body()).toString('utf8'));
    } catch {
      return undefined;
    }
  }
}

export class Upstream implements UpstreamRequest {
  /** What goes upstream; an undefined value is a removed header (undici skips it). */
  readonly headers: Record<string, string | string[] | undefined>;
  path: string;
  /** The method sent upstream: the client's until a plugin sets it. */
  method: string;
  /**
   * Kernel: a plugin set `host` (Kong's set_header("Host") → upstream_host). The proxy then keeps
   * that Host instead of preserve_host / the service host (handler.ts `#prepareUpstream`).
   */
  hostSet = false;
  #rawQuery: string;
  #query: URLSearchParams | undefined;
  body: Buffer | undefined;

  constructor(headers: HeaderMap, path: string, rawQuery: string, method: string) {
    this.headers = headers;
    this.path = path;
    this.#rawQuery = rawQuery;
    this.method = method;
  }

  getHeader(name: string): string | string[] | undefined {
    return this.headers[name.toLowerCase()];
  }
  setHeader(name: string, value: string | string[]): void {
    this.setLowerHeader(name.toLowerCase(), value);
  }
  addHeader(name: string, value: string): void {
    const key = name.toLowerCase();
    if (key === 'host') {
      // A request has one Host: the value given is the upstream Host (as Kong's upstream_host).
      this.hostSet = true;
      this.headers.host = value;
      return;
    }
    const prev = this.headers[key];
    this.headers[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  removeHeader(name: string): void {
    const key = name.toLowerCase();
    // Plugins remove many headers the client never sent (anti-spoofing): look first.
    // `delete` would also turn the object into a slow dictionary for every later access;
    // undici skips undefined values, so a removed header is just set to undefined.
    if (key in this.headers) this.headers[key] = undefined;
  }
  removeLowerHeaders(names: readonly string[]): void {
    const h = this.headers;
    for (let i = 0; i < names.length; i++) if (h[names[i]] !== undefined) h[names[i]] = undefined;
  }
  setLowerHeader(name: string, value: string | string[]): void {
    if (name === 'host') this.hostSet = true;
    this.headers[name] = value;
  }
  setLowerHeaders(list: readonly { readonly name: string; readonly value: string }[]): void {
    for (let i = 0; i < list.length; i++) this.setLowerHeader(list[i].name, list[i].value);
  }
  get query(): URLSearchParams {
    return (this.#query ??= new URLSearchParams(this.#rawQuery));
  }
  setBody(body: Buffer | string, contentType?: string): void {
    this.body = typeof body === 'string' ? Buffer.from(body) : body;
    if (contentType !== undefined) this.headers['content-type'] = contentType;
    this.headers['transfer-encoding'] = undefined;
    this.headers['content-length'] = String(this.body.length);
  }
  /** Path plus query as sent upstream: the raw query unless a plugin touched `query`. */
  target(): string {
    if (this.#query === undefined) return this.#rawQuery === '' ? this.path : `${this.path}?${this.#rawQuery}`;
    const q = this.#query.toString();
    return q === '' ? this.path : `${this.path}?${q}`;
  }
}

export class ResponseHeaders implements DownstreamResponse {
  status: number;
  readonly local: boolean;
  readonly headers: Record<string, string | string[] | number>;
  /** Kernel: a plugin called `bufferBody()` (handler.ts `#startResponse` holds the body then). */
  wantsBody = false;
  constructor(status: number, headers: Record<string, string | string[] | number>, local: boolean) {
    this.status = status;
    this.headers = headers;
    this.local = local;
  }
  getHeader(name: string): string | string[] | undefined {
    const v = this.headers[name.toLowerCase()];
    return typeof v === 'number' ? String(v) : v;
  }
  setHeader(name: string, value: string | string[]): void {
    this.headers[name.toLowerCase()] = value;
  }
  addHeader(name: string, value: string): void {
    const key = name.toLowerCase();
    const prev = this.headers[key];
    this.headers[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
  }
  removeHeader(name: string): void {
    delete this.headers[name.toLowerCase()];
  }
  bufferBody(): void {
    this.wantsBody = true;
  }
}

/** The context object; the kernel fills `route`, `service`, `response` as the request advances. */
export class Context implements RequestContext {
  readonly id: string;
  readonly startedAt: number;
  readonly request: Incoming;
  readonly upstream: Upstream;
  route: Route | null = null;
  service: Service | null = null;
  /** The router match's captures (the same object, not a copy); set with `route`. */
  uriCaptures: UriCaptures | null = null;
  consumer: Consumer | null = null;
  credential: Credential | null = null;
  authenticatedGroups: readonly string[] | null = null;
  /** Consumer groups given by the authenticating plugin; null = the consumer's memberships. */
  #consumerGroups: readonly ConsumerGroup[] | null = null;
  readonly entities: EntityLookup;
  #state: Map<string, unknown> | null = null;
  /** Created on first use of `signal`: most proxied requests never need an AbortSignal. */
  #abort: AbortController | null = null;
  #abortReason: Error | null = null;
  /** Kernel only: cancels the upstream request in flight (set by the proxy while it runs). */
  cancelUpstream: ((reason: Error) => void) | null = null;
  readonly #baseLog: Logger;
  #log: Logger | null = null;
  readonly #now: () => number;
  /** Headers queued for the client response. */
  extraHeaders: Array<[string, string | string[], boolean]> | null = null;
  response: ResponseHeaders | null = null;
  upstreamLatency: number | null = null;
  /** performance.now() when the request arrived (kernel). */
  t0 = 0;
  /** Set by a tracing plugin when this request is traced. */
  trace: RequestTrace | null = null;
  get startedPerf(): number {
    return this.t0;
  }
  /** ms from arrival to the upstream request being sent (Kong's X-Kong-Proxy-Latency); null when not proxied. */
  proxyLatency: number | null = null;
  /** ms from arrival to the gateway's own response starting (Kong's X-Kong-Response-Latency); null when proxied. */
  responseLatency: number | null = null;
  /** Each upstream attempt, in order (Kong's `balancer_data.tries`); filled by proxy/forward.ts. */
  upstreamTries: readonly UpstreamTry[] = noTries;
  /** Upstream attempts made. */
  get tries(): number {
    return this.upstreamTries.length;
  }
  /** Body bytes written to the client. */
  bytesSent = 0;
  /** Filled before the log phase. */
  latencies: { total: number; upstream: number | null; kong: number } | null = null;
  bytes: { received: number; sent: number } | null = null;
  #downstream: { set(name: string, value: string | string[]): void; add(name: string, value: string): void } | null = null;

  constructor(fields: { id: string; startedAt: number; request: Incoming; upstream: Upstream; entities: EntityLookup; log: Logger; now: () => number }) {
    this.id = fields.id;
    this.startedAt = fields.startedAt;
    this.request = fields.request;
    this.upstream = fields.upstream;
    this.entities = fields.entities;
    this.#baseLog = fields.log;
    this.#now = fields.now;
  }

  /** The logger with this request's `request_id` bound (created on first use). */
  get log(): Logger {
    return (this.#log ??= this.#baseLog.child({ request_id: this.id }));
  }

  /** Per-request plugin state, created on first use. */
  get state(): Map<string, unknown> {
    return (this.#state ??= new Map());
  }

  serializeValues: Map<string, unknown> | null = null;
  setSerializeValue(key: string, value: unknown): void {
    if (typeof key !== 'string' || key === '') throw new TypeError('setSerializeValue: key must be a non-empty string');
    (this.serializeValues ??= new Map()).set(key, value);
  }
  /** Headers for whatever response goes to the client (created on first use). */
  get downstreamHeaders(): { set(name: string, value: string | string[]): void; add(name: string, value: string): void } {
    return (this.#downstream ??= {
      set: (name: string, value: string | string[]): void => {
        (this.extraHeaders ??= []).push([name.toLowerCase(), value, false]);
      },
      add: (name: string, value: string): void => {
        (this.extraHeaders ??= []).push([name.toLowerCase(), value, true]);
      },
    });
  }

  get signal(): AbortSignal {
    if (this.#abort === null) {
      this.#abort = new AbortController();
      if (this.#abortReason !== null) this.#abort.abort(this.#abortReason);
    }
    return this.#abort.signal;
  }

  /** True once the client has gone away (kernel: `abortRequest`). */
  get aborted(): boolean {
    return this.#abortReason !== null;
  }

  /** Kernel only: the client closed the connection before the response finished. */
  abortRequest(reason: Error): void {
    if (this.#abortReason !== null) return;
    this.#abortReason = reason;
    this.#abort?.abort(reason);
    const cancel = this.cancelUpstream;
    if (cancel !== null) {
      this.cancelUpstream = null;
      cancel(reason);
    }
  }

  authenticate(who: { consumer: Consumer | null; credential: Credential | null; groups?: readonly string[] | null; consumerGroups?: readonly ConsumerGroup[] | null }): void {
    this.consumer = who.consumer;
    this.credential = who.credential;
    if (who.groups !== undefined) this.authenticatedGroups = who.groups;
    this.#consumerGroups = who.consumerGroups ?? null;
  }

  get consumerGroups(): readonly ConsumerGroup[] {
    if (this.#consumerGroups !== null) return this.#consumerGroups;
    return this.consumer === null ? noConsumerGroups : this.entities.consumerGroups(this.consumer.id);
  }

  now(): number {
    return this.#now();
  }

  reply(status: number, body?: unknown, headers?: Record<string, string | string[]>): Reply {
    return { kind: 'reply', status, body, headers };
  }
}

const noConsumerGroups: readonly ConsumerGroup[] = Object.freeze([]);

export function isReply(value: unknown): value is Reply {
  return typeof value === 'object' && value !== null && (value as Reply).kind === 'reply';
}
