/**
 * A lean HTTP/1.1 client for the proxy's most common request: plain-HTTP upstream, no request
 * body. It speaks undici's dispatch-handler interface (the `Forward` handler is the same), writes
 * the request head as one string and parses responses with Node's own llhttp binding (the parser
 * node:http uses), on keep-alive sockets of its own. Measured in bench/: about 5 µs per request
 * less than undici's `Pool#dispatch` (request object, header re-validation, the WebAssembly
 * parser's per-header callbacks). Everything else (bodies, TLS, upgrades, IdP calls) stays on
 * undici. Failures carry undici's error codes, so the kernel's retry and 502/504 mapping apply
 * unchanged.
 */
import net from 'node:net';
import { createRequire } from 'node:module';
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';

interface Parser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | Error;
  finish(): undefined | Error;
  [key: number]: unknown;
}
interface ParserClass {
  new (): Parser;
  readonly RESPONSE: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
}
// node:http's parser binding (llhttp), the one node:http's own client uses.
const { HTTPParser } = createRequire(import.meta.url)('_http_common') as { HTTPParser: ParserClass };

/** Whether this Node offers the parser binding (else every request goes through undici). */
export const h1Available = typeof HTTPParser === 'function' && typeof HTTPParser.kOnHeadersComplete === 'number';

/** Error codes the kernel understands (undici's, so `isConnectFailure` / `upstreamError` apply). */
function failure(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

// RFC 9110 §5.1 token; §5.5 field values: no CTLs but HTAB (obs-text allowed). Paths: what undici
// accepts (no spaces, no CTLs).
const tokenRe = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const badValueRe = /[^\t\x20-\x7e\x80-\xff]/;
const badPathRe = /[^\u0021-\u00ff]/;
/**
 * Long header values already found clean. Plugins hand the same string out request after
 * request (a session's access token as `Authorization: Bearer …`): V8 keeps a string's hash on
 * the string, so finding it again costs far less than scanning it again.
 */
const cleanValues = new Map<string, true>();
function isCleanValue(v: string): boolean {
  if (v.length < 64) return !badValueRe.test(v);
  if (cleanValues.has(v)) return true;
  if (badValueRe.test(v)) return false;
  if (cleanValues.size >= 4096) cleanValues.clear();
  cleanValues.set(v, true);
  return true;
}

/** Header names already found to be tokens (the gateway's and plugins' own: a handful). */
const goodNames = new Set<string>();
function isToken(name: string): boolean {
  if (goodNames.has(name)) return true;
  if (!tokenRe.test(name)) return false;
  if (goodNames.size < 1024) goodNames.add(name);
  return true;
}

export interface H1DispatchOptions {
  path: string;
  method: string;
  headers: Record<string, string | string[] | undefined>;
  /** The client's own headers (already checked by node:http's parser): values still identical to these are not checked again. */
  clientHeaders: IncomingHttpHeaders;
  /** Inactivity limit while the exchange runs (Kong's read_timeout); 0 = none. */
  readTimeout: number;
  /** Longest wait for the socket to take the request (Kong's write_timeout); 0 = none. */
  writeTimeout: number;
}

export interface H1PoolOptions {
  connectTimeout: number;
  /** Most sockets open at once; further requests wait for one. */
  connections: number;
  /** An idle keep-alive socket is closed after this long, unless a read timeout already does it. */
  keepAliveTimeout: number;
}

/** The request head, or an Error when a header or the path could smuggle anything. */
function requestHead(o: H1DispatchOptions): string | Error {
  if (badPathRe.test(o.path) || (o.path[0] !== '/' && o.path !== '*')) return failure('UND_ERR_INVALID_ARG', 'invalid request path');
  let head = `${o.method} ${o.path} HTTP/1.1\r\n`;
  const headers = o.headers;
  const client = o.clientHeaders;
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    const fromClient = client[name];
    if (fromClient === undefined && !isToken(name)) return failure('UND_ERR_INVALID_ARG', `invalid header name ${JSON.stringify(name)}`);
    if (typeof v === 'string') {
      if (v !== fromClient && !isCleanValue(v)) return failure('UND_ERR_INVALID_ARG', `invalid value of header ${name}`);
      head += `${name}: ${v}\r\n`;
    } else {
      for (let i = 0; i < v.length; i++) {
        const one = v[i];
        if (typeof one !== 'string' || ((!Array.isArray(fromClient) || fromClient[i] !== one) && !isCleanValue(one))) {
          return failure('UND_ERR_INVALID_ARG', `invalid value of header ${name}`);
        }
        head += `${name}: ${one}\r\n`;
      }
    }
  }
  return `${head}\r\n`;
}

interface Exchange {
  readonly handler: Dispatcher.DispatchHandler;
  readonly head: string;
  readonly method: string;
  readonly readTimeout: number;
  readonly writeTimeout: number;
  /** Response bytes seen (a reused socket that dies before any is a stale keep-alive). */
  started: boolean;
  done: boolean;
}

/** One keep-alive socket and its response parser. */
class Connection {
  readonly #pool: H1Pool;
  readonly socket: net.Socket;
  readonly #parser: Parser;
  #ex: Exchange | null = null;
  #headers: string[] = [];
  #keepAlive = false;
  /** A final (non-1xx) response is being received. */
  #final = false;
  #idle = false;
  #connected = false;
  #reused = false;
  #timeout = 0;
  #closed = false;
  #connectTimer: NodeJS.Timeout | null = null;

  constructor(pool: H1Pool, host: string, port: number, connectTimeout: number) {
    this.#pool = pool;
    const socket = net.connect({ host, port, noDelay: true });
    this.socket = socket;
    const p = new HTTPParser();
    p.initialize(HTTPParser.RESPONSE, {}, 0, 0);
    this.#parser = p;
    p[HTTPParser.kOnHeaders] = (headers: string[]) => {
      for (let i = 0; i < headers.length; i++) this.#headers.push(headers[i]);
    };
    p[HTTPParser.kOnHeadersComplete] = (_maj: number, _min: number, headers: string[] | undefined, _m: unknown, _u: unknown, status: number, _msg: string, upgrade: boolean, keepAlive: boolean) => this.#onHeaders(headers, status, upgrade, keepAlive);
    p[HTTPParser.kOnBody] = (chunk: Buffer) => this.#onBody(chunk);
    p[HTTPParser.kOnMessageComplete] = () => this.#onComplete();

    if (connectTimeout > 0) this.#connectTimer = setTimeout(() => this.#fail(failure('UND_ERR_CONNECT_TIMEOUT', 'connect timeout')), connectTimeout);
    socket.once('connect', () => {
      this.#stopConnectTimer();
      this.#connected = true;
      const ex = this.#ex;
      if (ex !== null) this.#write(ex);
    });
    socket.on('data', (data: Buffer) => {
      let r: number | Error;
      try {
        r = this.#parser.execute(data);
      } catch (err) {
        // A handler threw inside a parser callback: fail the exchange, never the process.
        this.#fail(err instanceof Error ? err : failure('UND_ERR_SOCKET', String(err)));
        return;
      }
      if (typeof r !== 'number') this.#fail(failure('UND_ERR_SOCKET', `invalid upstream response: ${r.message}`));
    });
    socket.on('end', () => {
      // Close-delimited bodies end here; anything else is cut short.
      const r = this.#ex !== null && this.#ex.started ? this.#parser.finish() : undefined;
      if (r instanceof Error) this.#fail(failure('UND_ERR_SOCKET', 'upstream closed the connection mid-response'));
      else this.#fail(failure(this.#ex !== null && !this.#ex.started ? 'ECONNRESET' : 'UND_ERR_SOCKET', 'upstream closed the connection'));
    });
    socket.on('error', (err: Error & { code?: string }) => this.#fail(err.code ? err : failure('UND_ERR_SOCKET', err.message)));
    socket.on('close', () => this.#fail(failure('UND_ERR_SOCKET', 'upstream connection closed')));
    socket.on('timeout', () => {
      const ex = this.#ex;
      if (ex === null) this.#fail(null); // idle too long: close quietly
      else this.#fail(failure(ex.started ? 'UND_ERR_BODY_TIMEOUT' : 'UND_ERR_HEADERS_TIMEOUT', 'upstream read timeout'));
    });
  }

  #stopConnectTimer(): void {
    if (this.#connectTimer !== null) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
  }

  start(ex: Exchange): void {
    if (this.#idle) {
      this.#idle = false;
      this.socket.ref();
    }
    this.#ex = ex;
    ex.handler.onConnect!((err?: Error) => this.#abort(ex, err));
    if (ex.done) return; // aborted inside onConnect
    if (this.#connected) this.#write(ex);
  }

  #write(ex: Exchange): void {
    const t = ex.readTimeout;
    if (t !== this.#timeout) {
      this.#timeout = t;
      this.socket.setTimeout(t);
    }
    if (this.socket.write(ex.head, 'latin1') || ex.writeTimeout <= 0) return;
    // The socket could not take the whole request at once: the upstream gets write_timeout to read it.
    const timer = setTimeout(() => {
      if (this.#ex === ex) this.#fail(failure('UPSTREAM_WRITE_TIMEOUT', 'upstream write timeout'));
    }, ex.writeTimeout);
    this.socket.once('drain', () => clearTimeout(timer));
  }

  #onHeaders(headers: string[] | undefined, status: number, upgrade: boolean, keepAlive: boolean): number {
    const ex = this.#ex;
    let raw = this.#headers;
    this.#headers = [];
    if (headers !== undefined) raw = raw.length === 0 ? headers : raw.concat(headers);
    if (ex === null) {
      this.#fail(failure('UND_ERR_SOCKET', 'response without a request'));
      return 1;
    }
    ex.started = true;
    // 1xx interim answers (100, 103) are not forwarded; the final response follows.
    if (status < 200) return 1;
    if (upgrade) {
      this.#fail(failure('UND_ERR_SOCKET', 'unexpected upgrade'));
      return 2;
    }
    this.#keepAlive = keepAlive;
    this.#final = true;
    ex.handler.onHeaders!(status, raw as unknown as Buffer[], () => this.socket.resume(), '');
    // HEAD: the response has no body whatever its headers say.
    return ex.method === 'HEAD' ? 1 : 0;
  }

  #onBody(chunk: Buffer): void {
    const ex = this.#ex;
    if (ex === null || ex.done) return;
    if (ex.handler.onData!(chunk) === false) this.socket.pause();
  }

  #onComplete(): void {
    const ex = this.#ex;
    if (ex === null || ex.done || !this.#final) return; // end of a 1xx answer
    this.#final = false;
    ex.done = true;
    this.#ex = null;
    this.#reused = true;
    const reusable = this.#keepAlive && !this.#closed;
    if (!reusable) this.#close();
    // The last chunk may have paused the socket for the client's sake: the next exchange reads.
    else if (this.socket.isPaused()) this.socket.resume();
    ex.handler.onComplete!([]);
    if (reusable) this.#pool.release(this);
  }

  #abort(ex: Exchange, err?: Error): void {
    if (ex.done) return;
    ex.done = true;
    if (this.#ex === ex) this.#ex = null;
    this.#close();
    ex.handler.onError!(err ?? failure('UND_ERR_ABORTED', 'request aborted'));
  }

  /** Ends the socket; the exchange in flight (if any) fails with `err`, or is retried when the socket was a stale keep-alive. */
  #fail(err: Error | null): void {
    const ex = this.#ex;
    this.#ex = null;
    this.#close();
    if (ex === null || ex.done) return;
    ex.done = true;
    const e = err ?? failure('UND_ERR_SOCKET', 'upstream connection closed');
    // A kept-alive socket the upstream closed while idle: nothing was processed, go again once on
    // a fresh one (what browsers and undici's retry both do for an idempotent request).
    if (this.#reused && !ex.started && (e as { code?: string }).code !== 'UND_ERR_HEADERS_TIMEOUT') {
      this.#pool.redispatch({ ...ex, done: false });
      return;
    }
    ex.handler.onError!(e);
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopConnectTimer();
    this.#pool.forget(this);
    // (The parser is left to the garbage collector: this may run inside one of its callbacks.)
    this.socket.destroy();
  }

  closeIfIdle(): void {
    if (this.#ex === null) this.#close();
  }

  /**
   * Parked between requests. An idle socket does not keep the process alive; its inactivity
   * timer (the last read timeout, or `keepAliveTimeout` when there was none) closes it.
   */
  park(keepAliveTimeout: number): void {
    this.#idle = true;
    this.socket.unref();
    if (this.#timeout === 0 && keepAliveTimeout > 0) {
      this.#timeout = keepAliveTimeout;
      this.socket.setTimeout(keepAliveTimeout);
    }
  }
}

/** Keep-alive connections to one plain-HTTP origin. */
export class H1Pool {
  readonly #host: string;
  readonly #port: number;
  readonly #opts: H1PoolOptions;
  readonly #idle: Connection[] = [];
  readonly #all = new Set<Connection>();
  readonly #queue: Exchange[] = [];
  #closing = false;

  constructor(host: string, port: number, opts: H1PoolOptions) {
    this.#host = host.startsWith('[') ? host.slice(1, -1) : host;
    this.#port = port;
    this.#opts = opts;
  }

  dispatch(o: H1DispatchOptions, handler: Dispatcher.DispatchHandler): void {
    const head = requestHead(o);
    if (head instanceof Error) {
      handler.onError!(head);
      return;
    }
    this.#run({ handler, head, method: o.method, readTimeout: o.readTimeout, writeTimeout: o.writeTimeout, started: false, done: false });
  }

  /** A request whose kept-alive socket turned out closed: once more on a new socket. */
  redispatch(ex: Exchange): void {
    this.#run(ex, true);
  }

  #run(ex: Exchange, fresh = false): void {
    if (this.#closing) {
      ex.handler.onError!(failure('UND_ERR_DESTROYED', 'upstream pool closed'));
      return;
    }
    if (!fresh) {
      const idle = this.#idle.pop();
      if (idle !== undefined) {
        idle.start(ex);
        return;
      }
    }
    if (this.#all.size >= this.#opts.connections) {
      this.#queue.push(ex);
      return;
    }
    const c = new Connection(this, this.#host, this.#port, this.#opts.connectTimeout);
    this.#all.add(c);
    c.start(ex);
  }

  release(c: Connection): void {
    const next = this.#queue.shift();
    if (next !== undefined) {
      c.start(next);
      return;
    }
    if (this.#closing) {
      c.closeIfIdle();
      return;
    }
    c.park(this.#opts.keepAliveTimeout);
    this.#idle.push(c);
  }

  forget(c: Connection): void {
    this.#all.delete(c);
    const i = this.#idle.indexOf(c);
    if (i >= 0) this.#idle.splice(i, 1);
    // A freed slot lets a waiting request open a socket.
    const next = this.#all.size < this.#opts.connections ? this.#queue.shift() : undefined;
    if (next !== undefined) queueMicrotask(() => this.#run(next, true));
  }

  /** Stops taking requests; in-flight ones finish, idle sockets close. */
  async close(): Promise<void> {
    this.#closing = true;
    for (const ex of this.#queue.splice(0)) ex.handler.onError!(failure('UND_ERR_DESTROYED', 'upstream pool closed'));
    for (const c of [...this.#idle]) c.closeIfIdle();
    while (this.#all.size > 0) await new Promise((r) => setTimeout(r, 20));
  }
}
