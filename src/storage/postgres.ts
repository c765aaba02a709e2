/**
 * PostgreSQL config store, shared by every gateway node of a cluster.
 *
 * Change propagation: each committing write bumps a version counter and calls `pg_notify` in the
 * same transaction (PostgreSQL delivers the notification only if the transaction commits). Every
 * node LISTENs on a dedicated connection; because notifications are lost while that connection is
 * down, a periodic version check catches up after reconnects and for anything missed.
 *
 * Failures: the pool drops broken connections by itself; the LISTEN connection reconnects with
 * backoff. A node whose database is gone keeps serving the config it last loaded — store calls
 * fail with GW_STORE_UNAVAILABLE (503) and nothing here ever throws asynchronously.
 */
import pg from 'pg';
import type { ConfigData } from '../config/types.ts';
import { GatewayError, isGatewayError } from '../errors.ts';
import type { ConfigStore, ConfigTx } from './ports.ts';
import { configMigrations, createSqlTx, loadAll, writeAll, type Migration, type SqlConfigTx, type SqlRunner } from './sql-common.ts';
import { Listeners, sleep, txOperations } from './util.ts';

export interface PgSettings {
  /** A `postgres://` URL; wins over the individual fields. */
  url?: string;
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  /** Schema holding Portcullis' tables (default `public`). Created by migrations when missing. */
  schema?: string;
  /** Pool size (default 10). */
  max?: number;
  /** Connect timeout (ms, default 5000). */
  connectTimeoutMs?: number;
  /** Per-statement timeout (ms, default 15000). */
  queryTimeoutMs?: number;
  /** Reported as application_name (default `portcullis_<schema>`, or `portcullis` for `public`). */
  applicationName?: string;
}

export interface PgStoreOptions {
  pg: PgSettings;
  /** Version check interval (ms, default 1000). */
  pollIntervalMs?: number;
  /** Run pending migrations on open (default true). */
  migrate?: boolean;
}

const schemaPattern = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export function pgSchema(settings: PgSettings): string {
  const schema = settings.schema ?? 'public';
  if (!schemaPattern.test(schema)) throw new Error(`invalid PostgreSQL schema name: ${schema}`);
  return schema;
}

/** Client configuration for `pg` (search_path pinned to the schema on every connection). */
export function pgClientConfig(settings: PgSettings): pg.ClientConfig {
  const schema = pgSchema(settings);
  const base: pg.ClientConfig = settings.url
    ? { connectionString: settings.url }
    : { host: settings.host ?? '127.0.0.1', port: settings.port ?? 5432, user: settings.user ?? 'postgres', password: settings.password, database: settings.database ?? 'portcullis' };
  return {
    ...base,
    options: `-c search_path=${schema}`,
    connectionTimeoutMillis: settings.connectTimeoutMs ?? 5000,
    query_timeout: settings.queryTimeoutMs ?? 15000,
    statement_timeout: settings.queryTimeoutMs ?? 15000,
    // Naming the schema lets operators (and tests) tell the connections of clusters apart.
    application_name: (settings.applicationName ?? (schema === 'public' ? 'portcullis' : `portcullis_${schema}`)).slice(0, 63),
    keepAlive: true,
  };
}

export function createPgPool(settings: PgSettings): pg.Pool {
  const pool = new pg.Pool({ ...pgClientConfig(settings), max: settings.max ?? 10, idleTimeoutMillis: 30000 });
  // An idle client dying (server restart, pg_terminate_backend) is reported here; without a
  // listener it would crash the process. The pool discards that client by itself.
  pool.on('error', () => {});
  // A checked-out client whose connection dies emits 'error' with no pool listener attached:
  // unhandled, that would crash the process. The failing query rejects anyway, so the error is
  // seen (and mapped to GW_STORE_UNAVAILABLE) by whoever issued it.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  if (!e) return false;
  if (e.code && /^(08|57P)/.test(e.code)) return true;
  if (e.code && ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND'].includes(e.code)) return true;
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable|Query read timeout/i.test(e.message ?? '');
}

/** Why a connection to PostgreSQL failed, in words an operator can act on. */
export function describePgConnectError(err: unknown, settings: PgSettings): string {
  const e = err as { code?: string; message?: string; errors?: { code?: string }[] } | undefined;
  const where = settings.url ? 'the PostgreSQL server of PORTCULLIS_PG_URL' : `PostgreSQL at ${settings.host ?? '127.0.0.1'}:${settings.port ?? 5432}`;
  const code = e?.code ?? e?.errors?.[0]?.code;
  switch (code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot connect to ${where}: host not found`;
    case 'ECONNREFUSED':
      return `cannot connect to ${where}: connection refused (is the server running and listening there?)`;
    case 'ETIMEDOUT':
      return `cannot connect to ${where}: timed out`;
    case '28P01':
    case '28000':
      return `cannot connect to ${where}: authentication failed for user "${settings.user ?? 'postgres'}" (check PORTCULLIS_PG_USER / PORTCULLIS_PG_PASSWORD)`;
    case '3D000':
      return `cannot connect to ${where}: database "${settings.database ?? 'portcullis'}" does not exist`;
    default:
      if (/timeout/i.test(e?.message ?? '')) return `cannot connect to ${where}: timed out`;
      return `cannot connect to ${where}: ${e?.message || code || 'unknown error'}`;
  }
}

export function mapPgError(err: unknown): unknown {
  if (err instanceof GatewayError) return err;
  const e = err as { code?: string; detail?: string; constraint?: string };
  if (e?.code === '23505') {
    return new GatewayError('GW_STORE_CONFLICT', 'unique constraint violation', { status: 409, cause: err, detail: e.constraint });
  }
  if (isConnectionError(err)) {
    return new GatewayError('GW_STORE_UNAVAILABLE', 'database unavailable', { status: 503, cause: err });
  }
  return err;
}

function runner(client: pg.PoolClient | pg.Client): SqlRunner {
  return async (sql, params = []) => (await client.query(sql, params as unknown[])).rows;
}

/**
 * Applies pending migrations under an advisory lock, so nodes starting together do not race.
 * Returns the names applied.
 */
export async function migratePg(pool: pg.Pool, settings: PgSettings, migrations: readonly Migration[] = configMigrations): Promise<string[]> {
  const schema = pgSchema(settings);
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [`portcullis_migrations:${schema}`]);
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      await client.query(`CREATE TABLE IF NOT EXISTS portcullis_migrations (name TEXT PRIMARY KEY, executed_at BIGINT NOT NULL)`);
      const done = new Set((await client.query<{ name: string }>('SELECT name FROM portcullis_migrations')).rows.map((r) => r.name));
      const applied: string[] = [];
      for (const m of migrations) {
        if (done.has(m.name)) continue;
        await client.query('BEGIN');
        try {
          for (const stmt of m.up) await client.query(stmt);
          await client.query('INSERT INTO portcullis_migrations (name, executed_at) VALUES ($1, $2)', [m.name, Math.floor(Date.now() / 1000)]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          throw err;
        }
        applied.push(m.name);
      }
      return applied;
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`portcullis_migrations:${schema}`]);
    }
  } finally {
    client.release();
  }
}

/** Names of executed and pending migrations. */
export async function pgMigrationStatus(pool: pg.Pool, migrations: readonly Migration[] = configMigrations): Promise<{ executed: string[]; pending: string[] }> {
  let executed: string[] = [];
  try {
    executed = (await pool.query<{ name: string }>('SELECT name FROM portcullis_migrations ORDER BY name')).rows.map((r) => r.name);
  } catch (err) {
    if ((err as { code?: string }).code !== '42P01') throw err; // undefined_table: nothing bootstrapped yet
  }
  return { executed, pending: migrations.map((m) => m.name).filter((n) => !executed.includes(n)) };
}

export async function openPgConfigStore(opts: PgStoreOptions): Promise<ConfigStore> {
  const settings = opts.pg;
  const schema = pgSchema(settings);
  const channel = `portcullis_config_${schema}`;
  const pool = createPgPool(settings);
  if (opts.migrate ?? true) {
    try {
      await migratePg(pool, settings);
    } catch (err) {
      await pool.end().catch(() => {});
      const mapped = mapPgError(err);
      // At start, say why: host not found, connection refused, authentication, missing database.
      if (isGatewayError(mapped) && mapped.code === 'GW_STORE_UNAVAILABLE' || ['28P01', '28000', '3D000'].includes((err as { code?: string }).code ?? '')) {
        throw new GatewayError('GW_STORE_UNAVAILABLE', describePgConnectError(err, settings), { status: 503, cause: err });
      }
      throw mapped;
    }
  }
  const listeners = new Listeners();
  let lastSeen = '';
  let closed = false;
  let listenClient: pg.Client | null = null;

  async function readVersion(): Promise<string> {
    const r = await pool.query<{ value: string }>(`SELECT value FROM portcullis_meta WHERE key = 'config_version'`);
    return String(r.rows[0]?.value ?? '0');
  }

  /** Fires listeners when the version moved since we last looked. */
  async function check(): Promise<void> {
    if (closed) return;
    try {
      const v = await readVersion();
      if (v !== lastSeen) {
        lastSeen = v;
        listeners.emit();
      }
    } catch {
      // Database away: keep the last config; the next tick tries again.
    }
  }

  async function connectListener(): Promise<void> {
    let delay = 250;
    while (!closed) {
      const client = new pg.Client(pgClientConfig(settings));
      try {
        client.on('error', () => {}); // handled through 'end'
        await client.connect();
        client.on('notification', (msg) => {
          if (msg.channel !== channel) return;
          // The payload is the committed version: no round trip needed to learn it.
          const v = msg.payload && /^\d+$/.test(msg.payload) ? msg.payload : null;
          if (v === null) void check();
          else if (lastSeen === '' || BigInt(v) > BigInt(lastSeen)) {
            lastSeen = v;
            listeners.emit();
          }
        });
        client.on('end', () => {
          if (listenClient === client) listenClient = null;
          if (!closed) void connectListener();
        });
        await client.query(`LISTEN "${channel}"`);
        if (closed) {
          await client.end().catch(() => {});
          return;
        }
        listenClient = client;
        void check(); // anything committed while we were not listening
        return;
      } catch {
        await client.end().catch(() => {});
        await sleep(delay);
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  lastSeen = await readVersion().catch(() => '');
  // Wait briefly for LISTEN so a fresh node hears the very next change; if the database is slow
  // to accept it, the loop keeps trying in the background and the version poll covers the gap.
  await Promise.race([connectListener(), sleep(3000)]);
  const poll = setInterval(() => void check(), opts.pollIntervalMs ?? 1000);
  poll.unref();

  async function transaction<T>(fn: (tx: SqlConfigTx) => Promise<T>, force = false): Promise<T> {
    if (closed) throw new GatewayError('GW_STORE_UNAVAILABLE', 'store closed', { status: 503 });
    // One retry when the connection broke before anything committed (a stale pooled connection
    // after a database restart is the usual case).
    for (let attempt = 0; ; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        if (attempt === 0 && isConnectionError(err)) continue;
        throw mapPgError(err);
      }
      let dirty = force;
      let broken = false;
      try {
        const run = runner(client);
        await client.query('BEGIN');
        const tx = createSqlTx({ run, markDirty: () => (dirty = true), mapError: mapPgError });
        const result = await fn(tx);
        if (dirty) {
          const r = await client.query<{ value: string }>(
            `UPDATE portcullis_meta SET value = value + 1 WHERE key = 'config_version' RETURNING value`,
          );
          await client.query('SELECT pg_notify($1, $2)', [channel, String(r.rows[0].value)]);
          lastSeen = String(r.rows[0].value);
        }
        await client.query('COMMIT');
        if (dirty) listeners.emit();
        return result;
      } catch (err) {
        broken = isConnectionError(err) || isConnectionError((err as { cause?: unknown }).cause);
        if (!broken) await client.query('ROLLBACK').catch(() => {});
        if (broken && attempt === 0) continue;
        throw mapPgError(err);
      } finally {
        client.release(broken);
      }
    }
  }

  async function read<T>(fn: (tx: ConfigTx, run: SqlRunner) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn(createSqlTx({ run: runner0, markDirty: () => {}, mapError: (e) => e }), runner0);
      } catch (err) {
        if (attempt === 0 && isConnectionError(err)) continue;
        throw mapPgError(err);
      }
    }
  }
  const runner0: SqlRunner = async (sql, params = []) => (await pool.query(sql, params as unknown[])).rows;

  return {
    kind: 'postgres',
    readOnly: false,
    ...txOperations(read, transaction),
    async load(): Promise<ConfigData> {
      // REPEATABLE READ: the five tables are read from one snapshot.
      for (let attempt = 0; ; attempt++) {
        let client: pg.PoolClient | undefined;
        try {
          client = await pool.connect();
          await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
          const data = await loadAll(runner(client));
          await client.query('COMMIT');
          client.release();
          return data;
        } catch (err) {
          client?.release(true);
          if (attempt === 0 && isConnectionError(err)) continue;
          throw mapPgError(err);
        }
      }
    },
    version: () => read(() => readVersion()),
    onChange: (l) => listeners.add(l),
    transaction: (fn) => transaction(fn),
    replaceAll: (data) => transaction((tx) => writeAll(tx, data), true),
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(poll);
      const c = listenClient;
      listenClient = null;
      await c?.end().catch(() => {});
      await pool.end().catch(() => {});
    },
  };
}

