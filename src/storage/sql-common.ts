/**
 * What the SQLite and PostgreSQL config stores share: the table layout, the migrations, and a
 * `ConfigTx` written once against a tiny "run this SQL" function. SQL is written with `$1`-style
 * placeholders (PostgreSQL's); the SQLite adapter rewrites them to `?1`, which SQLite accepts.
 *
 * Each entity has its own table: the whole normalized entity as JSON text in `data`, plus the
 * columns that carry unique keys and foreign keys, so the database itself enforces uniqueness
 * even when two nodes write at once. `seq` keeps insertion order, which is also the paging order.
 */
import type { ConfigData, EntityName, EntityOf } from '../config/types.ts';
import { entityNames } from '../config/types.ts';
import { GatewayError } from '../errors.ts';
import type { ConfigTx, ForeignField, ListOptions, ListPage, UniqueKey } from './ports.ts';

/** Runs one statement; returns its rows (empty for statements without a result). */
export type SqlRunner = (sql: string, params?: readonly unknown[]) => Promise<Record<string, unknown>[]>;

export interface Migration {
  readonly name: string;
  /** Statements, run in order inside one transaction. */
  readonly up: readonly string[];
}

/** Index columns per entity table (besides id, seq and data). */
const indexColumns: Record<EntityName, readonly string[]> = {
  services: ['name'],
  routes: ['name', 'service_id'],
  consumers: ['username', 'custom_id'],
  plugins: ['name', 'instance_name', 'scope_key', 'route_id', 'service_id', 'consumer_id'],
  acls: ['consumer_id', 'grp'],
};

/**
 * The schema, as an ordered list of migrations. Never edit a shipped migration: append a new one.
 * `plugins.scope_key` makes Kong's rule "one instance of a plugin per (name, route, service,
 * consumer)" a database constraint.
 */
export const configMigrations: readonly Migration[] = [
  {
    name: '000_base',
    up: [
      `CREATE TABLE IF NOT EXISTS portcullis_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)`,
      `INSERT INTO portcullis_meta (key, value) VALUES ('config_version', 0) ON CONFLICT (key) DO NOTHING`,
      `CREATE TABLE services (id TEXT PRIMARY KEY, seq BIGINT NOT NULL, name TEXT UNIQUE, data TEXT NOT NULL)`,
      `CREATE TABLE routes (id TEXT PRIMARY KEY, seq BIGINT NOT NULL, name TEXT UNIQUE, service_id TEXT, data TEXT NOT NULL)`,
      `CREATE INDEX routes_service_id ON routes (service_id)`,
      `CREATE TABLE consumers (id TEXT PRIMARY KEY, seq BIGINT NOT NULL, username TEXT UNIQUE, custom_id TEXT UNIQUE, data TEXT NOT NULL)`,
      `CREATE TABLE plugins (id TEXT PRIMARY KEY, seq BIGINT NOT NULL, name TEXT NOT NULL, instance_name TEXT UNIQUE,
         scope_key TEXT NOT NULL UNIQUE, route_id TEXT, service_id TEXT, consumer_id TEXT, data TEXT NOT NULL)`,
      `CREATE TABLE acls (id TEXT PRIMARY KEY, seq BIGINT NOT NULL, consumer_id TEXT NOT NULL, grp TEXT NOT NULL, data TEXT NOT NULL,
         UNIQUE (consumer_id, grp))`,
    ],
  },
  {
    // Paging (`seq > $1 ORDER BY seq`) and insert's MAX(seq) stay index lookups on large sets.
    name: '001_seq_indexes',
    up: [
      `CREATE INDEX services_seq ON services (seq)`,
      `CREATE INDEX routes_seq ON routes (seq)`,
      `CREATE INDEX consumers_seq ON consumers (seq)`,
      `CREATE INDEX plugins_seq ON plugins (seq)`,
      `CREATE INDEX acls_seq ON acls (seq)`,
      `CREATE INDEX acls_consumer_id ON acls (consumer_id)`,
    ],
  },
];

/** DDL of the key-value table (shared by the SQLite and PostgreSQL KV adapters). */
export const kvMigrations: readonly Migration[] = [
  {
    name: 'kv_000_base',
    up: [
      `CREATE TABLE portcullis_kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at BIGINT)`,
      `CREATE INDEX portcullis_kv_expires ON portcullis_kv (expires_at)`,
    ],
  },
];

function fk(v: unknown): string | null {
  return v && typeof v === 'object' && typeof (v as { id?: unknown }).id === 'string' ? (v as { id: string }).id : null;
}

/** The value of each index column for a row. */
export function indexValues(entity: EntityName, row: Record<string, unknown>): unknown[] {
  switch (entity) {
    case 'services':
      return [row.name ?? null];
    case 'routes':
      return [row.name ?? null, fk(row.service)];
    case 'consumers':
      return [row.username ?? null, row.custom_id ?? null];
    case 'plugins': {
      const scope = [row.name, fk(row.route) ?? '', fk(row.service) ?? '', fk(row.consumer) ?? ''].join('|');
      return [row.name, row.instance_name ?? null, scope, fk(row.route), fk(row.service), fk(row.consumer)];
    }
    case 'acls':
      return [fk(row.consumer), row.group];
  }
}

const findColumns: Record<EntityName, readonly UniqueKey[]> = {
  services: ['name'],
  routes: ['name'],
  consumers: ['username', 'custom_id'],
  plugins: ['instance_name'],
  acls: [],
};

/** Which foreign keys each entity has (and so can be filtered by). */
export const foreignFields: Record<EntityName, readonly ForeignField[]> = {
  services: [],
  routes: ['service'],
  consumers: [],
  plugins: ['route', 'service', 'consumer'],
  acls: ['consumer'],
};

/** Throws on a lookup key the entity does not have (keys are interpolated into SQL). */
export function assertFindKey(entity: EntityName, key: string): void {
  if (!(findColumns[entity] as readonly string[]).includes(key)) throw new Error(`${entity} cannot be looked up by ${key}`);
}

export function assertForeignField(entity: EntityName, field: string): void {
  if (!(foreignFields[entity] as readonly string[]).includes(field)) throw new Error(`${entity} has no foreign key ${field}`);
}

function assertEntity(entity: string): asserts entity is EntityName {
  // Table names are interpolated into SQL: only the closed set of entity names may pass.
  if (!(entityNames as readonly string[]).includes(entity)) throw new Error(`unknown entity ${entity}`);
}

/** Opaque paging cursor: the `seq` of the last row of the previous page. */
export function encodeOffset(seq: number): string {
  return Buffer.from(JSON.stringify([seq])).toString('base64url');
}

export function decodeOffset(offset: string | null | undefined): number {
  if (!offset) return 0;
  try {
    const v = JSON.parse(Buffer.from(offset, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && typeof v[0] === 'number' && Number.isSafeInteger(v[0])) return v[0];
  } catch {
    // fall through
  }
  throw new GatewayError('GW_BAD_REQUEST', 'invalid offset', { status: 400 });
}

/** Kong's tag filter: `and` needs every tag, `or` any of them. */
export function matchesTags(row: { tags?: unknown }, opts: ListOptions | undefined): boolean {
  const want = opts?.tags;
  if (!want || want.length === 0) return true;
  const have = Array.isArray(row.tags) ? (row.tags as string[]) : [];
  return opts?.tagsMode === 'or' ? want.some((t) => have.includes(t)) : want.every((t) => have.includes(t));
}

export const defaultPageSize = 100;
export const maxPageSize = 1000;

export function pageSize(opts: ListOptions | undefined): number {
  const size = opts?.size ?? defaultPageSize;
  if (!Number.isInteger(size) || size < 1 || size > maxPageSize) {
    throw new GatewayError('GW_BAD_REQUEST', `size must be an integer between 1 and ${maxPageSize}`, { status: 400 });
  }
  return size;
}

/** Hooks a SQL transaction gives the shared implementation. */
export interface SqlTxHooks {
  run: SqlRunner;
  /** Called on the first write of the transaction (the adapter bumps the version at commit). */
  markDirty(): void;
  /** Maps a driver error to a GatewayError (unique violations → 409). */
  mapError(err: unknown): unknown;
}

/** A SQL transaction: the port's operations plus a bulk clear for `replaceAll`. */
export interface SqlConfigTx extends ConfigTx {
  clear(entity: EntityName): Promise<void>;
}

/** A `ConfigTx` over SQL. Tables are named after entities. */
export function createSqlTx(hooks: SqlTxHooks): SqlConfigTx {
  const { run, markDirty, mapError } = hooks;
  const guard = async <T>(p: () => Promise<T>): Promise<T> => {
    try {
      return await p();
    } catch (err) {
      throw mapError(err);
    }
  };
  return {
    async get<E extends EntityName>(entity: E, id: string): Promise<EntityOf<E> | null> {
      assertEntity(entity);
      const rows = await guard(() => run(`SELECT data FROM ${entity} WHERE id = $1`, [id]));
      return rows.length ? (JSON.parse(String(rows[0].data)) as EntityOf<E>) : null;
    },
    async findBy<E extends EntityName>(entity: E, key: UniqueKey, value: string): Promise<EntityOf<E> | null> {
      assertEntity(entity);
      assertFindKey(entity, key);
      const rows = await guard(() => run(`SELECT data FROM ${entity} WHERE ${key} = $1`, [value]));
      return rows.length ? (JSON.parse(String(rows[0].data)) as EntityOf<E>) : null;
    },
    async list<E extends EntityName>(entity: E, opts?: ListOptions): Promise<ListPage<EntityOf<E>>> {
      assertEntity(entity);
      const size = pageSize(opts);
      let where = '';
      const extra: unknown[] = [];
      if (opts?.foreign) {
        assertForeignField(entity, opts.foreign.field);
        where = ` AND ${opts.foreign.field}_id = $2`;
        extra.push(opts.foreign.id);
      }
      let after = decodeOffset(opts?.offset);
      const out: { seq: number; row: EntityOf<E> }[] = [];
      // Fetch in batches and filter tags in JS: tags are a JSON array inside `data`, and config
      // sets are small; this keeps one code path for both databases.
      const batch = Math.max(size + 1, 200);
      for (;;) {
        const rows = await guard(() =>
          run(`SELECT seq, data FROM ${entity} WHERE seq > $1${where} ORDER BY seq LIMIT ${batch}`, [after, ...extra]),
        );
        for (const r of rows) {
          const row = JSON.parse(String(r.data)) as EntityOf<E>;
          after = Number(r.seq);
          if (matchesTags(row as { tags?: unknown }, opts)) out.push({ seq: after, row });
          if (out.length > size) break;
        }
        if (out.length > size || rows.length < batch) break;
      }
      const more = out.length > size;
      const page = out.slice(0, size);
      return { data: page.map((p) => p.row), offset: more ? encodeOffset(page[page.length - 1].seq) : null };
    },
    async insert<E extends EntityName>(entity: E, row: EntityOf<E>): Promise<void> {
      assertEntity(entity);
      markDirty();
      const cols = indexColumns[entity];
      const vals = indexValues(entity, row as unknown as Record<string, unknown>);
      const ph = cols.map((_, i) => `$${i + 3}`).join(', ');
      await guard(() =>
        run(
          `INSERT INTO ${entity} (id, seq, data, ${cols.join(', ')}) VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM ${entity}), $2, ${ph})`,
          [row.id, JSON.stringify(row), ...vals],
        ),
      );
    },
    async update<E extends EntityName>(entity: E, row: EntityOf<E>): Promise<void> {
      assertEntity(entity);
      markDirty();
      const cols = indexColumns[entity];
      const vals = indexValues(entity, row as unknown as Record<string, unknown>);
      const sets = cols.map((c, i) => `${c} = $${i + 3}`).join(', ');
      const rows = await guard(() =>
        run(`UPDATE ${entity} SET data = $2, ${sets} WHERE id = $1 RETURNING id`, [row.id, JSON.stringify(row), ...vals]),
      );
      if (rows.length === 0) throw new GatewayError('GW_BAD_REQUEST', `${entity} ${row.id} does not exist`, { status: 404 });
    },
    async delete(entity: EntityName, id: string): Promise<void> {
      assertEntity(entity);
      markDirty();
      await guard(() => run(`DELETE FROM ${entity} WHERE id = $1`, [id]));
    },
    async clear(entity: EntityName): Promise<void> {
      assertEntity(entity);
      markDirty();
      await guard(() => run(`DELETE FROM ${entity}`));
    },
  };
}

/** Everything in insertion order (for a Snapshot build). */
export async function loadAll(run: SqlRunner): Promise<ConfigData> {
  const out = { services: [], routes: [], consumers: [], plugins: [], acls: [] } as Record<EntityName, unknown[]>;
  for (const entity of entityNames) {
    const rows = await run(`SELECT data FROM ${entity} ORDER BY seq`);
    out[entity] = rows.map((r) => JSON.parse(String(r.data)));
  }
  return out as unknown as ConfigData;
}

/** Deletes everything and inserts `data`, keeping array order as insertion order. */
export async function writeAll(tx: SqlConfigTx, data: ConfigData): Promise<void> {
  for (const entity of [...entityNames].reverse()) await tx.clear(entity);
  for (const entity of entityNames) {
    for (const row of data[entity] as EntityOf<typeof entity>[]) await tx.insert(entity, row);
  }
}
