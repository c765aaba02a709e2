/**
 * What the SQLite and PostgreSQL config stores share: the table layout, the migrations, and a
 * `ConfigTx` written once against a tiny "run this SQL" function. SQL is written with `$1`-style
 * placeholders (PostgreSQL's); the SQLite adapter rewrites them to `?1`, which SQLite accepts.
 *
 * Each entity has its own table: the whole normalized entity as JSON text in `data`, plus the
 * columns that carry unique keys and foreign keys (derived from the entity descriptor, see
 * `keyColumns`), so the database itself enforces uniqueness even when two nodes write at once.
 * `seq` keeps insertion order, which is also the paging order.
 */
import type { EntityDescriptor } from '../config/entity.ts';
import { compositeValue, fkId, uniqueValue } from '../config/entity.ts';
import { descriptorOf, entities } from '../config/entities/index.ts';
import type { ConfigData, EntityName, EntityOf } from '../config/types.ts';
import { emptyConfig, entityNames } from '../config/types.ts';
import { GatewayError } from '../errors.ts';
import type { ConfigTx, ListOptions, ListPage } from './ports.ts';

/** Runs one statement; returns its rows (empty for statements without a result). */
export type SqlRunner = (sql: string, params?: readonly unknown[]) => Promise<Record<string, unknown>[]>;

export interface Migration {
  readonly name: string;
  /** Statements, run in order inside one transaction. */
  readonly up: readonly string[];
}

/**
 * One column of an entity table besides `id`, `seq` and `data`, derived from the descriptor:
 *   - a single-field unique key → a `UNIQUE` column named after the field;
 *   - a foreign key `f` → an indexed column `f_id`;
 *   - a composite key → a column per part (foreign keys use their `f_id` column), and a
 *     `UNIQUE (...)` over them, or — when a part may be null (nulls count as values, SQL's
 *     UNIQUE does not compare them) — one `UNIQUE NOT NULL` column `<name>_key` with the parts
 *     joined (see compositeValue).
 * The whole entity is the JSON text in `data`.
 */
interface KeyColumn {
  readonly name: string;
  readonly ddl: string;
  readonly indexed: boolean;
  value(row: Record<string, unknown>): string | null;
}

interface TableLayout {
  readonly columns: readonly KeyColumn[];
  /** Table constraints (composite UNIQUEs). */
  readonly constraints: readonly string[];
}

/** The SQL column of a field (a descriptor may rename one that cannot be a column name). */
function columnOf(d: EntityDescriptor, field: string): string {
  if (d.foreignKeys.some((fk) => fk.field === field)) return `${field}_id`;
  return d.columnNames?.[field] ?? field;
}

/** The key columns and constraints of an entity's table. */
export function tableLayout(d: EntityDescriptor): TableLayout {
  const columns: KeyColumn[] = [];
  const constraints: string[] = [];
  const has = (name: string) => columns.some((c) => c.name === name);
  for (const f of d.uniqueKeys) {
    columns.push({ name: columnOf(d, f), ddl: `"${columnOf(d, f)}" TEXT UNIQUE`, indexed: false, value: (r) => uniqueValue(d, r, f) });
  }
  for (const fk of d.foreignKeys) {
    if (!has(`${fk.field}_id`)) columns.push({ name: `${fk.field}_id`, ddl: `"${fk.field}_id" TEXT`, indexed: true, value: (r) => fkId(r[fk.field]) });
  }
  for (const key of d.compositeKeys) {
    for (const f of key.fields) {
      const name = columnOf(d, f);
      if (!has(name)) columns.push({ name, ddl: `"${name}" TEXT${key.nullable ? '' : ' NOT NULL'}`, indexed: false, value: (r) => uniqueValue(d, r, f) });
    }
    if (key.nullable) {
      columns.push({ name: `${key.name}_key`, ddl: `"${key.name}_key" TEXT NOT NULL UNIQUE`, indexed: false, value: (r) => compositeValue(d, r, key) });
    } else {
      constraints.push(`UNIQUE (${key.fields.map((f) => `"${columnOf(d, f)}"`).join(', ')})`);
    }
  }
  return { columns, constraints };
}

const layouts = new Map<EntityName, TableLayout>(entities.map((d) => [d.name, tableLayout(d)]));

/** The DDL of an entity's table and indexes, as the descriptor says. */
export function entityTableDdl(d: EntityDescriptor, later: readonly string[] = []): string[] {
  const layout = tableLayout(d);
  const columns = layout.columns.filter((c) => !later.includes(c.name));
  const constraints = layout.constraints;
  const defs = [...columns.map((c) => c.ddl), ...constraints];
  return [
    `CREATE TABLE ${d.name} (id TEXT PRIMARY KEY, seq BIGINT NOT NULL, data TEXT NOT NULL${defs.map((x) => `, ${x}`).join('')})`,
    `CREATE INDEX ${d.name}_seq ON ${d.name} (seq)`,
    ...columns.filter((c) => c.indexed).map((c) => `CREATE INDEX ${d.name}_${c.name} ON ${d.name} ("${c.name}")`),
  ];
}

/**
 * Tables created by the hand-written migrations below (their layout is what `tableLayout`
 * derives from today's descriptors); every entity added later gets a derived migration.
 */
const handWrittenTables: ReadonlySet<string> = new Set(['services', 'routes', 'consumers', 'plugins', 'acls']);

/**
 * Key columns a derived table got after its `entity_<name>` migration had shipped: left out of
 * that migration (so that it stays what existing databases ran) and added by their own below.
 */
const laterColumns: Readonly<Record<string, readonly string[]>> = { upstreams: ['client_certificate_id'] };

/**
 * The schema, as an ordered list of migrations. Never edit a shipped migration: append a new one.
 * 000 and 001 built the tables of the first five entities by hand; an entity added later gets
 * `entity_<name>`, derived from its descriptor (`entityTableDdl`). Changing the keys of an entity
 * whose table already exists needs a new hand-written migration (the store-conformance suite
 * checks every table's columns against its descriptor).
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
  ...entities.filter((d) => !handWrittenTables.has(d.name)).map((d) => ({ name: `entity_${d.name}`, up: entityTableDdl(d, laterColumns[d.name]) })),
  {
    // services.client_certificate became a foreign key (certificates are stored entities).
    name: '002_services_client_certificate',
    up: [
      `ALTER TABLE services ADD COLUMN client_certificate_id TEXT`,
      `CREATE INDEX services_client_certificate_id ON services (client_certificate_id)`,
    ],
  },
  {
    // Plugins scoped to a consumer group (issue 16): the plugins' new foreign key.
    name: '003_plugins_consumer_group',
    up: [
      `ALTER TABLE plugins ADD COLUMN consumer_group_id TEXT`,
      `CREATE INDEX plugins_consumer_group_id ON plugins (consumer_group_id)`,
    ],
  },
  {
    // upstreams.client_certificate became a foreign key (issue 14: upstream mTLS).
    name: '004_upstreams_client_certificate',
    up: [
      `ALTER TABLE upstreams ADD COLUMN client_certificate_id TEXT`,
      `CREATE INDEX upstreams_client_certificate_id ON upstreams (client_certificate_id)`,
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

function layoutOf(entity: string): readonly KeyColumn[] {
  // Table and column names are interpolated into SQL: only the closed set of entity names may pass.
  const layout = layouts.get(entity as EntityName);
  if (!layout) throw new Error(`unknown entity ${entity}`);
  return layout.columns;
}

/** Throws on a lookup key the entity does not have (keys are interpolated into SQL). */
export function assertFindKey(entity: EntityName, key: string): void {
  if (!descriptorOf(entity).uniqueKeys.includes(key)) throw new Error(`${entity} cannot be looked up by ${key}`);
}

export function assertForeignField(entity: EntityName, field: string): void {
  if (!descriptorOf(entity).foreignKeys.some((fk) => fk.field === field)) throw new Error(`${entity} has no foreign key ${field}`);
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
      layoutOf(entity);
      const rows = await guard(() => run(`SELECT data FROM ${entity} WHERE id = $1`, [id]));
      return rows.length ? (JSON.parse(String(rows[0].data)) as EntityOf<E>) : null;
    },
    async findBy<E extends EntityName>(entity: E, key: string, value: string): Promise<EntityOf<E> | null> {
      layoutOf(entity);
      assertFindKey(entity, key);
      const rows = await guard(() => run(`SELECT data FROM ${entity} WHERE "${columnOf(descriptorOf(entity), key)}" = $1`, [value]));
      return rows.length ? (JSON.parse(String(rows[0].data)) as EntityOf<E>) : null;
    },
    async list<E extends EntityName>(entity: E, opts?: ListOptions): Promise<ListPage<EntityOf<E>>> {
      layoutOf(entity);
      const size = pageSize(opts);
      let where = '';
      const extra: unknown[] = [];
      if (opts?.foreign) {
        assertForeignField(entity, opts.foreign.field);
        where = ` AND "${opts.foreign.field}_id" = $2`;
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
      const cols = layoutOf(entity);
      markDirty();
      const r = row as unknown as Record<string, unknown>;
      const names = cols.map((c) => `, "${c.name}"`).join('');
      const ph = cols.map((_, i) => `, $${i + 3}`).join('');
      await guard(() =>
        run(
          `INSERT INTO ${entity} (id, seq, data${names}) VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM ${entity}), $2${ph})`,
          [row.id, JSON.stringify(row), ...cols.map((c) => c.value(r))],
        ),
      );
    },
    async update<E extends EntityName>(entity: E, row: EntityOf<E>): Promise<void> {
      const cols = layoutOf(entity);
      markDirty();
      const r = row as unknown as Record<string, unknown>;
      const sets = cols.map((c, i) => `, "${c.name}" = $${i + 3}`).join('');
      const rows = await guard(() =>
        run(`UPDATE ${entity} SET data = $2${sets} WHERE id = $1 RETURNING id`, [row.id, JSON.stringify(row), ...cols.map((c) => c.value(r))]),
      );
      if (rows.length === 0) throw new GatewayError('GW_BAD_REQUEST', `${entity} ${row.id} does not exist`, { status: 404 });
    },
    async delete(entity: EntityName, id: string): Promise<void> {
      layoutOf(entity);
      markDirty();
      await guard(() => run(`DELETE FROM ${entity} WHERE id = $1`, [id]));
    },
    async clear(entity: EntityName): Promise<void> {
      layoutOf(entity);
      markDirty();
      await guard(() => run(`DELETE FROM ${entity}`));
    },
  };
}

/** Everything in insertion order (for a Snapshot build). */
export async function loadAll(run: SqlRunner): Promise<ConfigData> {
  const out = emptyConfig() as unknown as Record<EntityName, unknown[]>;
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
