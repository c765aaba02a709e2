/**
 * The HTTP client for every call the plugin makes to the identity provider. One per plugin
 * instance: it owns an undici Agent (keep-alive pool, `ssl_verify`) and closes it in `close()`.
 * Every call gets a timeout (`timeout`, ms) combined with the caller's AbortSignal, so a slow
 * IdP can never hold a request longer than configured.
 */
import { Agent, fetch as undiciFetch } from 'undici';
import type { CustomFetch, CustomFetchOptions } from 'openid-client';
import { traceScope } from '../../sdk.ts';
import { idpUnavailable } from './errors.ts';
import { IdpBreaker } from './idp-breaker.ts';
import type { IdpEndpoint, OidcCache, OidcMetrics } from '../../../observability/oidc-metrics.ts';

export interface IdpHttpOptions {
  /** Per-call timeout in ms (`config.timeout`). */
  timeoutMs: number;
  /** Verify the IdP's TLS certificate (`config.ssl_verify`). */
  sslVerify: boolean;
  /** Clock of the circuit breaker (tests). */
  now?: () => number;
  /** The node's openid-connect metrics (portcullis_oidc_*), when the node has metrics. */
  metrics?: OidcMetrics;
  /** At `debug`, every IdP call is logged (endpoint, method, URL without query, status, ms). */
  log?: { isLevelEnabled(level: string): boolean; debug(obj: object, msg: string): void };
}

/** Metadata fields naming the endpoints counted by kind (discovery is recognised by its path). */
const endpointFields: ReadonlyArray<[string, IdpEndpoint]> = [
  ['token_endpoint', 'token'], ['introspection_endpoint', 'introspection'], ['userinfo_endpoint', 'userinfo'],
  ['revocation_endpoint', 'revocation'], ['jwks_uri', 'jwks'],
];

/** Extras for one call: the request's signal and headers to add (discovery/introspection/...). */
export interface CallExtras {
  signal?: AbortSignal | null;
  headers?: Readonly<Record<string, string>> | null;
  /** Query arguments added to the URL (`userinfo_query_args_*`). */
  query?: Readonly<Record<string, string>> | null;
  /**
   * The form parameter that carries the token, when not RFC 7662/7009's `token`
   * (`introspection_token_param_name`, `revocation_token_param_name`): openid-client writes
   * `token`, the request goes out with the value under this name.
   */
  tokenParam?: string | null;
  /**
   * Sees the IdP's response before openid-client does and may replace it (JWT-formatted
   * introspection and user info responses are verified here; token endpoint headers are read).
   */
  onResponse?: ((res: Response) => Promise<Response>) | null;
}

export class IdpHttp {
  readonly #agent: Agent;
  readonly #timeoutMs: number;
  readonly #breaker: IdpBreaker;
  readonly metrics: OidcMetrics | undefined;
  readonly #endpoints = new Map<string, IdpEndpoint>();
  readonly #debug: IdpHttpOptions['log'] | null;

  constructor(options: IdpHttpOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#breaker = new IdpBreaker(options.now);
    this.metrics = options.metrics;
    this.#debug = options.log?.isLevelEnabled('debug') ? options.log : null;
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
  /** A cache decision: counted (portcullis_oidc_cache_lookups_total) and, at debug, logged. */
  cache(cache: OidcCache, hit: boolean): void {
    this.metrics?.cache(cache, hit);
    this.#debug?.debug({ cache, result: hit ? 'hit' : 'miss' }, 'openid-connect: cache lookup');
  }

  /** Learns which URL is which endpoint (from discovery), to label metrics and spans. */
  learn(meta: Readonly<Record<string, unknown>>): void {
    for (const [field, kind] of endpointFields) {
      const url = meta[field];
      if (typeof url === 'string') this.#endpoints.set(url.split('?')[0], kind);
    }
  }

  #kindOf(url: string): IdpEndpoint {
    const bare = url.split('?')[0];
    return this.#endpoints.get(bare) ?? (bare.includes('/.well-known/') ? 'discovery' : 'other');
  }

  /**
   * `#send` with a metric (endpoint, outcome, latency) and, when the request is traced, a
   * `kong.internal.request` child span. The URL is recorded without its query string.
   */
  fetchFor(extras: CallExtras = {}): CustomFetch {
    const measured = this.#measured(this.#send(extras));
    const hook = extras.onResponse;
    // What the answer says (a bad signature, say) is no failure of the IdP's availability: the
    // hook runs after the call has been counted.
    return hook ? (url, options) => measured(url, options).then(hook) : measured;
  }

  #measured(send: CustomFetch): CustomFetch {
    return (url: string, options: CustomFetchOptions) => {
      const metrics = this.metrics;
      const trace = traceScope.getStore();
      const debug = this.#debug;
      if (metrics === undefined && trace === undefined && debug === null) return send(url, options);
      const kind = this.#kindOf(url);
      const method = options.method ?? 'GET';
      if (kind === 'jwks') metrics?.jwksRefresh('fetch');
      const end = trace?.begin('kong.internal.request', { 'http.method': method, 'http.url': url.split('?')[0], 'portcullis.idp.endpoint': kind });
      const t0 = performance.now();
      return send(url, options).then((res) => {
        const ms = performance.now() - t0;
        metrics?.idpRequest(kind, res.status < 400 ? 'success' : 'error', ms);
        end?.({ attributes: { 'http.status_code': res.status } });
        debug?.debug({ endpoint: kind, method, url: url.split('?')[0], status: res.status, ms: Math.round(ms) }, 'openid-connect: IdP call');
        return res;
      }, (err: unknown) => {
        const name = (err as Error)?.name;
        const ms = performance.now() - t0;
        metrics?.idpRequest(kind, name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'unreachable', ms);
        end?.({ error: name ?? 'error' });
        debug?.debug({ endpoint: kind, method, url: url.split('?')[0], error: name, ms: Math.round(ms) }, 'openid-connect: IdP call failed');
        throw err;
      });
    };
  }

  /** One call: the circuit breaker of its endpoint first, then the request with timeout and signals. */
  #send(extras: CallExtras): CustomFetch {
    return async (url: string, options: CustomFetchOptions) => {
      const endpoint = IdpBreaker.endpointOf(url);
      if (!this.#breaker.admit(endpoint)) {
        throw idpUnavailable(endpoint, new Error('circuit open after repeated failures; not calling the IdP until the back-off ends'));
      }
      const headers: Record<string, string> = { ...options.headers };
      if (extras.headers) for (const [k, v] of Object.entries(extras.headers)) headers[k.toLowerCase()] = v;
      let body = options.body;
      if (extras.tokenParam && extras.tokenParam !== 'token' && body instanceof URLSearchParams && body.has('token')) {
        const form = new URLSearchParams(body);
        const token = form.get('token')!;
        form.delete('token');
        form.set(extras.tokenParam, token);
        body = form;
      }
      if (extras.query) {
        const u = new URL(url);
        for (const [k, v] of Object.entries(extras.query)) u.searchParams.append(k, v);
        url = u.href;
      }
      const signals = [AbortSignal.timeout(this.#timeoutMs)];
      const callerSignals: AbortSignal[] = [];
      if (options.signal) callerSignals.push(options.signal);
      if (extras.signal) callerSignals.push(extras.signal);
      let res;
      try {
        res = await undiciFetch(url, {
          method: options.method,
          headers,
          body: body as never,
          redirect: 'manual',
          signal: AbortSignal.any([...signals, ...callerSignals]),
          dispatcher: this.#agent,
        });
        this.#breaker.settle(endpoint, res.status >= 500 ? 'failure' : 'success');
      } catch (err) {
        // The caller giving up (client gone) says nothing about the IdP; our timeout does.
        this.#breaker.settle(endpoint, !signals[0].aborted && callerSignals.some((s) => s.aborted) ? 'aborted' : 'failure');
        throw err;
      }
      return res as unknown as Response;
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
