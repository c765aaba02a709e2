/**
 * Plugin instances of a Snapshot and Kong's scope precedence (most specific config wins):
 * consumer+route+service, consumer+route, consumer+service, route+service, consumer, route,
 * service, global. Chains are precomputed per route; only consumer-scoped lookups happen per
 * request, and only for plugins that have consumer-scoped instances at all.
 */
import type { Consumer, Plugin, Route } from '../config/types.ts';
import type { PluginDefinition, PluginHandlers } from '../plugins/sdk.ts';

export interface Instance {
  readonly entity: Plugin;
  readonly def: PluginDefinition;
  readonly handlers: PluginHandlers;
  /** Stable identity of the entity's content; equal keys can share an instance across Snapshots. */
  readonly key: string;
  readonly http: boolean;
  readonly https: boolean;
}

export interface ChainEntry {
  readonly name: string;
  readonly priority: number;
  /** The instance scoped to exactly this route and its service, if any. */
  readonly routeService: Instance | null;
  /** The winner among route, service and global instances (null: none). */
  readonly base: Instance | null;
  /** Consumer+route+service, consumer+route, consumer+service candidates, most specific first. */
  readonly byConsumer: ReadonlyArray<ReadonlyMap<string, Instance>> | null;
  /** Consumer-only instances (rank below route+service, above route). */
  readonly consumerOnly: ReadonlyMap<string, Instance> | null;
}

export function instanceKey(p: Plugin): string {
  const { created_at: _c, updated_at: _u, ...rest } = p;
  return JSON.stringify(rest);
}

/** Picks the instance that applies to a request with (or without) a consumer. */
export function resolveEntry(entry: ChainEntry, consumer: Consumer | null): Instance | null {
  if (consumer !== null && entry.byConsumer !== null) {
    for (const map of entry.byConsumer) {
      const hit = map.get(consumer.id);
      if (hit !== undefined) return hit;
    }
  }
  if (entry.routeService !== null) return entry.routeService;
  if (consumer !== null && entry.consumerOnly !== null) {
    const hit = entry.consumerOnly.get(consumer.id);
    if (hit !== undefined) return hit;
  }
  return entry.base;
}

interface ScopeIndex {
  global: Instance | null;
  service: Map<string, Instance>;
  route: Map<string, Instance>;
  routeService: Map<string, Instance>;
  consumer: Map<string, Instance>;
  /** consumer id → instance, per route id / service id / route|service. */
  consumerRoute: Map<string, Map<string, Instance>>;
  consumerService: Map<string, Map<string, Instance>>;
  consumerRouteService: Map<string, Map<string, Instance>>;
}

function bucket(map: Map<string, Map<string, Instance>>, key: string): Map<string, Instance> {
  let m = map.get(key);
  if (m === undefined) map.set(key, (m = new Map()));
  return m;
}

function compare(a: { priority: number; name: string }, b: { priority: number; name: string }): number {
  return b.priority - a.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

export interface PluginChains {
  /** Chain for a matched route. */
  forRoute(route: Route): readonly ChainEntry[];
  /** Global instances only (404s, rewrite phase). */
  readonly global: readonly ChainEntry[];
  /** Global instances that have a rewrite handler. */
  readonly rewrite: readonly Instance[];
}

/** The `ordering` of the instance that speaks for an entry (consumer-scoped instances have none: refused). */
function orderingOf(e: ChainEntry): Plugin['ordering'] {
  return (e.routeService ?? e.base)?.entity.ordering ?? null;
}

/**
 * Kong's dynamic plugin ordering (`ordering.before.access` / `ordering.after.access`, plugin
 * names): a topological sort of the priority-sorted chain. Constraints naming plugins not in the
 * chain are moot; in a cycle, the constraint that would close it is dropped.
 */
export function applyOrdering(chain: ChainEntry[]): ChainEntry[] {
  if (!chain.some((e) => orderingOf(e) !== null)) return chain;
  const index = new Map(chain.map((e, i) => [e.name, i]));
  const after: Set<number>[] = chain.map(() => new Set());
  for (const [i, e] of chain.entries()) {
    const o = orderingOf(e);
    for (const n of o?.before?.access ?? []) {
      const j = index.get(n);
      if (j !== undefined && j !== i) after[j].add(i);
    }
    for (const n of o?.after?.access ?? []) {
      const j = index.get(n);
      if (j !== undefined && j !== i) after[i].add(j);
    }
  }
  // Depth-first in priority order, placing what must run before an entry ahead of it: an entry
  // named in `before` moves just ahead of the plugin it names (Kong's topological sort).
  const out: ChainEntry[] = [];
  const state: (0 | 1 | 2)[] = chain.map(() => 0);
  const visit = (i: number): void => {
    if (state[i] !== 0) return; // placed, or on the current path (a cycle: priority order wins)
    state[i] = 1;
    for (const j of [...after[i]].sort((a, b) => a - b)) visit(j);
    state[i] = 2;
    out.push(chain[i]);
  };
  for (let i = 0; i < chain.length; i++) visit(i);
  return out;
}

export function buildChains(instances: readonly Instance[], routes: readonly Route[]): PluginChains {
  const byName = new Map<string, ScopeIndex>();
  for (const inst of instances) {
    const p = inst.entity;
    let idx = byName.get(p.name);
    if (idx === undefined) {
      idx = {
        global: null, service: new Map(), route: new Map(), routeService: new Map(), consumer: new Map(),
        consumerRoute: new Map(), consumerService: new Map(), consumerRouteService: new Map(),
      };
      byName.set(p.name, idx);
    }
    const r = p.route?.id, s = p.service?.id, c = p.consumer?.id;
    if (c !== undefined) {
      if (r !== undefined && s !== undefined) bucket(idx.consumerRouteService, `${r}|${s}`).set(c, inst);
      else if (r !== undefined) bucket(idx.consumerRoute, r).set(c, inst);
      else if (s !== undefined) bucket(idx.consumerService, s).set(c, inst);
      else idx.consumer.set(c, inst);
    } else if (r !== undefined && s !== undefined) idx.routeService.set(`${r}|${s}`, inst);
    else if (r !== undefined) idx.route.set(r, inst);
    else if (s !== undefined) idx.service.set(s, inst);
    else idx.global = inst;
  }

  const names = [...byName.keys()];
  const globalChain: ChainEntry[] = [];
  const rewrite: Instance[] = [];
  for (const name of names) {
    const idx = byName.get(name)!;
    if (idx.global !== null) {
      globalChain.push({ name, priority: idx.global.def.priority, routeService: null, base: idx.global, byConsumer: null, consumerOnly: null });
      if (idx.global.handlers.rewrite) rewrite.push(idx.global);
    }
  }
  globalChain.sort(compare);
  const orderedGlobal = applyOrdering(globalChain);
  rewrite.sort((a, b) => compare({ priority: a.def.priority, name: a.entity.name }, { priority: b.def.priority, name: b.entity.name }));

  const perRoute = new Map<string, ChainEntry[]>();
  for (const route of routes) {
    const r = route.id, s = route.service?.id;
    const chain: ChainEntry[] = [];
    for (const name of names) {
      const idx = byName.get(name)!;
      const routeService = (s !== undefined ? idx.routeService.get(`${r}|${s}`) : undefined) ?? null;
      const base = idx.route.get(r) ?? (s !== undefined ? idx.service.get(s) : undefined) ?? idx.global;
      const maps: Map<string, Instance>[] = [];
      const crs = s !== undefined ? idx.consumerRouteService.get(`${r}|${s}`) : undefined;
      if (crs) maps.push(crs);
      const cr = idx.consumerRoute.get(r);
      if (cr) maps.push(cr);
      const cs = s !== undefined ? idx.consumerService.get(s) : undefined;
      if (cs) maps.push(cs);
      const consumerOnly = idx.consumer.size > 0 ? idx.consumer : null;
      const any = routeService ?? base ?? (maps.length > 0 ? [...maps[0].values()][0] : consumerOnly ? [...consumerOnly.values()][0] : null);
      if (any === null) continue;
      chain.push({ name, priority: any.def.priority, routeService, base, byConsumer: maps.length > 0 ? maps : null, consumerOnly });
    }
    chain.sort(compare);
    perRoute.set(r, applyOrdering(chain));
  }
  const empty: ChainEntry[] = [];
  return {
    forRoute: (route) => perRoute.get(route.id) ?? empty,
    global: orderedGlobal,
    rewrite,
  };
}
