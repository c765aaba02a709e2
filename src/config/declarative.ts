/**
 * The declarative (decK) file loader: YAML or JSON text → normalized ConfigData, or a ConfigError
 * carrying every problem found, each with its path in the document
 * (`services[0].routes[1].paths[0]: must start with "/" ...`).
 *
 * Steps: decK `${{ env "DECK_X" }}` substitution → YAML parse → top-level keys → vault refs →
 * walk the nested entities (children get their parent's foreign key) → normalize each entity
 * (references by name or id resolved against the document) → cross-entity integrity checks.
 */
import { migrateOldFormat, oldFormatVersions } from './format-migration.ts';
import { missingUpstreamWarnings } from './upstreams.ts';
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { ConfigError, type ValidationIssue } from '../errors.ts';
import type { PluginRegistry } from '../plugins/registry.ts';
import type { ConfigData, EntityName } from './types.ts';
import { emptyConfig } from './types.ts';
import { descriptorOf, entities, isEntityName, isReferenced, referencesTo } from './entities/index.ts';
import { deterministicId } from './ids.ts';
import { checkIntegrity } from './integrity.ts';
import { joinPath, prefixIssues } from './issues.ts';
import { normalizeEntity, type EntityRef, type RefKind } from './normalize.ts';
import { resolveVaultRefs, substituteDeckEnv } from './vault.ts';

export interface DeclarativeOptions {
  registry: PluginRegistry;
  /** Source of `{vault://env/...}` and `${{ env "DECK_..." }}` values. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Milliseconds since epoch for created_at/updated_at. Default: Date.now(). */
  now?: number;
  /** Named in the error message. */
  filename?: string;
  /** Hears non-fatal findings (e.g. route paths migrated from format 1.1/2.1). */
  warn?: (message: string) => void;
}

/** decK's own bookkeeping keys: accepted and ignored. */
const ignoredTopLevel = new Set(['_format_version', '_info', '_transform', '_workspace', '_konnect']);
/** Kong/decK entity kinds we know but do not implement yet: a clear message rather than "unknown field". */
const unsupportedKinds = new Set([
  'certificates', 'ca_certificates', 'snis', 'vaults', 'consumer_groups', 'partials',
  'keys', 'key_sets', 'oauth2_credentials', 'basicauth_credentials', 'keyauth_credentials', 'jwt_secrets',
  'hmacauth_credentials', 'mtls_auth_credentials', 'filter_chains', 'custom_entities', 'licenses', 'workspaces',
  'consumer_group_consumers', 'consumer_group_plugins', 'plugins_partials', 'rbac_roles', 'rbac_users',
  'degraphql_routes', 'graphql_ratelimiting_advanced_costs', 'document_objects', 'groups', 'credentials',
].filter((k) => !isEntityName(k)));

interface Entry {
  kind: EntityName;
  path: string;
  input: Record<string, unknown>;
  /** Pre-computed id for entities others may point at (services, routes, consumers). */
  id?: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The kinds that may be written nested under `parent`, with the foreign key they get. */
function nestedKinds(parent: EntityName): { kind: EntityName; field: string }[] {
  const out = referencesTo(parent)
    .filter((r) => r.fk.nested)
    .map((r) => ({ kind: r.entity.name, field: r.fk.field }));
  // A parent's own children of a kind come before its children's children of that kind
  // (a service's plugins before the plugins of its routes): kinds without nested kinds first.
  const leaf = (k: EntityName) => referencesTo(k).every((r) => !r.fk.nested);
  return [...out.filter((c) => leaf(c.kind)), ...out.filter((c) => !leaf(c.kind))];
}

type RefListSpec = { link: EntityName; under: string; key: string; names: string; namesKind: EntityName; by: readonly string[] };
const refListsMemo = new Map<EntityName, RefListSpec[]>();

/** The nested reference lists (descriptor `nestedRefLists`) an entity of kind `parent` may carry. */
function refListsUnder(parent: EntityName): RefListSpec[] {
  let memo = refListsMemo.get(parent);
  if (memo === undefined) refListsMemo.set(parent, (memo = collectRefLists(parent)));
  return memo;
}

function collectRefLists(parent: EntityName): RefListSpec[] {
  const out: RefListSpec[] = [];
  for (const d of entities) {
    for (const l of d.nestedRefLists ?? []) {
      const owner = d.foreignKeys.find((f) => f.field === l.under);
      const named = d.foreignKeys.find((f) => f.field === l.names);
      if (owner?.entity === parent && named) out.push({ link: d.name, ...l, namesKind: named.entity });
    }
  }
  return out;
}

interface PendingRefList {
  link: EntityName;
  under: string;
  names: string;
  namesKind: EntityName;
  by: readonly string[];
  ownerId: string;
  value: unknown;
  path: string;
}

function sameTags(a: unknown, b: unknown): boolean {
  const norm = (v: unknown) => (Array.isArray(v) ? [...v].map(String).sort() : []);
  return JSON.stringify(norm(a)) === JSON.stringify(norm(b));
}

/** Collects entries from the document tree; owns the issue list while walking. */
class Walker {
  readonly entries: Entry[] = [];
  readonly issues: ValidationIssue[] = [];
  private readonly derived = new Set<string>();
  private readonly pending: PendingRefList[] = [];
  private readonly indexes = new Map<string, Map<unknown, Entry>>();

  list(value: unknown, path: string): Array<{ item: Record<string, unknown>; path: string }> {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) {
      this.issues.push({ path, message: 'expected an array' });
      return [];
    }
    const out: Array<{ item: Record<string, unknown>; path: string }> = [];
    value.forEach((item, i) => {
      if (isRecord(item)) out.push({ item, path: `${path}[${i}]` });
      else this.issues.push({ path: `${path}[${i}]`, message: 'expected an object' });
    });
    return out;
  }

  /** Split nested children off an entity; report unsupported nested kinds and a redundant parent key. */
  split(item: Record<string, unknown>, path: string, children: readonly string[], parentKey?: string): Record<string, unknown> {
    const own: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(item)) {
      if (children.includes(k)) continue;
      if (unsupportedKinds.has(k)) {
        this.issues.push({ path: joinPath(path, k), message: `'${k}' is not supported yet` });
        continue;
      }
      if (parentKey !== undefined && k === parentKey) {
        this.issues.push({ path: joinPath(path, k), message: `not allowed in a nested entity: the enclosing ${parentKey} is used` });
        continue;
      }
      own[k] = v;
    }
    return own;
  }

  idFor(kind: EntityName, item: Record<string, unknown>, path: string): string {
    if (typeof item.id === 'string') return item.id;
    const key = descriptorOf(kind).naturalKey.key(item, path);
    let id = deterministicId(kind, key);
    // A duplicate name is reported as such; do not let it also surface as a duplicate id.
    if (this.derived.has(id)) id = deterministicId(kind, `${key}@${path}`);
    this.derived.add(id);
    return id;
  }

  /** The entries of `kind` at `path`, and everything nested in them (children get `parent`'s key). */
  walk(kind: EntityName, value: unknown, path: string, parent?: { field: string; id: string }): void {
    const children = nestedKinds(kind);
    const refLists = refListsUnder(kind);
    const referenced = isReferenced(kind);
    for (const { item, path: p } of this.list(value, path)) {
      const input = this.split(item, p, [...children.map((c) => c.kind), ...refLists.map((l) => l.key)], parent?.field);
      if (parent) input[parent.field] = { id: parent.id };
      const id = referenced ? this.idFor(kind, item, p) : undefined;
      this.entries.push({ kind, path: p, input, id });
      if (id === undefined) continue;
      for (const c of children) {
        const asField = descriptorOf(c.kind).nestedStringField;
        let v = item[c.kind];
        if (asField !== undefined && Array.isArray(v)) v = v.map((x) => (typeof x === 'string' ? { [asField]: x } : x));
        this.walk(c.kind, v, `${p}.${c.kind}`, { field: c.field, id });
      }
      for (const l of refLists) {
        if (item[l.key] !== undefined && item[l.key] !== null) this.pending.push({ ...l, ownerId: id, value: item[l.key], path: `${p}.${l.key}` });
      }
    }
  }

  /**
   * The nested reference lists (`consumers[].groups`, `consumer_groups[].consumers`) as link
   * entries, once every entity is known. A link stated in both forms is one link.
   */
  resolveRefLists(): void {
    const seen = new Set<string>();
    for (const r of this.pending) {
      for (const { item, path } of this.list(r.value, r.path)) {
        const target = this.findNamed(r.namesKind, item, r.by, path);
        if (target === null) continue;
        const pair = `${r.link}|${[`${r.under}=${r.ownerId}`, `${r.names}=${target}`].sort().join('|')}`;
        if (seen.has(pair)) continue;
        seen.add(pair);
        this.entries.push({ kind: r.link, path, input: { [r.under]: { id: r.ownerId }, [r.names]: { id: target } } });
      }
    }
  }

  /** First entry of `kind` whose `field` (or id) is `value`; indexed once per kind and field. */
  private lookup(kind: EntityName, field: string, value: unknown): Entry | undefined {
    const key = `${kind}|${field}`;
    let index = this.indexes.get(key);
    if (index === undefined) {
      index = new Map();
      for (const e of this.entries) {
        if (e.kind !== kind) continue;
        const v = field === 'id' ? e.id : e.input[field];
        if (v !== undefined && !index.has(v)) index.set(v, e);
      }
      this.indexes.set(key, index);
    }
    return index.get(value);
  }

  /** The id of the document's entity of `kind` a reference object names, or null (issue recorded). */
  private findNamed(kind: EntityName, ref: Record<string, unknown>, by: readonly string[], path: string): string | null {
    const singular = descriptorOf(kind).singular.replace('_', ' ');
    let bad = false;
    for (const k of Object.keys(ref)) {
      if (!by.includes(k) && k !== 'tags') {
        this.issues.push({ path: joinPath(path, k), message: `unknown field (a ${singular} is named by ${by.join(', ')})` });
        bad = true;
      }
    }
    const given = by.filter((k) => ref[k] !== undefined);
    if (given.length === 0) {
      this.issues.push({ path, message: `must name the ${singular} by one of ${by.join(', ')}` });
      return null;
    }
    if (bad) return null;
    let found: Entry | undefined;
    for (const k of given) {
      const v = ref[k];
      const match = this.lookup(kind, k, v);
      if (match === undefined) {
        this.issues.push({ path: joinPath(path, k), message: `no ${singular} with ${k} ${JSON.stringify(v)} in this file` });
        return null;
      }
      if (found !== undefined && found !== match) {
        this.issues.push({ path, message: `${given.join(' and ')} name different ${singular}s` });
        return null;
      }
      found = match;
    }
    if (found === undefined || found.id === undefined) return null;
    if (ref.tags !== undefined && !sameTags(ref.tags, found.input.tags)) {
      this.issues.push({ path: joinPath(path, 'tags'), message: `differs from the tags of the ${singular} it names (defined at ${found.path})` });
      return null;
    }
    return found.id;
  }
}

/** Lookup of the document's referenced entities by id and endpoint key. */
function buildResolver(entries: readonly Entry[]): (kind: RefKind, ref: EntityRef) => string | null {
  const ids = new Map<string, Set<string>>();
  const names = new Map<string, Map<string, string>>();
  for (const e of entries) {
    if (e.id === undefined) continue;
    if (!ids.has(e.kind)) ids.set(e.kind, new Set());
    ids.get(e.kind)?.add(e.id);
    const endpointKey = descriptorOf(e.kind).endpointKey;
    const key = endpointKey === null ? undefined : e.input[endpointKey];
    if (typeof key !== 'string') continue;
    if (!names.has(e.kind)) names.set(e.kind, new Map());
    const byName = names.get(e.kind);
    // The first definition wins; the duplicate itself is reported by the integrity check.
    if (byName && !byName.has(key)) byName.set(key, e.id);
  }
  return (kind, ref) => {
    if (ref.id !== undefined) return ids.get(kind)?.has(ref.id) ? ref.id : null;
    return names.get(kind)?.get(ref.name ?? '') ?? null;
  };
}

/** Duplicate values of single-field unique keys (names, usernames, ...) among the document's entries, valid or not. */
function duplicateKeys(entries: readonly Entry[]): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  for (const d of entities) {
    for (const field of d.uniqueKeys) {
      const seen = new Map<string, string>();
      for (const e of entries) {
        const v = e.input[field];
        if (e.kind !== d.name || typeof v !== 'string') continue;
        const first = seen.get(v);
        if (first === undefined) seen.set(v, e.path);
        else issues.push({ path: joinPath(e.path, field), message: `duplicate ${field} '${v}' (first defined at ${first})` });
      }
    }
  }
  return issues;
}

/** Parse YAML (JSON is a subset) into plain data; syntax errors become `line N` issues. */
function parseText(text: string, issues: ValidationIssue[]): unknown {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    for (const err of doc.errors) {
      const line = err.linePos?.[0]?.line;
      // Keep the first line of the message, without yaml's own position suffix and source excerpt.
      const message = (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
      issues.push({ path: line === undefined ? '' : `line ${line}`, message: `syntax error: ${message}` });
    }
    return undefined;
  }
  return doc.toJS({ maxAliasCount: 100 });
}

/**
 * Parse a decK document (YAML or JSON text) into the normalized model. Every problem is reported
 * at once via a thrown ConfigError. Entities without an `id` get a deterministic one (name-based
 * UUID from kind and natural key), so reloading the same file yields the same ids.
 */
export function parseDeclarative(text: string, opts: DeclarativeOptions): ConfigData {
  const env = opts.env ?? process.env;
  const now = opts.now ?? Date.now();
  const fail = (issues: readonly ValidationIssue[]) =>
    new ConfigError(issues, `invalid declarative configuration${opts.filename ? ` in ${opts.filename}` : ''}`);

  const substituted = substituteDeckEnv(text, env);
  // An unsubstituted placeholder would only add confusing syntax errors: stop here.
  if (substituted.issues.length > 0) throw fail(substituted.issues);
  const issues: ValidationIssue[] = [];
  const parsed = parseText(substituted.text, issues);
  if (issues.length > 0) throw fail(issues);
  if (!isRecord(parsed)) throw fail([{ path: '', message: 'expected a mapping (object) at the top level' }]);

  const version = parsed._format_version;
  if (version === undefined) issues.push({ path: '_format_version', message: 'required field missing' });
  else if (typeof version === 'string' && oldFormatVersions.has(version)) {
    // Kong 3.x loads 1.1/2.1 files by migrating their route paths first.
    for (const w of migrateOldFormat(parsed)) opts.warn?.(w);
  } else if (version !== '3.0') issues.push({ path: '_format_version', message: `unsupported format version ${JSON.stringify(version)}; expected "1.1", "2.1" or "3.0"` });
  for (const key of Object.keys(parsed)) {
    if (ignoredTopLevel.has(key) || isEntityName(key)) continue;
    issues.push({ path: key, message: unsupportedKinds.has(key) ? `'${key}' is not supported yet` : 'unknown field' });
  }

  const vault = resolveVaultRefs(parsed, env);
  issues.push(...vault.issues);
  const doc = vault.value as Record<string, unknown>;

  const walker = new Walker();
  for (const d of entities) walker.walk(d.name, doc[d.name], d.name);
  walker.resolveRefLists();
  issues.push(...walker.issues);

  const resolve = buildResolver(walker.entries);
  const data = emptyConfig();
  const paths = {} as Record<EntityName, string[]>;
  // Kinds in dependency order: ids derived from a normalized entity use the ids it points at.
  const usedIds = new Set<string>();
  for (const d of entities) {
    const kind = d.name;
    paths[kind] = [];
    for (const entry of walker.entries) {
      if (entry.kind !== kind) continue;
      const res = normalizeEntity(kind, entry.input, { registry: opts.registry, now, id: entry.id, resolve });
      if (!res.ok) {
        issues.push(...prefixIssues(res.issues, entry.path));
        continue;
      }
      const value = res.value as { id: string };
      if (entry.input.id === undefined && d.naturalKey.from === 'entity') {
        let id = derivedId(kind, value as unknown as Record<string, unknown>);
        // Two entries with the same key are a duplicate (reported below); keep their ids apart so
        // the report names the real problem rather than a duplicate id.
        if (usedIds.has(id)) id = deterministicId(kind, `${id}@${entry.path}`);
        value.id = id;
      }
      usedIds.add(value.id);
      (data[kind] as unknown[]).push(value);
      paths[kind].push(entry.path);
    }
  }

  issues.push(...duplicateKeys(walker.entries));
  issues.push(...checkIntegrity(data, { pathOf: (kind, i) => paths[kind][i] ?? `${kind}[${i}]`, foreignKeys: false, endpointKeys: false }));
  if (issues.length > 0) {
    // An unresolved vault reference stays in place as text; the schema's complaint about that
    // text at the same path adds nothing to "variable not set".
    const vaultPaths = new Set(vault.issues.map((i) => i.path));
    const kept = issues.filter((i) => vault.issues.includes(i) || !vaultPaths.has(i.path));
    throw fail(inDocumentOrder(kept, Object.keys(parsed)));
  }
  if (opts.warn) for (const w of missingUpstreamWarnings(data.services, data.upstreams)) opts.warn(w);
  return data;
}

/**
 * Sort issues by where they are in the document: top-level key order, then the entry's index
 * (`services[3]...` after `services[1]...`). The sort is stable, so issues of one entry keep
 * the order in which they were found.
 */
function inDocumentOrder(issues: ValidationIssue[], topKeys: string[]): ValidationIssue[] {
  const rank = (path: string): [number, number] => {
    const m = /^([^.[]+)(?:\[(\d+)\])?/.exec(path);
    if (!m) return [-1, 0];
    return [topKeys.indexOf(m[1] ?? ''), m[2] === undefined ? -1 : Number(m[2])];
  };
  return issues
    .map((issue, i) => ({ issue, i, r: rank(issue.path) }))
    .sort((a, b) => a.r[0] - b.r[0] || a.r[1] - b.r[1] || a.i - b.i)
    .map((x) => x.issue);
}

/** The deterministic id of an entity whose natural key is read from the normalized row (plugins, ACLs). */
export function derivedId(kind: EntityName, value: Record<string, unknown>): string {
  return deterministicId(kind, descriptorOf(kind).naturalKey.key(value, ''));
}

/** Read and parse a declarative file (YAML or JSON). */
export async function loadDeclarativeFile(path: string, opts: Omit<DeclarativeOptions, 'filename'>): Promise<ConfigData> {
  const text = await readFile(path, 'utf8');
  return parseDeclarative(text, { ...opts, filename: path });
}
