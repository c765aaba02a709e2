/**
 * Refresh of a session's access token (RFC 6749 §6) as a single flight: concurrent requests of one
 * session share one refresh grant — in a process through a map of promises, across processes and
 * nodes through a lock in the shared store plus a short-lived sealed copy of the result that the
 * losers of the lock pick up. Without this, rotating refresh tokens (RFC 9700 §4.14.2) would make
 * every concurrent request but one fail with `invalid_grant` and end the session.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { KeyValueStore } from '../../../../storage/ports.ts';
import { digest, type Sealer } from './seal.ts';
import type { SessionTokens } from './session.ts';
import type { ReplayedHeader } from './authcode.ts';

export type RefreshOutcome =
  /** `replay`: token endpoint response headers for the client (`token_headers_replay`). */
  | { kind: 'refreshed'; tokens: SessionTokens; idTokenClaims: Record<string, unknown> | null; replay?: ReplayedHeader[] }
  /** The IdP rejected the refresh token (`invalid_grant`): the session is over. */
  | { kind: 'rejected' };

const lockTtlMs = 15_000;
const resultTtlMs = 60_000;
const pollMs = 50;

export class RefreshCoordinator {
  readonly #inflight = new Map<string, Promise<RefreshOutcome>>();
  readonly #kv: KeyValueStore;
  readonly #sealer: Sealer;
  readonly #waitMs: number;

  constructor(kv: KeyValueStore, sealer: Sealer, waitMs = 10_000) {
    this.#kv = kv;
    this.#sealer = sealer;
    this.#waitMs = waitMs;
  }

  /**
   * Run `grant` once for this refresh token, however many callers ask at the same time, here or
   * on another node sharing the store. Errors other than a rejection propagate to every caller.
   */
  refresh(refreshToken: string, grant: () => Promise<RefreshOutcome>): Promise<RefreshOutcome> {
    const key = digest(refreshToken);
    let p = this.#inflight.get(key);
    if (!p) {
      p = this.#run(key, grant).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    }
    return p;
  }

  async #run(key: string, grant: () => Promise<RefreshOutcome>): Promise<RefreshOutcome> {
    const resultKey = `oidc:refresh:result:${key}`;
    const lockKey = `oidc:refresh:lock:${key}`;
    const deadline = Date.now() + this.#waitMs;
    for (;;) {
      const done = await this.#readResult(resultKey);
      if (done) return done;
      if (await this.#kv.add(lockKey, '1', lockTtlMs)) {
        try {
          // The holder before us may have finished between our read and our lock: check again, or
          // we would spend the (rotated) refresh token a second time and get invalid_grant.
          const late = await this.#readResult(resultKey);
          if (late) return late;
          const outcome = await grant();
          await this.#kv.set(resultKey, await this.#sealer.seal('refresh', outcome), resultTtlMs);
          return outcome;
        } finally {
          await this.#kv.delete(lockKey);
        }
      }
      // Someone else holds the lock: wait for their result (or for the lock to go away).
      if (Date.now() > deadline) throw new Error('openid-connect: timed out waiting for a concurrent token refresh');
      await sleep(pollMs);
    }
  }

  async #readResult(resultKey: string): Promise<RefreshOutcome | null> {
    const sealed = await this.#kv.get(resultKey);
    if (sealed === null) return null;
    return (await this.#sealer.open('refresh', sealed)) as RefreshOutcome | null;
  }
}
