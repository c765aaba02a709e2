/**
 * `token_exchange` (Kong 3.14+, RFC 8693): a bearer JWT from one of `subject_token_issuers` is
 * exchanged at the configured IdP for a token the upstream accepts, and the rest of the plugin
 * runs on the exchanged token (verified like any bearer token; it is what goes upstream).
 *
 * The decision, per subject token:
 * 1. Its `iss` (decoded) must be one of `subject_token_issuers`; otherwise the token is not
 *    exchanged and the `bearer` method handles it as usual.
 * 2. A token of another issuer than `issuer` is exchanged; a token of `issuer` itself only when the
 *    entry's `conditions` all match (`has_scopes` / `has_audience`: every listed value present;
 *    `missing_scopes` / `missing_audience`: none of them present). Scopes are read at
 *    `scopes_claim`, audiences at `audience_claim`.
 * 3. With the entry's `verify_signature`, its signature is checked against the keys of
 *    `jwks_uri`, else of that issuer's discovery document (the configured issuer's own keys for
 *    the configured issuer). It must not be expired, nor before its `nbf` (`leeway` applies).
 *    A failed check is a 401 `invalid_token`; nothing is sent to the IdP.
 * 4. The request (RFC 8693 §2.1) goes to `token_exchange_endpoint`, else the token endpoint,
 *    with the selected client's authentication: `subject_token`, `subject_token_type` and
 *    `requested_token_type` = access token, `scope` = `request.scopes` else `scopes`,
 *    one `audience` per value of `request.audience` else `audience` (`empty_scopes` /
 *    `empty_audience` send none). A refusal by the IdP is a 401 `invalid_token`; an IdP that
 *    cannot be reached, a 500.
 *
 * The result is cached per subject token and client (`cache_token_exchange` and
 * `token_exchange.cache.enabled`, both default true) for `token_exchange.cache.ttl`, else
 * `cache_ttl`, never past the exchanged token's expiry; concurrent requests with the same subject
 * token share one exchange.
 */
import { hash } from 'node:crypto';
import { genericGrantRequest } from 'openid-client';
import { decodeJwt } from 'jose';
import { SingleFlight, TailMemo, TtlCache } from '../caches.ts';
import { authError, describe, idpUnavailable, isIdpOutage } from '../errors.ts';
import { IssuerCache } from '../issuer.ts';
import { issuerId } from '../schema-parts.ts';
import type { Claims, FoundToken, Outcome, RequestState, Runtime, Sync } from '../runtime.ts';
import { bearerStep, looksLikeJwt, verifyAccessJwt } from './verify-token.ts';

export const tokenExchangeGrant = 'urn:ietf:params:oauth:grant-type:token-exchange';
const accessTokenType = 'urn:ietf:params:oauth:token-type:access_token';
const CACHE_ENTRIES = 10_000;

type SubjectIssuer = NonNullable<Runtime['cfg']['token_exchange']>['subject_token_issuers'][number];

interface Exchanged {
  readonly token: string;
  /** Verified claims of a JWT exchanged token (null for an opaque one). */
  readonly claims: Claims | null;
  /** The Outcome made the first time, per location the subject token came in. */
  outcome: Outcome | null;
}

/** The values of a claim that holds a list: a space-separated string (scope) or an array. */
function values(claims: Claims, path: readonly string[]): Set<string> {
  let v: unknown = claims;
  for (const p of path) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[p] : undefined;
  if (typeof v === 'string') return new Set(v.split(' ').filter(Boolean));
  if (Array.isArray(v)) return new Set(v.filter((x): x is string => typeof x === 'string'));
  return new Set();
}

/** Whether a token of the configured issuer meets its entry's `conditions` (all of them). */
export function conditionsMet(cfg: Runtime['cfg'], entry: SubjectIssuer, claims: Claims): boolean {
  const c = entry.conditions;
  if (!c) return false;
  const scopes = values(claims, cfg.scopes_claim);
  const audience = values(claims, cfg.audience_claim);
  if (c.has_scopes && !c.has_scopes.every((s) => scopes.has(s))) return false;
  if (c.missing_scopes && c.missing_scopes.some((s) => scopes.has(s))) return false;
  if (c.has_audience && !c.has_audience.every((a) => audience.has(a))) return false;
  if (c.missing_audience && c.missing_audience.some((a) => audience.has(a))) return false;
  return true;
}

/** A token to be exchanged: the entry of its issuer and its (unverified) claims. */
interface Plan {
  readonly entry: SubjectIssuer;
  readonly claims: Claims & { iss: string };
}

/** Steps 1 and 2 of the module comment: whether (and under which entry) a token is exchanged. */
function planFor(cfg: Runtime['cfg'], target: string, token: string): Plan | null {
  let claims: Claims;
  try {
    claims = decodeJwt(token) as Claims;
  } catch {
    return null;
  }
  if (typeof claims.iss !== 'string') return null;
  const iss = issuerId(claims.iss);
  const entry = cfg.token_exchange!.subject_token_issuers.find((e) => issuerId(e.issuer) === iss);
  if (!entry) return null;
  if (iss === target && !conditionsMet(cfg, entry, claims)) return null;
  return { entry, claims: claims as Claims & { iss: string } };
}

/** The exchange state of one plugin instance. */
class Exchanger {
  readonly #rt: Runtime;
  readonly #target: string;
  readonly #cache: TtlCache<Exchanged>;
  readonly #flight = new SingleFlight<Exchanged>();
  /** Key caches of the other issuers whose signatures are checked (`verify_signature`). */
  readonly #issuers = new Map<string, IssuerCache>();
  readonly #plans = new TailMemo<Plan | null>(CACHE_ENTRIES);

  constructor(rt: Runtime) {
    this.#rt = rt;
    this.#target = issuerId(rt.cfg.issuer);
    this.#cache = new TtlCache({ maxEntries: CACHE_ENTRIES, now: rt.now });
  }

  get #caching(): boolean {
    const cfg = this.#rt.cfg;
    return cfg.cache_token_exchange && (cfg.token_exchange?.cache?.enabled ?? true);
  }

  /**
   * Which entry (and decoded claims) a token is exchanged under, or null when it is not: depends
   * on the token and the config only, so it is remembered per token (bounded).
   */
  #plan(token: string): Plan | null {
    let plan = this.#plans.get(token);
    if (plan === undefined) {
      plan = planFor(this.#rt.cfg, this.#target, token);
      this.#plans.set(token, plan);
    }
    return plan;
  }

  /**
   * The exchanged token for `token`, or null when this token is not to be exchanged. Answered
   * at once for a token not to be exchanged and for a cached exchange.
   */
  exchange(rs: RequestState, token: string): Sync<Exchanged | null> {
    const rt = this.#rt;
    const plan = this.#plan(token);
    if (plan === null) return null;
    const { claims, entry } = plan;
    const now = rt.now() / 1000;
    if (typeof claims.exp === 'number' && claims.exp + rt.cfg.leeway <= now) throw authError('invalid_token', 'subject token expired');
    if (typeof claims.nbf === 'number' && claims.nbf - rt.cfg.leeway > now) throw authError('invalid_token', 'subject token not yet valid');
    // The same token string was checked (and exchanged) before: the cached result stands.
    const key = hash('sha256', `${token}\0${rs.client?.index ?? 0}`, 'base64url');
    const cached = this.#caching ? this.#cache.get(key) : undefined;
    if (cached !== undefined) return cached;
    return this.#flight.run(key, rs.ctx.signal, async () => {
      if (entry.verify_signature) await this.#verifySignature(entry, issuerId(claims.iss), claims.iss, token);
      return this.#request(rs, token, key);
    });
  }

  async #verifySignature(entry: SubjectIssuer, iss: string, rawIss: string, token: string): Promise<void> {
    const rt = this.#rt;
    let keys = iss === this.#target && !entry.jwks_uri ? rt.issuer : this.#issuers.get(iss);
    if (keys === undefined) {
      keys = new IssuerCache({
        issuer: entry.issuer,
        usingPseudoIssuer: false,
        overrides: {},
        jwksEndpoint: entry.jwks_uri,
        extraJwksUris: [],
        discoveryHeaders: {},
        cacheTtlSec: rt.cfg.cache_ttl,
        rediscoveryLifetimeSec: rt.cfg.rediscovery_lifetime,
        http: rt.http,
        log: rt.log,
        now: rt.now,
      });
      this.#issuers.set(iss, keys);
    }
    try {
      // Signature (and iss); the time claims are checked by the caller with the same rules for all.
      await keys.verifyJwt(token, { issuers: [rawIss], leewaySec: rt.cfg.leeway, verifyClaims: false });
    } catch (err) {
      if (isIdpOutage(err)) throw err;
      throw authError('invalid_token', `subject token signature not verified: ${describe(err)}`, err);
    }
  }

  async #request(rs: RequestState, token: string, key: string): Promise<Exchanged> {
    const rt = this.#rt;
    const cfg = rt.cfg;
    const te = cfg.token_exchange!;
    if (!rs.client) throw idpUnavailable('token exchange', new Error('no client_id configured'));
    const meta = await rt.issuer.metadata();
    const endpoint = cfg.token_exchange_endpoint ?? meta.token_endpoint;
    if (!endpoint) throw idpUnavailable('token exchange', new Error('no token endpoint'));
    const config = await rt.clients.configuration({ ...meta, token_endpoint: endpoint }, rs.client, 'token', { signal: rs.ctx.signal });
    const params = new URLSearchParams({ subject_token: token, subject_token_type: accessTokenType, requested_token_type: accessTokenType });
    const scopes = te.request?.empty_scopes ? [] : (te.request?.scopes ?? cfg.scopes);
    if (scopes.length > 0) params.set('scope', scopes.join(' '));
    const audience = te.request?.empty_audience ? [] : (te.request?.audience ?? cfg.audience ?? []);
    for (const a of audience) params.append('audience', a);
    let access: string;
    let expiresIn: number | undefined;
    try {
      const res = await genericGrantRequest(config, tokenExchangeGrant, params);
      access = res.access_token;
      expiresIn = res.expires_in;
    } catch (err) {
      if (isIdpOutage(err)) throw idpUnavailable('token exchange', err);
      rt.log.info({ err: describe(err) }, 'openid-connect: token exchange refused by the identity provider');
      throw authError('invalid_token', 'token exchange refused', err);
    }
    // The exchanged token is checked like any bearer token of the configured issuer.
    const claims = looksLikeJwt(access) ? await verifyAccessJwt(rt, rs, access) : null;
    const result: Exchanged = { token: access, claims, outcome: null };
    if (this.#caching) {
      const nowMs = rt.now();
      const exp = typeof claims?.exp === 'number' ? claims.exp : typeof expiresIn === 'number' ? nowMs / 1000 + expiresIn : null;
      let ttl = (te.cache?.ttl ?? cfg.cache_ttl) * 1000;
      if (exp !== null) ttl = Math.min(ttl, exp * 1000 - nowMs);
      this.#cache.set(key, result, Math.floor(ttl));
    }
    return result;
  }
}

const exchangers = new WeakMap<Runtime, Exchanger>();

function exchangerOf(rt: Runtime): Exchanger {
  let e = exchangers.get(rt);
  if (e === undefined) exchangers.set(rt, (e = new Exchanger(rt)));
  return e;
}

/**
 * `bearer` with `token_exchange`: a bearer JWT to be exchanged is, and the Outcome carries the
 * exchanged token (its claims, for authorization, consumer mapping and headers); any other token
 * goes to the plain `bearer` step.
 */
export function tokenExchangeBearerStep(rt: Runtime, rs: RequestState): Sync<Outcome | null> {
  const found = rs.bearer();
  return found instanceof Promise ? found.then((f) => exchangeOf(rt, rs, f)) : exchangeOf(rt, rs, found);
}

function exchangeOf(rt: Runtime, rs: RequestState, found: FoundToken | null): Sync<Outcome | null> {
  if (found === null || !looksLikeJwt(found.token)) return bearerStep(rt, rs);
  const ex = exchangerOf(rt).exchange(rs, found.token);
  return ex instanceof Promise ? ex.then((e) => outcomeOf(rt, rs, found, e)) : outcomeOf(rt, rs, found, ex);
}

/** The Outcome of an exchanged token (made once per location), or plain `bearer` for the rest. */
function outcomeOf(rt: Runtime, rs: RequestState, found: FoundToken, ex: Exchanged | null): Sync<Outcome | null> {
  if (ex === null) return bearerStep(rt, rs);
  rs.bearerHandled = true;
  const used = ex.outcome?.used[0];
  if (ex.outcome !== null && used !== undefined && used.location === found.location && used.name === found.name) return ex.outcome;
  return (ex.outcome = {
    method: 'bearer',
    tokens: { access_token: ex.token, token_type: 'Bearer' },
    accessClaims: ex.claims,
    idClaims: null,
    introspection: null,
    userinfo: null,
    used: [{ location: found.location, name: found.name }],
  });
}
