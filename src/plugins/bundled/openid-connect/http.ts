/**
 * The HTTP client for every call the plugin makes to the identity provider. One per plugin
 * instance: it owns an undici Agent (keep-alive pool, `ssl_verify`) and closes it in `close()`.
 * Every call gets a timeout (`timeout`, ms) combined with the caller's AbortSignal, so a slow
 * IdP can never hold a request longer than configured.
 */
import { Agent, fetch as undiciFetch } from 'undici';
import type { CustomFetch, CustomFetchOptions } from 'openid-client';

export interface IdpHttpOptions {
  /** Per-call timeout in ms (`config.timeout`). */
  timeoutMs: number;
  /** Verify the IdP's TLS certificate (`config.ssl_verify`). */
  sslVerify: boolean;
}

/** Extras for one call: the request's signal and headers to add (discovery/introspection/...). */
export interface CallExtras {
  signal?: AbortSignal | null;
  headers?: Readonly<Record<string, string>> | null;
}

export class IdpHttp {
  readonly #agent: Agent;
  readonly #timeoutMs: number;

  constructor(options: IdpHttpOptions) {
    this.#timeoutMs = options.timeoutMs;
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
    return (url: string, options: CustomFetchOptions) => {
      const headers: Record<string, string> = { ...options.headers };
      if (extras.headers) for (const [k, v] of Object.entries(extras.headers)) headers[k.toLowerCase()] = v;
      const signals = [AbortSignal.timeout(this.#timeoutMs)];
      if (options.signal) signals.push(options.signal);
      if (extras.signal) signals.push(extras.signal);
      return undiciFetch(url, {
        method: options.method,
        headers,
        body: options.body as never,
        redirect: 'manual',
        signal: AbortSignal.any(signals),
        dispatcher: this.#agent,
      }) as unknown as Promise<Response>;
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
