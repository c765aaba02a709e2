/**
 * One balancer per upstream (Kong's ring-balancer): the addresses its targets resolve to, the
 * algorithm built over them, availability from the node's health states, and the balancer's own
 * health (`threshold`). `Balancers` keeps them across config changes: an upstream whose
 * definition and targets did not change keeps its balancer (and with it its round-robin
 * position, in-flight counts and latency averages); health states live in `HealthStates`, so they
 * survive any rebuild.
 */
import { isIP } from 'node:net';
import { parseTarget, type Target, type Upstream } from '../config/upstreams.ts';
import type { Logger } from '../plugins/sdk.ts';
import { addressKey, type Address } from './address.ts';
import { ConsistentHashing, LeastConnections, Latency, RoundRobin, type Algorithm } from './algorithms.ts';
import type { NameResolver, Resolution } from './dns.ts';
import type { HealthStates } from './health-states.ts';
import { hashReady } from './hash.ts';

export interface TargetState {
  readonly target: Target;
  readonly host: string;
  readonly port: number;
  /** The host is a name to resolve (else an IP literal). */
  readonly dns: boolean;
  resolution: Resolution;
}

export class UpstreamBalancer {
  readonly upstream: Upstream;
  readonly targets: readonly TargetState[];
  addresses: Address[] = [];
  #algo: Algorithm = new RoundRobin([]);
  readonly #health: HealthStates;
  readonly #resolver: NameResolver;
  readonly #listeners = new Map<TargetState, (r: Resolution) => void>();
  readonly #random: () => number;
  #totalWeight = 0;
  #availableWeight = 0;
  #closed = false;

  constructor(upstream: Upstream, targets: readonly Target[], health: HealthStates, resolver: NameResolver, random: () => number = Math.random) {
    this.upstream = upstream;
    this.#health = health;
    this.#resolver = resolver;
    this.#random = random;
    this.targets = targets.map((t) => {
      const p = parseTarget(t.target)!;
      return { target: t, host: p.host, port: p.port, dns: !p.ip, resolution: { addresses: p.ip ? [{ ip: p.host, port: null, weight: null }] : [], error: null } };
    });
  }

  /** Resolves the named targets (first answers awaited), then builds the algorithm. */
  async start(): Promise<void> {
    await Promise.all(this.targets.filter((t) => t.dns).map(async (t) => {
      const listener = (r: Resolution): void => {
        t.resolution = r;
        if (!this.#closed) this.#rebuild();
      };
      this.#listeners.set(t, listener);
      t.resolution = await this.#resolver.watch(t.host, listener);
    }));
    this.#rebuild();
  }

  close(): void {
    this.#closed = true;
    for (const [t, listener] of this.#listeners) this.#resolver.unwatch(t.host, listener);
  }

  #rebuild(): void {
    const previous = new Map(this.addresses.map((a) => [a.healthKey, a]));
    const out: Address[] = [];
    for (const t of this.targets) {
      if (t.target.weight === 0) continue;
      for (const r of t.resolution.addresses) {
        const port = r.port ?? t.port;
        const key = addressKey(r.ip, port);
        const healthKey = `${t.target.target}|${key}`;
        const old = previous.get(healthKey);
        const weight = r.weight ?? t.target.weight;
        const healthy = this.#health.isHealthy(this.upstream.name, healthKey);
        out.push({
          // use_srv_name: Host and SNI from the SRV record's target name instead of the target's.
          key, healthKey, ip: r.ip, port, weight, target: t.target.target, hostname: this.upstream.use_srv_name && r.srvName !== undefined ? r.srvName : t.host,
          healthy, available: healthy && weight > 0, inflight: old?.inflight ?? 0, ewma: old?.ewma ?? 0, ewmaAt: old?.ewmaAt ?? 0,
        });
      }
    }
    this.addresses = out;
    const u = this.upstream;
    this.#algo = u.algorithm === 'consistent-hashing' ? new ConsistentHashing(out, u.slots)
      : u.algorithm === 'least-connections' ? new LeastConnections(out)
        : u.algorithm === 'latency' ? new Latency(out)
          : new RoundRobin(out, this.#random);
    this.#weigh();
  }

  #weigh(): void {
    let total = 0, available = 0;
    for (const a of this.addresses) {
      total += a.weight;
      if (a.available) available += a.weight;
    }
    this.#totalWeight = total;
    this.#availableWeight = available;
  }

  /** A health change of one address (from HealthStates). */
  healthChanged(key: string, healthy: boolean): void {
    let hit = false;
    for (const a of this.addresses) {
      if (a.healthKey !== key) continue;
      a.healthy = healthy;
      a.available = healthy && a.weight > 0;
      hit = true;
    }
    if (hit) this.#weigh();
  }

  /** Kong: healthy iff some weight is available and available/total × 100 > threshold. */
  get healthy(): boolean {
    return this.#totalWeight > 0 && this.#availableWeight > 0 && (this.#availableWeight * 100) / this.#totalWeight > this.upstream.healthchecks.threshold;
  }

  get weights(): { total: number; available: number; unavailable: number } {
    return { total: this.#totalWeight, available: this.#availableWeight, unavailable: this.#totalWeight - this.#availableWeight };
  }

  /** The next peer, skipping `avoid` (addresses that failed this request); null: none usable. */
  pick(hashKey: string, avoid: readonly Address[] | null): Address | null {
    if (!this.healthy) return null;
    return this.#algo.pick(hashKey, avoid);
  }

  /** Response-time feedback (latency algorithm). */
  observe(a: Address, ms: number, now: number): void {
    this.#algo.observe?.(a, ms, now);
  }
}

/** What decides whether a balancer can be kept: everything but timestamps. */
function signature(u: Upstream, targets: readonly Target[]): string {
  const { created_at: _c, updated_at: _u, ...rest } = u;
  return JSON.stringify([rest, targets.map((t) => [t.id, t.target, t.weight])]);
}

export interface BalancersOptions {
  health: HealthStates;
  resolver: NameResolver;
  log: Logger;
  random?: () => number;
}

/** The balancers of a process, by upstream name, kept up to date with the config. */
export class Balancers {
  readonly #o: BalancersOptions;
  #byName = new Map<string, { sig: string; balancer: UpstreamBalancer }>();
  readonly #unsubscribe: () => void;

  constructor(o: BalancersOptions) {
    this.#o = o;
    this.#unsubscribe = o.health.subscribe((upstream, key, healthy) => this.#byName.get(upstream)?.balancer.healthChanged(key, healthy));
  }

  get health(): HealthStates {
    return this.#o.health;
  }

  /** Builds the balancers of `data` (new names resolved first); unchanged ones are kept. */
  async apply(upstreams: readonly Upstream[], targets: readonly Target[]): Promise<void> {
    await hashReady;
    const byUpstream = new Map<string, Target[]>();
    for (const t of targets) {
      let list = byUpstream.get(t.upstream.id);
      if (list === undefined) byUpstream.set(t.upstream.id, (list = []));
      list.push(t);
    }
    const next = new Map<string, { sig: string; balancer: UpstreamBalancer }>();
    const created: UpstreamBalancer[] = [];
    for (const u of upstreams) {
      const list = byUpstream.get(u.id) ?? [];
      const sig = signature(u, list);
      const old = this.#byName.get(u.name);
      if (old !== undefined && old.sig === sig) {
        next.set(u.name, old);
        continue;
      }
      const b = new UpstreamBalancer(u, list, this.#o.health, this.#o.resolver, this.#o.random);
      created.push(b);
      next.set(u.name, { sig, balancer: b });
    }
    await Promise.all(created.map((b) => b.start()));
    const previous = this.#byName;
    this.#byName = next;
    for (const [name, entry] of previous) {
      if (next.get(name)?.balancer === entry.balancer) continue;
      entry.balancer.close();
      if (!next.has(name)) this.#o.health.drop(name);
    }
  }

  get(name: string): UpstreamBalancer | undefined {
    return this.#byName.get(name)?.balancer;
  }

  /** The balancer a service's host names (Kong: an IP host never names an upstream). */
  forHost(host: string): UpstreamBalancer | undefined {
    if (isIP(host) !== 0) return undefined;
    return (this.#byName.get(host) ?? this.#byName.get(host.toLowerCase()))?.balancer;
  }

  all(): UpstreamBalancer[] {
    return [...this.#byName.values()].map((e) => e.balancer);
  }

  close(): void {
    this.#unsubscribe();
    for (const e of this.#byName.values()) e.balancer.close();
    this.#byName.clear();
  }
}
