/**
 * One undici `Pool` per origin, kept for the dispatcher's life: what the gateway's own HTTP
 * clients use (openid-connect's identity provider calls, revocation responders, http-log's
 * collector) instead of undici 7's `Agent`.
 *
 * Why not `Agent`: undici 7's Agent closes an origin's pool as soon as its last connection goes
 * away, and once a server has closed a keep-alive connection (nginx after keepalive_requests,
 * Node after its idle timeout) the pool it then makes for the next request is closed again
 * after that request, and so on: every later request opens a new connection. Measured here:
 * 3,000 sequential POSTs to nginx opened 1,002 connections through an Agent, 4 through a Pool,
 * at about three times the CPU per request. undici 8 mends Agent but drops the dispatch handler
 * interface proxy/forward.ts implements, so the pools are kept here.
 *
 * The origins a client calls are few and fixed by configuration (an issuer and its endpoints, a
 * collector), so pools are never dropped: each keeps its idle connections per
 * `keepAliveTimeout`, as an Agent's would.
 */
import { Dispatcher, Pool } from 'undici';

export class OriginPools extends Dispatcher {
  readonly #options: Pool.Options;
  readonly #pools = new Map<string, Pool>();
  #closed = false;

  constructor(options: Pool.Options = {}) {
    super();
    this.#options = options;
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const origin = String(opts.origin);
    let pool = this.#pools.get(origin);
    if (pool === undefined) {
      if (this.#closed) throw new Error('the dispatcher is closed');
      pool = new Pool(origin, this.#options);
      this.#pools.set(origin, pool);
    }
    return pool.dispatch(opts, handler);
  }

  /** Closes every pool once its requests are done. */
  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    this.#closed = true;
    const done = Promise.all([...this.#pools.values()].map((p) => p.close())).then(() => undefined);
    if (callback === undefined) return done;
    void done.then(callback, callback);
  }

  /** Destroys every pool now (their requests fail with `err`). */
  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const err = typeof a === 'function' ? null : a ?? null;
    const callback = typeof a === 'function' ? a : b;
    this.#closed = true;
    const done = Promise.all([...this.#pools.values()].map((p) => p.destroy(err))).then(() => undefined);
    if (callback === undefined) return done;
    void done.then(callback, callback);
  }
}
