/**
 * The response body held for the plugins' `body` handlers: Kong's body_filter on a buffered body
 * (`kong.response.get_raw_body` / `set_raw_body`). Once a plugin calls `ctx.response.bufferBody()`
 * in the response phase, the kernel (handler.ts `#startResponse`) hands the body's producer (the
 * proxy, or a local reply) a `HeldResponseBody` instead of the client response: it gathers the chunks in
 * memory, runs every collected plugin's `body` handler in the plugins' order, and only then writes
 * the head, with the final Content-Length, and the final body.
 *
 * Deviations from Kong: Kong's body_filter sees every chunk and a plugin assembles the body
 * itself; here a plugin sees the whole body once. A body above the node's buffer cap is not held:
 * what was gathered and the rest go to the client unchanged and the `body` handlers are not called
 * (Kong would hold it whole), with a warning at most once a minute.
 */
import type { ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import type { Context, ResponseHeaders } from './context.ts';
import type { Instance } from './plugins.ts';

/** What a held body needs of its request. */
export interface BodyHold {
  readonly ctx: Context & { response: ResponseHeaders };
  readonly res: ServerResponse;
  /** The request's collected plugins, in run order (those with a `body` handler run). */
  readonly plugins: readonly Instance[];
  /** Bytes held in memory at most; beyond, the body passes through unchanged. */
  readonly cap: number;
  /** False when the body is not sent (a local reply to HEAD): only its length is. */
  readonly sendBody: boolean;
  /** A `body` handler threw, rejected or returned something else than a Buffer or undefined. */
  pluginFailed(plugin: string, err: unknown): void;
  /** The body went over `cap` (called once, before the head is written). */
  overCap(): void;
}

/** The Writable the body's producer writes into while the body is held. */
export class HeldResponseBody extends Writable {
  readonly #h: BodyHold;
  #chunks: Buffer[] = [];
  #size = 0;
  /** Over the cap: every write goes straight to the client. */
  #passing = false;

  constructor(hold: BodyHold) {
    super();
    this.#h = hold;
    // The client went away before the response ended: nothing more to hold.
    hold.res.once('close', () => {
      if (!hold.res.writableFinished && !this.destroyed) this.destroy();
    });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#passing) return this.#pass(chunk, cb);
    const size = this.#size + chunk.length;
    if (size > this.#h.cap) {
      this.#startPassing();
      return this.#pass(chunk, cb);
    }
    this.#size = size;
    this.#chunks.push(chunk);
    cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    const h = this.#h;
    if (this.#passing) {
      h.res.end();
      cb();
      return;
    }
    const chunks = this.#chunks;
    this.#chunks = [];
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, this.#size);
    void runBodyHandlers(h, body).then((final) => {
      try {
        this.#send(final);
      } catch {
        // A header value node:http refuses (set by a plugin): the response cannot be sent.
        h.res.destroy();
      }
      cb();
    });
  }

  /** The head with the final body's length, then the body (not for a HEAD request). */
  #send(body: Buffer): void {
    const { ctx, res } = this.#h;
    if (res.destroyed) return;
    const rh = ctx.response;
    delete rh.headers['transfer-encoding'];
    rh.headers['content-length'] = String(body.length);
    ctx.bytesSent = this.#h.sendBody ? body.length : 0;
    res.writeHead(rh.status, rh.headers);
    res.end(this.#h.sendBody ? body : undefined);
  }

  /** Over the cap: the head as the response phase left it, what was gathered, then the rest as it comes. */
  #startPassing(): void {
    const h = this.#h;
    this.#passing = true;
    h.overCap();
    const rh = h.ctx.response;
    h.res.writeHead(rh.status, rh.headers);
    const held = this.#chunks;
    this.#chunks = [];
    if (!h.sendBody) return;
    for (const c of held) h.res.write(c);
  }

  /** One chunk to the client, acknowledged once the client's socket takes more (backpressure). */
  #pass(chunk: Buffer, cb: (err?: Error | null) => void): void {
    const res = this.#h.res;
    if (res.destroyed || !this.#h.sendBody || res.write(chunk)) {
      cb();
      return;
    }
    res.once('drain', () => cb());
  }
}

/**
 * Every collected plugin's `body` handler in order, each given the previous one's result. A
 * handler that fails leaves the body as it was before it.
 */
async function runBodyHandlers(h: BodyHold, body: Buffer): Promise<Buffer> {
  const plugins = h.plugins;
  let current = body;
  for (let i = 0; i < plugins.length; i++) {
    const handler = plugins[i].handlers.body;
    if (handler === undefined) continue;
    try {
      let r = handler.call(plugins[i].handlers, h.ctx, current);
      if (r instanceof Promise) r = await r;
      if (Buffer.isBuffer(r)) current = r;
      else if (r !== undefined) h.pluginFailed(plugins[i].entity.name, new TypeError('a body handler must return a Buffer or undefined'));
    } catch (err) {
      h.pluginFailed(plugins[i].entity.name, err);
    }
  }
  return current;
}
