/**
 * A circuit breaker per IdP endpoint (scheme, host, port and path of the URL), so that an IdP
 * that hangs or fails costs each request at most one timeout, and then nothing for a while:
 *
 * - closed: calls go through; FAILURES_TO_OPEN consecutive failures (a network error, a
 *   timeout, a 5xx answer) open the circuit;
 * - open: for OPEN_MS every call fails at once (the caller answers with its documented 5xx);
 * - half-open: after OPEN_MS one call is let through as a probe while the others still fail
 *   fast; its success closes the circuit, its failure opens it again for OPEN_MS.
 *
 * A call the caller itself aborted (the client went away) says nothing about the IdP and is not
 * counted. Any answer below 500, including an IdP's 4xx verdict, is a success.
 */

/** Consecutive failures that open an endpoint's circuit. */
export const FAILURES_TO_OPEN = 3;
/** How long an open circuit fails calls at once before letting a probe through (Kong's back-off: 5 s). */
export const OPEN_MS = 5_000;

export type CallOutcome = 'success' | 'failure' | 'aborted';

interface Circuit {
  failures: number;
  openUntil: number;
  probing: boolean;
}

export class IdpBreaker {
  readonly #now: () => number;
  readonly #circuits = new Map<string, Circuit>();

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The circuit key of a URL: origin and path, without query or fragment. */
  static endpointOf(url: string): string {
    const q = url.search(/[?#]/);
    return q === -1 ? url : url.slice(0, q);
  }

  /**
   * May a call to `endpoint` start now? False while the circuit is open or a probe is out.
   * A true answer must be followed by exactly one {@link settle} for the same endpoint.
   */
  admit(endpoint: string): boolean {
    const c = this.#circuits.get(endpoint);
    if (c === undefined || c.failures < FAILURES_TO_OPEN) return true;
    if (this.#now() < c.openUntil || c.probing) return false;
    c.probing = true;
    return true;
  }

  /** Record how an admitted call ended. */
  settle(endpoint: string, outcome: CallOutcome): void {
    const c = this.#circuits.get(endpoint);
    if (outcome === 'success') {
      if (c !== undefined) this.#circuits.delete(endpoint);
      return;
    }
    if (outcome === 'aborted') {
      if (c !== undefined) c.probing = false;
      return;
    }
    if (c === undefined) {
      this.#circuits.set(endpoint, { failures: 1, openUntil: 0, probing: false });
      return;
    }
    c.failures++;
    c.probing = false;
    if (c.failures >= FAILURES_TO_OPEN) c.openUntil = this.#now() + OPEN_MS;
  }

  /** Is the circuit of `endpoint` open right now (for logs and tests)? */
  isOpen(endpoint: string): boolean {
    const c = this.#circuits.get(endpoint);
    return c !== undefined && c.failures >= FAILURES_TO_OPEN && (this.#now() < c.openUntil || c.probing);
  }
}
