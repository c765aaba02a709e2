/**
 * The HTTP client for every call the plugin makes to the identity provider. One per plugin
 * instance: it owns undici pools (keep-alive, `ssl_verify`), the forward proxies
 * (`http_proxy` / `https_proxy`) and the client-certificate pools of `tls_client_auth`, and
 * closes them in `close()`. Plain and client-certificate calls choose proxy or direct in one place.
 * Every call gets a timeout (`timeout`, ms) combined with the caller's AbortSignal, so a slow
 * IdP can never hold a request longer than configured.
 */
import { Pool, ProxyAgent, fetch as undiciFetch, type Dispatcher } from 'undici';
import { OriginPools } from '../../origin-pools.ts';
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
  /** `keepalive`: reuse connections to the IdP (default true); false closes each after its response. */
  keepalive?: boolean;
  /** `http_proxy` / `http_proxy_authorization`: forward proxy for http:// IdP URLs (absolute-form requests). */
  httpProxy?: string | null;
  httpProxyAuthorization?: string | null;
  /** `https_proxy` / `https_proxy_authorization`: forward proxy for https:// IdP URLs (CONNECT tunnels). */
  httpsProxy?: string | null;
  httpsProxyAuthorization?: string | null;
  /** `no_proxy`: comma-separated hosts (and their subdomains) reached directly; `*` = every host. */
  noProxy?: string | null;
  /** Clock of the circuit breaker (tests). */
  now?: () => number;
  /** The node's openid-connect metrics (portcullis_oidc_*), when the node has metrics. */
  metrics?: OidcMetrics;
  /** At `debug`, every IdP call is logged (endpoint, method, URL without query, status, ms). */
  log?: { readonly levelVal: number; debug(obj: object, msg: string): void };
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
  /**
   * The pools to send through instead of the instance's (the client-certificate pools of
   * `mtlsPools`); the proxy settings choose among them as for every other call.
   */
  pools?: IdpPools | null;
}

/**
 * The ways to the IdP for one kind of call: the direct pool, and the forward proxy for http://
 * and for https:// URLs (null when that proxy is not configured). `IdpHttp.#dispatcherFor`
 * picks one per URL (`no_proxy`), the same way for plain and client-certificate calls.
 */
export interface IdpPools {
  /** Direct connections: one keep-alive pool per origin (proxy/origin-pools.ts). */
  readonly direct: OriginPools;
  readonly http: ProxyAgent | null;
  readonly https: ProxyAgent | null;
}

/** A client certificate to present to the IdP (RFC 8705 §2) and whether to verify the IdP's. */
export interface MtlsIdentity {
  /** The certificate entity's id: one pool per id. */
  certId: string;
  /** Changes when the entity does (a new pool then). */
  version: string;
  /** PEM certificate (chain) and private key. */
  cert: string;
  key: string;
  verify: boolean;
}

/**
 * `no_proxy` as the common NO_PROXY convention: comma-separated entries, `*` matches every host,
 * an entry matches that host and its subdomains (a leading `.` is optional), `host:port` only
 * that port. Letter case is ignored.
 */
export function bypassesProxy(url: URL, noProxy: string | null | undefined): boolean {
  if (!noProxy) return false;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  for (const raw of noProxy.split(',')) {
    let entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    let entryPort: string | null = null;
    const m = /^(.*):(\d+)$/.exec(entry);
    if (m && !m[1].includes(':')) {
      entry = m[1];
      entryPort = m[2];
    }
    entry = entry.replace(/^\[|\]$/g, '').replace(/^\*?\./, '');
    if (entryPort !== null && entryPort !== port) continue;
    if (host === entry || host.endsWith(`.${entry}`)) return true;
  }
  return false;
}

export class IdpHttp {
  /** Direct pool and proxies of the plain calls (`ssl_verify`). */
  readonly #pools: IdpPools;
  readonly #noProxy: string | null;
  readonly #timeoutMs: number;
  readonly #breaker: IdpBreaker;
  readonly metrics: OidcMetrics | undefined;
  readonly #endpoints = new Map<string, IdpEndpoint>();
  readonly #log: IdpHttpOptions['log'] | null;
  /** Pool options every pool shares: timeouts, and no keep-alive with `keepalive: false`. */
  readonly #common: { headersTimeout: number; bodyTimeout: number; pipelining?: number };
  /** With `keepalive: false`, the per-origin pools of a proxy agent close each connection too. */
  readonly #factory: ((origin: string | URL, opts: object) => Dispatcher) | undefined;
  readonly #httpsProxy: { uri: string; token: string | null } | null;
  /** Client-certificate pools by certificate id, with the version they present. */
  readonly #mtls = new Map<string, { version: string; pools: IdpPools }>();

  constructor(options: IdpHttpOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#breaker = new IdpBreaker(options.now);
    this.metrics = options.metrics;
    this.#log = options.log ?? null;
    const keepalive = options.keepalive ?? true;
    this.#common = {
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      // undici: pipelining 0 = no keep-alive (each connection closes after its response)
      ...(keepalive ? {} : { pipelining: 0 }),
    };
    // Connections to the proxy follow `keepalive` too (the proxy's own pools are built by `factory`).
    this.#factory = keepalive ? undefined : (origin: string | URL, opts: object): Dispatcher => new Pool(origin, { ...opts, pipelining: 0 });
    this.#httpsProxy = options.httpsProxy ? { uri: options.httpsProxy, token: options.httpsProxyAuthorization ?? null } : null;
    const tls = { rejectUnauthorized: options.sslVerify, timeout: options.timeoutMs };
    this.#pools = {
      direct: new OriginPools({ ...this.#common, connect: tls }),
      http: options.httpProxy ? this.#proxy(options.httpProxy, options.httpProxyAuthorization, false, tls) : null,
      https: this.#httpsProxy ? this.#proxy(this.#httpsProxy.uri, this.#httpsProxy.token, true, tls) : null,
    };
    this.#noProxy = options.noProxy ?? null;
  }

  /**
   * A forward proxy: http:// targets as absolute-form requests to it (`tunnel` false, as
   * lua-resty-http does; many proxies allow CONNECT to 443 only), https:// targets through a
   * CONNECT tunnel in which `requestTls` is the TLS to the IdP (its verification, and the client
   * certificate of an mTLS call).
   */
  #proxy(uri: string, token: string | null | undefined, tunnel: boolean, requestTls: NonNullable<ProxyAgent.Options['requestTls']>): ProxyAgent {
    return new ProxyAgent({
      ...this.#common,
      uri,
      ...(token ? { token } : {}),
      proxyTunnel: tunnel,
      requestTls,
      proxyTls: { timeout: this.#timeoutMs },
      ...(this.#factory ? { factory: this.#factory } : {}),
    });
  }

  /**
   * The one place that decides "proxy or not": for an IdP URL, the proxy of its scheme from
   * `pools` unless `no_proxy` names the host (or that proxy is not set), else the direct pool.
   */
  #dispatcherFor(url: string, pools: IdpPools): Dispatcher {
    if (pools.http === null && pools.https === null) return pools.direct;
    const u = new URL(url);
    const proxy = u.protocol === 'https:' ? pools.https : pools.http;
    if (proxy === null || bypassesProxy(u, this.#noProxy)) return pools.direct;
    return proxy;
  }

  /**
   * The pools that present `id`'s client certificate (tls_client_auth): a direct keep-alive
   * pool and, with `https_proxy`, a CONNECT tunnel through it in which the certificate is
   * presented to the IdP; http:// URLs (no TLS, so no certificate) share the instance's
   * `http_proxy`. One set per certificate entity; when the entity changes, a new set replaces
   * the old one, which is closed once its calls are done.
   */
  mtlsPools(id: MtlsIdentity): IdpPools {
    const known = this.#mtls.get(id.certId);
    if (known !== undefined && known.version === id.version) return known.pools;
    if (known !== undefined) void this.#closeMtls(known.pools);
    const tls = { rejectUnauthorized: id.verify, timeout: this.#timeoutMs, cert: id.cert, key: id.key };
    const pools: IdpPools = {
      direct: new OriginPools({ ...this.#common, connect: tls }),
      http: this.#pools.http,
      https: this.#httpsProxy ? this.#proxy(this.#httpsProxy.uri, this.#httpsProxy.token, true, tls) : null,
    };
    this.#mtls.set(id.certId, { version: id.version, pools });
    return pools;
  }

  /** Closes what a client-certificate set owns (the shared http proxy stays). */
  async #closeMtls(pools: IdpPools): Promise<void> {
    await Promise.all([pools.direct.close(), pools.https?.close()]);
  }

  /** The logger while it logs `debug` (pino's 20): asked each time, the level can change at runtime. */
  #debug(): IdpHttpOptions['log'] | null {
    const log = this.#log;
    return log !== null && log !== undefined && log.levelVal <= 20 ? log : null;
  }

  /** A cache decision: counted (portcullis_oidc_cache_lookups_total) and, at debug, logged. */
  cache(cache: OidcCache, hit: boolean): void {
    this.metrics?.cache(cache, hit);
    this.#debug()?.debug({ cache, result: hit ? 'hit' : 'miss' }, 'openid-connect: cache lookup');
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
   * A fetch function in openid-client's `customFetch` shape, bound to `extras`: `#send` with a
   * metric (endpoint, outcome, latency) and, when the request is traced, a
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
      const debug = this.#debug();
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
          dispatcher: this.#dispatcherFor(url, extras.pools ?? this.#pools),
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
    await Promise.all([this.#pools.http?.close(), this.#pools.https?.close(), ...[...this.#mtls.values()].map((m) => this.#closeMtls(m.pools))]);
    await this.#pools.direct.close();
  }
}
