/**
 * The four balancing algorithms of Kong upstreams, each built once per address list (a target
 * or DNS change rebuilds it; a health change only flips `Address.available`).
 *
 * - round-robin: a wheel holding each address weight/gcd times, shuffled once per build;
 * - consistent-hashing: a ring of `slots` positions; each address owns points in proportion to
 *   its weight, placed by xxHash32 of the address and point index; a key goes to the first available point at or
 *   after its own hash (so adding a target moves only the keys landing on its new points);
 * - least-connections: lowest (in flight + 1) / weight;
 * - latency: lowest EWMA of response time / weight, unmeasured addresses seeded with the average.
 *
 * `pick(key, avoid)` never returns an address in `avoid` (addresses that already failed this
 * request) and returns null when no available address is left.
 */
import type { Address } from './address.ts';
import { h32 } from './hash.ts';

export interface Algorithm {
  pick(hashKey: string, avoid: readonly Address[] | null): Address | null;
  /** Latency feedback (ms) for one finished exchange. */
  observe?(a: Address, ms: number, now: number): void;
}

function usable(a: Address, avoid: readonly Address[] | null): boolean {
  return a.available && (avoid === null || !avoid.includes(a));
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

export class RoundRobin implements Algorithm {
  readonly #wheel: Address[];
  #next: number;

  constructor(addresses: readonly Address[], random: () => number = Math.random) {
    let g = 0;
    for (const a of addresses) if (a.weight > 0) g = gcd(a.weight, g);
    const wheel: Address[] = [];
    for (const a of addresses) for (let i = 0; a.weight > 0 && i < a.weight / g; i++) wheel.push(a);
    // Fisher–Yates: spread each address's slots over the wheel (order differs per process).
    for (let i = wheel.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [wheel[i], wheel[j]] = [wheel[j], wheel[i]];
    }
    this.#wheel = wheel;
    this.#next = wheel.length === 0 ? 0 : Math.floor(random() * wheel.length);
  }

  pick(_key: string, avoid: readonly Address[] | null): Address | null {
    const wheel = this.#wheel;
    const n = wheel.length;
    for (let i = 0; i < n; i++) {
      const a = wheel[this.#next];
      this.#next = this.#next + 1 === n ? 0 : this.#next + 1;
      if (usable(a, avoid)) return a;
    }
    return null;
  }
}

export class ConsistentHashing implements Algorithm {
  /** Sorted point hashes and the address owning each point. */
  readonly #points: Uint32Array;
  readonly #owners: Address[];
  readonly #slots: number;

  constructor(addresses: readonly Address[], slots: number) {
    this.#slots = slots;
    const live = addresses.filter((a) => a.weight > 0);
    // Deterministic order: by target, then ip:port (the same ring in every process and node for IP targets).
    live.sort((x, y) => (x.target < y.target ? -1 : x.target > y.target ? 1 : x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
    let total = 0;
    for (const a of live) total += a.weight;
    // Kong's share: weight/total × address count × 160 points (160 each when weights are equal,
    // so adding an address takes points from nobody), fewer when `slots` cannot hold them.
    const perAddress = Math.max(1, Math.min(160, Math.floor(slots / Math.max(1, live.length))));
    const entries: { h: number; a: Address }[] = [];
    const taken = new Set<number>();
    for (const a of live) {
      const count = Math.max(1, Math.floor((a.weight / total) * live.length * perAddress));
      for (let i = 0, idx = 0; i < count && idx < count * 64; idx++) {
        const h = h32(`${a.key} ${idx}`) % slots;
        if (taken.has(h)) continue; // collision: next index
        taken.add(h);
        entries.push({ h, a });
        i++;
      }
    }
    entries.sort((x, y) => x.h - y.h);
    this.#points = Uint32Array.from(entries, (e) => e.h);
    this.#owners = entries.map((e) => e.a);
  }

  pick(hashKey: string, avoid: readonly Address[] | null): Address | null {
    const points = this.#points;
    const n = points.length;
    if (n === 0) return null;
    const h = h32(hashKey) % this.#slots;
    let lo = 0, hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid] < h) lo = mid + 1;
      else hi = mid;
    }
    const owners = this.#owners;
    for (let i = 0; i < n; i++) {
      const a = owners[(lo + i) % n];
      if (usable(a, avoid)) return a;
    }
    return null;
  }
}

/**
 * Picks the usable address with the lowest score (weighted by the address's weight). The scan
 * starts one address further on every pick, so ties go round-robin instead of always to the
 * first address.
 */
abstract class LowestScore implements Algorithm {
  protected readonly addresses: readonly Address[];
  #start = 0;

  constructor(addresses: readonly Address[]) {
    this.addresses = addresses.filter((a) => a.weight > 0);
  }

  /** Called once per pick, before any `score`. */
  protected prepare(): void {}

  protected abstract score(a: Address): number;

  pick(_key: string, avoid: readonly Address[] | null): Address | null {
    const list = this.addresses;
    const n = list.length;
    this.prepare();
    let best: Address | null = null;
    let bestScore = Infinity;
    const start = this.#start;
    this.#start = n === 0 ? 0 : (start + 1) % n;
    for (let i = 0; i < n; i++) {
      const a = list[(start + i) % n];
      if (!usable(a, avoid)) continue;
      const score = this.score(a) / a.weight;
      if (score < bestScore) {
        best = a;
        bestScore = score;
      }
    }
    return best;
  }
}

/** Fewest requests in flight (weighted). */
export class LeastConnections extends LowestScore {
  protected score(a: Address): number {
    return a.inflight + 1;
  }
}

/** EWMA decay time (ms), as Kong's latency balancer (10 s). */
const decayMs = 10_000;

/** Lowest response-time EWMA (weighted); addresses not measured yet count at the average. */
export class Latency extends LowestScore {
  #seed = 0;

  protected override prepare(): void {
    let sum = 0, measured = 0;
    for (const a of this.addresses) if (a.ewma > 0) { sum += a.ewma; measured++; }
    this.#seed = measured === 0 ? 0 : sum / measured;
  }

  protected score(a: Address): number {
    return a.ewma > 0 ? a.ewma : this.#seed;
  }

  observe(a: Address, ms: number, now: number): void {
    if (a.ewma === 0) {
      a.ewma = ms;
    } else if (ms > a.ewma) {
      a.ewma = ms; // peak EWMA: a slow answer counts at once
    } else {
      const w = Math.exp(-Math.max(0, now - a.ewmaAt) / decayMs);
      a.ewma = a.ewma * w + ms * (1 - w);
    }
    a.ewmaAt = now;
  }
}
