/**
 * Tokens and authorization codes of Kong's `oauth2` plugin (Kong's `oauth2_tokens` and
 * `oauth2_authorization_codes`), kept in the node's shared key-value store — on SQLite or
 * PostgreSQL that is the database, shared by every worker (and every node on PostgreSQL), so a
 * token issued by one node is accepted by the others at once. They are written per request, so
 * they are not part of the configuration (a token would otherwise rebuild every Snapshot).
 *
 * Shared by the `oauth2` plugin (issues and checks them) and openid-connect's `kong_oauth2`
 * method (checks them). Reads are remembered per process for at most `CACHE_MS`, so a revoked or
 * refreshed-away token stops working everywhere within that time; unknown tokens are never
 * remembered (a token issued elsewhere is seen on its first use).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { KeyValueStore } from '../storage/ports.ts';
import { TailMemo } from '../tail-memo.ts';

/** Kong's `oauth2_tokens` row. */
export interface OAuth2Token {
  id: string;
  created_at: number;
  service: { id: string } | null;
  credential: { id: string };
  token_type: 'bearer';
  expires_in: number;
  access_token: string;
  refresh_token: string | null;
  authenticated_userid: string | null;
  scope: string | null;
  /** Seconds the row lives (Kong's row TTL), null = until deleted. */
  ttl: number | null;
}

/** Kong's `oauth2_authorization_codes` row (lives 300 s). */
export interface OAuth2Code {
  code: string;
  created_at: number;
  service: { id: string } | null;
  credential: { id: string };
  authenticated_userid: string | null;
  scope: string | null;
  challenge: string | null;
  challenge_method: 'S256' | null;
  plugin: { id: string };
}

export const CODE_TTL_SECONDS = 300;
const CACHE_MS = 1000;
const CACHE_MAX = 10_000;

const AT = 'oauth2:token:';
const RT = 'oauth2:refresh:';
const ID = 'oauth2:id:';
const CODE = 'oauth2:code:';

/** Kong's random_string: 32 URL-safe characters of randomness. */
export function randomToken(): string {
  return randomBytes(24).toString('base64url');
}

/** True while the token is usable: Kong's `now − created_at > expires_in` check (0 = never expires). */
export function tokenLive(t: OAuth2Token, nowMs: number): boolean {
  return t.expires_in <= 0 || nowMs / 1000 - t.created_at <= t.expires_in;
}

export class OAuth2TokenStore {
  readonly #kv: KeyValueStore;
  readonly #now: () => number;
  readonly #cache = new TailMemo<{ token: OAuth2Token | null; at: number }>(CACHE_MAX);

  constructor(kv: KeyValueStore, now: () => number) {
    this.#kv = kv;
    this.#now = now;
  }

  /**
   * The token with this access token, from the process cache when read less than a second ago
   * (`peek` answers synchronously where the store can). Undefined: ask `byAccessToken`.
   */
  cached(accessToken: string): OAuth2Token | null | undefined {
    const hit = this.#cache.get(accessToken);
    if (hit !== undefined && this.#now() - hit.at < CACHE_MS) return hit.token;
    return undefined;
  }

  /**
   * The token without waiting when possible: from the process cache, else read synchronously
   * from a store that offers `peek` (memory, SQLite). Undefined: ask `byAccessToken`.
   */
  peek(accessToken: string): OAuth2Token | null | undefined {
    const cached = this.cached(accessToken);
    if (cached !== undefined || this.#kv.peek === undefined) return cached;
    const raw = this.#kv.peek(AT + accessToken);
    if (raw === null) return null;
    const token = JSON.parse(raw) as OAuth2Token;
    this.#cache.set(accessToken, { token, at: this.#now() });
    return token;
  }

  async byAccessToken(accessToken: string): Promise<OAuth2Token | null> {
    const cached = this.cached(accessToken);
    if (cached !== undefined) return cached;
    const raw = await this.#kv.get(AT + accessToken);
    if (raw === null) return null;
    const token = JSON.parse(raw) as OAuth2Token;
    this.#cache.set(accessToken, { token, at: this.#now() });
    return token;
  }

  async byRefreshToken(refreshToken: string): Promise<OAuth2Token | null> {
    const at = await this.#kv.get(RT + refreshToken);
    if (at === null) return null;
    const raw = await this.#kv.get(AT + at);
    return raw === null ? null : (JSON.parse(raw) as OAuth2Token);
  }

  async byId(id: string): Promise<OAuth2Token | null> {
    const at = await this.#kv.get(ID + id);
    return at === null ? null : this.byAccessToken(at);
  }

  async #write(t: OAuth2Token): Promise<void> {
    const ttlMs = t.ttl === null ? undefined : t.ttl * 1000;
    await this.#kv.set(AT + t.access_token, JSON.stringify(t), ttlMs);
    await this.#kv.set(ID + t.id, t.access_token, ttlMs);
    if (t.refresh_token !== null) await this.#kv.set(RT + t.refresh_token, t.access_token, ttlMs);
  }

  /** A new token row. */
  async issue(fields: Omit<OAuth2Token, 'id' | 'created_at' | 'token_type' | 'access_token'>): Promise<OAuth2Token> {
    const t: OAuth2Token = { id: randomUUID(), created_at: Math.floor(this.#now() / 1000), token_type: 'bearer', access_token: randomToken(), ...fields };
    await this.#write(t);
    return t;
  }

  /** `reuse_refresh_token`: the same row (and refresh token) with a new access token and clock. */
  async renew(old: OAuth2Token, expiresIn: number, ttl: number | null): Promise<OAuth2Token> {
    this.#cache.set(old.access_token, { token: null, at: this.#now() });
    await this.#kv.delete(AT + old.access_token);
    const t: OAuth2Token = { ...old, access_token: randomToken(), expires_in: expiresIn, created_at: Math.floor(this.#now() / 1000), ttl };
    await this.#write(t);
    return t;
  }

  async delete(t: OAuth2Token): Promise<void> {
    this.#cache.set(t.access_token, { token: null, at: this.#now() });
    await this.#kv.delete(AT + t.access_token);
    await this.#kv.delete(ID + t.id);
    if (t.refresh_token !== null) await this.#kv.delete(RT + t.refresh_token);
  }

  /** A page of live tokens (Admin API `GET /oauth2_tokens`): after the cursor `after`, in key order. */
  async list(after: string | null, size: number): Promise<{ data: OAuth2Token[]; offset: string | null }> {
    const scan = this.#kv.scan;
    if (scan === undefined) throw new Error('this key-value store cannot list entries');
    const rows = await scan.call(this.#kv, AT, after === null ? null : AT + after, size + 1);
    const page = rows.slice(0, size);
    const data = page.map((r) => JSON.parse(r.value) as OAuth2Token);
    const last = page.at(-1);
    return { data, offset: rows.length > size && last !== undefined ? last.key.slice(AT.length) : null };
  }

  async saveCode(fields: Omit<OAuth2Code, 'code' | 'created_at'>): Promise<OAuth2Code> {
    const c: OAuth2Code = { code: randomToken(), created_at: Math.floor(this.#now() / 1000), ...fields };
    await this.#kv.set(CODE + c.code, JSON.stringify(c), CODE_TTL_SECONDS * 1000);
    return c;
  }

  async code(code: string): Promise<OAuth2Code | null> {
    const raw = await this.#kv.get(CODE + code);
    return raw === null ? null : (JSON.parse(raw) as OAuth2Code);
  }

  /** Uses the code up: true for exactly one caller. */
  async consumeCode(code: string): Promise<boolean> {
    return (await this.#kv.take(CODE + code)) !== null;
  }
}
