/**
 * Storage ports. Adapters: memory, sqlite (node:sqlite), postgres (pg), redis (ioredis).
 * One conformance suite runs against every adapter of a port.
 */
import type { ConfigData, EntityName, EntityOf } from '../config/types.ts';

/** A small key-value store with TTL and atomic operations (sessions, single-use state, locks, caches). */
export interface KeyValueStore {
  get(key: string): Promise<string | null>;
  /**
   * `get` answered synchronously, offered only by stores that can answer without waiting (the
   * in-process memory store; SQLite, whose node:sqlite calls are synchronous anyway): hot paths
   * use it to skip a Promise and fall back to `get` when absent.
   */
  peek?(key: string): string | null;
  /** ttlMs omitted = no expiry. */
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  /** Sets only when the key is absent; true when this call set it (locks, single-use markers). */
  add(key: string, value: string, ttlMs?: number): Promise<boolean>;
  /**
   * Live entries whose key starts with `prefix`, in key order, after the key `after` (paging),
   * at most `limit`. Offered by the memory, SQLite and PostgreSQL stores (Admin API listings of
   * records kept here, e.g. `/oauth2_tokens`).
   */
  scan?(prefix: string, after: string | null, limit: number): Promise<Array<{ key: string; value: string }>>;
  /**
   * Atomic counter: adds `by` to the integer stored at `key` and returns the new value. An absent
   * or expired key is created holding `by`, expiring `ttlMs` from now; a live key keeps its expiry.
   * Concurrent calls (from any process sharing the store) never lose an increment. Offered by the
   * memory, SQLite, PostgreSQL and Redis stores (rate-limiting `policy: cluster`).
   */
  incr?(key: string, by: number, ttlMs: number): Promise<number>;
  /** Atomic get-and-delete: at most one caller ever receives a given value. */
  take(key: string): Promise<string | null>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}

export interface ListOptions {
  /** Opaque paging cursor from a previous page. */
  offset?: string | null;
  /** Page size (Kong: default 100, max 1000). */
  size?: number;
  tags?: readonly string[];
  /** 'and' (tags=a,b) or 'or' (tags=a/b), as Kong. */
  tagsMode?: 'and' | 'or';
  /** Only rows whose foreign key `field` points at `id` (nested collections: /services/{s}/routes). */
  foreign?: { field: ForeignField; id: string };
}

/** A foreign-key field a list can be filtered by (the entity descriptor's `foreignKeys`). */
export type ForeignField = string;

/** A single-field unique key an entity can be looked up by (the entity descriptor's `uniqueKeys`). */
export type UniqueKey = string;

export interface ListPage<T> {
  data: T[];
  /** Cursor for the next page, null on the last one. */
  offset: string | null;
}

/** Reads and writes inside one transaction. */
export interface ConfigTx {
  get<E extends EntityName>(entity: E, id: string): Promise<EntityOf<E> | null>;
  /**
   * Looks an entity up by one of its descriptor's `uniqueKeys` (services/routes `name`, consumers
   * `username` or `custom_id`, plugins `instance_name`). Null when absent.
   */
  findBy<E extends EntityName>(entity: E, key: UniqueKey, value: string): Promise<EntityOf<E> | null>;
  list<E extends EntityName>(entity: E, opts?: ListOptions): Promise<ListPage<EntityOf<E>>>;
  insert<E extends EntityName>(entity: E, row: EntityOf<E>): Promise<void>;
  update<E extends EntityName>(entity: E, row: EntityOf<E>): Promise<void>;
  delete(entity: EntityName, id: string): Promise<void>;
}

/** Where the node's configuration lives: a declarative file (`off`), SQLite, or PostgreSQL. */
export interface ConfigStore extends ConfigTx {
  readonly kind: 'off' | 'sqlite' | 'postgres';
  /** True in DB-less mode: only a whole replacement (`POST /config`) may change it. */
  readonly readOnly: boolean;
  /** Everything, for building a Snapshot. */
  load(): Promise<ConfigData>;
  /** Changes on every committed write; cheap to call (periodic version checks). */
  version(): Promise<string>;
  /** Called after a change committed by anyone (this process, another node). Returns unsubscribe. */
  onChange(listener: () => void): () => void;
  /** Runs `fn` atomically: all of its writes commit, or none. */
  transaction<T>(fn: (tx: ConfigTx) => Promise<T>): Promise<T>;
  /** Replace everything atomically (POST /config, config sync). */
  replaceAll(data: ConfigData): Promise<void>;
  close(): Promise<void>;
}
