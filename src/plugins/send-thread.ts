/**
 * Delivery from a worker thread of the plugin's own, as pino runs its transports.
 *
 * Why: in a gateway worker the proxy's hottest functions (node:http's server side, sockets,
 * streams, the kernel's handler) are optimised by V8 for the objects the proxy makes. node:http's
 * client in the same isolate (its request, response and socket objects, which share node:http's
 * and the streams' code with the server side) widens those functions' inline caches and field
 * types, and every request pays for it: the opentelemetry plugin at `sampling_rate` 0.01 lost
 * ~4 % of the gateway's throughput to its OTLP exporter's requests, about twenty times what
 * encoding and sending its spans took (bench/NOTES.md, session 13). The plugin's queue
 * (log-queue.ts) stays here and decides what is sent, batches and retries; each batch, already
 * encoded, goes to the thread, which makes the request and answers with the outcome.
 *
 * A hop costs two messages: worth it for a few large batches a second, not for a request per log
 * entry. http-log (undici, whose client shares less with the server side, Kong's default of one
 * entry per request) measured slower through a thread (0.75 → 0.64 of the no-plugin gateway)
 * and sends from the gateway's thread.
 *
 * `SendThread` is the gateway's side; `serveSends` is the thread's. The thread starts with the
 * first batch (an instance that never sends never starts one) and again if it dies; a batch in
 * flight when it dies fails, and the queue retries it.
 */
import { Worker, isMainThread, parentPort, type TransferListItem } from 'node:worker_threads';

type Request<P> = { kind: 'send'; id: number; payload: P } | { kind: 'close' };
type Reply = { kind: 'sent'; id: number; error: string | null } | { kind: 'closed' };

/** How long close() waits for batches in flight (each request has its own timeout too). */
const closeWaitMs = 5_000;

export class SendThread<P> {
  readonly #entry: URL;
  readonly #data: unknown;
  readonly #name: string;
  #worker: Worker | null = null;
  #nextId = 0;
  readonly #pending = new Map<number, { resolve(): void; reject(err: Error): void }>();

  /** `entry`: the thread's module (it calls serveSends); `data`: its workerData. */
  constructor(entry: URL, data: unknown, name: string) {
    this.#entry = entry;
    this.#data = data;
    this.#name = name;
  }

  /** Hands one batch to the thread (`transfer`: buffers moved rather than copied); settles with the delivery's outcome. */
  send(payload: P, transfer: readonly TransferListItem[] = []): Promise<void> {
    const worker = this.#thread();
    const id = ++this.#nextId;
    return new Promise<void>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ kind: 'send', id, payload } satisfies Request<P>, transfer);
    });
  }

  #thread(): Worker {
    if (this.#worker !== null) return this.#worker;
    const worker = new Worker(this.#entry, { workerData: this.#data, name: this.#name });
    // Batches in flight keep nothing alive: the plugin's close() flushes before the process exits.
    worker.unref();
    worker.on('message', (m: Reply) => {
      if (m.kind !== 'sent') return;
      const p = this.#pending.get(m.id);
      if (p === undefined) return;
      this.#pending.delete(m.id);
      if (m.error === null) p.resolve();
      else p.reject(new Error(m.error));
    });
    const gone = (why: string): void => {
      if (this.#worker === worker) this.#worker = null;
      this.#failAll(new Error(`the ${this.#name} thread ${why}`));
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

  /** Lets batches in flight finish (bounded), closes the thread's client, then stops the thread. */
  async close(): Promise<void> {
    const worker = this.#worker;
    if (worker === null) return;
    this.#worker = null;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, closeWaitMs);
      const finish = (): void => {
        clearTimeout(timer);
        resolve();
      };
      worker.on('message', (m: Reply) => {
        if (m.kind === 'closed') finish();
      });
      worker.once('exit', finish);
      worker.postMessage({ kind: 'close' } satisfies Request<P>);
    });
    await worker.terminate();
    this.#failAll(new Error(`the ${this.#name} thread was closed`));
  }
}

/** The thread's side: runs `send` for each batch and reports its outcome; `close` before the thread stops. */
export function serveSends<P>(handler: { send(payload: P): Promise<void>; close(): Promise<void> }): void {
  if (isMainThread || parentPort === null) throw new Error('serveSends runs in a worker thread');
  const port = parentPort;
  port.on('message', (m: Request<P>) => {
    if (m.kind === 'close') {
      void handler.close().catch(() => {}).finally(() => port.postMessage({ kind: 'closed' } satisfies Reply));
      return;
    }
    handler.send(m.payload).then(
      () => port.postMessage({ kind: 'sent', id: m.id, error: null } satisfies Reply),
      (err: unknown) => port.postMessage({ kind: 'sent', id: m.id, error: err instanceof Error ? err.message : String(err) } satisfies Reply),
    );
  });
}
