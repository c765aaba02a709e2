/**
 * A Snapshot: everything the hot path reads, built ahead of time from one ConfigData and then
 * frozen. A config change builds a new Snapshot and swaps one reference; requests in flight
 * finish on the Snapshot they started with. Plugin instances and upstream pools whose
 * definitions did not change are carried over so caches and connections stay warm.
 */
import type { CaCertificate, Certificate, Consumer, ConfigData, ConsumerGroup, Plugin, Route, Service } from '../config/types.ts';
import { compileRouter, type EscapedSlashes, type Router } from '../router/index.ts';
import type { PluginRegistry } from '../plugins/registry.ts';
import type { EntityLookup, Logger, PluginDeps } from '../plugins/sdk.ts';
import type { ProcessMetrics } from '../observability/metrics.ts';
import type { TracingSetting } from '../observability/trace-scope.ts';
import { checkHandlers } from '../plugins/sdk.ts';
import type { KeyValueStore } from '../storage/ports.ts';
import type { ProxyPools, UpstreamTarget } from '../proxy/pools.ts';
import { certificatesById, upstreamTlsResolver } from '../tls/index.ts';
import { BalancedService } from '../proxy/balanced.ts';
import type { Balancing } from '../balancer/balancing.ts';
import { buildChains, instanceKey, type Instance, type PluginChains } from './plugins.ts';
import { StreamRouter } from '../stream/router.ts';

export interface Snapshot {
  readonly version: number;
  readonly router: Router;
  /** Routes of the stream listeners (tcp, tls, tls_passthrough). */
  readonly stream: StreamRouter;
  readonly chains: PluginChains;
  readonly entities: EntityLookup;
  readonly targets: ReadonlyMap<string, UpstreamTarget>;
  /** Services whose host names an upstream: balanced over its targets (instead of `targets`). */
  readonly balanced: ReadonlyMap<string, BalancedService>;
  readonly instances: ReadonlyMap<string, Instance>;
  readonly data: ConfigData;
  /** Requests currently being served by this Snapshot. */
  inflight: number;
}

export interface BuildDeps {
  registry: PluginRegistry;
  pools: ProxyPools;
  balancing: Balancing;
  log: Logger;
  sharedKv: KeyValueStore;
  workers: number;
  database?: 'off' | 'sqlite' | 'postgres';
  /** PORTCULLIS_PATH_ESCAPED_SLASHES (default keep). */
  escapedSlashes?: EscapedSlashes;
  /** This process's metrics, handed to plugins (PluginDeps.metrics). */
  metrics?: ProcessMetrics;
  /** PORTCULLIS_TRACING_* (PluginDeps.tracing). */
  tracing?: TracingSetting;
  now(): number;
}

/** An index of credentials by one field, keeping only those whose consumer exists. */
function indexBy<T extends { consumer: { id: string } }>(rows: readonly T[], field: (r: T) => string, consumers: ReadonlyMap<string, Consumer>): Map<string, T> {
  const out = new Map<string, T>();
  for (const r of rows) if (consumers.has(r.consumer.id)) out.set(field(r), r);
  return out;
}

function buildLookup(data: ConfigData): EntityLookup {
  const { consumers, acls } = data;
  const byId = new Map<string, Consumer>();
  const byUsername = new Map<string, Consumer>();
  const byUsernameLower = new Map<string, Consumer | null>();
  const byCustomId = new Map<string, Consumer>();
  for (const c of consumers) {
    byId.set(c.id, c);
    if (c.username !== null) {
      byUsername.set(c.username, c);
      const lower = c.username.toLowerCase();
      // Two consumers differing only by case make a case-insensitive lookup ambiguous: refuse it.
      byUsernameLower.set(lower, byUsernameLower.has(lower) ? null : c);
    }
    if (c.custom_id !== null) byCustomId.set(c.custom_id, c);
  }
  const groups = new Map<string, string[]>();
  for (const a of acls) {
    let list = groups.get(a.consumer.id);
    if (list === undefined) groups.set(a.consumer.id, (list = []));
    if (!list.includes(a.group)) list.push(a.group);
  }
  for (const list of groups.values()) list.sort();
  const none: readonly string[] = Object.freeze([]);
  const noGroups: readonly ConsumerGroup[] = Object.freeze([]);
  // Credentials of a deleted consumer never authenticate: they are not indexed.
  const keyAuths = indexBy(data.keyauth_credentials, (r) => r.key, byId);
  const basicAuths = indexBy(data.basicauth_credentials, (r) => r.username, byId);
  const jwtSecrets = indexBy(data.jwt_secrets, (r) => r.key, byId);
  const oauth2ByClient = indexBy(data.oauth2_credentials, (r) => r.client_id, byId);
  const oauth2ById = indexBy(data.oauth2_credentials, (r) => r.id, byId);
  const groupById = new Map<string, ConsumerGroup>();
  const groupByName = new Map<string, ConsumerGroup>();
  for (const g of data.consumer_groups) {
    groupById.set(g.id, g);
    groupByName.set(g.name, g);
  }
  /** consumer id → its groups, sorted by name (Kong: the alphabetically first group's plugin wins). */
  const groupsOf = new Map<string, ConsumerGroup[]>();
  for (const m of data.consumer_group_consumers) {
    const g = groupById.get(m.consumer_group.id);
    if (g === undefined || !byId.has(m.consumer.id)) continue;
    let list = groupsOf.get(m.consumer.id);
    if (list === undefined) groupsOf.set(m.consumer.id, (list = []));
    if (!list.includes(g)) list.push(g);
  }
  for (const list of groupsOf.values()) list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const certificatesById = new Map<string, Certificate>((data.certificates ?? []).map((c) => [c.id, c]));
  const caCertificatesById = new Map<string, CaCertificate>((data.ca_certificates ?? []).map((c) => [c.id, c]));
  return {
    consumerById: (id) => byId.get(id) ?? null,
    consumerByUsername: (username, ignoreCase) =>
      byUsername.get(username) ?? (ignoreCase ? byUsernameLower.get(username.toLowerCase()) ?? null : null),
    consumerByCustomId: (id) => byCustomId.get(id) ?? null,
    aclGroups: (id) => groups.get(id) ?? none,
    keyAuthByKey: (k) => keyAuths.get(k) ?? null,
    basicAuthByUsername: (u) => basicAuths.get(u) ?? null,
    jwtSecretByKey: (k) => jwtSecrets.get(k) ?? null,
    oauth2ByClientId: (c) => oauth2ByClient.get(c) ?? null,
    oauth2ById: (id) => oauth2ById.get(id) ?? null,
    consumerGroups: (id) => groupsOf.get(id) ?? noGroups,
    consumerGroupByName: (name) => groupByName.get(name) ?? null,
    certificateById: (id) => certificatesById.get(id) ?? null,
    caCertificateById: (id) => caCertificatesById.get(id) ?? null,
  };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

/**
 * A stored plugin config (database mode) read through today's schema: a row written by an
 * earlier version lacks the fields added since, and gets their defaults here instead of
 * `undefined`. A row the schema now refuses (a rule made stricter) is used as stored, with a
 * warning naming the fields: the plugin keeps running as it did rather than the node dropping it
 * or refusing to start.
 */
function currentConfig(deps: BuildDeps, p: Plugin): Record<string, unknown> {
  // A declarative file was read through the schema a moment ago (config/entities/plugins.ts).
  if (deps.database === 'off') return p.config as Record<string, unknown>;
  const r = deps.registry.validateConfig(p.name, p.config);
  if (r.ok) return r.value;
  deps.log.warn({ plugin: p.name, plugin_id: p.id, problems: r.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)) }, 'stored plugin configuration does not meet the current schema; used as stored');
  return p.config as Record<string, unknown>;
}

/**
 * Builds a Snapshot. Plugin instances found in `previous` with the same content are reused; the
 * caller closes the ones left unused once the previous Snapshot has drained.
 */
export async function buildSnapshot(data: ConfigData, version: number, deps: BuildDeps, previous: Snapshot | null): Promise<Snapshot> {
  deepFreeze(data);
  const servicesById = new Map<string, Service>();
  for (const s of data.services) servicesById.set(s.id, s);
  const enabledRoutes: Route[] = [];
  for (const r of data.routes) {
    if (r.service !== null) {
      const s = servicesById.get(r.service.id);
      if (s !== undefined && !s.enabled) continue;
    }
    enabledRoutes.push(r);
  }
  const router = compileRouter(enabledRoutes, servicesById, { httpsRedirect: true, escapedSlashes: deps.escapedSlashes });
  const stream = new StreamRouter(enabledRoutes, servicesById);

  const reusable = new Map<string, Instance>();
  if (previous !== null) for (const inst of previous.instances.values()) reusable.set(inst.key, inst);

  const instances = new Map<string, Instance>();
  const created: Instance[] = [];
  try {
    for (const p of data.plugins) {
      if (!p.enabled) continue;
      const def = deps.registry.get(p.name);
      if (def === undefined) throw new Error(`plugin '${p.name}' is not available in this build`);
      const key = instanceKey(p);
      let inst = reusable.get(key);
      if (inst === undefined) {
        const pluginDeps: PluginDeps = {
          entity: p,
          log: deps.log.child({ plugin: p.name, plugin_id: p.id }),
          sharedKv: deps.sharedKv,
          workers: deps.workers,
          database: deps.database,
          metrics: deps.metrics,
          tracing: deps.tracing,
          now: deps.now,
        };
        const handlers = checkHandlers(def.name, await def.create(currentConfig(deps, p), pluginDeps));
        inst = { entity: p, def, handlers, key, http: p.protocols.includes('http'), https: p.protocols.includes('https') };
        created.push(inst);
      }
      instances.set(p.id, inst);
    }
  } catch (err) {
    // A failed build must not leak the instances it already created.
    await Promise.allSettled(created.map((i) => i.handlers.close?.()));
    throw err;
  }

  await deps.balancing.apply(data.upstreams, data.targets, certificatesById(data));
  const targets = new Map<string, UpstreamTarget>();
  const upstreamTls = upstreamTlsResolver(data);
  const balanced = new Map<string, BalancedService>();
  for (const s of data.services) {
    const b = deps.balancing.balancers.forHost(s.host);
    if (b !== undefined) balanced.set(s.id, new BalancedService(s, b, deps.pools, deps.balancing, upstreamTls(s, b.upstream)));
    else targets.set(s.id, deps.pools.target(s, upstreamTls(s)));
  }

  return {
    version,
    router,
    stream,
    chains: buildChains([...instances.values()], enabledRoutes),
    entities: buildLookup(data),
    targets,
    balanced,
    instances,
    data,
    inflight: 0,
  };
}

/** Instances of `old` that `next` no longer uses. */
export function retiredInstances(old: Snapshot, next: Snapshot): Instance[] {
  const kept = new Set<Instance>(next.instances.values());
  const out: Instance[] = [];
  for (const inst of new Set(old.instances.values())) if (!kept.has(inst)) out.push(inst);
  return out;
}
