/**
 * The HTTP client for every call the plugin makes to the identity provider. One per plugin
 * instance: it owns an undici Agent (keep-alive pool, `ssl_verify`) and closes it in `close()`.
 * Every call gets a timeout (`timeout`, ms) combined with the caller's AbortSignal, so a slow
 * IdP can never hold a request longer than configured, and goes through a circuit breaker per
 * endpoint (idp-breaker.ts), so an IdP that keeps failing or hanging is not waited for at all.
 */
import { Agent, fetch as undiciFetch } from 'undici';
import type { CustomFetch, CustomFetchOptions } from 'openid-client';
import { idpUnavailable } from './errors.ts';
import { IdpBreaker } from './idp-breaker.ts';

export interface IdpHttpOptions {
  /** Per-call timeout in ms (`config.timeout`). */
  timeoutMs: number;
  /** Verify the IdP's TLS certificate (`config.ssl_verify`). */
  sslVerify: boolean;
  /** Clock of the circuit breaker (tests). */
  now?: () => number;
}

/** Extras for one call: the request's signal and headers to add (discovery/introspection/...). */
export interface CallExtras {
  signal?: AbortSignal | null;
  headers?: Readonly<Record<string, string>> | null;
}

export class IdpHttp {
  readonly #agent: Agent;
  readonly #timeoutMs: number;
  readonly #breaker: IdpBreaker;

  constructor(options: IdpHttpOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#breaker = new IdpBreaker(options.now);
    this.#agent = new Agent({
      connect: { rejectUnauthorized: options.sslVerify, timeout: options.timeoutMs },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
  }

  /**
   * A fetch function in openid-client's `customFetch` shape, bound to `extras`. openid-client
   * builds the request (client authentication, form body); this adds the extra headers, the
   * timeout and the caller's signal, and sends it through the instance's pool.
   */
  fetchFor(extras: CallExtras = {}): CustomFetch {
    return async (url: string, options: CustomFetchOptions) => {
      const endpoint = IdpBreaker.endpointOf(url);
      if (!this.#breaker.admit(endpoint)) {
        throw idpUnavailable(endpoint, new Error('circuit open after repeated failures; not calling the IdP until the back-off ends'));
      }
      const headers: Record<string, string> = { ...options.headers };
      if (extras.headers) for (const [k, v] of Object.entries(extras.headers)) headers[k.toLowerCase()] = v;
      const signals = [AbortSignal.timeout(this.#timeoutMs)];
      const callerSignals: AbortSignal[] = [];
      if (options.signal) callerSignals.push(options.signal);
      if (extras.signal) callerSignals.push(extras.signal);
      try {
        const res = await undiciFetch(url, {
          method: options.method,
          headers,
          body: options.body as never,
          redirect: 'manual',
          signal: AbortSignal.any([...signals, ...callerSignals]),
          dispatcher: this.#agent,
        });
        this.#breaker.settle(endpoint, res.status >= 500 ? 'failure' : 'success');
        return res as unknown as Response;
      } catch (err) {
        // The caller giving up (client gone) says nothing about the IdP; our timeout does.
        this.#breaker.settle(endpoint, !signals[0].aborted && callerSignals.some((s) => s.aborted) ? 'aborted' : 'failure');
        throw err;
      }
    };
  }

  /** GET a JSON document (JWKS). Throws on a non-2xx status or a body that is not JSON. */
  async getJson(url: string, extras: CallExtras = {}): Promise<unknown> {
    const res = await this.fetchFor(extras)(url, { method: 'GET', headers: { accept: 'application/json' }, body: undefined, redirect: 'manual' });
    if (res.status < 200 || res.status > 299) {
      await res.body?.cancel();
      throw new Error(`GET ${url} answered ${res.status}`);
    }
    return res.json();
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}
