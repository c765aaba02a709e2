/**
 * Plugin instances of a Snapshot and Kong's scope precedence (most specific config wins):
 * consumer+route+service, consumer-group+route+service, consumer+route, consumer+service,
 * consumer-group+route, consumer-group+service, route+service, consumer, consumer-group, route,
 * service, global. When a consumer is in several groups that configure the same plugin, the
 * group whose name sorts first wins (Kong's documented rule). Chains are precomputed per route;
 * only consumer- and group-scoped lookups happen per request, and only for plugins that have
 * such instances at all.
 */
import type { Consumer, ForeignKey, Plugin, Route } from '../config/types.ts';
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
  /**
   * Candidates that rank above route+service, most specific first: consumer+route+service,
   * group+route+service, consumer+route, consumer+service, group+route, group+service. Each map
   * is keyed by consumer id or consumer-group id (`group` says which).
   */
  readonly byConsumer: ReadonlyArray<ScopedMap> | null;
  /** Consumer-only, then consumer-group-only instances (rank below route+service, above route). */
  readonly consumerOnly: ReadonlyArray<ScopedMap> | null;
}

/** Instances of one scope level, by consumer id (`group` false) or consumer-group id. */
export interface ScopedMap {
  readonly group: boolean;
  readonly map: ReadonlyMap<string, Instance>;
}

/** A plugin entity's consumer-group scope (Kong's `consumer_group` foreign key). */
export function consumerGroupOf(p: Plugin): string | undefined {
  return (p as Plugin & { consumer_group?: ForeignKey | null }).consumer_group?.id;
}

export function instanceKey(p: Plugin): string {
  const { created_at: _c, updated_at: _u, ...rest } = p;
  return JSON.stringify(rest);
}

const noGroups: readonly { readonly id: string }[] = [];

/** Where the request's consumer groups come from (the request Context). */
export interface GroupSource {
  readonly consumerGroups: readonly { readonly id: string }[];
}

function lookup(levels: ReadonlyArray<ScopedMap>, consumerId: string | null, groups: GroupSource | undefined): Instance | undefined {
  for (const level of levels) {
    if (!level.group) {
      if (consumerId === null) continue;
      const hit = level.map.get(consumerId);
      if (hit !== undefined) return hit;
      continue;
    }
    // Groups come sorted by name: the first group with an instance wins.
    for (const g of groups?.consumerGroups ?? noGroups) {
      const hit = level.map.get(g.id);
      if (hit !== undefined) return hit;
    }
  }
  return undefined;
}

/**
 * Picks the instance that applies to a request with (or without) a consumer. `groups` are the
 * consumer groups of the request (sorted by name), needed only when a plugin has group-scoped
 * instances; `groups` supplies them lazily.
 */
export function resolveEntry(entry: ChainEntry, consumer: Consumer | null, groups?: GroupSource): Instance | null {
  // Consumer groups may come without a consumer (openid-connect `consumer_groups_claim`).
  const who = consumer !== null || groups !== undefined;
  if (who && entry.byConsumer !== null) {
    const hit = lookup(entry.byConsumer, consumer?.id ?? null, groups);
    if (hit !== undefined) return hit;
  }
  if (entry.routeService !== null) return entry.routeService;
  if (who && entry.consumerOnly !== null) {
    const hit = lookup(entry.consumerOnly, consumer?.id ?? null, groups);
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
  /** The same for consumer-group ids. */
  group: Map<string, Instance>;
  groupRoute: Map<string, Map<string, Instance>>;
  groupService: Map<string, Map<string, Instance>>;
  groupRouteService: Map<string, Map<string, Instance>>;
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
        group: new Map(), groupRoute: new Map(), groupService: new Map(), groupRouteService: new Map(),
      };
      byName.set(p.name, idx);
    }
    const r = p.route?.id, s = p.service?.id, c = p.consumer?.id, g = consumerGroupOf(p);
    if (g !== undefined) {
      if (r !== undefined && s !== undefined) bucket(idx.groupRouteService, `${r}|${s}`).set(g, inst);
      else if (r !== undefined) bucket(idx.groupRoute, r).set(g, inst);
      else if (s !== undefined) bucket(idx.groupService, s).set(g, inst);
      else idx.group.set(g, inst);
    } else if (c !== undefined) {
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
      const rs = `${r}|${s}`;
      const maps: ScopedMap[] = [];
      const add = (list: ScopedMap[], group: boolean, map: Map<string, Instance> | undefined): void => {
        if (map !== undefined && map.size > 0) list.push({ group, map });
      };
      add(maps, false, s !== undefined ? idx.consumerRouteService.get(rs) : undefined);
      add(maps, true, s !== undefined ? idx.groupRouteService.get(rs) : undefined);
      add(maps, false, idx.consumerRoute.get(r));
      add(maps, false, s !== undefined ? idx.consumerService.get(s) : undefined);
      add(maps, true, idx.groupRoute.get(r));
      add(maps, true, s !== undefined ? idx.groupService.get(s) : undefined);
      const only: ScopedMap[] = [];
      add(only, false, idx.consumer);
      add(only, true, idx.group);
      const any = routeService ?? base ?? (maps.length > 0 ? [...maps[0].map.values()][0] : only.length > 0 ? [...only[0].map.values()][0] : null);
      if (any === null) continue;
      chain.push({ name, priority: any.def.priority, routeService, base, byConsumer: maps.length > 0 ? maps : null, consumerOnly: only.length > 0 ? only : null });
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
