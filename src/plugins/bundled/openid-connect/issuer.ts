/**
 * Issuer metadata and signing keys of the configured identity provider, shared by every request
 * of one plugin instance (and by the browser flows):
 *
 * - Discovery (OpenID Connect Discovery 1.0 §4 / RFC 8414 §3) through openid-client, on first need
 *   rather than at start-up, so an IdP that is down does not stop the gateway from starting.
 *   Cached for `cache_ttl`; one fetch in flight; after a failure, no new attempt for 5 s and the
 *   last good document stays in use.
 * - JWKS (RFC 7517 §5) from `jwks_endpoint` or the discovered `jwks_uri`, then every
 *   `extra_jwks_uris` (primary keys first). One fetch in flight; a token with an unknown `kid`
 *   triggers at most one refetch per `rediscovery_lifetime` and a `kid` still unknown after it is
 *   refused at once for that long; while the IdP is down the last good keys are kept.
 * - A copy in memory is always answered at once: an expired one is refreshed in the background
 *   (stale-while-revalidate), so only a request that has no copy at all, or whose token names a
 *   key not seen yet, ever waits for the IdP, and then for at most one call (http.ts adds the
 *   timeout and the circuit breaker).
 * - Local JWT verification with jose (RFC 7519 §7.2): allowed algorithms only, `iss`, `exp`/`nbf`/
 *   `iat` with `leeway`, optional audience.
 */
import { UnsecuredJWT, createLocalJWKSet, compactVerify, decodeJwt, decodeProtectedHeader, errors as joseErrors, importJWK, jwtVerify } from 'jose';
import type { JSONWebKeySet, JWK, JWTPayload, JWTHeaderParameters, FlattenedJWSInput, JWSHeaderParameters, CryptoKey as JoseKey } from 'jose';
import { None, allowInsecureRequests, customFetch, discovery } from 'openid-client';
import type { ServerMetadata } from 'openid-client';
import type { Logger } from '../../sdk.ts';
import type { IdpHttp } from './http.ts';
import { authError, describe, idpUnavailable } from './errors.ts';

/** Asymmetric JWS algorithms accepted for tokens (RFC 7518 §3.1, RFC 8037); HS* only on request. */
export const asymmetricAlgs = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
export const hmacAlgs = ['HS256', 'HS384', 'HS512'] as const;

/** How long to wait after a failed discovery or JWKS fetch before trying again (Kong: 5 s). */
const FAILURE_BACKOFF_MS = 5_000;
/** Most `kid`s remembered as unknown at once (forged tokens can carry any number of them). */
const UNKNOWN_KIDS_MAX = 1_000;

/** Endpoint overrides from the config (`*_endpoint`), applied over the discovered metadata. */
export type EndpointOverrides = Partial<Record<'authorization_endpoint' | 'token_endpoint' | 'introspection_endpoint' | 'revocation_endpoint' | 'userinfo_endpoint' | 'end_session_endpoint' | 'pushed_authorization_request_endpoint', string>>;

export interface IssuerOptions {
  /** `config.issuer`: issuer identifier or a full `.well-known` URL. */
  issuer: string;
  /** `using_pseudo_issuer`: no discovery; the overrides are the metadata. */
  usingPseudoIssuer: boolean;
  overrides: EndpointOverrides;
  jwksEndpoint: string | null;
  extraJwksUris: readonly string[];
  discoveryHeaders: Readonly<Record<string, string>>;
  /** `cache_ttl` in seconds: lifetime of the discovery document and of the JWKS. */
  cacheTtlSec: number;
  /** `rediscovery_lifetime` in seconds: minimum gap between refetches on an unknown key. */
  rediscoveryLifetimeSec: number;
  http: IdpHttp;
  log: Logger;
  now(): number;
  /** Told about every successful discovery / JWKS fetch (the Admin API's view of the cache). */
  onDiscovered?(update: { configuration?: Record<string, unknown>; keys?: JWK[] }): Promise<void>;
  /** When the Admin API last cleared this issuer's discovery cache (ms since epoch), if ever. */
  purgedAt?(): Promise<number | null>;
  /**
   * What was last recorded for this discovery cache (by this instance or an earlier one with the
   * same issuer and key sources, e.g. before a plugin config change): used when the IdP cannot be
   * reached and this instance has no copy of its own yet.
   */
  recorded?(): Promise<{ configuration: Record<string, unknown> | null; keys: JWK[] } | null>;
}

/** How often an instance looks for an Admin API purge (`DELETE /openid-connect/issuers`). */
export const PURGE_CHECK_MS = 2_000;

export interface VerifyJwtOptions {
  /** Issuers accepted in `iss` (`issuers_allowed`, else the discovered issuer). */
  issuers?: readonly string[] | null;
  /** Seconds of clock tolerance for `exp`, `nbf`, `iat` (`leeway`). */
  leewaySec: number;
  audience?: string | readonly string[] | null;
  /** Secret for HS256/384/512 (`enable_hs_signatures`); HS algorithms are refused without it. */
  hmacSecret?: string | null;
  /** `verify_claims`: false = signature only, plus the issuer check when `issuers` is given. */
  verifyClaims?: boolean;
  /**
   * `verify_signature: false`: the signature is not checked at all (any algorithm, any key);
   * the claims still are, unless `verifyClaims` is false too.
   */
  verifySignature?: boolean;
  /** Find the JWK that verified the signature (`*_jwk_header`); costs a second verification. */
  wantJwk?: boolean;
}

export interface VerifiedJwt {
  payload: JWTPayload;
  header: JWTHeaderParameters;
  /** The public JWK that verified the signature, when asked for (`wantJwk`) and found. */
  jwk?: JWK | null;
}

/** The key type an asymmetric JWS algorithm needs (RFC 7518 §3.1, RFC 8037 §3.1). */
function ktyOf(alg: string): string | null {
  if (/^(RS|PS)\d{3}$/.test(alg)) return 'RSA';
  if (/^ES\d{3}$/.test(alg)) return 'EC';
  if (alg === 'EdDSA' || alg === 'Ed25519') return 'OKP';
  return null;
}

interface Slot<T> {
  value: T | null;
  fetchedAt: number;
  failedAt: number;
  inFlight: Promise<T> | null;
}

const emptySlot = <T>(): Slot<T> => ({ value: null, fetchedAt: 0, failedAt: 0, inFlight: null });

/** Discovery document and keys of one issuer, with the caching rules above. */
export class IssuerCache {
  readonly #o: IssuerOptions;
  readonly #meta: Slot<ServerMetadata> = emptySlot();
  readonly #jwks: Slot<{ keys: JWK[]; resolve: ReturnType<typeof createLocalJWKSet> }> = emptySlot();
  /** When the last unknown-`kid` refetch was started (throttle). */
  #lastKidRefetch = -Infinity;
  /** `kid`s still unknown after a refetch → when; refused without a refetch for rediscovery_lifetime. */
  readonly #unknownKids = new Map<string, number>();
  /** Last good keys of each JWKS URI (an extra_jwks_uris set that fails keeps them). */
  readonly #keysByUri = new Map<string, JWK[]>();
  /** When this instance last looked for an Admin API purge. */
  #lastPurgeCheck = -Infinity;
  /** True for an `http:` issuer: openid-client must be told to allow it (dev and tests). */
  readonly insecure: boolean;

  constructor(options: IssuerOptions) {
    this.#o = options;
    this.insecure = new URL(options.issuer).protocol === 'http:';
  }

  /** The discovery URL that `issuer` resolves to (OpenID Connect Discovery 1.0 §4). */
  get discoveryUrl(): string {
    const url = this.#o.issuer;
    if (url.includes('/.well-known/')) return url;
    return `${url.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  }

  /** Issuer metadata with the configured endpoint overrides applied. */
  async metadata(): Promise<ServerMetadata> {
    if (this.#o.usingPseudoIssuer) return { issuer: this.#o.issuer, ...this.#o.overrides } as ServerMetadata;
    this.#checkPurge();
    return this.#load(this.#meta, this.#o.cacheTtlSec * 1000, () => this.#discover(), 'discovery', async () => {
      const configuration = (await this.#o.recorded?.())?.configuration;
      return configuration ? this.#withOverrides(configuration as ServerMetadata) : null;
    });
  }

  /** The cached discovery document, if any (for the Admin API and diagnostics). */
  peekMetadata(): ServerMetadata | null {
    return this.#meta.value;
  }

  /** The JWKS currently trusted (primary first, then `extra_jwks_uris`). */
  async keys(): Promise<JWK[]> {
    return (await this.#loadJwks()).keys;
  }

  /** Drop the cached discovery document and keys (the Admin API's DELETE /openid-connect/issuers). */
  purge(): void {
    Object.assign(this.#meta, emptySlot());
    Object.assign(this.#jwks, emptySlot());
    this.#lastKidRefetch = -Infinity;
    this.#unknownKids.clear();
  }

  /**
   * Verify a compact JWS JWT against the issuer's keys (RFC 7519 §7.2, RFC 7515 §5.2). Signature
   * with the allowed algorithms only (never `none`), then `iss`, `exp`/`nbf`/`iat` with leeway and
   * the audience if asked. Failures throw a 401 GatewayError (`invalid_token`); an IdP that cannot
   * be reached for keys throws a 500 (Kong: "An unexpected error occurred").
   */
  async verifyJwt(token: string, options: VerifyJwtOptions): Promise<VerifiedJwt> {
    const algorithms: string[] = [...asymmetricAlgs];
    if (options.hmacSecret) algorithms.push(...hmacAlgs);
    const hmacKey = options.hmacSecret ? new TextEncoder().encode(options.hmacSecret) : null;
    const startedAt = this.#o.now();
    const getKey = async (header: JWSHeaderParameters, input: FlattenedJWSInput): Promise<JoseKey | Uint8Array> => {
      if (header.alg?.startsWith('HS')) {
        if (!hmacKey) throw authError('invalid_token', 'HMAC-signed tokens are not accepted');
        return hmacKey;
      }
      const jwks = await this.#loadJwks();
      try {
        return await jwks.resolve(header, input);
      } catch (err) {
        if (!(err instanceof joseErrors.JWKSNoMatchingKey)) throw err;
        // A kid already looked for and not found is refused at once (no wait, no IdP call).
        if (this.#knownUnknown(header.kid)) throw err;
        // Keys fetched while this verification ran are as fresh as a refetch: no second wait.
        if (this.#jwks.fetchedAt >= startedAt) {
          const current = this.#jwks.value;
          if (current !== null && current !== jwks) {
            try {
              return await current.resolve(header, input);
            } catch (again) {
              if (!(again instanceof joseErrors.JWKSNoMatchingKey)) throw again;
            }
          }
          this.#rememberUnknown(header.kid);
          throw err;
        }
        // An unknown key may mean the IdP rotated its keys: refetch, but at most once per
        // rediscovery_lifetime so that forged `kid`s cannot turn into a flood of IdP calls.
        const refreshed = await this.#refetchForUnknownKey();
        if (!refreshed) throw err;
        try {
          return await refreshed.resolve(header, input);
        } catch (again) {
          if (again instanceof joseErrors.JWKSNoMatchingKey) this.#rememberUnknown(header.kid);
          throw again;
        }
      }
    };
    const issuers = options.issuers && options.issuers.length > 0 ? [...options.issuers] : [(await this.metadata()).issuer];
    try {
      if (options.verifySignature === false) return unverifiedJwt(token, issuers, options);
      const verified = await this.#verifyJws(token, getKey, algorithms, issuers, options);
      if (options.wantJwk && !verified.header.alg.startsWith('HS')) verified.jwk = await this.#verifyingJwk(token, verified.header);
      return verified;
    } catch (err) {
      if (err instanceof Error && 'code' in err && (err as { code: string }).code.startsWith('GW_')) throw err;
      this.#o.http.metrics?.authFailure(failureReason(err));
      throw authError('invalid_token', tokenFailure(err), err);
    }
  }

  /**
   * Which of the trusted keys verifies `token` (the JWK of `*_jwk_header`): the keys its `kid`
   * and algorithm allow, each tried until one verifies (usually the first and only one).
   */
  async #verifyingJwk(token: string, header: JWTHeaderParameters): Promise<JWK | null> {
    const kty = ktyOf(header.alg);
    const candidates = (await this.#loadJwks()).keys.filter((k) => k.kty === kty && (header.kid === undefined || k.kid === header.kid) && (k.use === undefined || k.use === 'sig'));
    for (const k of candidates) {
      try {
        await compactVerify(token, await importJWK(k, header.alg));
        return publicPart(k);
      } catch {
        // not this one
      }
    }
    return null;
  }

  async #verifyJws(
    token: string,
    getKey: (header: JWSHeaderParameters, input: FlattenedJWSInput) => Promise<JoseKey | Uint8Array>,
    algorithms: string[],
    issuers: string[],
    options: VerifyJwtOptions,
  ): Promise<VerifiedJwt> {
    if (options.verifyClaims === false) {
      const { protectedHeader } = await compactVerify(token, getKey, { algorithms });
      const payload = decodeJwt(token);
      if (options.issuers && options.issuers.length > 0 && !issuers.includes(String(payload.iss))) throw authError('invalid_token', 'issuer not allowed');
      return { payload, header: protectedHeader as JWTHeaderParameters };
    }
    const { payload, protectedHeader } = await jwtVerify(token, getKey, {
      algorithms,
      issuer: issuers,
      clockTolerance: options.leewaySec,
      ...(options.audience ? { audience: options.audience as string | string[] } : {}),
    });
    return { payload, header: protectedHeader };
  }

  async #discover(): Promise<ServerMetadata> {
    const fetchFn = this.#o.http.fetchFor({ headers: this.#o.discoveryHeaders });
    const run = (issuer: string) => discovery(new URL(issuer), 'portcullis-discovery', undefined, None(), {
      [customFetch]: fetchFn,
      execute: this.insecure ? [allowInsecureRequests] : [],
    });
    let config: Awaited<ReturnType<typeof run>>;
    try {
      config = await run(this.#o.issuer);
    } catch (err) {
      // openid-client wants the document's `issuer` identical to the configured one (OpenID
      // Connect Discovery §4.3). An issuer configured with or without a trailing slash that the
      // IdP writes the other way is the same issuer to a user (Kong accepts it): discover again
      // with the IdP's spelling, which then passes the same check.
      const declared = declaredIssuer(err);
      if (declared === null || declared.replace(/\/+$/, '') !== this.#o.issuer.replace(/\/+$/, '')) throw err;
      config = await run(declared);
    }
    const discovered = { ...config.serverMetadata() } as ServerMetadata;
    // The Admin API shows the document as discovered: overrides belong to one instance, and
    // instances with different overrides share the record.
    this.#publish({ configuration: { ...discovered } });
    const meta = this.#withOverrides(discovered);
    this.#o.http.learn(meta);
    return meta;
  }

  #withOverrides(discovered: ServerMetadata): ServerMetadata {
    const meta = { ...discovered };
    for (const [k, v] of Object.entries(this.#o.overrides)) if (v) (meta as Record<string, unknown>)[k] = v;
    return meta;
  }

  async #loadJwks(): Promise<{ keys: JWK[]; resolve: ReturnType<typeof createLocalJWKSet> }> {
    this.#checkPurge();
    return this.#load(this.#jwks, this.#o.cacheTtlSec * 1000, () => this.#fetchJwks(), 'jwks', async () => {
      const keys = (await this.#o.recorded?.())?.keys;
      return keys && keys.length > 0 ? { keys, resolve: createLocalJWKSet({ keys }) } : null;
    });
  }

  async #fetchJwks(): Promise<{ keys: JWK[]; resolve: ReturnType<typeof createLocalJWKSet> }> {
    let primary = this.#o.jwksEndpoint;
    if (!primary) primary = (await this.metadata()).jwks_uri ?? null;
    const uris = [...(primary ? [primary] : []), ...this.#o.extraJwksUris];
    if (uris.length === 0) throw new Error('the issuer publishes no jwks_uri');
    const fetchSet = async (uri: string): Promise<JWK[]> => {
      const doc = (await this.#o.http.getJson(uri)) as JSONWebKeySet;
      if (!doc || !Array.isArray(doc.keys)) throw new Error(`${uri} is not a JWK set`);
      return doc.keys;
    };
    const results = await Promise.allSettled(uris.map(fetchSet));
    const keys: JWK[] = [];
    for (let i = 0; i < uris.length; i++) {
      const r = results[i];
      if (r.status === 'fulfilled') {
        this.#keysByUri.set(uris[i], r.value);
        keys.push(...r.value);
        continue;
      }
      // The issuer's own keys are required; an extra set that fails (another IdP, a key server)
      // keeps its last good keys, or is left out, rather than blocking the issuer's tokens.
      if (i === 0 && primary) throw r.reason;
      const last = this.#keysByUri.get(uris[i]);
      this.#o.log.warn({ uri: uris[i], err: describe(r.reason), kept: last?.length ?? 0 }, 'openid-connect: could not load extra JWKS; using its last good keys, if any');
      if (last) keys.push(...last);
    }
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (keys.length === 0 && failed) throw failed.reason;
    this.#publish({ keys });
    return { keys, resolve: createLocalJWKSet({ keys }) };
  }

  /**
   * Look (in the background, at most every PURGE_CHECK_MS) whether the Admin API cleared the
   * discovery cache since we fetched; if so, mark both entries stale so the next request
   * rediscovers. The last good copies stay usable while the IdP cannot be reached.
   */
  #checkPurge(): void {
    if (!this.#o.purgedAt) return;
    const now = this.#o.now();
    if (now - this.#lastPurgeCheck < PURGE_CHECK_MS) return;
    this.#lastPurgeCheck = now;
    this.#o.purgedAt().then(
      (at) => {
        if (at === null) return;
        if (this.#meta.value !== null && at > this.#meta.fetchedAt) this.#meta.fetchedAt = 0;
        if (this.#jwks.value !== null && at > this.#jwks.fetchedAt) this.#jwks.fetchedAt = 0;
      },
      (err: unknown) => this.#o.log.warn({ err: describe(err) }, 'openid-connect: could not check the discovery cache purge marker'),
    );
  }

  /** Best effort: a failure to publish never fails the request that discovered. */
  #publish(update: { configuration?: Record<string, unknown>; keys?: JWK[] }): void {
    this.#o.onDiscovered?.(update).catch((err: unknown) => this.#o.log.warn({ err: describe(err) }, 'openid-connect: could not record the discovery cache'));
  }

  #knownUnknown(kid: string | undefined): boolean {
    if (kid === undefined) return false;
    const at = this.#unknownKids.get(kid);
    if (at === undefined) return false;
    if (this.#o.now() - at < this.#o.rediscoveryLifetimeSec * 1000) return true;
    this.#unknownKids.delete(kid);
    return false;
  }

  #rememberUnknown(kid: string | undefined): void {
    if (kid === undefined) return;
    this.#unknownKids.delete(kid);
    if (this.#unknownKids.size >= UNKNOWN_KIDS_MAX) this.#unknownKids.delete(this.#unknownKids.keys().next().value as string);
    this.#unknownKids.set(kid, this.#o.now());
  }

  /**
   * Fetch the keys again for a token whose `kid` is not among them, and wait for the result:
   * only that token's request waits (at most one IdP call); every other request keeps using
   * the keys in memory meanwhile.
   */
  async #refetchForUnknownKey(): Promise<{ keys: JWK[]; resolve: ReturnType<typeof createLocalJWKSet> } | null> {
    const now = this.#o.now();
    if (this.#jwks.inFlight) return this.#jwks.inFlight.catch(() => null);
    if (now - this.#lastKidRefetch < this.#o.rediscoveryLifetimeSec * 1000) return null;
    this.#lastKidRefetch = now;
    this.#o.http.metrics?.jwksRefresh('unknown_kid');
    // Keys may have moved with the metadata: let discovery refresh too, in the background (the
    // JWKS fetch below uses the jwks_uri in memory rather than wait for it).
    this.#meta.fetchedAt = 0;
    this.#jwks.fetchedAt = 0;
    this.#jwks.failedAt = 0;
    try {
      if (this.#jwks.value === null) return await this.#loadJwks();
      return await this.#refresh(this.#jwks, () => this.#fetchJwks(), 'jwks');
    } catch {
      return null;
    }
  }

  /**
   * Single-flight, TTL-bound, stale-while-revalidate, stale-on-error load of one slot. A copy in
   * memory is returned at once, even expired (then refreshed in the background, no more often
   * than the failure back-off allows); only a slot without any copy waits for the fetch. With no
   * copy of its own, a failed fetch falls back to the recorded copy (kept stale, so it is
   * refetched after the back-off).
   */
  async #load<T>(slot: Slot<T>, ttlMs: number, fetcher: () => Promise<T>, what: string, recorded?: () => Promise<T | null>): Promise<T> {
    const now = this.#o.now();
    if (slot.value !== null) {
      if (now - slot.fetchedAt >= ttlMs && slot.inFlight === null && now - slot.failedAt >= FAILURE_BACKOFF_MS) {
        // Background refresh: its failure keeps the copy (and is logged), never rejects.
        void this.#refresh(slot, fetcher, what, recorded).catch(() => undefined);
      }
      return slot.value;
    }
    if (slot.inFlight) return slot.inFlight;
    if (now - slot.failedAt < FAILURE_BACKOFF_MS) throw idpUnavailable(what, new Error('recent failure, backing off'));
    return this.#refresh(slot, fetcher, what, recorded);
  }

  /** The fetch in flight for `slot`, or a new one (single flight). */
  #refresh<T>(slot: Slot<T>, fetcher: () => Promise<T>, what: string, recorded?: () => Promise<T | null>): Promise<T> {
    if (slot.inFlight) return slot.inFlight;
    const attempt = fetcher().then(
      (value) => {
        slot.value = value;
        slot.fetchedAt = this.#o.now();
        slot.failedAt = 0;
        return value;
      },
      async (err: unknown) => {
        slot.failedAt = this.#o.now();
        if (slot.value !== null) {
          this.#o.log.warn({ what, err: describe(err) }, 'openid-connect: IdP fetch failed, keeping the last good copy');
          return slot.value;
        }
        const saved = recorded ? await recorded().catch(() => null) : null;
        if (saved !== null && slot.value === null) {
          slot.value = saved;
          slot.fetchedAt = 0;
          this.#o.log.warn({ what, err: describe(err) }, 'openid-connect: IdP fetch failed, using the recorded discovery cache');
          return saved;
        }
        if (slot.value !== null) return slot.value;
        this.#o.log.warn({ what, err: describe(err) }, 'openid-connect: IdP fetch failed');
        throw idpUnavailable(what, err);
      },
    ).finally(() => {
      if (slot.inFlight === attempt) slot.inFlight = null;
    });
    slot.inFlight = attempt;
    return attempt;
  }
}

/** A JWK without its private members (a header may carry only public keys). */
function publicPart(k: JWK): JWK {
  const privateMembers = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'r', 't']);
  return Object.fromEntries(Object.entries(k).filter(([name]) => !privateMembers.has(name))) as JWK;
}

/**
 * `verify_signature: false`: the JWS is not verified; its payload is read and, with
 * `verify_claims`, checked by jose's claim validation (iss, exp, nbf, iat with leeway) through an
 * unsecured JWT (RFC 7519 §6) carrying the same payload.
 */
function unverifiedJwt(token: string, issuers: string[], options: VerifyJwtOptions): VerifiedJwt {
  const header = decodeProtectedHeader(token) as JWTHeaderParameters;
  if (options.verifyClaims === false) {
    const payload = decodeJwt(token);
    if (options.issuers && options.issuers.length > 0 && !issuers.includes(String(payload.iss))) throw authError('invalid_token', 'issuer not allowed');
    return { payload, header, jwk: null };
  }
  const unsecured = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${token.split('.')[1]}.`;
  const { payload } = UnsecuredJWT.decode(unsecured, {
    issuer: issuers,
    clockTolerance: options.leewaySec,
    ...(options.audience ? { audience: options.audience as string | string[] } : {}),
  });
  return { payload, header, jwk: null };
}

/** A short reason for a failed token verification (for logs and `display_errors`). */
/** The bounded reason label of portcullis_oidc_auth_failures_total (no token content). */
function failureReason(err: unknown): 'expired' | 'bad_signature' | 'audience' | 'issuer' | 'invalid' {
  if (err instanceof joseErrors.JWTExpired) return 'expired';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed || err instanceof joseErrors.JWKSNoMatchingKey) return 'bad_signature';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return err.claim === 'aud' ? 'audience' : err.claim === 'iss' ? 'issuer' : 'invalid';
  return 'invalid';
}

function tokenFailure(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'token expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `invalid ${err.claim} claim`;
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'invalid signature';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'signing algorithm not allowed';
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'no key matches the token';
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return 'malformed token';
  return 'token verification failed';
}

/** The `issuer` of a discovery document openid-client refused as not the expected issuer, or null. */
function declaredIssuer(err: unknown): string | null {
  const e = err as { code?: unknown; cause?: { attribute?: unknown; body?: { issuer?: unknown } } } | null;
  if (e?.code !== 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED' || e.cause?.attribute !== 'issuer') return null;
  const issuer = e.cause.body?.issuer;
  return typeof issuer === 'string' ? issuer : null;
}
