/**
 * The health state of every balancer address of a node: upstream name → `<target>|<ip:port>` →
 * healthy. Only addresses found unhealthy (or set by hand) have an entry; everything else is
 * healthy. One writer per node (the health checker, in the single process or the cluster
 * primary); workers hold a copy fed over IPC. The state outlives balancer rebuilds, so a reload
 * keeps the health of unchanged targets. Read by the balancers and, through `list()`, by the
 * Admin API and metrics.
 */
export type HealthListener = (upstream: string, key: string, healthy: boolean) => void;

/** Wire form: [upstream, key, healthy] triples. */
export type HealthEntries = [string, string, boolean][];

export class HealthStates {
  readonly #states = new Map<string, Map<string, boolean>>();
  readonly #listeners = new Set<HealthListener>();

  isHealthy(upstream: string, key: string): boolean {
    return this.#states.get(upstream)?.get(key) ?? true;
  }

  /** Whether `key` has an explicit state (set by a check or by hand). */
  known(upstream: string, key: string): boolean {
    return this.#states.get(upstream)?.has(key) ?? false;
  }

  set(upstream: string, key: string, healthy: boolean): void {
    let m = this.#states.get(upstream);
    if (m === undefined) this.#states.set(upstream, (m = new Map()));
    const before = m.get(key);
    m.set(key, healthy);
    if (before === healthy || (before === undefined && healthy)) return;
    for (const l of this.#listeners) l(upstream, key, healthy);
  }

  /** Forgets an upstream's states (the upstream was deleted). */
  drop(upstream: string): void {
    const m = this.#states.get(upstream);
    if (m === undefined) return;
    this.#states.delete(upstream);
    for (const [key, healthy] of m) if (!healthy) for (const l of this.#listeners) l(upstream, key, true);
  }

  entries(): HealthEntries {
    const out: HealthEntries = [];
    for (const [u, m] of this.#states) for (const [k, h] of m) out.push([u, k, h]);
    return out;
  }

  /** Replaces everything with `entries` (a worker's first copy from the primary). */
  load(entries: HealthEntries): void {
    const seen = new Set<string>();
    for (const [u, k, h] of entries) {
      seen.add(`${u}\n${k}`);
      this.set(u, k, h);
    }
    for (const [u, m] of this.#states) for (const k of [...m.keys()]) if (!seen.has(`${u}\n${k}`)) this.set(u, k, true);
  }

  subscribe(l: HealthListener): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }
}
