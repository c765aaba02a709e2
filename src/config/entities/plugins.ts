/** Plugin instances (Kong: kong/db/schema/entities/plugins.lua). */
import type { EntityDescriptor } from '../entity.ts';
import { fkId } from '../entity.ts';
import { naturalKey } from '../ids.ts';
import { readableErrorMap, zodIssues } from '../issues.ts';
import { entityId, isRecord, refField, timestamps } from '../normalize-kit.ts';
import { pluginInputSchema } from '../schemas.ts';
import { PLUGIN_ENTITY_CHECK } from '../../plugins/sdk.ts';

type ScopeKey = 'route' | 'service' | 'consumer' | 'consumer_group' | 'global';

/**
 * The plugin definition's `scopes`: omitted = everywhere. If any scope is `true`, exactly the
 * `true` ones are allowed; otherwise everything except the ones set to `false`.
 */
export function scopeAllowed(scopes: Partial<Record<ScopeKey, boolean>> | undefined, key: ScopeKey): boolean {
  // Kong: only plugins that declare it can be scoped to a consumer group.
  if (key === 'consumer_group') return scopes?.consumer_group === true;
  if (!scopes) return true;
  const anyTrue = Object.entries(scopes).some(([k, x]) => k !== 'consumer_group' && x === true);
  return anyTrue ? scopes[key] === true : scopes[key] !== false;
}

/** Recursive merge of plain objects (arrays and scalars are replaced), for PATCH of `config`. */
function deepMerge(base: unknown, patch: unknown): unknown {
  if (!isRecord(base) || !isRecord(patch)) return patch;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) out[k] = deepMerge(base[k], v);
  return out;
}

/** Copy of a config with every object property whose value is null removed (recursively). */
function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNulls);
  if (!isRecord(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = withoutNulls(x);
  return out;
}

function containsNull(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(containsNull);
  if (!isRecord(v)) return false;
  return Object.values(v).some((x) => x === null || containsNull(x));
}

const scopeFields = ['route', 'service', 'consumer'] as const;

export const plugins: EntityDescriptor<'plugins'> = {
  name: 'plugins',
  singular: 'plugin',
  adminPath: 'plugins',
  endpointKey: 'instance_name',
  uniqueKeys: ['instance_name'],
  // Kong: one instance of a plugin per (name, route, service, consumer).
  compositeKeys: [
    {
      name: 'scope',
      fields: ['name', 'route', 'service', 'consumer', 'consumer_group'],
      nullable: true,
      issueField: '',
      duplicateMessage: () => 'duplicate plugin: only one instance of a plugin per route, service and consumer combination is allowed',
    },
  ],
  foreignKeys: [
    ...scopeFields.map((field) => ({ field, entity: `${field}s` as const, onDelete: 'cascade' as const, nested: true })),
    { field: 'consumer_group', entity: 'consumer_groups', onDelete: 'cascade', nested: true },
  ],
  schema: pluginInputSchema,
  // As `deck gateway dump`: a plugin scoped to a consumer group alone is written under the group.
  dumpNestedUnderAlone: 'consumer_group',
  naturalKey: {
    from: 'entity',
    key: (p) => naturalKey.plugin(String(p.name), fkId(p.route), fkId(p.service), fkId(p.consumer), typeof p.instance_name === 'string' ? p.instance_name : null) + (fkId(p.consumer_group) ? `|group:${fkId(p.consumer_group)}` : ''),
  },
  label: (row, ref) => {
    const r = row as { name: string; instance_name?: string | null; route?: unknown; service?: unknown; consumer?: unknown };
    return `${r.name}${r.instance_name ? ` (${r.instance_name})` : ''}${r.route ? ` route ${ref(r.route)}` : ''}${r.service ? ` service ${ref(r.service)}` : ''}${r.consumer ? ` consumer ${ref(r.consumer)}` : ''}${!r.route && !r.service && !r.consumer ? ' (global)' : ''}`;
  },
  mergePatch(existing, input) {
    const out: Record<string, unknown> = { ...existing, ...input };
    if (isRecord(input.config)) out.config = deepMerge(existing.config, input.config);
    return out;
  },
  normalize(r, ctx) {
    const parsed = pluginInputSchema.safeParse(r, { error: readableErrorMap });
    const issues = parsed.success ? [] : zodIssues(parsed.error);
    const def = typeof r.name === 'string' ? ctx.registry.get(r.name) : undefined;
    if (typeof r.name === 'string' && !def) {
      issues.push({ path: 'name', message: `plugin '${r.name}' not enabled; add it to the 'plugins' configuration property` });
    }
    let config: Record<string, unknown> = {};
    if (def && (r.config === undefined || r.config === null || isRecord(r.config))) {
      const given = def.shorthands && isRecord(r.config) ? def.shorthands(r.config) : r.config ?? {};
      let c = def.schema.safeParse(given, { error: readableErrorMap });
      if (!c.success) {
        // Kong (and `deck dump`) write `null` for unset config fields. Our plugin schemas model
        // "unset" as absent, so retry with nulls removed before reporting.
        const retry = def.schema.safeParse(withoutNulls(given), { error: readableErrorMap });
        if (retry.success || containsNull(given)) c = retry;
      }
      if (c.success) {
        config = c.data as Record<string, unknown>;
        // Checks that depend on the node (e.g. several workers): refuse here what the workers
        // could not build, instead of storing a config no worker will apply.
        for (const i of def.check?.(config, ctx.registry.node) ?? []) issues.push({ path: i.path ? `config.${i.path}` : 'config', message: i.message });
      } else {
        // A check across fields declared at the plugin level (Kong's plugin `entity_checks`).
        for (const i of zodIssues(c.error, 'config')) issues.push(i.path === `config.${PLUGIN_ENTITY_CHECK}` ? { path: '', message: i.message } : i);
      }
    }
    if (def?.protocols && parsed.success) {
      // Kong: the plugin schema's own `protocols` (protocols_http for most) narrows the set.
      const allowed = def.protocols;
      parsed.data.protocols.forEach((p, i) => {
        if (!allowed.includes(p)) issues.push({ path: `protocols[${i}]`, message: `expected one of: ${allowed.join(', ')}` });
      });
    }
    if (def) {
      const present = (k: string) => r[k] !== undefined && r[k] !== null;
      for (const k of scopeFields) {
        if (present(k) && !scopeAllowed(def.scopes, k)) issues.push({ path: k, message: `plugin '${def.name}' cannot be applied to a ${k}` });
      }
      if (present('consumer_group') && !scopeAllowed(def.scopes, 'consumer_group')) issues.push({ path: 'consumer_group', message: `plugin '${def.name}' cannot be applied to a consumer group` });
      if (present('consumer_group') && present('consumer')) issues.push({ path: 'consumer_group', message: 'a plugin is scoped to a consumer or to a consumer group, not both' });
      if (!present('route') && !present('service') && !present('consumer') && !present('consumer_group') && !scopeAllowed(def.scopes, 'global')) {
        issues.push({ path: '', message: `plugin '${def.name}' cannot be applied globally; attach it to a route, service or consumer` });
      }
    }
    if (parsed.success && parsed.data.ordering) {
      // Kong: the order is settled before the consumer is known, so a consumer-scoped instance cannot change it.
      if (r.consumer !== undefined && r.consumer !== null) issues.push({ path: 'ordering', message: 'cannot be set on a plugin scoped to a consumer' });
      for (const side of ['before', 'after'] as const) {
        (parsed.data.ordering[side]?.access ?? []).forEach((n, i) => {
          const path = `ordering.${side}.access[${i}]`;
          if (n === r.name) issues.push({ path, message: 'a plugin cannot be ordered relative to itself' });
          else if (!ctx.registry.get(n)) issues.push({ path, message: `plugin '${n}' not enabled` });
        });
      }
    }
    const route = refField('routes', r, 'route', ctx, issues);
    const service = refField('services', r, 'service', ctx, issues);
    const consumer = refField('consumers', r, 'consumer', ctx, issues);
    const consumerGroup = refField('consumer_groups', r, 'consumer_group', ctx, issues);
    if (!parsed.success || issues.length > 0) return { ok: false, issues };
    const v = parsed.data;
    return {
      ok: true,
      value: {
        id: entityId(v.id, ctx),
        name: v.name,
        instance_name: v.instance_name,
        config,
        // Kong: the plugin schema's own `protocols` default (ip-restriction's has tcp and tls).
        protocols: r.protocols === undefined && def?.defaultProtocols ? [...def.defaultProtocols] : v.protocols,
        enabled: v.enabled,
        route,
        service,
        consumer,
        ...(consumerGroup !== null ? { consumer_group: consumerGroup } : {}),
        ordering: v.ordering,
        tags: v.tags,
        ...timestamps(v, ctx.existing, ctx.now),
      },
    };
  },
};
