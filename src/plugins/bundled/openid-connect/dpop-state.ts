/**
 * DPoP (RFC 9449) state that must outlive one request and reach beyond one process: the `jti`
 * replay cache and the key of the server nonces (`dpop_use_nonce`).
 *
 * Where it lives: with a `redis` record configured, in that Redis (every worker of every node
 * that uses it); otherwise, with several workers or a database, in the node's shared key-value
 * store (`PluginDeps.sharedKv`: every worker of the node, and every node on PostgreSQL). A replay
 * is refused by an atomic "set if absent" (`KeyValueStore.add`), so two workers racing with one
 * proof cannot both win. A single DB-less process keeps one bounded in-memory cache of its own
 * (`localEntries`), so a flood of proofs never evicts other plugins' records from the shared
 * store; it is the process's, not a plugin instance's, so a reload that rebuilds the plugin keeps
 * the proofs already used (and the nonce secret).
 *
 * Nonces are stateless: a compact JWS (HS256, jose) over the issue time, keyed by a secret every
 * worker and node derives alike — from `session_secret` when it is set, else from a secret
 * generated once and kept in the same store as the replay cache. A nonce issued by one worker or
 * node is therefore accepted by all the others, and no nonce is stored per client.
 */
import { hash, hkdfSync, randomBytes } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import type { KeyValueStore } from '../../../storage/ports.ts';
import { RedisKv } from './browser/redis.ts';
import { createRedisClient } from '../../../storage/redis.ts';
import { TtlCache } from './caches.ts';
import type { RedisRecord } from './browser/config.ts';

export interface DpopStateOptions {
  /** `dpop_proof_lifetime`, seconds. */
  lifetimeSec: number;
  /** `leeway`, seconds. */
  leewaySec: number;
  /** `session_secret`: the nonce key is derived from it when set (same on every node). */
  sessionSecret: string | null;
  /** The plugin's `redis` record: the replay cache and nonce key go there when set. */
  redis: RedisRecord | null;
  /** The node's shared store (used without `redis`). */
  sharedKv: KeyValueStore;
  /** Names the generated nonce secret (the plugin entity's id: the same on every node). */
  instanceId: string;
  /** Worker processes of the node and where its configuration lives (`PluginDeps`). */
  workers: number;
  database: 'off' | 'sqlite' | 'postgres';
  now(): number;
}

const nonceInfo = 'portcullis openid-connect dpop-nonce';

/**
 * Bound of a single process's own replay cache: a million proofs (some 150 MB at most). Beyond
 * it the oldest are forgotten first; at 3,000 fresh proofs a second that is still the whole
 * default 300 s window.
 */
export const localEntries = 1_000_000;

type LocalStore = Pick<KeyValueStore, 'add' | 'get' | 'close'>;

/** The process's replay cache and nonce secrets, one per clock (the node's; tests inject their own). */
const localStores = new WeakMap<() => number, LocalStore>();

/** A single process's replay cache and nonce secrets (KeyValueStore's `add`/`get`, in memory). */
function localStore(now: () => number): LocalStore {
  let store = localStores.get(now);
  if (store !== undefined) return store;
  const cache = new TtlCache<string>({ maxEntries: localEntries, now });
  const forever = Number.MAX_SAFE_INTEGER / 2;
  store = {
    async add(key, value, ttlMs) {
      if (cache.get(key) !== undefined) return false;
      cache.set(key, value, ttlMs ?? forever);
      return true;
    },
    async get(key) {
      return cache.get(key) ?? null;
    },
    // Outlives every plugin instance: nothing to close.
    async close() {},
  };
  localStores.set(now, store);
  return store;
}

export class DpopState {
  readonly #o: DpopStateOptions;
  readonly #store: LocalStore;
  readonly #ownsStore: boolean;
  #key: Promise<Uint8Array> | null = null;
  /** The nonce this process hands out now, and when it was made (ms). */
  #current: { nonce: string; at: number } | null = null;
  #minting: Promise<string> | null = null;

  constructor(o: DpopStateOptions) {
    this.#o = o;
    if (o.redis) {
      this.#store = new RedisKv(createRedisClient(o.redis), o.redis.prefix);
      this.#ownsStore = true;
    } else if (o.workers <= 1 && o.database === 'off') {
      this.#store = localStore(o.now);
      this.#ownsStore = false;
    } else {
      this.#store = o.sharedKv;
      this.#ownsStore = false;
    }
  }

  /** How long a proof (or a nonce) may be used after it was made, plus leeway: the replay window. */
  get windowMs(): number {
    return (this.#o.lifetimeSec + this.#o.leewaySec) * 1000;
  }

  /**
   * Records the proof `jti` of key `jkt`; true when it was seen before within the window (a
   * replay). Keyed by a hash of both: bounded key length, and two clients' ids never collide.
   */
  async replayed(jkt: string, jti: string): Promise<boolean> {
    const key = `openid-connect:dpop-jti:${hash('sha256', `${jkt}\0${jti}`, 'base64url')}`;
    // One second more than the window: a proof accepted at its last moment is still remembered.
    return !(await this.#store.add(key, '1', this.windowMs + 1000));
  }

  #nonceKey(): Promise<Uint8Array> {
    return (this.#key ??= (async () => {
      let secret = this.#o.sessionSecret;
      if (!secret) {
        const name = `openid-connect:dpop-nonce-secret:${this.#o.instanceId}`;
        await this.#store.add(name, randomBytes(32).toString('base64url'));
        secret = await this.#store.get(name);
        if (secret === null) throw new Error('openid-connect: the DPoP nonce secret could not be stored');
      }
      return new Uint8Array(hkdfSync('sha256', secret, '', nonceInfo, 32));
    })().catch((err: unknown) => {
      // A store that is down now may be back on the next request.
      this.#key = null;
      throw err;
    }));
  }

  /**
   * The nonce to hand out now. Each process makes a new one when its current nonce is older than
   * `rotateMs`, so clients are given fresh nonces well before theirs expire.
   */
  async nonce(): Promise<string> {
    const c = this.#current;
    if (c !== null && this.#o.now() - c.at < this.rotateMs) return c.nonce;
    return (this.#minting ??= (async () => {
      try {
        const key = await this.#nonceKey();
        const at = this.#o.now();
        // `t`: the issue time in milliseconds (`iat` would round to whole seconds).
        const nonce = await new SignJWT({ t: at }).setProtectedHeader({ alg: 'HS256' }).sign(key);
        this.#current = { nonce, at };
        return nonce;
      } finally {
        this.#minting = null;
      }
    })());
  }

  /** How old a nonce may get before a successful response carries a newer one: a fifth of the lifetime, at least 1 s. */
  get rotateMs(): number {
    return Math.max(1000, (this.#o.lifetimeSec * 1000) / 5);
  }

  /** The issue time (ms) of a nonce this plugin made (on any worker or node), else null. */
  async nonceIssuedAt(nonce: string): Promise<number | null> {
    if (nonce.length > 512) return null;
    try {
      const { payload } = await jwtVerify(nonce, await this.#nonceKey(), { algorithms: ['HS256'] });
      return typeof payload.t === 'number' ? payload.t : null;
    } catch (err) {
      if (err instanceof errors.JOSEError) return null;
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.#ownsStore) await this.#store.close();
  }
}
