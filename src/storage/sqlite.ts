/**
 * The embedded default config store: one SQLite file (`node:sqlite`), WAL journal so readers in
 * other worker processes are never blocked by a writer, and a `busy_timeout` so writers from
 * several processes queue instead of failing.
 *
 * Change detection: writes through this instance notify at once; writes by other processes
 * (other workers on the same file) are seen by polling the version counter every ~500 ms.
 */
import { DatabaseSync } from 'node:sqlite';
import type { ConfigData } from '../config/types.ts';
import { GatewayError } from '../errors.ts';
import type { ConfigStore, ConfigTx } from './ports.ts';
import { configMigrations, createSqlTx, loadAll, writeAll, type Migration, type SqlConfigTx, type SqlRunner } from './sql-common.ts';
import { Listeners, Mutex, txOperations } from './util.ts';

export interface SqliteStoreOptions {
  /** File path; ':memory:' for a private in-memory database. */
  path: string;
  /** How often to look for writes by other processes (ms). Default 500. */
  pollIntervalMs?: number;
}

/** Turns `$1` placeholders into SQLite's numbered `?1`. */
function toSqlite(sql: string): string {
  return sql.replace(/\$(\d+)/g, '?$1');
}

function toParam(v: unknown): null | number | bigint | string {
  if (v === undefined || v === null) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** Opens a database file with the pragmas every Portcullis SQLite file uses. */
export function openSqliteDatabase(path: string): DatabaseSync {
  const db = new DatabaseSync(path);
  db.exec('PRAGMA busy_timeout = 5000');
  if (path !== ':memory:') db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = NORMAL');
  return db;
}

export function sqliteRunner(db: DatabaseSync): SqlRunner {
  return async (sql, params = []) => {
    const stmt = db.prepare(toSqlite(sql));
    const args = params.map(toParam);
    if (/^\s*(SELECT|WITH)\b|\bRETURNING\b/i.test(sql)) return stmt.all(...args) as Record<string, unknown>[];
    stmt.run(...args);
    return [];
  };
}

/**
 * Applies pending migrations. Several processes may open the same file at once: BEGIN IMMEDIATE
 * takes the write lock first, so only one of them runs each migration.
 */
export function migrateSqlite(db: DatabaseSync, migrations: readonly Migration[], table = 'portcullis_migrations'): string[] {
  db.exec(`CREATE TABLE IF NOT EXISTS ${table} (name TEXT PRIMARY KEY, executed_at BIGINT NOT NULL)`);
  const applied: string[] = [];
  db.exec('BEGIN IMMEDIATE');
  try {
    const done = new Set((db.prepare(`SELECT name FROM ${table}`).all() as { name: string }[]).map((r) => r.name));
    for (const m of migrations) {
      if (done.has(m.name)) continue;
      for (const stmt of m.up) db.exec(stmt);
      db.prepare(`INSERT INTO ${table} (name, executed_at) VALUES (?, ?)`).run(m.name, Math.floor(Date.now() / 1000));
      applied.push(m.name);
    }
    db.exec('COMMIT');
  } catch (err) {
    db.exec('ROLLBACK');
    throw err;
  }
  return applied;
}

export function mapSqliteError(err: unknown): unknown {
  if (err instanceof GatewayError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  if (/UNIQUE constraint failed/i.test(msg)) {
    return new GatewayError('GW_STORE_CONFLICT', 'unique constraint violation', { status: 409, cause: err, detail: msg });
  }
  if (/database is locked|SQLITE_BUSY/i.test(msg)) {
    return new GatewayError('GW_STORE_UNAVAILABLE', 'database is busy', { status: 503, cause: err });
  }
  return err;
}

/** Opens (creating and migrating when needed) a SQLite config store. */
export function openSqliteConfigStore(opts: SqliteStoreOptions): ConfigStore {
  const db = openSqliteDatabase(opts.path);
  migrateSqlite(db, configMigrations);
  const run = sqliteRunner(db);
  // DatabaseSync is one connection: an async transaction must not interleave with anything else.
  const mutex = new Mutex();
  const listeners = new Listeners();
  const readVersion = (): string =>
    String((db.prepare(`SELECT value FROM portcullis_meta WHERE key = 'config_version'`).get() as { value: number }).value);
  let lastSeen = readVersion();
  let closed = false;

  const poll = setInterval(() => {
    if (closed || mutex.busy) return;
    try {
      const v = readVersion();
      if (v !== lastSeen) {
        lastSeen = v;
        listeners.emit();
      }
    } catch {
      // A busy database is retried on the next tick.
    }
  }, opts.pollIntervalMs ?? 500);
  poll.unref();

  async function transaction<T>(fn: (tx: SqlConfigTx) => Promise<T>, force = false): Promise<T> {
    if (closed) throw new GatewayError('GW_STORE_UNAVAILABLE', 'store closed', { status: 503 });
    const changed = await mutex.run(async () => {
      let dirty = force;
      const tx = createSqlTx({ run, markDirty: () => (dirty = true), mapError: mapSqliteError });
      try {
        db.exec('BEGIN IMMEDIATE');
      } catch (err) {
        throw mapSqliteError(err);
      }
      try {
        const result = await fn(tx);
        if (dirty) db.exec(`UPDATE portcullis_meta SET value = value + 1 WHERE key = 'config_version'`);
        db.exec('COMMIT');
        if (dirty) lastSeen = readVersion();
        return { result, dirty };
      } catch (err) {
        if (db.isTransaction) db.exec('ROLLBACK');
        throw mapSqliteError(err);
      }
    });
    if (changed.dirty) listeners.emit();
    return changed.result;
  }

  const read = <T>(fn: (tx: ConfigTx) => Promise<T>): Promise<T> =>
    mutex.run(() => fn(createSqlTx({ run, markDirty: () => {}, mapError: mapSqliteError })));

  return {
    kind: 'sqlite',
    readOnly: false,
    ...txOperations(read, transaction),
    load: () =>
      mutex.run(async () => {
        // One read transaction gives a consistent view across the five tables.
        db.exec('BEGIN');
        try {
          return await loadAll(run);
        } finally {
          db.exec('COMMIT');
        }
      }),
    version: () => mutex.run(async () => readVersion()),
    onChange: (l) => listeners.add(l),
    transaction: (fn) => transaction(fn),
    replaceAll: (data: ConfigData) => transaction((tx) => writeAll(tx, data), true),
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(poll);
      await mutex.run(async () => db.close());
    },
  };
}
