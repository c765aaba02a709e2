/**
 * The storage folder's door: factories for config stores and key-value stores, and the
 * PORTCULLIS_* environment settings that choose between them.
 */
import type { ConfigData } from '../config/types.ts';
import type { ConfigStore, KeyValueStore } from './ports.ts';
import { openMemoryConfigStore } from './memory.ts';
import { openSqliteConfigStore } from './sqlite.ts';
import { openPgConfigStore, type PgSettings } from './postgres.ts';
import { createMemoryKv, createPgKv, createRedisKv, createSqliteKv } from './kv.ts';

export type { ConfigStore, ConfigTx, KeyValueStore, ListOptions, ListPage } from './ports.ts';
export type { PgSettings } from './postgres.ts';
export { dbLessWriteMessage, openMemoryConfigStore } from './memory.ts';
export { createPgPool, migratePg, pgMigrationStatus } from './postgres.ts';
export { configMigrations } from './sql-common.ts';

export const databaseKinds = ['off', 'sqlite', 'postgres'] as const;
export type DatabaseKind = (typeof databaseKinds)[number];

export interface StoreSettings {
  database: DatabaseKind;
  /** SQLite file (default `portcullis.db`). */
  sqlitePath?: string;
  pg?: PgSettings;
  /** The declarative data the `off` store starts with. */
  declarative?: ConfigData;
  /** Change-check interval override (ms). */
  pollIntervalMs?: number;
}

/**
 * Opens the config store the settings name. `off` without declarative data starts empty
 * (a `POST /config` fills it).
 */
export async function openConfigStore(settings: StoreSettings): Promise<ConfigStore> {
  switch (settings.database) {
    case 'off':
      return openMemoryConfigStore({ data: settings.declarative, readOnly: true });
    case 'sqlite':
      return openSqliteConfigStore({ path: settings.sqlitePath ?? 'portcullis.db', pollIntervalMs: settings.pollIntervalMs });
    case 'postgres':
      return openPgConfigStore({ pg: settings.pg ?? {}, pollIntervalMs: settings.pollIntervalMs });
  }
}

export type KvSettings =
  | { kind: 'memory'; maxEntries?: number }
  | { kind: 'sqlite'; path: string }
  | { kind: 'postgres'; pg: PgSettings }
  | { kind: 'redis'; url?: string; prefix?: string };

export async function openKvStore(settings: KvSettings): Promise<KeyValueStore> {
  switch (settings.kind) {
    case 'memory':
      return createMemoryKv({ maxEntries: settings.maxEntries });
    case 'sqlite':
      return createSqliteKv({ path: settings.path });
    case 'postgres':
      return createPgKv({ pg: settings.pg });
    case 'redis':
      return createRedisKv({ url: settings.url, prefix: settings.prefix });
  }
}

/**
 * Reads PORTCULLIS_DATABASE (`off` | `sqlite` | `postgres`; default `sqlite`, or `off` when
 * PORTCULLIS_DECLARATIVE_CONFIG is set), PORTCULLIS_SQLITE_PATH, PORTCULLIS_PG_URL and
 * PORTCULLIS_PG_HOST/PORT/USER/PASSWORD/DATABASE/SCHEMA.
 */
export function readStoreSettings(env: Record<string, string | undefined> = process.env): StoreSettings {
  const raw = env.PORTCULLIS_DATABASE?.trim().toLowerCase();
  const database: DatabaseKind = raw
    ? ((databaseKinds as readonly string[]).includes(raw) ? (raw as DatabaseKind) : fail(`PORTCULLIS_DATABASE must be one of ${databaseKinds.join(', ')}`))
    : env.PORTCULLIS_DECLARATIVE_CONFIG ? 'off' : 'sqlite';
  const port = env.PORTCULLIS_PG_PORT ? Number(env.PORTCULLIS_PG_PORT) : undefined;
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) fail('PORTCULLIS_PG_PORT must be a port number');
  const pg: PgSettings = {
    url: env.PORTCULLIS_PG_URL || undefined,
    host: env.PORTCULLIS_PG_HOST || undefined,
    port,
    user: env.PORTCULLIS_PG_USER || undefined,
    password: env.PORTCULLIS_PG_PASSWORD || undefined,
    database: env.PORTCULLIS_PG_DATABASE || undefined,
    schema: env.PORTCULLIS_PG_SCHEMA || undefined,
  };
  return { database, sqlitePath: env.PORTCULLIS_SQLITE_PATH || 'portcullis.db', pg };
}

function fail(message: string): never {
  throw new Error(message);
}
