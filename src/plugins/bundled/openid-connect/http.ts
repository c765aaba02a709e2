/**
 * The HTTP client for every call the plugin makes to the identity provider. One per plugin
 * instance: it owns an undici Agent (keep-alive pool, `ssl_verify`) and closes it in `close()`.
 * Every call gets a timeout (`timeout`, ms) combined with the caller's AbortSignal, so a slow
 * IdP can never hold a request longer than configured.
 */
import { Agent, Pool, ProxyAgent, fetch as undiciFetch, type Dispatcher } from 'undici';
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
  /** The pool to send through instead of the instance's (a client-certificate pool, `mtlsAgent`). */
  dispatcher?: Agent | null;
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
  readonly #agent: Agent;
  readonly #httpProxy: ProxyAgent | null;
  readonly #httpsProxy: ProxyAgent | null;
  readonly #noProxy: string | null;
  readonly #timeoutMs: number;
  readonly #breaker: IdpBreaker;
  readonly metrics: OidcMetrics | undefined;
  readonly #endpoints = new Map<string, IdpEndpoint>();
  readonly #debug: IdpHttpOptions['log'] | null;
  /** Client-certificate pools by certificate id, with the version they present. */
  readonly #mtls = new Map<string, { version: string; agent: Agent }>();

  constructor(options: IdpHttpOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#breaker = new IdpBreaker(options.now);
    this.metrics = options.metrics;
    this.#debug = options.log?.isLevelEnabled('debug') ? options.log : null;
    const keepalive = options.keepalive ?? true;
    const common = {
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      // undici: pipelining 0 = no keep-alive (each connection closes after its response)
      ...(keepalive ? {} : { pipelining: 0 }),
    };
    this.#agent = new Agent({ ...common, connect: { rejectUnauthorized: options.sslVerify, timeout: options.timeoutMs } });
    // Connections to the proxy follow `keepalive` too (the proxy's own pools are built by `factory`).
    const factory = keepalive ? undefined : (origin: string | URL, opts: object): Dispatcher => new Pool(origin, { ...opts, pipelining: 0 });
    const proxy = (uri: string, token: string | null | undefined, tunnel: boolean): ProxyAgent =>
      new ProxyAgent({
        ...common,
        uri,
        ...(token ? { token } : {}),
        // http:// targets as absolute-form requests to the proxy (as lua-resty-http does; many
        // proxies allow CONNECT to 443 only); https:// targets through a CONNECT tunnel.
        proxyTunnel: tunnel,
        requestTls: { rejectUnauthorized: options.sslVerify, timeout: options.timeoutMs },
        proxyTls: { timeout: options.timeoutMs },
        ...(factory ? { factory } : {}),
      });
    this.#httpProxy = options.httpProxy ? proxy(options.httpProxy, options.httpProxyAuthorization, false) : null;
    this.#httpsProxy = options.httpsProxy ? proxy(options.httpsProxy, options.httpsProxyAuthorization, true) : null;
    this.#noProxy = options.noProxy ?? null;
  }

  /** The dispatcher for one IdP URL: its scheme's proxy unless `no_proxy` names the host, else the direct pool. */
  #dispatcherFor(url: string): Dispatcher {
    if (this.#httpProxy === null && this.#httpsProxy === null) return this.#agent;
    const u = new URL(url);
    const proxy = u.protocol === 'https:' ? this.#httpsProxy : this.#httpProxy;
    if (proxy === null || bypassesProxy(u, this.#noProxy)) return this.#agent;
    return proxy;
  }

  /**
   * The keep-alive pool that presents `id`'s client certificate (tls_client_auth). One per
   * certificate entity; when the entity changes, a new pool replaces the old one, which is
   * closed once its calls are done.
   */
  mtlsAgent(id: MtlsIdentity): Agent {
    const known = this.#mtls.get(id.certId);
    if (known !== undefined && known.version === id.version) return known.agent;
    if (known !== undefined) void known.agent.close();
    const agent = new Agent({
      connect: { rejectUnauthorized: id.verify, timeout: this.#timeoutMs, cert: id.cert, key: id.key },
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs,
    });
    this.#mtls.set(id.certId, { version: id.version, agent });
    return agent;
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
          dispatcher: extras.dispatcher ?? this.#dispatcherFor(url),
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
    await Promise.all([this.#httpProxy?.close(), this.#httpsProxy?.close(), ...[...this.#mtls.values()].map((m) => m.agent.close())]);
    await this.#agent.close();
  }
}
