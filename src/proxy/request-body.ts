/**
 * The request body on its way upstream. `request_buffering: true` (Kong's default) reads the
 * whole body before the upstream connection is used (memory, then a temporary file above
 * client_body_buffer_size); `false` streams it. Either way a client that sends nothing for
 * client_body_timeout gets 408, a body over client_max_body_size 413, and while streaming an
 * upstream that takes nothing for the service's write_timeout ends the request with 504.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { GatewayError } from '../errors.ts';
import { BodyCollector, HeldBody } from './spill.ts';

export function payloadTooLarge(): GatewayError {
  return new GatewayError('GW_REQUEST_TOO_LARGE', 'Payload too large', { status: 413 });
}

/** nginx's client_body_timeout answer (Kong's error handler: "Request timeout"). */
export function requestTimeout(): GatewayError {
  return new GatewayError('GW_REQUEST_TIMEOUT', 'Request timeout', { status: 408 });
}

/** The upstream took nothing of the request for write_timeout ms (mapped to 504 by proxy/errors.ts). */
export function writeTimeout(): Error {
  return Object.assign(new Error('upstream write timeout'), { code: 'UPSTREAM_WRITE_TIMEOUT' });
}

function clientGone(): GatewayError {
  return new GatewayError('GW_BAD_REQUEST', 'client closed the connection', { status: 400 });
}

export interface BodyPolicy {
  /** client_max_body_size in bytes; 0 = unlimited. */
  readonly maxBodySize: number;
  /** client_body_buffer_size: bodies held whole stay in memory up to this, beyond it in a temporary file. */
  readonly spillAbove: number;
  /** client_body_timeout: ms between two reads of the body; 0 = none. */
  readonly clientBodyTimeout: number;
}

/**
 * Reads the client's whole body: rejects with 413 past `limit` (0 = none), 408 after
 * `timeoutMs` without a read (0 = none), 400 when the client goes away.
 */
export function holdRequestBody(client: IncomingMessage, limit: number, spillAbove: number, timeoutMs: number): Promise<HeldBody> {
  if (client.readableEnded) return Promise.resolve(new HeldBody(0, Buffer.alloc(0), null));
  return new Promise((resolve, reject) => {
    const collector = new BodyCollector(spillAbove);
    let done = false;
    const timer = timeoutMs > 0 ? setTimeout(() => fail(requestTimeout()), timeoutMs) : null;
    const cleanup = (): void => {
      if (timer !== null) clearTimeout(timer);
      client.off('data', onData);
      client.off('end', onEnd);
      client.off('error', onGone);
      client.off('close', onClose);
    };
    const fail = (err: Error): void => {
      if (done) return;
      done = true;
      cleanup();
      collector.discard();
      client.pause();
      reject(err);
    };
    const onDrain = (): void => {
      if (!done) client.resume();
    };
    const onData = (chunk: Buffer): void => {
      timer?.refresh();
      if (limit > 0 && collector.size + chunk.length > limit) return fail(payloadTooLarge());
      if (!collector.write(chunk, onDrain)) client.pause();
    };
    const onEnd = (): void => {
      if (done) return;
      done = true;
      cleanup();
      collector.finish().then(resolve, reject);
    };
    const onGone = (): void => fail(clientGone());
    const onClose = (): void => {
      if (!client.complete) fail(clientGone());
    };
    client.on('data', onData);
    client.on('end', onEnd);
    client.on('error', onGone);
    client.on('close', onClose);
  });
}

/**
 * A streamed body between client and upstream: counts bytes against the size limit, times out a
 * client that stops sending (`readTimeout`) and an upstream that stops taking (`writeTimeout`:
 * the upstream client pauses this stream while its socket is full).
 */
export class StreamedBody extends Transform {
  readonly #limit: number;
  readonly #readTimeout: number;
  readonly #writeTimeout: number;
  #seen = 0;
  #timer: NodeJS.Timeout | null = null;
  #waitingFor: 'client' | 'upstream' | null = null;

  constructor(limit: number, readTimeout: number, writeTimeout: number) {
    super();
    this.#limit = limit;
    this.#readTimeout = readTimeout;
    this.#writeTimeout = writeTimeout;
    this.#wait('client');
    this.on('pause', () => this.#wait('upstream'));
    this.on('resume', () => this.#wait('client'));
  }

  #wait(side: 'client' | 'upstream'): void {
    const ms = side === 'client' ? this.#readTimeout : this.#writeTimeout;
    if (this.#waitingFor === side && this.#timer !== null) {
      this.#timer.refresh();
      return;
    }
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#waitingFor = side;
    this.#timer = ms > 0 ? setTimeout(() => this.destroy(side === 'client' ? requestTimeout() : writeTimeout()), ms) : null;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#limit > 0 && this.#seen > this.#limit) {
      cb(payloadTooLarge());
      return;
    }
    if (this.#waitingFor === 'client') this.#timer?.refresh();
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.#stop();
    cb();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.#stop();
    cb(err);
  }

  #stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#waitingFor = null;
  }
}

/** What goes upstream: nothing, a Buffer, a body held whole, or a stream. */
export type UpstreamBody = Buffer | HeldBody | StreamedBody | null;

/**
 * The upstream body of a request. `replaced` is a plugin's `setBody` (its headers already set),
 * `buffered` a body a plugin read; a body read here gets its Content-Length on `headers`. With
 * `buffering`, a client body is read whole first (a Promise); a temporary file is removed when
 * `res` closes.
 */
export function requestBody(
  client: IncomingMessage, replaced: Buffer | undefined, buffered: Buffer | undefined, held: HeldBody | undefined,
  headers: Record<string, string | string[] | undefined>, buffering: boolean, policy: BodyPolicy, writeTimeoutMs: number, res: ServerResponse,
): UpstreamBody | Promise<UpstreamBody> {
  if (replaced !== undefined) return replaced;
  if (buffered !== undefined) {
    headers['content-length'] = String(buffered.length);
    return buffered;
  }
  if (held !== undefined) {
    // A plugin measured the body (`bodySize()`); its temporary file goes when the request ends (kernel).
    headers['content-length'] = String(held.size);
    return held.buffer !== null ? held.buffer : held;
  }
  const cl = client.headers['content-length'];
  // HTTP/2 has no Transfer-Encoding: a request stream without END_STREAM on its headers has a body.
  const hasBody = (cl !== undefined && cl !== '0') || client.headers['transfer-encoding'] !== undefined
    || (client.httpVersionMajor === 2 && cl === undefined && (client as unknown as { stream: { endAfterHeaders: boolean } }).stream.endAfterHeaders === false);
  if (!hasBody) return null;
  if (!buffering) return client.pipe(new StreamedBody(policy.maxBodySize, policy.clientBodyTimeout, writeTimeoutMs));
  return holdRequestBody(client, policy.maxBodySize, policy.spillAbove, policy.clientBodyTimeout).then((held) => {
    headers['content-length'] = String(held.size);
    if (held.path !== null) res.once('close', () => held.dispose());
    return held.buffer !== null ? held.buffer : held;
  });
}
