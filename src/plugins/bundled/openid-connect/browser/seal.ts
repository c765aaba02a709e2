/**
 * Sealing of session, authorization-flow and refresh-result values: JWE compact serialization
 * with `dir` + `A256GCM` (RFC 7516, RFC 7518 §4.5 and §5.3) — authenticated encryption, so a
 * tampered or truncated value simply fails to open.
 *
 * Keys come from HKDF-SHA256 (RFC 5869) of each secret with a per-purpose `info`, so a value sealed
 * for one purpose (e.g. an authorization cookie) never opens as another (a session cookie).
 * Secret rotation: the first secret seals, every secret opens; the `kid` header says which one.
 */
import { createHash, hkdfSync, randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { CompactEncrypt, compactDecrypt, decodeProtectedHeader } from 'jose';
import type { CryptoKey } from 'jose';
import { TailMemo } from '../caches.ts';

export const sealPurposes = ['session', 'authorization', 'refresh', 'storage'] as const;
export type SealPurpose = (typeof sealPurposes)[number];

interface Key {
  kid: string;
  key: Uint8Array;
  /**
   * The same key imported once into WebCrypto: handing jose the raw bytes made it import the key
   * again on every seal and open, a large share of a session request's cost (bench/RESULTS.md).
   */
  cryptoKey: Promise<CryptoKey> | null;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Like lua-resty-session: deflate payloads above 1 KB when that makes them smaller (tokens repeat claims). */
const compressAbove = 1024;
/** Bound on an inflated payload (only values we sealed ourselves are ever inflated). */
const maxInflated = 1 << 20;

/** Purposes whose opened values are remembered: the same session cookie or record comes back on every request. */
const memoPurposes: ReadonlySet<SealPurpose> = new Set(['session', 'storage']);
/** Bound on remembered opened values per purpose (LRU). */
const memoEntries = 1000;

export class Sealer {
  readonly #keys = new Map<SealPurpose, Key[]>();
  /**
   * Recently opened values, by their exact sealed text (looked up by its tail, the AES-GCM tag,
   * and compared in full). Only a value that was authenticated (AES-GCM) under one of this
   * instance's keys gets here, and the keys never change, so a byte-identical input would open to
   * the same plaintext again: skipping the decrypt, inflate and JSON parse is safe. Timeouts are
   * judged on the opened data by the caller, as before. The values are deep-frozen and shared
   * between requests: callers copy what they change.
   */
  readonly #opened = new Map<SealPurpose, TailMemo<unknown>>();

  /** Loads the secrets on first use (a generated secret kept in a shared store); null once loaded. */
  #load: (() => Promise<readonly string[]>) | null = null;
  #loading: Promise<void> | null = null;

  /**
   * @param secrets index 0 seals, all open. Must not be empty. Or a function that provides them
   *   on first use (seal/open wait for it; `peek` finds nothing before).
   */
  constructor(secrets: readonly string[] | (() => Promise<readonly string[]>)) {
    for (const purpose of memoPurposes) this.#opened.set(purpose, new TailMemo(memoEntries));
    if (typeof secrets === 'function') this.#load = secrets;
    else this.#derive(secrets);
  }

  #derive(secrets: readonly string[]): void {
    if (secrets.length === 0) throw new Error('Sealer needs at least one secret');
    for (const purpose of sealPurposes) {
      this.#keys.set(
        purpose,
        secrets.map((secret) => {
          const key = new Uint8Array(hkdfSync('sha256', secret, 'portcullis-oidc-browser-v1', `seal:${purpose}`, 32));
          // The kid reveals nothing about the key: it is a hash of the derived key, truncated.
          const kid = createHash('sha256').update(key).digest('base64url').slice(0, 10);
          return { kid, key, cryptoKey: null };
        }),
      );
    }
  }

  /** Generate a fresh random secret (single-worker fallback when `session_secret` is unset). */
  static randomSecret(): string {
    return randomBytes(32).toString('base64url');
  }

  /**
   * Starts loading the secrets now (a generated secret in the database), so they are in memory
   * before the first session request, and still there if the database goes away later. A
   * failure is retried on first use.
   */
  warm(): void {
    this.#ready()?.catch(() => {});
  }

  /** Resolves once the keys exist (at once for given secrets); a failed load is retried next time. */
  #ready(): Promise<void> | null {
    const load = this.#load;
    if (load === null) return null;
    return (this.#loading ??= load().then(
      (secrets) => {
        this.#derive(secrets);
        this.#load = null;
      },
      (err: unknown) => {
        this.#loading = null;
        throw err;
      },
    ));
  }

  async seal(purpose: SealPurpose, value: unknown): Promise<string> {
    await this.#ready();
    const [current] = this.#keys.get(purpose)!;
    let plaintext: Uint8Array = encoder.encode(JSON.stringify(value));
    let zipped = false;
    if (plaintext.length > compressAbove) {
      const deflated = deflateRawSync(plaintext);
      if (deflated.length < plaintext.length) {
        plaintext = deflated;
        zipped = true;
      }
    }
    // `pz` (ours) marks a deflated payload; the protected header is authenticated with the payload.
    return new CompactEncrypt(plaintext)
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: current.kid, ...(zipped ? { pz: 1 } : {}) })
      .encrypt(await cryptoKeyOf(current));
  }

  /**
   * The opened value of `sealed` when it was opened before (remembered purposes only), without
   * any crypto; undefined otherwise. Synchronous, for the hot path. Deep-frozen (see `#opened`).
   */
  peek(purpose: SealPurpose, sealed: string): unknown {
    return this.#opened.get(purpose)?.get(sealed);
  }

  /**
   * Returns the opened value, or null when the input is not a valid value sealed by one of our
   * secrets. Values of remembered purposes are deep-frozen and shared (see `#opened`).
   */
  async open(purpose: SealPurpose, sealed: string): Promise<unknown> {
    const hit = this.peek(purpose, sealed);
    if (hit !== undefined) return hit;
    let kid: unknown;
    try {
      kid = decodeProtectedHeader(sealed).kid;
    } catch {
      return null;
    }
    await this.#ready();
    const key = this.#keys.get(purpose)!.find((k) => k.kid === kid);
    if (!key) return null;
    try {
      const { plaintext, protectedHeader } = await compactDecrypt(sealed, await cryptoKeyOf(key), {
        keyManagementAlgorithms: ['dir'],
        contentEncryptionAlgorithms: ['A256GCM'],
      });
      const bytes = protectedHeader.pz === 1 ? inflateRawSync(plaintext, { maxOutputLength: maxInflated }) : plaintext;
      const value = JSON.parse(decoder.decode(bytes)) as unknown;
      const memo = this.#opened.get(purpose);
      if (memo) {
        deepFreeze(value);
        memo.set(sealed, value);
      }
      return value;
    } catch {
      return null;
    }
  }
}

function deepFreeze(value: unknown): void {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const v of Object.values(value)) deepFreeze(v);
}

function cryptoKeyOf(k: Key): Promise<CryptoKey> {
  return (k.cryptoKey ??= globalThis.crypto.subtle.importKey('raw', k.key, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']));
}

/** Short, non-reversible tag of a value (for store keys that must not contain the value itself). */
export function digest(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}
