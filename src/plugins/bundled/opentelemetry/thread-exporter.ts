/**
 * Exports span batches from a worker thread (export-worker.ts), as pino runs its transports.
 *
 * Why: in a gateway worker the proxy's hottest functions (node:http's server side, sockets,
 * streams, the kernel's handler) are optimised by V8 for the objects the proxy makes. An HTTP
 * client in the same isolate (the OTLP exporter's request, response and socket objects) widens
 * those functions' inline caches and field types, and every request pays for it: at
 * `sampling_rate` 0.01 the export cost ~4 % of throughput, about twenty times what encoding and
 * sending the spans take (bench/NOTES.md, session 13). Encoding stays in this thread (the spans
 * are plain objects here; the official ProtobufTraceSerializer turns a batch into bytes, which are
 * handed over without a copy); the POST, retries and the response run in the export thread.
 *
 * The thread starts with the first batch (an instance that never samples never starts one) and is
 * started again if it dies; a batch in flight when it dies fails, and Kong's queue retries it.
 */
import { Worker } from 'node:worker_threads';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';

/** What the export thread is started with (OTLPTraceExporter's options that the plugin sets). */
export interface ExportThreadOptions {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly timeoutMillis: number;
}
export type ExportRequest = { kind: 'export'; id: number; body: Uint8Array; spans: number } | { kind: 'shutdown' };
export type ExportReply = { kind: 'export'; id: number; ok: true } | { kind: 'export'; id: number; ok: false; error: string } | { kind: 'shutdown' };

/** How long shutdown waits for batches in flight (the exporter's own timeout bounds each). */
const shutdownWaitMs = 5_000;

export class ThreadExporter {
  readonly #options: ExportThreadOptions;
  #worker: Worker | null = null;
  #nextId = 0;
  readonly #pending = new Map<number, { resolve(): void; reject(err: Error): void }>();

  constructor(options: ExportThreadOptions) {
    this.#options = options;
  }

  /** Encodes the batch here and sends it from the export thread; settles with the export's outcome. */
  export(spans: ReadableSpan[]): Promise<void> {
    const body = ProtobufTraceSerializer.serializeRequest(spans);
    if (body === undefined) return Promise.reject(new Error('the batch could not be encoded'));
    const worker = this.#thread();
    const id = ++this.#nextId;
    return new Promise<void>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      const request: ExportRequest = { kind: 'export', id, body, spans: spans.length };
      // The encoder's buffer belongs to this batch alone: moved, not copied.
      worker.postMessage(request, body.buffer instanceof ArrayBuffer ? [body.buffer] : []);
    });
  }

  #thread(): Worker {
    if (this.#worker !== null) return this.#worker;
    const worker = new Worker(new URL('./export-worker.ts', import.meta.url), { workerData: this.#options, name: 'opentelemetry export' });
    // Batches in flight keep nothing alive: the plugin's close() flushes before the process exits.
    worker.unref();
    worker.on('message', (m: ExportReply) => {
      if (m.kind !== 'export') return;
      const p = this.#pending.get(m.id);
      if (p === undefined) return;
      this.#pending.delete(m.id);
      if (m.ok) p.resolve();
      else p.reject(new Error(m.error));
    });
    const gone = (why: string): void => {
      if (this.#worker === worker) this.#worker = null;
      this.#failAll(new Error(`the opentelemetry export thread ${why}`));
    };
    worker.on('error', (err) => gone(`failed: ${err.message}`));
    worker.on('exit', (code) => gone(`exited (code ${code})`));
    this.#worker = worker;
    return worker;
  }

  #failAll(err: Error): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(err);
  }

  /** Lets batches in flight finish (bounded), then stops the thread. */
  async shutdown(): Promise<void> {
    const worker = this.#worker;
    if (worker === null) return;
    this.#worker = null;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, shutdownWaitMs);
      const done = (m: ExportReply): void => {
        if (m.kind !== 'shutdown') return;
        clearTimeout(timer);
        resolve();
      };
      worker.on('message', done);
      worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      worker.postMessage({ kind: 'shutdown' } satisfies ExportRequest);
    });
    await worker.terminate();
    this.#failAll(new Error('the opentelemetry exporter was shut down'));
  }
}
