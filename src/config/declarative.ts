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
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { ConfigError, type ValidationIssue } from '../errors.ts';
import type { PluginRegistry } from '../plugins/registry.ts';
import type { ConfigData, EntityName } from './types.ts';
import { emptyConfig } from './types.ts';
import { deterministicId, naturalKey } from './ids.ts';
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
const supportedTopLevel = new Set(['services', 'routes', 'consumers', 'plugins', 'acls']);
/** Kong/decK entity kinds we know but do not implement yet: a clear message rather than "unknown field". */
const unsupportedKinds = new Set([
  'upstreams', 'targets', 'certificates', 'ca_certificates', 'snis', 'vaults', 'consumer_groups', 'partials',
  'keys', 'key_sets', 'oauth2_credentials', 'basicauth_credentials', 'keyauth_credentials', 'jwt_secrets',
  'hmacauth_credentials', 'mtls_auth_credentials', 'filter_chains', 'custom_entities', 'licenses', 'workspaces',
  'consumer_group_consumers', 'consumer_group_plugins', 'plugins_partials', 'rbac_roles', 'rbac_users',
  'degraphql_routes', 'graphql_ratelimiting_advanced_costs', 'document_objects', 'groups', 'credentials',
]);

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

/** Collects entries from the document tree; owns the issue list while walking. */
class Walker {
  readonly entries: Entry[] = [];
  readonly issues: ValidationIssue[] = [];
  private readonly derived = new Set<string>();

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

  idFor(kind: 'services' | 'routes' | 'consumers', item: Record<string, unknown>, path: string): string {
    if (typeof item.id === 'string') return item.id;
    const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : null);
    const key = kind === 'consumers' ? naturalKey.consumer(str(item.username), str(item.custom_id), path) : naturalKey.service(str(item.name), path);
    let id = deterministicId(kind, key);
    // A duplicate name is reported as such; do not let it also surface as a duplicate id.
    if (this.derived.has(id)) id = deterministicId(kind, `${key}@${path}`);
    this.derived.add(id);
    return id;
  }

  plugins(value: unknown, path: string, parent?: { key: 'service' | 'route' | 'consumer'; id: string }): void {
    for (const { item, path: p } of this.list(value, path)) {
      const input = this.split(item, p, [], parent?.key);
      if (parent) input[parent.key] = { id: parent.id };
      this.entries.push({ kind: 'plugins', path: p, input });
    }
  }

  routes(value: unknown, path: string, serviceId?: string): void {
    for (const { item, path: p } of this.list(value, path)) {
      const input = this.split(item, p, ['plugins'], serviceId === undefined ? undefined : 'service');
      if (serviceId !== undefined) input.service = { id: serviceId };
      const id = this.idFor('routes', item, p);
      this.entries.push({ kind: 'routes', path: p, input, id });
      this.plugins(item.plugins, `${p}.plugins`, { key: 'route', id });
    }
  }

  services(value: unknown, path: string): void {
    for (const { item, path: p } of this.list(value, path)) {
      const id = this.idFor('services', item, p);
      this.entries.push({ kind: 'services', path: p, input: this.split(item, p, ['routes', 'plugins']), id });
      this.plugins(item.plugins, `${p}.plugins`, { key: 'service', id });
      this.routes(item.routes, `${p}.routes`, id);
    }
  }

  consumers(value: unknown, path: string): void {
    for (const { item, path: p } of this.list(value, path)) {
      const id = this.idFor('consumers', item, p);
      this.entries.push({ kind: 'consumers', path: p, input: this.split(item, p, ['plugins', 'acls']), id });
      this.plugins(item.plugins, `${p}.plugins`, { key: 'consumer', id });
      for (const acl of this.list(item.acls, `${p}.acls`)) {
        const input = this.split(acl.item, acl.path, [], 'consumer');
        input.consumer = { id };
        this.entries.push({ kind: 'acls', path: acl.path, input });
      }
    }
  }

  acls(value: unknown, path: string): void {
    for (const { item, path: p } of this.list(value, path)) this.entries.push({ kind: 'acls', path: p, input: { ...item } });
  }
}

/** Lookup of the document's services, routes and consumers by id and endpoint key. */
function buildResolver(entries: readonly Entry[]): (kind: RefKind, ref: EntityRef) => string | null {
  const ids = new Map<string, Set<string>>();
  const names = new Map<string, Map<string, string>>();
  for (const e of entries) {
    if (e.id === undefined) continue;
    if (!ids.has(e.kind)) ids.set(e.kind, new Set());
    ids.get(e.kind)?.add(e.id);
    const key = e.kind === 'consumers' ? e.input.username : e.input.name;
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

/** Duplicate names / usernames / custom_ids among the document's entries, valid or not. */
function duplicateKeys(entries: readonly Entry[]): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const checks: Array<[EntityName, string, string]> = [
    ['services', 'name', 'name'],
    ['routes', 'name', 'name'],
    ['consumers', 'username', 'username'],
    ['consumers', 'custom_id', 'custom_id'],
  ];
  for (const [kind, field, label] of checks) {
    const seen = new Map<string, string>();
    for (const e of entries) {
      const v = e.input[field];
      if (e.kind !== kind || typeof v !== 'string') continue;
      const first = seen.get(v);
      if (first === undefined) seen.set(v, e.path);
      else issues.push({ path: joinPath(e.path, field), message: `duplicate ${label} '${v}' (first defined at ${first})` });
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
    if (ignoredTopLevel.has(key) || supportedTopLevel.has(key)) continue;
    issues.push({ path: key, message: unsupportedKinds.has(key) ? `'${key}' is not supported yet` : 'unknown field' });
  }

  const vault = resolveVaultRefs(parsed, env);
  issues.push(...vault.issues);
  const doc = vault.value as Record<string, unknown>;

  const walker = new Walker();
  walker.services(doc.services, 'services');
  walker.routes(doc.routes, 'routes');
  walker.consumers(doc.consumers, 'consumers');
  walker.plugins(doc.plugins, 'plugins');
  walker.acls(doc.acls, 'acls');
  issues.push(...walker.issues);

  const resolve = buildResolver(walker.entries);
  const data = emptyConfig();
  const paths: Record<EntityName, string[]> = { services: [], routes: [], consumers: [], plugins: [], acls: [] };
  // Services, routes and consumers first: plugin ids derive from the ids they point at.
  const order: EntityName[] = ['services', 'routes', 'consumers', 'plugins', 'acls'];
  const usedIds = new Set<string>();
  for (const kind of order) {
    for (const entry of walker.entries) {
      if (entry.kind !== kind) continue;
      const res = normalizeEntity(kind, entry.input, { registry: opts.registry, now, id: entry.id, resolve });
      if (!res.ok) {
        issues.push(...prefixIssues(res.issues, entry.path));
        continue;
      }
      const value = res.value;
      if (entry.input.id === undefined && (kind === 'plugins' || kind === 'acls')) {
        let id = derivedId(value as ConfigData['plugins'][number] | ConfigData['acls'][number], kind);
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

/** The deterministic id of a plugin or ACL, from what it is attached to. */
export function derivedId(value: ConfigData['plugins'][number] | ConfigData['acls'][number], kind: 'plugins' | 'acls'): string {
  if (kind === 'acls') {
    const a = value as ConfigData['acls'][number];
    return deterministicId('acls', naturalKey.acl(a.consumer.id, a.group));
  }
  const p = value as ConfigData['plugins'][number];
  return deterministicId('plugins', naturalKey.plugin(p.name, p.route?.id ?? null, p.service?.id ?? null, p.consumer?.id ?? null, p.instance_name));
}

/** Read and parse a declarative file (YAML or JSON). */
export async function loadDeclarativeFile(path: string, opts: Omit<DeclarativeOptions, 'filename'>): Promise<ConfigData> {
  const text = await readFile(path, 'utf8');
  return parseDeclarative(text, { ...opts, filename: path });
}
