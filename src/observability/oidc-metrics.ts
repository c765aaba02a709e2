/**
 * openid-connect series beyond Kong's (`portcullis_oidc_*`). Every label has a small fixed set of
 * values (endpoint, outcome, cache, reason, kind): nothing per user, token, issuer path or route.
 */
import { Counter, Histogram, type Registry } from 'prom-client';

export type IdpEndpoint = 'discovery' | 'jwks' | 'token' | 'introspection' | 'userinfo' | 'revocation' | 'other';
export type IdpOutcome = 'success' | 'error' | 'timeout' | 'unreachable';
export type OidcCache = 'verified_token' | 'introspection' | 'token';
export type AuthFailureReason = 'expired' | 'bad_signature' | 'audience' | 'issuer' | 'missing' | 'invalid' | 'dpop_proof' | 'dpop_nonce';
export type LogoutKind = 'local' | 'rp_initiated' | 'back_channel';
/** Where sessions (and refresh locks, logout markers) are kept: Redis, Memcached, the config database, or the node's own store. */
export type SessionStoreKind = 'redis' | 'memcached' | 'database' | 'node';
export type SessionStoreOperation = 'get' | 'set' | 'add' | 'take' | 'delete';

export const idpLatencyBuckets = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

export class OidcMetrics {
  readonly #idp: Counter;
  readonly #idpLatency: Histogram;
  readonly #jwks: Counter;
  readonly #refresh: Counter;
  readonly #logout: Counter;
  readonly #authFailures: Counter;
  readonly #sessionStore: Counter;

  constructor(registry: Registry) {
    const r = [registry];
    this.#idp = new Counter({ name: 'portcullis_oidc_idp_requests_total', help: 'Requests the openid-connect plugin made to identity providers, by endpoint and outcome', labelNames: ['endpoint', 'outcome'], registers: r });
    this.#idpLatency = new Histogram({ name: 'portcullis_oidc_idp_latency_ms', help: 'Latency of identity provider requests in milliseconds, by endpoint', labelNames: ['endpoint'], buckets: idpLatencyBuckets, registers: r });
    this.#jwks = new Counter({ name: 'portcullis_oidc_jwks_refreshes_total', help: 'JWKS fetches (trigger=fetch: every fetch; trigger=unknown_kid: refetches because a token named a key not in the cached set)', labelNames: ['trigger'], registers: r });
    // Counted as plain numbers on the request path (a cached bearer's fast path) and handed to
    // prom-client when scraped.
    const pending = this.#pendingCache;
    // Registered on `r`; read only through its collect().
    new Counter({
      name: 'portcullis_oidc_cache_lookups_total', help: 'openid-connect cache lookups by cache and result', labelNames: ['cache', 'result'], registers: r,
      collect() {
        for (const [key, n] of pending) {
          if (n === 0) continue;
          const colon = key.indexOf(':');
          this.labels(key.slice(0, colon), key.slice(colon + 1)).inc(n);
          pending.set(key, 0);
        }
      },
    });
    this.#refresh = new Counter({ name: 'portcullis_oidc_token_refreshes_total', help: 'Token refreshes by outcome', labelNames: ['outcome'], registers: r });
    this.#logout = new Counter({ name: 'portcullis_oidc_logouts_total', help: 'Logouts by kind', labelNames: ['kind'], registers: r });
    this.#sessionStore = new Counter({ name: 'portcullis_oidc_session_store_errors_total', help: 'Failed session store operations (the store could not be reached or answered an error), by storage and operation', labelNames: ['storage', 'operation'], registers: r });
    this.#authFailures = new Counter({ name: 'portcullis_oidc_auth_failures_total', help: 'Authentication failures by reason (no token values are recorded)', labelNames: ['reason'], registers: r });
  }

  idpRequest(endpoint: IdpEndpoint, outcome: IdpOutcome, ms: number): void {
    this.#idp.labels(endpoint, outcome).inc();
    this.#idpLatency.labels(endpoint).observe(ms);
  }

  jwksRefresh(trigger: 'fetch' | 'unknown_kid'): void {
    this.#jwks.labels(trigger).inc();
  }

  readonly #pendingCache = new Map<string, number>();

  cache(cache: OidcCache, hit: boolean): void {
    const key = hit ? `${cache}:hit` : `${cache}:miss`;
    this.#pendingCache.set(key, (this.#pendingCache.get(key) ?? 0) + 1);
  }

  refresh(ok: boolean): void {
    this.#refresh.labels(ok ? 'success' : 'failure').inc();
  }

  logout(kind: LogoutKind): void {
    this.#logout.labels(kind).inc();
  }

  sessionStoreError(storage: SessionStoreKind, operation: SessionStoreOperation): void {
    this.#sessionStore.labels(storage, operation).inc();
  }

  authFailure(reason: AuthFailureReason): void {
    this.#authFailures.labels(reason).inc();
  }
}
