/**
 * A body the gateway holds whole before passing it on (request_buffering / response_buffering):
 * in memory up to a threshold, in a temporary file beyond it, as nginx's client/proxy temp files.
 */
import { createReadStream, createWriteStream, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';

/** A complete body: a Buffer, or a temporary file removed by `dispose()`. */
export class HeldBody {
  readonly size: number;
  /** The bytes, when they stayed in memory. */
  readonly buffer: Buffer | null;
  /** The temporary file, when they did not. */
  readonly path: string | null;

  constructor(size: number, buffer: Buffer | null, path: string | null) {
    this.size = size;
    this.buffer = buffer;
    this.path = path;
  }

  /** A new stream of the body (once per attempt when a request is retried). */
  open(): Readable {
    if (this.path !== null) return createReadStream(this.path, { highWaterMark: 64 * 1024 });
    const buf = this.buffer!;
    // 64 KiB slices: a consumer that stops reading is noticed (write_timeout) instead of one
    // write swallowing everything into the socket's buffer.
    return Readable.from((function* () {
      for (let i = 0; i < buf.length; i += 64 * 1024) yield buf.subarray(i, i + 64 * 1024);
    })(), { objectMode: false });
  }

  dispose(): void {
    if (this.path !== null) rmSync(this.path, { force: true });
  }
}

/** Collects chunks into memory, moving them to a temporary file once `spillAbove` bytes are passed. */
export class BodyCollector {
  readonly #spillAbove: number;
  #chunks: Buffer[] = [];
  #size = 0;
  #file: WriteStream | null = null;
  #path: string | null = null;
  #failed: Error | null = null;

  constructor(spillAbove: number) {
    this.#spillAbove = spillAbove;
  }

  get size(): number {
    return this.#size;
  }

  /** Adds a chunk; false when the file is behind, and `onDrain` is called once it caught up. */
  write(chunk: Buffer, onDrain: () => void): boolean {
    this.#size += chunk.length;
    if (this.#file === null) {
      this.#chunks.push(chunk);
      if (this.#size <= this.#spillAbove) return true;
      this.#path = join(tmpdir(), `portcullis-body-${randomUUID()}`);
      this.#file = createWriteStream(this.#path, { mode: 0o600 });
      this.#file.on('error', (err) => (this.#failed = err));
      const held = this.#chunks;
      this.#chunks = [];
      let ok = true;
      for (const c of held) ok = this.#file.write(c);
      if (!ok) this.#file.once('drain', onDrain);
      return ok;
    }
    if (this.#file.write(chunk)) return true;
    this.#file.once('drain', onDrain);
    return false;
  }

  /** The whole body once every chunk was written. */
  finish(): Promise<HeldBody> {
    const file = this.#file;
    if (file === null) {
      const buf = this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks, this.#size);
      this.#chunks = [];
      return Promise.resolve(new HeldBody(this.#size, buf, null));
    }
    return new Promise((resolve, reject) => {
      file.end(() => {
        if (this.#failed !== null) {
          this.discard();
          reject(this.#failed);
        } else resolve(new HeldBody(this.#size, null, this.#path));
      });
    });
  }

  /** Drops what was collected (and the temporary file). */
  discard(): void {
    this.#chunks = [];
    const file = this.#file;
    if (file !== null) {
      const path = this.#path!;
      this.#file = null;
      // The file may not be open yet (createWriteStream opens it asynchronously): it is removed
      // once the stream has closed, as well as now.
      file.once('close', () => rmSync(path, { force: true }));
      file.destroy();
      rmSync(path, { force: true });
    }
  }
}
