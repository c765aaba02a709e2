/**
 * decK-style tools against a running Admin API:
 *
 *   portcullis config dump [-o FILE]        GET the running config as a decK file (YAML)
 *   portcullis config diff FILE             what `sync` would change
 *   portcullis config sync FILE [--dry-run] create, update and delete until the node matches FILE
 *
 * Entities are matched by id first, then by their descriptor's unique keys (service/route name,
 * consumer username or custom_id, plugin instance name or name + scope, ACL consumer + group), so
 * a hand-written file without ids still lines up with entities created through the Admin API.
 *
 * Also `runMigrations` for `portcullis migrations bootstrap|up|status`.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { parse, stringify } from 'yaml';
import { parseDeclarative } from '../config/declarative.ts';
import { toDeclarative } from '../config/dump.ts';
import type { EntityDescriptor } from '../config/entity.ts';
import { compositeValue, uniqueValue } from '../config/entity.ts';
import { descriptorOf, entities, isReferenced, referencesTo } from '../config/entities/index.ts';
import { emptyConfig, type ConfigData, type EntityName } from '../config/types.ts';
import { ConfigError } from '../errors.ts';
import { createRegistry, type PluginRegistry } from '../plugins/registry.ts';
import type { NodeFacts } from '../plugins/sdk.ts';
import { createPgPool, migratePg, pgMigrationStatus, configMigrations, type StoreSettings } from '../storage/index.ts';
import { migrateSqlite, openSqliteDatabase } from '../storage/sqlite.ts';

export interface ToolIo {
  stdout?: (line: string) => void;
  stderr?: (line: string) => void;
  /** Sent as `Kong-Admin-Token` (default: PORTCULLIS_ADMIN_TOKEN). */
  token?: string;
  env?: NodeJS.ProcessEnv;
  /** Per-request timeout (ms, default 10000). */
  timeoutMs?: number;
}

function outputs(io: ToolIo) {
  return {
    out: io.stdout ?? ((l: string) => process.stdout.write(`${l}\n`)),
    err: io.stderr ?? ((l: string) => process.stderr.write(`${l}\n`)),
  };
}

class AdminClient {
  readonly #base: string;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;
  constructor(base: string, io: ToolIo) {
    this.#base = base.replace(/\/+$/, '');
    this.#token = io.token ?? (io.env ?? process.env).PORTCULLIS_ADMIN_TOKEN ?? undefined;
    this.#timeoutMs = io.timeoutMs ?? 10000;
  }

  async call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const headers: Record<string, string> = {};
    if (this.#token) headers['kong-admin-token'] = this.#token;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(this.#base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(this.#timeoutMs),
    });
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed };
  }

  async ok(method: string, path: string, body?: unknown): Promise<any> {
    const r = await this.call(method, path, body);
    if (r.status >= 400) {
      const msg = typeof r.body === 'object' && r.body && 'message' in r.body ? String((r.body as { message: unknown }).message) : String(r.body);
      throw new Error(`${method} ${path} → ${r.status}: ${msg}`);
    }
    return r.body;
  }

  /** Every entity of a collection, following `next` links. */
  async all(collection: string): Promise<any[]> {
    const out: any[] = [];
    let path: string | null = `/${collection}?size=1000`;
    while (path) {
      const page: { data: any[]; next: string | null } = await this.ok('GET', path);
      out.push(...page.data);
      path = page.next;
    }
    return out;
  }
}

/**
 * Where a row's collection is: `/{adminPath}`, or — for kinds without a top-level collection
 * (targets, as Kong) — under the row's parent (`/upstreams/{id}/targets`).
 */
function collectionOf(d: EntityDescriptor, row: Record<string, unknown> | undefined): string {
  if (d.adminTopLevel !== false) return d.adminPath;
  const fk = d.foreignKeys[0];
  const parent = row?.[fk.field] as { id?: string } | undefined;
  return `${descriptorOf(fk.entity).adminPath}/${parent?.id ?? ''}/${d.nestedAdminPath ?? d.adminPath}`;
}

/** The running configuration, entity by entity (parents first, so nested kinds are read under them). */
async function fetchCurrent(client: AdminClient): Promise<ConfigData> {
  const out = emptyConfig() as unknown as Record<EntityName, unknown[]>;
  for (const d of entities) {
    if (d.adminTopLevel !== false) {
      out[d.name] = await client.all(d.adminPath);
      continue;
    }
    const fk = d.foreignKeys[0];
    for (const p of out[fk.entity] as { id: string }[]) out[d.name].push(...(await client.all(collectionOf(d, { [fk.field]: { id: p.id } }))));
  }
  return out as unknown as ConfigData;
}

/** `portcullis config dump [-o FILE]`: the running config in decK format (YAML). */
/** Placeholder written instead of a certificate's private key unless `--with-keys` is given. */
export const redactedKey = '<redacted: dump with --with-keys>';

/** Replaces certificates' `key`/`key_alt` with the placeholder (a sync of it fails naming the key). */
function redactKeys(doc: unknown): unknown {
  const certs = (doc as { certificates?: unknown }).certificates;
  if (!Array.isArray(certs)) return doc;
  return {
    ...(doc as Record<string, unknown>),
    certificates: certs.map((c: Record<string, unknown>) => ({
      ...c,
      ...(typeof c.key === 'string' ? { key: redactedKey } : {}),
      ...(typeof c.key_alt === 'string' ? { key_alt: redactedKey } : {}),
    })),
  };
}

export async function runConfigDump(adminUrl: string, outFile?: string, io: ToolIo = {}, withKeys = false): Promise<number> {
  const { out, err } = outputs(io);
  try {
    const got = await new AdminClient(adminUrl, io).ok('GET', '/config');
    // DB-less nodes answer as Kong does, {"config": "<YAML>"}; nodes with a database send the document.
    const wrapped = typeof got === 'object' && got !== null && typeof (got as { config?: unknown }).config === 'string';
    const doc = wrapped ? parse((got as { config: string }).config) as unknown : got;
    // Private keys leave the gateway only when asked for.
    const text = stringify(withKeys ? doc : redactKeys(doc));
    if (outFile) await writeFile(outFile, text);
    else out(text.trimEnd());
    return 0;
  } catch (e) {
    err(`config dump failed: ${(e as Error).message}`);
    return 1;
  }
}

export type Operation =
  | { op: 'create'; entity: EntityName; label: string; body: Record<string, unknown> }
  | { op: 'update'; entity: EntityName; label: string; id: string; body: Record<string, unknown>; changed: string[] }
  | { op: 'delete'; entity: EntityName; label: string; id: string };

const volatile = new Set(['created_at', 'updated_at']);

function strip(row: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) if (!volatile.has(k)) out[k] = v;
  return out;
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v ?? null);
}

const fk = (v: unknown): string => (v && typeof v === 'object' && 'id' in v ? String((v as { id: unknown }).id) : '');

/** Names of the rows others refer to, by id, so labels read like decK's (`route echo-route`). */
type Names = ReadonlyMap<string, string>;

/** A row's default label: its endpoint key, else another unique key, else its id. */
function keyLabel(d: EntityDescriptor, row: any): string {
  for (const k of [d.endpointKey, ...d.uniqueKeys]) if (k !== null && typeof row[k] === 'string') return row[k];
  return row.id;
}

function namesOf(...configs: ConfigData[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of configs) {
    for (const d of entities) {
      if (!isReferenced(d.name)) continue;
      for (const r of c[d.name] as any[]) out.set(r.id, keyLabel(d, r));
    }
  }
  return out;
}

function label(entity: EntityName, row: any, names: Names = new Map()): string {
  const d = descriptorOf(entity);
  return d.label ? d.label(row, (v) => names.get(fk(v)) ?? fk(v)) : keyLabel(d, row);
}

/** The keys a row is matched by when ids differ: its unique keys and composite keys. */
function matchKeys(d: EntityDescriptor, row: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const k of d.uniqueKeys) {
    const v = uniqueValue(d, row, k);
    if (v !== null) out.push(`${k}:${v}`);
  }
  for (const k of d.compositeKeys) out.push(`${k.name}:${compositeValue(d, row, k)}`);
  return out;
}

/**
 * Plans the operations that turn `current` into `target`. Target ids are rewritten to the ids of
 * the entities they match, so references stay consistent.
 */
export function planSync(current: ConfigData, target: ConfigData): Operation[] {
  const names = namesOf(target, current);
  const idMap = new Map<string, string>();
  const remap = (ref: unknown) => (ref && typeof ref === 'object' && 'id' in ref ? { id: idMap.get(fk(ref)) ?? fk(ref) } : ref);
  const ops = new Map<EntityName, { create: Operation[]; update: Operation[]; delete: Operation[] }>();
  // Dependency order: a row's references are matched (and remapped) before the row itself.
  for (const d of entities) {
    const entity = d.name;
    const mine = { create: [] as Operation[], update: [] as Operation[], delete: [] as Operation[] };
    ops.set(entity, mine);
    const cur = current[entity] as any[];
    const matched = new Set<string>();
    const byId = new Map(cur.map((r) => [r.id as string, r]));
    const byKey = new Map<string, any>();
    for (const r of cur) for (const k of matchKeys(d, r)) byKey.set(k, r);
    for (const raw of target[entity] as any[]) {
      const t = { ...raw };
      for (const f of d.foreignKeys) if (f.field in t) t[f.field] = remap(t[f.field]);
      let hit = byId.get(t.id);
      if (!hit) for (const k of matchKeys(d, t)) if (!hit && byKey.has(k) && !matched.has(byKey.get(k).id)) hit = byKey.get(k);
      if (hit && !matched.has(hit.id)) {
        matched.add(hit.id);
        idMap.set(t.id, hit.id);
        t.id = hit.id;
        const want = strip(t);
        const have = strip(hit);
        const changed = [...new Set([...Object.keys(want), ...Object.keys(have)])].filter((k) => canonical(want[k]) !== canonical(have[k])).sort();
        if (changed.length > 0) mine.update.push({ op: 'update', entity, label: label(entity, t, names), id: hit.id, body: want, changed });
      } else {
        idMap.set(t.id, t.id);
        mine.create.push({ op: 'create', entity, label: label(entity, t, names), body: strip(t) });
      }
    }
    for (const r of cur) if (!matched.has(r.id)) mine.delete.push({ op: 'delete', entity, label: label(entity, r, names), id: r.id });
  }
  // An order that keeps references valid at every step: deletes of what nothing must still point
  // at, last kinds first (they free unique keys the creates may reuse); then creates and updates,
  // first kinds first; then deletes of kinds a `restrict` foreign key points at (a service goes
  // once no route uses it any more).
  const restricted = (e: EntityName) => referencesTo(e).some((r) => r.fk.onDelete === 'restrict');
  const reversed = [...entities].reverse();
  return [
    ...reversed.filter((d) => !restricted(d.name)).flatMap((d) => ops.get(d.name)!.delete),
    ...entities.flatMap((d) => [...ops.get(d.name)!.create, ...ops.get(d.name)!.update]),
    ...reversed.filter((d) => restricted(d.name)).flatMap((d) => ops.get(d.name)!.delete),
  ];
}

async function loadTarget(file: string, registry: PluginRegistry, io: ToolIo): Promise<ConfigData> {
  const text = await readFile(file, 'utf8');
  return parseDeclarative(text, { registry, env: io.env ?? process.env, filename: file });
}

function describe(op: Operation): string {
  const what = `${descriptorOf(op.entity).singular} ${op.label}`;
  if (op.op === 'update') return `updating ${what} (${op.changed.join(', ')})`;
  return `${op.op === 'create' ? 'creating' : 'deleting'} ${what}`;
}

function summary(ops: readonly Operation[]): string {
  const n = (k: Operation['op']) => ops.filter((o) => o.op === k).length;
  return `Summary:\n  Created: ${n('create')}\n  Updated: ${n('update')}\n  Deleted: ${n('delete')}`;
}

function reportLoadError(e: unknown, file: string, err: (l: string) => void): void {
  if (e instanceof ConfigError) for (const line of e.format().split('\n')) err(line);
  else if ((e as NodeJS.ErrnoException).code === 'ENOENT') err(`${file}: no such file`);
  else err((e as Error).message);
}

/** `portcullis config diff FILE`: prints the plan; exit 0 (nothing is changed). */
export async function runConfigDiff(adminUrl: string, file: string, registry: PluginRegistry, io: ToolIo = {}): Promise<number> {
  return runConfigSync(adminUrl, file, { dryRun: true }, registry, io);
}

/** `portcullis config sync FILE [--dry-run]`: applies the plan through the Admin API. */
export async function runConfigSync(adminUrl: string, file: string, opts: { dryRun?: boolean }, registry: PluginRegistry, io: ToolIo = {}): Promise<number> {
  const { out, err } = outputs(io);
  const client = new AdminClient(adminUrl, io);
  // The file is checked as the node it goes to would check it: plugins that need a database
  // (oauth2) are valid for a node that has one.
  let nodeDatabase: NodeFacts['database'];
  try {
    nodeDatabase = (await client.ok('GET', '/'))?.configuration?.database;
  } catch {
    // unreachable or an older node: the error surfaces below when the current config is read
  }
  const checking = nodeDatabase === undefined || nodeDatabase === registry.node.database ? registry
    : createRegistry(registry.names().map((n) => registry.get(n)!), { ...registry.node, database: nodeDatabase });
  let target: ConfigData;
  try {
    target = await loadTarget(file, checking, io);
  } catch (e) {
    reportLoadError(e, file, err);
    return 1;
  }
  let ops: Operation[];
  let current: ConfigData;
  try {
    current = await fetchCurrent(client);
    ops = planSync(current, target);
  } catch (e) {
    err(`could not read the running configuration: ${(e as Error).message}`);
    return 1;
  }
  // A DB-less node takes no single-entity writes (405): replace its whole configuration in one
  // POST /config instead, after listing what changes (decK cannot sync DB-less Kong at all).
  if (!opts.dryRun) {
    let dbLess = false;
    try {
      dbLess = (await client.ok('GET', '/'))?.configuration?.database === 'off';
    } catch {
      // an older node without GET / configuration: fall back to entity writes
    }
    if (dbLess) {
      for (const op of ops) out(describe(op));
      if (ops.length > 0) {
        try {
          await client.ok('POST', '/config', toDeclarative(target));
        } catch (e) {
          err(`sync failed (DB-less node, POST /config): ${(e as Error).message}`);
          out(summary([]));
          return 1;
        }
      }
      out(summary(ops));
      return 0;
    }
  }
  for (const op of ops) {
    out(describe(op));
    if (opts.dryRun) continue;
    try {
      const d = descriptorOf(op.entity);
      const row = op.op === 'delete'
        ? (current[op.entity] as unknown as Record<string, unknown>[]).find((r) => r.id === op.id)
        : op.body;
      const collection = collectionOf(d, row);
      if (op.op === 'create') await client.ok('POST', `/${collection}`, op.body);
      else if (op.op === 'update') await client.ok('PUT', `/${collection}/${op.id}`, op.body);
      else await client.ok('DELETE', `/${collection}/${op.id}`);
    } catch (e) {
      err(`sync stopped: ${(e as Error).message}`);
      out(summary(ops.slice(0, ops.indexOf(op))));
      return 1;
    }
  }
  out(summary(ops));
  return 0;
}

/**
 * `portcullis migrations bootstrap|up|status`. PostgreSQL: creates the schema and tables (under an
 * advisory lock) or lists executed/pending migrations. SQLite: migrates the file. `off`: nothing.
 */
export async function runMigrations(cmd: string, settings: StoreSettings, io: ToolIo = {}): Promise<number> {
  const { out, err } = outputs(io);
  if (!['bootstrap', 'up', 'status'].includes(cmd)) {
    err('usage: portcullis migrations bootstrap|up|status');
    return 2;
  }
  try {
    if (settings.database === 'off') {
      out('database is off (declarative mode): nothing to migrate');
      return 0;
    }
    if (settings.database === 'sqlite') {
      const path = settings.sqlitePath ?? 'portcullis.db';
      const db = openSqliteDatabase(path);
      try {
        if (cmd === 'status') {
          db.exec('CREATE TABLE IF NOT EXISTS portcullis_migrations (name TEXT PRIMARY KEY, executed_at BIGINT NOT NULL)');
          const done = (db.prepare('SELECT name FROM portcullis_migrations ORDER BY name').all() as { name: string }[]).map((r) => r.name);
          printStatus(out, done, configMigrations.map((m) => m.name).filter((n) => !done.includes(n)));
        } else {
          const applied = migrateSqlite(db, configMigrations);
          out(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
        }
      } finally {
        db.close();
      }
      return 0;
    }
    const pool = createPgPool(settings.pg ?? {});
    try {
      if (cmd === 'status') {
        const s = await pgMigrationStatus(pool);
        printStatus(out, s.executed, s.pending);
      } else {
        const applied = await migratePg(pool, settings.pg ?? {});
        out(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
      }
    } finally {
      await pool.end();
    }
    return 0;
  } catch (e) {
    err(`migrations ${cmd} failed: ${(e as Error).message}`);
    return 1;
  }
}

function printStatus(out: (l: string) => void, executed: string[], pending: string[]): void {
  out(`executed: ${executed.length ? executed.join(', ') : '(none)'}`);
  out(`pending: ${pending.length ? pending.join(', ') : '(none)'}`);
}
