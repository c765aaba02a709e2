/**
 * gRPC upstreams (services with protocol grpc / grpcs): one node:http2 client session per
 * upstream origin, multiplexing every call. It drives the same dispatch handler as the HTTP/1.1
 * clients (the kernel's Forward: onConnect/onHeaders/onData/onComplete/onError), and hands the
 * response trailers (grpc-status, grpc-message, ...) to onComplete so they reach the client.
 */
import type { ServerResponse } from 'node:http';
import http2 from 'node:http2';
import type { Readable } from 'node:stream';
import type { HeaderMap } from './headers.ts';

export interface GrpcDispatchHandler {
  onConnect(abort: (err?: Error) => void): void;
  onHeaders(statusCode: number, rawHeaders: string[], resume: () => void): boolean;
  onData(chunk: Buffer): boolean;
  onComplete(trailers: string[] | null): void;
  onError(err: Error): void;
}

export interface GrpcDispatchOptions {
  path: string;
  method: string;
  headers: HeaderMap;
  body: Buffer | Readable | NodeJS.ReadableStream | null;
  /** ms without activity on the call before it fails (the service's read_timeout). */
  headersTimeout?: number;
}

export interface GrpcClientOptions {
  /** TLS options for grpcs (servername, rejectUnauthorized, ca, cert, key). */
  tls?: http2.SecureClientSessionOptions;
  connectTimeout: number;
}

/** Header fields that HTTP/2 forbids on a request (RFC 9113 §8.2.2). */
const connectionSpecific = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'te']);

function timeoutError(): Error {
  return Object.assign(new Error('upstream timed out'), { code: 'ETIMEDOUT' });
}

function flatten(headers: http2.IncomingHttpHeaders): string[] {
  const raw: string[] = [];
  for (const name in headers) {
    if (name.charCodeAt(0) === 58) continue;
    const v = headers[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const one of v) raw.push(name, one);
    else raw.push(name, String(v));
  }
  return raw;
}

export class GrpcClient {
  readonly #origin: string;
  readonly #o: GrpcClientOptions;
  #session: http2.ClientHttp2Session | null = null;
  #closed = false;

  constructor(origin: string, options: GrpcClientOptions) {
    this.#origin = origin;
    this.#o = options;
  }

  #connect(): http2.ClientHttp2Session {
    const current = this.#session;
    if (current !== null && !current.closed && !current.destroyed) return current;
    const session = http2.connect(this.#origin, { ...this.#o.tls });
    const timer = setTimeout(() => {
      if (!session.connecting) return;
      session.destroy(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' }));
    }, this.#o.connectTimeout);
    timer.unref();
    session.once('connect', () => clearTimeout(timer));
    session.on('error', () => {});
    const forget = (): void => {
      clearTimeout(timer);
      if (this.#session === session) this.#session = null;
    };
    session.once('close', forget);
    session.once('goaway', forget);
    // Idle sessions do not keep the process alive; open streams do.
    session.unref();
    this.#session = session;
    return session;
  }

  dispatch(o: GrpcDispatchOptions, h: GrpcDispatchHandler): void {
    if (this.#closed) {
      h.onError(Object.assign(new Error('client closed'), { code: 'ECONNREFUSED' }));
      return;
    }
    let stream: http2.ClientHttp2Stream;
    try {
      const headers: http2.OutgoingHttpHeaders = { ':method': o.method, ':path': o.path, te: 'trailers' };
      const host = o.headers.host;
      if (typeof host === 'string') headers[':authority'] = host;
      for (const name in o.headers) {
        if (connectionSpecific.has(name)) continue;
        const v = o.headers[name];
        if (v !== undefined) headers[name] = v;
      }
      stream = this.#connect().request(headers, { endStream: o.body === null });
    } catch (err) {
      h.onError(err as Error);
      return;
    }
    let done = false;
    let trailers: string[] | null = null;
    const fail = (err: Error): void => {
      if (done) return;
      done = true;
      h.onError(err);
    };
    h.onConnect((err) => {
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
      fail(err ?? new Error('aborted'));
    });
    if (o.headersTimeout !== undefined && o.headersTimeout > 0) {
      stream.setTimeout(o.headersTimeout, () => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        fail(timeoutError());
      });
    }
    stream.on('response', (headers) => {
      h.onHeaders(Number(headers[':status']), flatten(headers), () => stream.resume());
    });
    stream.on('data', (chunk: Buffer) => {
      if (!h.onData(chunk)) stream.pause();
    });
    stream.on('trailers', (t) => {
      trailers = flatten(t);
    });
    // node:http2 may emit 'end' before the 'trailers' that carried END_STREAM: complete on 'close'.
    let ended = false;
    stream.on('end', () => {
      ended = true;
    });
    stream.on('error', (err) => fail(err));
    stream.on('close', () => {
      if (done) return;
      if (ended && stream.rstCode === http2.constants.NGHTTP2_NO_ERROR) {
        done = true;
        h.onComplete(trailers);
        return;
      }
      fail(Object.assign(new Error(`stream reset (${stream.rstCode})`), { code: 'ECONNRESET' }));
    });
    const body = o.body;
    if (body === null) return;
    if (Buffer.isBuffer(body)) stream.end(body);
    else {
      (body as Readable).on('error', (err) => stream.destroy(err));
      (body as Readable).pipe(stream);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const s = this.#session;
    this.#session = null;
    if (s === null || s.destroyed) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        s.destroy();
        resolve();
      }, 5000);
      t.unref();
      s.close(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

/** Kong's mapping of a gateway reply's HTTP status to a gRPC status code (kong/pdk/response.lua). */
export function grpcStatusOf(httpStatus: number): number {
  switch (httpStatus) {
    case 400: return 3;
    case 401: return 16;
    case 403: return 7;
    case 404: return 5;
    case 409: return 6;
    case 429: return 8;
    case 499: return 1;
    case 500: return 13;
    case 501: return 12;
    case 503: return 14;
    case 504: return 4;
    default:
      if (httpStatus >= 200 && httpStatus < 300) return 0;
      if (httpStatus >= 500) return 13;
      if (httpStatus >= 400) return 3;
      return 2;
  }
}

/** gRPC's Percent-Encoding of grpc-message (printable ASCII except '%' as is). */
export function grpcMessage(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** A gRPC request: Content-Type application/grpc, application/grpc+proto, application/grpc-web... */
export function isGrpc(contentType: string | undefined): boolean {
  return contentType !== undefined && contentType.startsWith('application/grpc');
}

/**
 * A gRPC status carried in response headers (a gateway reply, or an upstream trailers-only
 * response) is repeated as trailers: the response's headers and END_STREAM travel in separate
 * frames here, and gRPC clients read the status from trailers.
 */
export function grpcStatusTrailers(res: ServerResponse, headers: Record<string, unknown> | undefined): void {
  const status = headers?.['grpc-status'];
  if (status === undefined) return;
  const trailers: Record<string, string> = { 'grpc-status': String(status) };
  const message = headers!['grpc-message'];
  if (typeof message === 'string') trailers['grpc-message'] = message;
  res.addTrailers(trailers);
}
