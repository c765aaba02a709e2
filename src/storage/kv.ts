/**
 * `KeyValueStore` adapters: memory (one process), sqlite (every process on one file), postgres
 * (every node), redis. Expiry is absolute wall-clock milliseconds; expired entries read as absent
 * and are swept lazily.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { Redis, type RedisOptions } from 'ioredis';
import type pg from 'pg';
import type { KeyValueStore } from './ports.ts';
import { kvMigrations } from './sql-common.ts';
import { migrateSqlite, openSqliteDatabase } from './sqlite.ts';
import { createPgPool, mapPgError, migratePg, type PgSettings } from './postgres.ts';

export interface MemoryKvOptions {
  /** Oldest entries are evicted beyond this many (default 10000). */
  maxEntries?: number;
  now?: () => number;
}

/** The integer `incr` adds to; anything else stored at the key is an error. */
function counterValue(key: string, value: string): number {
  if (!/^-?\d+$/.test(value)) throw new Error(`incr: the value at ${JSON.stringify(key)} is not an integer`);
  return Number(value);
}

/** `incr`'s arguments: a safe integer step and a positive TTL. */
function checkIncr(by: number, ttlMs: number): void {
  if (!Number.isSafeInteger(by)) throw new Error(`incr: by must be an integer, got ${by}`);
  if (!(ttlMs > 0)) throw new Error(`incr: ttlMs must be > 0, got ${ttlMs}`);
}

/** Bounded in-process store. Map iteration order is insertion order, which gives FIFO eviction. */
export function createMemoryKv(opts: MemoryKvOptions = {}): KeyValueStore {
  const max = opts.maxEntries ?? 10000;
  const now = opts.now ?? Date.now;
  const map = new Map<string, { value: string; expiresAt: number | null }>();
  const live = (key: string) => {
    const e = map.get(key);
    if (!e) return null;
    if (e.expiresAt !== null && e.expiresAt <= now()) {
      map.delete(key);
      return null;
    }
    return e;
  };
  const put = (key: string, value: string, ttlMs?: number) => {
    map.delete(key); // re-insert at the end (most recent)
    map.set(key, { value, expiresAt: ttlMs === undefined ? null : now() + ttlMs });
    while (map.size > max) {
      const oldest = map.keys().next().value as string;
      map.delete(oldest);
    }
  };
  return {
    async get(key) {
      return live(key)?.value ?? null;
    },
    peek(key) {
      return live(key)?.value ?? null;
    },
    async set(key, value, ttlMs) {
      put(key, value, ttlMs);
    },
    async add(key, value, ttlMs) {
      if (live(key)) return false;
      put(key, value, ttlMs);
      return true;
    },
    async incr(key, by, ttlMs) {
      checkIncr(by, ttlMs);
      const e = live(key);
      if (e === null) {
        put(key, String(by), ttlMs);
        return by;
      }
      const n = counterValue(key, e.value) + by;
      e.value = String(n); // keeps its expiry (and its place in the eviction order)
      return n;
    },
    async take(key) {
      const e = live(key);
      map.delete(key);
      return e?.value ?? null;
    },
    async delete(key) {
      map.delete(key);
    },
    async scan(prefix, after, limit) {
      const keys = [...map.keys()].filter((k) => k.startsWith(prefix) && (after === null || k > after)).sort();
      const out: Array<{ key: string; value: string }> = [];
      for (const k of keys) {
        const e = live(k);
        if (e !== null) out.push({ key: k, value: e.value });
        if (out.length >= limit) break;
      }
      return out;
    },
    async close() {
      map.clear();
    },
  };
}

/** SQL shared by the SQLite and PostgreSQL adapters (`$1` placeholders; SQLite gets `?1`). */
const kvSql = {
  get: `SELECT value FROM portcullis_kv WHERE key = $1 AND (expires_at IS NULL OR expires_at > $2)`,
  set: `INSERT INTO portcullis_kv (key, value, expires_at) VALUES ($1, $2, $3)
        ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
  // Inserts, or overwrites only an expired entry; a returned row means this call won.
  add: `INSERT INTO portcullis_kv (key, value, expires_at) VALUES ($1, $2, $3)
        ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
        WHERE portcullis_kv.expires_at IS NOT NULL AND portcullis_kv.expires_at <= $4 RETURNING key`,
  // One statement, so concurrent callers (any process, any node) serialize on the row: absent or
  // expired → `$2` with expiry `$3`; live → value + `$5`, expiry kept. `$4` = now. The same text
  // runs on SQLite (BIGINT has integer affinity there) and PostgreSQL. A live value that is not an
  // integer fails: PostgreSQL's cast refuses it; SQLite's casts to 0, so the CASE yields NULL there
  // and the NOT NULL column refuses the write.
  incr: `INSERT INTO portcullis_kv (key, value, expires_at) VALUES ($1, $2, $3)
        ON CONFLICT (key) DO UPDATE SET
          value = CASE WHEN portcullis_kv.expires_at IS NOT NULL AND portcullis_kv.expires_at <= $4 THEN excluded.value
                       WHEN CAST(CAST(portcullis_kv.value AS BIGINT) AS TEXT) = portcullis_kv.value
                         THEN CAST(CAST(portcullis_kv.value AS BIGINT) + CAST($5 AS BIGINT) AS TEXT) END,
          expires_at = CASE WHEN portcullis_kv.expires_at IS NOT NULL AND portcullis_kv.expires_at <= $4 THEN excluded.expires_at
                            ELSE portcullis_kv.expires_at END
        RETURNING value`,
  take: `DELETE FROM portcullis_kv WHERE key = $1 RETURNING value, expires_at`,
  delete: `DELETE FROM portcullis_kv WHERE key = $1`,
  sweep: `DELETE FROM portcullis_kv WHERE expires_at IS NOT NULL AND expires_at <= $1`,
  // Keys matching the prefix pattern $2, after the paging key $1 ('' = from the start).
  scan: `SELECT key, value FROM portcullis_kv WHERE key > $1 AND key LIKE $2 ESCAPE '\\' AND (expires_at IS NULL OR expires_at > $3) ORDER BY key LIMIT $4`,
};

type Exec = (sql: string, params: unknown[]) => Promise<Record<string, unknown>[]>;

function sqlKv(exec: Exec, now: () => number, close: () => Promise<void>, sweepEveryMs = 60000): KeyValueStore {
  const exp = (ttlMs?: number) => (ttlMs === undefined ? null : now() + ttlMs);
  const sweep = setInterval(() => void exec(kvSql.sweep, [now()]).catch(() => {}), sweepEveryMs);
  sweep.unref();
  return {
    async get(key) {
      const rows = await exec(kvSql.get, [key, now()]);
      return rows.length ? String(rows[0].value) : null;
    },
    async set(key, value, ttlMs) {
      await exec(kvSql.set, [key, value, exp(ttlMs)]);
    },
    async add(key, value, ttlMs) {
      return (await exec(kvSql.add, [key, value, exp(ttlMs), now()])).length > 0;
    },
    async incr(key, by, ttlMs) {
      checkIncr(by, ttlMs);
      const rows = await exec(kvSql.incr, [key, String(by), exp(ttlMs), now(), by]);
      return counterValue(key, String(rows[0].value));
    },
    async take(key) {
      // DELETE ... RETURNING is atomic: of two concurrent takers only one gets the row.
      const rows = await exec(kvSql.take, [key]);
      if (!rows.length) return null;
      const e = rows[0].expires_at;
      if (e !== null && e !== undefined && Number(e) <= now()) return null;
      return String(rows[0].value);
    },
    async delete(key) {
      await exec(kvSql.delete, [key]);
    },
    async scan(prefix, after, limit) {
      const pattern = `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      const rows = await exec(kvSql.scan, [after ?? '', pattern, now(), limit]);
      return rows.map((r) => ({ key: String(r.key), value: String(r.value) }));
    },
    async close() {
      clearInterval(sweep);
      await close();
    },
  };
}

export interface SqliteKvOptions {
  path: string;
  now?: () => number;
}

/**
 * KV on a SQLite file; several processes may open the same file. node:sqlite answers
 * synchronously, so this store also offers `peek` (hot paths skip a Promise); each statement is
 * prepared once.
 */
export function createSqliteKv(opts: SqliteKvOptions): KeyValueStore {
  const db: DatabaseSync = openSqliteDatabase(opts.path);
  migrateSqlite(db, kvMigrations, 'portcullis_kv_migrations');
  const now = opts.now ?? Date.now;
  const prepared = new Map<string, { stmt: StatementSync; rows: boolean }>();
  const statement = (sql: string): { stmt: StatementSync; rows: boolean } => {
    let p = prepared.get(sql);
    if (p === undefined) {
      p = { stmt: db.prepare(sql.replace(/\$(\d+)/g, '?$1')), rows: /RETURNING|^\s*SELECT/i.test(sql) };
      prepared.set(sql, p);
    }
    return p;
  };
  const run = (sql: string, params: unknown[]): Record<string, unknown>[] => {
    const { stmt, rows } = statement(sql);
    const args = params.map((p) => (p === undefined ? null : (p as string | number | null)));
    if (rows) return stmt.all(...args) as Record<string, unknown>[];
    stmt.run(...args);
    return [];
  };
  const exec: Exec = async (sql, params) => run(sql, params);
  const kv = sqlKv(exec, now, async () => {
    prepared.clear();
    db.close();
  });
  kv.peek = (key) => {
    const row = statement(kvSql.get).stmt.get(key, now()) as { value: unknown } | undefined;
    return row === undefined ? null : String(row.value);
  };
  return kv;
}

export interface PgKvOptions {
  pg: PgSettings;
  now?: () => number;
}

export async function createPgKv(opts: PgKvOptions): Promise<KeyValueStore> {
  const pool: pg.Pool = createPgPool({ ...opts.pg, max: opts.pg.max ?? 5 });
  try {
    await migratePg(pool, opts.pg, kvMigrations);
  } catch (err) {
    await pool.end().catch(() => {});
    throw mapPgError(err);
  }
  const exec: Exec = async (sql, params) => {
    try {
      return (await pool.query(sql, params)).rows;
    } catch (err) {
      throw mapPgError(err);
    }
  };
  return sqlKv(exec, opts.now ?? Date.now, () => pool.end());
}

export interface RedisKvOptions {
  url?: string;
  options?: RedisOptions;
  /** Prepended to every key (default `portcullis:`). */
  prefix?: string;
}

/** Redis adapter: SET NX PX for `add`, GETDEL (Redis ≥ 6.2) for an atomic `take`, MULTI (SET NX PX + INCRBY) for `incr`. */
export function createRedisKv(opts: RedisKvOptions): KeyValueStore {
  const common: RedisOptions = { connectTimeout: 5000, commandTimeout: 5000, maxRetriesPerRequest: 2, lazyConnect: false, ...opts.options };
  const redis = opts.url ? new Redis(opts.url, common) : new Redis(common);
  redis.on('error', () => {}); // ioredis reconnects by itself; command errors reach the caller
  const p = opts.prefix ?? 'portcullis:';
  return {
    async get(key) {
      return redis.get(p + key);
    },
    async set(key, value, ttlMs) {
      if (ttlMs === undefined) await redis.set(p + key, value);
      else await redis.set(p + key, value, 'PX', Math.max(1, Math.ceil(ttlMs)));
    },
    async add(key, value, ttlMs) {
      const r = ttlMs === undefined
        ? await redis.set(p + key, value, 'NX')
        : await redis.set(p + key, value, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX');
      return r === 'OK';
    },
    async incr(key, by, ttlMs) {
      checkIncr(by, ttlMs);
      // SET NX PX creates an absent (or expired) key at 0 with the TTL; INCRBY keeps a key's TTL.
      const k = p + key;
      const result = await redis.multi().set(k, '0', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX').incrby(k, by).exec();
      if (result === null) throw new Error('Redis discarded the transaction');
      for (const [err] of result) if (err) throw err;
      return Number(result[1][1]);
    },
    async take(key) {
      return redis.getdel(p + key);
    },
    async delete(key) {
      await redis.del(p + key);
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
