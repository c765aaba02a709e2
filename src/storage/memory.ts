/**
 * In-memory config store. As the `off` store (DB-less mode) it holds the declarative file's data
 * and is read-only except for a whole replacement (`POST /config`), as Kong's DB-less mode.
 * With `readOnly: false` it is a plain in-process store (tools and tests).
 *
 * Transactions work on a copy that replaces the live data only when `fn` succeeds, so a failed
 * write leaves nothing half-applied.
 */
import type { ConfigData, EntityName, EntityOf } from '../config/types.ts';
import { emptyConfig, entityNames } from '../config/types.ts';
import { compositeLabel, compositeValue, uniqueValue } from '../config/entity.ts';
import { descriptorOf } from '../config/entities/index.ts';
import { GatewayError } from '../errors.ts';
import type { ConfigStore, ConfigTx, ListOptions, ListPage } from './ports.ts';
import { assertFindKey, assertForeignField, decodeOffset, encodeOffset, matchesTags, pageSize } from './sql-common.ts';
import { Listeners, Mutex, txOperations } from './util.ts';

export interface MemoryStoreOptions {
  data?: ConfigData;
  /** Default true (the `off` store). */
  readOnly?: boolean;
}

/** Message Kong's DB-less mode answers writes with (405). */
export const dbLessWriteMessage = 'cannot create, update or delete entities when the database is off (declarative mode); use POST /config to replace the configuration';

function clone(data: ConfigData): ConfigData {
  return structuredClone(data);
}

/** Same uniqueness rules as the SQL tables' constraints (from the entity descriptor). */
function checkUnique(data: ConfigData, entity: EntityName, row: Record<string, unknown>): void {
  const d = descriptorOf(entity);
  const conflict = (label: string) => new GatewayError('GW_STORE_CONFLICT', 'unique constraint violation', { status: 409, detail: `${entity}.${label}` });
  const others = (data[entity] as unknown as Record<string, unknown>[]).filter((o) => o.id !== row.id);
  for (const field of d.uniqueKeys) {
    const mine = uniqueValue(d, row, field);
    if (mine !== null && others.some((o) => uniqueValue(d, o, field) === mine)) throw conflict(field);
  }
  for (const key of d.compositeKeys) {
    const mine = compositeValue(d, row, key);
    if (others.some((o) => compositeValue(d, o, key) === mine)) throw conflict(compositeLabel(key));
  }
}

function memoryTx(data: ConfigData, onWrite: () => void): ConfigTx {
  const rows = <E extends EntityName>(e: E) => data[e] as EntityOf<E>[];
  return {
    async get(entity, id) {
      return structuredClone(rows(entity).find((r) => r.id === id) ?? null);
    },
    async findBy(entity, key, value) {
      assertFindKey(entity, key);
      const d = descriptorOf(entity);
      const hit = rows(entity).find((r) => uniqueValue(d, r as unknown as Record<string, unknown>, key) === value);
      return structuredClone(hit ?? null);
    },
    async list<E extends EntityName>(entity: E, opts?: ListOptions): Promise<ListPage<EntityOf<E>>> {
      const size = pageSize(opts);
      const start = decodeOffset(opts?.offset);
      let all = rows(entity);
      const fk = opts?.foreign;
      if (fk) {
        assertForeignField(entity, fk.field);
        // Filtering changes indexes: the cursor counts positions in the filtered sequence.
        all = all.filter((r) => ((r as unknown as Record<string, { id?: string } | null>)[fk.field])?.id === fk.id);
      }
      const out: EntityOf<E>[] = [];
      let i = start;
      for (; i < all.length && out.length < size; i++) {
        if (matchesTags(all[i] as { tags?: unknown }, opts)) out.push(structuredClone(all[i]));
      }
      const more = all.slice(i).some((r) => matchesTags(r as { tags?: unknown }, opts));
      return { data: out, offset: more ? encodeOffset(i) : null };
    },
    async insert(entity, row) {
      onWrite();
      if (rows(entity).some((r) => r.id === row.id)) {
        throw new GatewayError('GW_STORE_CONFLICT', 'unique constraint violation', { status: 409, detail: `${entity}.id` });
      }
      checkUnique(data, entity, row as unknown as Record<string, unknown>);
      rows(entity).push(structuredClone(row));
    },
    async update(entity, row) {
      onWrite();
      const list = rows(entity);
      const i = list.findIndex((r) => r.id === row.id);
      if (i < 0) throw new GatewayError('GW_BAD_REQUEST', `${entity} ${row.id} does not exist`, { status: 404 });
      checkUnique(data, entity, row as unknown as Record<string, unknown>);
      list[i] = structuredClone(row);
    },
    async delete(entity, id) {
      onWrite();
      const list = rows(entity);
      const i = list.findIndex((r) => r.id === id);
      if (i >= 0) list.splice(i, 1);
    },
  };
}

export function openMemoryConfigStore(opts: MemoryStoreOptions = {}): ConfigStore {
  const readOnly = opts.readOnly ?? true;
  let data = clone(opts.data ?? emptyConfig());
  for (const e of entityNames) data[e] ??= [] as never;
  let version = 1;
  const mutex = new Mutex();
  const listeners = new Listeners();
  const denyWrite = (): never => {
    throw new GatewayError('GW_BAD_REQUEST', dbLessWriteMessage, { status: 405 });
  };

  async function transaction<T>(fn: (tx: ConfigTx) => Promise<T>, allowWrites = !readOnly): Promise<T> {
    const out = await mutex.run(async () => {
      const draft = clone(data);
      let dirty = false;
      const result = await fn(memoryTx(draft, () => (allowWrites ? (dirty = true) : denyWrite())));
      if (dirty) {
        data = draft;
        version++;
      }
      return { result, dirty };
    });
    if (out.dirty) listeners.emit();
    return out.result;
  }

  const read = <T>(fn: (tx: ConfigTx) => Promise<T>) => mutex.run(() => fn(memoryTx(data, denyWrite)));

  return {
    kind: 'off',
    readOnly,
    ...txOperations(read, transaction),
    load: () => mutex.run(async () => clone(data)),
    version: async () => String(version),
    onChange: (l) => listeners.add(l),
    transaction: (fn) => transaction(fn),
    async replaceAll(next) {
      await mutex.run(async () => {
        // Build the replacement through the same checks as single writes, then swap it in.
        const draft = emptyConfig();
        const tx = memoryTx(draft, () => {});
        for (const e of entityNames) for (const r of next[e] as EntityOf<typeof e>[]) await tx.insert(e, r);
        data = draft;
        version++;
      });
      listeners.emit();
    },
    async close() {},
  };

}
