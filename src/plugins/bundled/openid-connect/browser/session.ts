/**
 * Sessions: sealed into cookies (default, stateless) or kept in Redis with only a sealed reference
 * in the cookie. Timeouts follow lua-resty-session's model (reference §2.8, §10): idling, rolling
 * and absolute; renewal after 3/4 of the rolling timeout; an idle "touch" at most once a minute;
 * an optional long-lived `remember` cookie that restores an expired browser session.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { RequestContext } from '../../../sdk.ts';
import type { KeyValueStore } from '../../../../storage/ports.ts';
import type { CookieSettings, ResolvedConfig } from './config.ts';
import { clearCookie, existingChunkNames, readChunked, writeChunked } from './cookies.ts';
import { digest, type Sealer } from './seal.ts';

export interface SessionTokens {
  access_token?: string;
  id_token?: string;
  refresh_token?: string;
  token_type?: string;
  /** Access token expiry, seconds since epoch (from `expires_in`, RFC 6749 §5.1). */
  expires_at?: number;
  scope?: string;
}

export interface SessionData {
  /** Our session id (random, 256 bits). Changes on every renewal with Redis storage. */
  id: string;
  /** The auth method that created the session (`authorization_code`, `password`, ...). */
  method: string;
  clientIndex: number;
  subject: string | null;
  /** Issuer of the ID token, and its `sid` claim: the keys of back-channel logout. */
  issuer: string | null;
  idpSessionId: string | null;
  tokens: SessionTokens;
  /** `userinfo_jwt`: the signed user info answer itself (`userinfo_accept: application/jwt`). */
  claims: { id_token?: Record<string, unknown>; userinfo?: Record<string, unknown>; userinfo_jwt?: string };
  /** ms since epoch */
  createdAt: number;
  renewedAt: number;
  lastSeenAt: number;
  audience: string;
}

/** What a new session needs; ids and times are filled in by `newSession`. */
export interface NewSession {
  method: string;
  clientIndex: number;
  tokens: SessionTokens;
  claims?: SessionData['claims'];
  subject?: string | null;
  issuer?: string | null;
}

/** Per-request notes kept in ctx.state under this key. */
export const stateKey = 'openid-connect:browser';

/**
 * The session of one audience in the cookie. Several plugin instances sharing the cookie name and
 * secret but with different `session_audience` keep one entry each (lua-resty-session audiences).
 */
interface AudienceEntry {
  aud: string;
  /** cookie storage: the session itself */
  d?: SessionData;
  /** server-side storage (redis, memcached): the session id */
  ref?: string;
  /** `session_bind`: digest of the bound request facts (client IP, scheme, User-Agent) */
  b?: string;
  /** server-side storage: the subject (for `session_enforce_same_subject`) */
  s?: string | null;
}

interface CookiePayload extends AudienceEntry {
  v: 1;
  /** The sessions of other audiences sharing this cookie. */
  o?: AudienceEntry[];
}

function entryOf(payload: CookiePayload, aud: string): AudienceEntry | null {
  if (payload.aud === aud) return payload;
  return payload.o?.find((e) => e.aud === aud) ?? null;
}

function subjectOf(e: AudienceEntry): string | null {
  return e.d ? e.d.subject : (e.s ?? null);
}

const touchIntervalMs = 60_000;

interface SessionKeys {
  /** Marker of a cookie-stored session that ended (`endedKey`). */
  ended: string;
  /** Back-channel logout markers (`markerKey`) of its IdP session id and subject. */
  markers: string[];
}

export function newSessionId(): string {
  return randomBytes(32).toString('base64url');
}

export function isSecureRequest(ctx: RequestContext): boolean {
  return ctx.request.scheme === 'https';
}

export class SessionStore {
  readonly #cfg: ResolvedConfig;
  readonly #sealer: Sealer;
  /** Where server-side records and back-channel markers live (Redis, or the shared KV). */
  readonly #kv: KeyValueStore;
  readonly #now: () => number;
  /** Store keys of an opened (frozen, shared) session, computed once: each is a SHA-256. */
  readonly #keysOf = new WeakMap<SessionData, SessionKeys>();

  constructor(cfg: ResolvedConfig, sealer: Sealer, kv: KeyValueStore, now: () => number) {
    this.#cfg = cfg;
    this.#sealer = sealer;
    this.#kv = kv;
    this.#now = now;
  }

  newSession(init: NewSession): SessionData {
    const now = this.#now();
    const idClaims = init.claims?.id_token;
    return {
      id: newSessionId(),
      method: init.method,
      clientIndex: init.clientIndex,
      subject: init.subject ?? (typeof idClaims?.sub === 'string' ? idClaims.sub : null),
      issuer: init.issuer ?? (typeof idClaims?.iss === 'string' ? idClaims.iss : null),
      idpSessionId: typeof idClaims?.sid === 'string' ? idClaims.sid : null,
      tokens: init.tokens,
      claims: init.claims ?? {},
      createdAt: now,
      renewedAt: now,
      lastSeenAt: now,
      audience: this.#cfg.sessionAudience,
    };
  }

  /**
   * Read the session from the request: the session cookie first, then the remember cookie.
   * Unreadable or expired cookies are removed (Set-Cookie) and count as no session.
   * Returns the session and whether it must be written back (renewal, idle touch, restored).
   */
  async read(ctx: RequestContext): Promise<{ session: SessionData; dirty: boolean } | null> {
    const now = this.#now();
    const main = await this.#readCookie(ctx, this.#cfg.sessionCookie);
    if (main) {
      const problem = this.#timeoutProblem(main, now, false);
      if (problem === null && !(await this.#loggedOutByIdp(main))) {
        return { session: main, dirty: this.#needsWrite(main, now) };
      }
      // With Redis the remember cookie points at the same record: it may still bring it back.
      if (!this.#cfg.remember) await this.#deleteRecord(main);
      // Without ours, the cookie may still carry other audiences' sessions.
      if (!(await this.#keepOthers(ctx, false))) this.#clear(ctx, this.#cfg.sessionCookie);
      ctx.log.debug({ reason: problem ?? 'backchannel logout' }, 'openid-connect: session ended');
    }
    if (!this.#cfg.remember) return null;
    const remembered = await this.#readCookie(ctx, this.#cfg.rememberCookie);
    if (!remembered) return null;
    if (this.#timeoutProblem(remembered, now, true) !== null || (await this.#loggedOutByIdp(remembered))) {
      await this.#deleteRecord(remembered);
      this.#clear(ctx, this.#cfg.rememberCookie);
      return null;
    }
    // A remembered session comes back as a fresh browser session (new idle and rolling period).
    return { session: { ...remembered, renewedAt: now, lastSeenAt: now }, dirty: true };
  }

  /**
   * The steady state of `read`, synchronously and without side effects: the session of the
   * session cookie when that cookie was opened before (the Sealer remembers it), is valid
   * (timeouts; ended and back-channel markers read with the store's synchronous `peek`) and needs
   * no write (renewal, idle touch) at `nowMs` (when the request arrived, on this store's clock).
   * Undefined whenever `read` must run instead: anything else, including no session cookie at all.
   */
  peek(ctx: RequestContext, nowMs: number): SessionData | undefined {
    const kv = this.#kv;
    if (this.#cfg.serverSide || kv.peek === undefined) return undefined;
    const name = this.#cfg.sessionCookie.name;
    const cookies = ctx.request.cookies;
    let value: string | null | undefined = cookies.get(name);
    if (value === undefined || value === '') return undefined;
    if (value.startsWith('~')) value = readChunked(cookies, name).value;
    if (value === null) return undefined;
    const payload = this.#sealer.peek('session', value) as CookiePayload | null | undefined;
    if (!payload || payload.v !== 1 || payload.aud !== this.#cfg.sessionAudience) return undefined;
    if (payload.b !== this.#bindValue(ctx)) return undefined;
    const s = payload.d;
    if (!s || typeof s.id !== 'string') return undefined;
    const keys = this.#keys(s);
    if (kv.peek(keys.ended) !== null) return undefined;
    if (this.#timeoutProblem(s, nowMs, false) !== null || this.#needsWrite(s, nowMs)) return undefined;
    if (this.#cfg.backchannelLogoutUriSuffix && s.issuer) {
      for (const k of keys.markers) {
        const at = kv.peek(k);
        if (at !== null && Number(at) >= s.createdAt) return undefined;
      }
    }
    return s;
  }

  /** Whether the request carries a session or remember cookie at all (`read` has nothing to do without). */
  present(ctx: RequestContext): boolean {
    const cookies = ctx.request.cookies;
    if (cookies.size === 0) return false;
    if (readChunked(cookies, this.#cfg.sessionCookie.name).present) return true;
    return this.#cfg.remember && readChunked(cookies, this.#cfg.rememberCookie.name).present;
  }

  #keys(s: SessionData): SessionKeys {
    let keys = this.#keysOf.get(s);
    if (keys === undefined) {
      const markers: string[] = [];
      if (s.issuer) {
        if (s.idpSessionId) markers.push(markerKey('sid', s.issuer, s.idpSessionId));
        if (s.subject) markers.push(markerKey('sub', s.issuer, s.subject));
      }
      keys = { ended: endedKey(s.id), markers };
      // Only an opened session is shared and immutable; others may still change (ids, subject).
      if (Object.isFrozen(s)) this.#keysOf.set(s, keys);
    }
    return keys;
  }

  /** Write the session (cookies, and the Redis record); renews times when `renew` is set. */
  async write(ctx: RequestContext, session: SessionData, opts: { renew: boolean }): Promise<SessionData> {
    const now = this.#now();
    const previousId = session.id;
    const next: SessionData = { ...session, lastSeenAt: now };
    if (opts.renew) {
      next.renewedAt = now;
      if (this.#cfg.serverSide) next.id = newSessionId();
    }
    let payload: CookiePayload;
    if (this.#cfg.serverSide) {
      const ttlMs = this.#recordTtlMs(next, now);
      await this.#kv.set(this.#recordKey(next.id), await this.#sealer.seal('storage', next), ttlMs);
      let stale = false;
      if (previousId !== next.id) {
        // Requests already in flight with the old cookie keep working for a moment (stale_ttl, §10).
        const old = await this.#kv.get(this.#recordKey(previousId));
        if (old !== null) await this.#kv.set(this.#recordKey(previousId), old, staleTtlMs);
        stale = old !== null;
      }
      if (this.#cfg.storeMetadata) await this.#updateMetadata(next, now, { [next.id]: now + (ttlMs ?? 30 * 86_400_000), ...(stale ? { [previousId]: now + staleTtlMs } : {}) });
      payload = { v: 1, aud: next.audience, ref: next.id, s: next.subject };
    } else {
      payload = { v: 1, aud: next.audience, d: next };
    }
    const bound = this.#bindValue(ctx);
    if (bound !== undefined) payload.b = bound;
    // Other audiences' sessions in the cookie stay (with `session_enforce_same_subject` only
    // those of the same subject: the others are dropped).
    const others = (await this.#otherAudiences(ctx)).filter((e) => !this.#cfg.enforceSameSubject || subjectOf(e) === next.subject);
    if (others.length > 0) payload.o = others;
    const sealed = await this.#sealer.seal('session', payload);
    this.#writeCookie(ctx, this.#cfg.sessionCookie, sealed, undefined);
    if (this.#cfg.remember) this.#writeCookie(ctx, this.#cfg.rememberCookie, sealed, this.#cfg.rememberRollingTimeout);
    return next;
  }

  async destroy(ctx: RequestContext, session: SessionData | null): Promise<void> {
    if (session) await this.#deleteRecord(session);
    if (session && this.#cfg.storeMetadata) await this.#updateMetadata(session, this.#now(), { [session.id]: 0 });
    // A cookie-stored session lives in the browser: a copy kept by anyone would still open. A
    // marker in the shared store (until the session could have ended anyway) refuses such copies.
    if (session && !this.#cfg.serverSide) await this.#kv.set(endedKey(session.id), '1', this.#markerTtlMs());
    // The sessions of other audiences in the same cookie go on: the cookie is written without ours.
    if (await this.#keepOthers(ctx, this.#cfg.remember)) return;
    this.#clear(ctx, this.#cfg.sessionCookie, true);
    if (this.#cfg.remember) this.#clear(ctx, this.#cfg.rememberCookie, true);
  }

  /** Rewrites the cookie with the other audiences' entries only; false when there are none. */
  async #keepOthers(ctx: RequestContext, remember: boolean): Promise<boolean> {
    const others = await this.#otherAudiences(ctx);
    if (others.length === 0) return false;
    const [first, ...rest] = others;
    const sealed = await this.#sealer.seal('session', { v: 1, ...first, ...(rest.length > 0 ? { o: rest } : {}) } satisfies CookiePayload);
    this.#writeCookie(ctx, this.#cfg.sessionCookie, sealed, undefined);
    if (remember) this.#writeCookie(ctx, this.#cfg.rememberCookie, sealed, this.#cfg.rememberRollingTimeout);
    return true;
  }

  /** The entries of other audiences in the request's session cookie (none when it does not open). */
  async #otherAudiences(ctx: RequestContext): Promise<AudienceEntry[]> {
    const { value } = readChunked(ctx.request.cookies, this.#cfg.sessionCookie.name);
    if (value === null) return [];
    const payload = (await this.#sealer.open('session', value)) as CookiePayload | null;
    if (!payload || payload.v !== 1) return [];
    const mine = this.#cfg.sessionAudience;
    const out: AudienceEntry[] = [];
    for (const e of [payload, ...(payload.o ?? [])]) {
      if (e.aud === mine) continue;
      const { aud, d, ref, b, s } = e;
      out.push({ aud, ...(d ? { d } : {}), ...(ref ? { ref } : {}), ...(b ? { b } : {}), ...(s !== undefined ? { s } : {}) });
    }
    return out;
  }

  /** Back-channel logout (§2.7 of the spec): every session of this sid / sub ends, on every node. */
  async markLoggedOut(issuer: string, sid: string | null, sub: string | null): Promise<void> {
    const ttl = this.#markerTtlMs();
    const at = String(this.#now());
    if (sid) await this.#kv.set(markerKey('sid', issuer, sid), at, ttl);
    if (sub) await this.#kv.set(markerKey('sub', issuer, sub), at, ttl);
  }

  #markerTtlMs(): number {
    const day = 86_400;
    let s = this.#cfg.absoluteTimeout > 0 ? this.#cfg.absoluteTimeout : 30 * day;
    if (this.#cfg.remember) s = Math.max(s, this.#cfg.rememberAbsoluteTimeout > 0 ? this.#cfg.rememberAbsoluteTimeout : 30 * day);
    return s * 1000;
  }

  async #loggedOutByIdp(s: SessionData): Promise<boolean> {
    if (!this.#cfg.backchannelLogoutUriSuffix || !s.issuer) return false;
    for (const k of this.#keys(s).markers) {
      const at = await this.#kv.get(k);
      if (at !== null && Number(at) >= s.createdAt) return true;
    }
    return false;
  }

  /** null when valid; else which timeout ended it. */
  #timeoutProblem(s: SessionData, now: number, remember: boolean): string | null {
    const c = this.#cfg;
    const absolute = remember ? c.rememberAbsoluteTimeout : c.absoluteTimeout;
    const rolling = remember ? c.rememberRollingTimeout : c.rollingTimeout;
    if (absolute > 0 && now >= s.createdAt + absolute * 1000) return 'absolute timeout';
    if (rolling > 0 && now >= s.renewedAt + rolling * 1000) return 'rolling timeout';
    if (!remember && c.idlingTimeout > 0 && now >= s.lastSeenAt + c.idlingTimeout * 1000) return 'idling timeout';
    if (s.createdAt > now + 60_000) return 'created in the future';
    return null;
  }

  #needsWrite(s: SessionData, now: number): boolean {
    const c = this.#cfg;
    if (c.rollingTimeout > 0 && now - s.renewedAt >= c.rollingTimeout * 750) return true;
    return c.idlingTimeout > 0 && now - s.lastSeenAt >= touchIntervalMs;
  }

  /** Whether renewal is due (vs. a mere idle touch). */
  renewalDue(s: SessionData): boolean {
    return this.#cfg.rollingTimeout > 0 && this.#now() - s.renewedAt >= this.#cfg.rollingTimeout * 750;
  }

  #recordTtlMs(s: SessionData, now: number): number | undefined {
    const c = this.#cfg;
    const limits: number[] = [];
    const absolute = c.remember ? Math.max(c.absoluteTimeout, c.rememberAbsoluteTimeout) : c.absoluteTimeout;
    const rolling = c.remember ? Math.max(c.rollingTimeout, c.rememberRollingTimeout) : c.rollingTimeout;
    if (absolute > 0) limits.push(s.createdAt + absolute * 1000 - now);
    if (rolling > 0) limits.push(rolling * 1000);
    if (!c.remember && c.idlingTimeout > 0) limits.push(c.idlingTimeout * 1000);
    return limits.length > 0 ? Math.max(1000, Math.min(...limits)) : undefined;
  }

  async #readCookie(ctx: RequestContext, settings: CookieSettings): Promise<SessionData | null> {
    const { value, present } = readChunked(ctx.request.cookies, settings.name);
    if (!present) return null;
    const payload = value === null ? null : ((await this.#sealer.open('session', value)) as CookiePayload | null);
    if (!payload || payload.v !== 1) {
      ctx.log.debug({ cookie: settings.name }, 'openid-connect: unreadable session cookie removed');
      this.#clear(ctx, settings);
      return null;
    }
    const entry = entryOf(payload, this.#cfg.sessionAudience);
    if (entry === null) return null;
    // A cookie shared with other audiences is not removed for a problem of our entry.
    const clear = (payload.o?.length ?? 0) > 0 || payload.aud !== entry.aud ? () => {} : () => this.#clear(ctx, settings);
    if (entry.b !== this.#bindValue(ctx)) {
      // Another client IP, scheme or User-Agent than the session was bound to (`session_bind`).
      ctx.log.debug({ cookie: settings.name }, 'openid-connect: session bound to another client; cookie removed');
      clear();
      return null;
    }
    if (this.#cfg.serverSide) {
      if (typeof entry.ref !== 'string') {
        clear();
        return null;
      }
      const record = await this.#kv.get(this.#recordKey(entry.ref));
      const data = record === null ? null : ((await this.#sealer.open('storage', record)) as SessionData | null);
      if (!data || data.id !== entry.ref) {
        clear();
        return null;
      }
      return data;
    }
    if (!entry.d || typeof entry.d.id !== 'string') return null;
    if ((await this.#kv.get(this.#keys(entry.d).ended)) !== null) {
      clear();
      return null;
    }
    return entry.d;
  }

  #writeCookie(ctx: RequestContext, settings: CookieSettings, value: string, maxAge: number | undefined): void {
    const { headers, count } = writeChunked(value, settings, isSecureRequest(ctx), maxAge, this.#now());
    for (const h of headers) ctx.downstreamHeaders.add('set-cookie', h);
    // Chunks left over from a larger earlier value would corrupt the next read: expire them.
    for (const name of existingChunkNames(ctx.request.cookies, settings.name)) {
      const n = name === settings.name ? 1 : Number(name.slice(settings.name.length));
      if (n > count) ctx.downstreamHeaders.add('set-cookie', clearCookie(name, settings, isSecureRequest(ctx)));
    }
  }

  #clear(ctx: RequestContext, settings: CookieSettings, always = false): void {
    const names = existingChunkNames(ctx.request.cookies, settings.name);
    if (always && !names.includes(settings.name)) names.unshift(settings.name);
    for (const name of names) ctx.downstreamHeaders.add('set-cookie', clearCookie(name, settings, isSecureRequest(ctx)));
  }

  async #deleteRecord(s: SessionData): Promise<void> {
    if (this.#cfg.serverSide) await this.#kv.delete(this.#recordKey(s.id));
  }

  /** Store key of a session record: the id, or with `session_hash_storage_key` its SHA-256 (the id itself is only in the cookie). */
  #recordKey(id: string): string {
    return `oidc:session:${this.#cfg.hashStorageKey ? digest(id) : id}`;
  }

  /** `session_bind`: digest of the bound facts of this request, or undefined when nothing is bound. */
  #bindValue(ctx: RequestContext): string | undefined {
    const bind = this.#cfg.bind;
    if (bind.length === 0) return undefined;
    const facts = bind.map((b) => (b === 'ip' ? ctx.request.clientIp : b === 'scheme' ? ctx.request.scheme : (ctx.request.header('user-agent') ?? '')));
    return digest(`${bind.join(',')}\n${facts.join('\n')}`);
  }

  /**
   * `session_store_metadata` (lua-resty-session `store_metadata`): the store keeps, per audience
   * and subject, the sessions that are alive (`{storage key: expiry ms}`), so what is open for a
   * user can be looked up (and ended) server-side. `changes` adds entries, or removes them (0).
   * Read-modify-write: two sessions of one subject saved at the same instant may lose an entry.
   */
  async #updateMetadata(s: SessionData, now: number, changes: Readonly<Record<string, number>>): Promise<void> {
    if (!s.subject) return;
    const key = metadataKey(s.audience, s.subject, this.#cfg.hashSubject);
    const raw = await this.#kv.get(key);
    let entries: Record<string, number> = {};
    if (raw !== null) {
      try {
        entries = JSON.parse(raw) as Record<string, number>;
      } catch {
        entries = {};
      }
    }
    for (const [id, expires] of Object.entries(changes)) {
      const storageKey = this.#cfg.hashStorageKey ? digest(id) : id;
      if (expires > now) entries[storageKey] = Math.max(entries[storageKey] ?? 0, expires);
      else delete entries[storageKey];
    }
    for (const [k, expires] of Object.entries(entries)) if (expires <= now) delete entries[k];
    const last = Math.max(0, ...Object.values(entries));
    if (last <= now) await this.#kv.delete(key);
    else await this.#kv.set(key, JSON.stringify(entries), last - now);
  }
}

/** With server-side storage, the record of a renewed session stays readable this long (lua-resty-session `stale_ttl`). */
const staleTtlMs = 10_000;

/**
 * Store key of the metadata of one subject's sessions in one audience. The subject is
 * URI-encoded (store keys must not contain spaces), or with `session_hash_subject` replaced by
 * base64url of the first 16 bytes of its SHA-256 (as lua-resty-session's `hash_subject`).
 */
export function metadataKey(audience: string, subject: string, hash: boolean): string {
  const sub = hash ? createHash('sha256').update(subject).digest().subarray(0, 16).toString('base64url') : encodeURIComponent(subject);
  return `oidc:meta:${encodeURIComponent(audience)}:${sub}`;
}

/** Marks a cookie-stored session as ended (logout, expiry) so copies of its cookie stop working. */
function endedKey(id: string): string {
  return `oidc:ended:${digest(id)}`;
}

function markerKey(kind: 'sid' | 'sub', issuer: string, value: string): string {
  return `oidc:bcl:${kind}:${digest(`${issuer}\n${value}`)}`;
}
