/**
 * The shared store (the gateway's database) as session requests read it. A cookie-stored session
 * reads its logout markers from there on every request; when the database is unavailable
 * (`GW_STORE_UNAVAILABLE`: connections refused, PostgreSQL failing over) those reads are answered
 * from what this node last read or wrote, so sessions keep working like bearer tokens and plain
 * routes do. After a failure the store is left alone for a short back-off, then asked again: the
 * answers are refreshed as soon as it is back. Markers this node writes during an outage are kept
 * in memory (this node honours them) and the failure is logged.
 */
import { isGatewayError } from '../../../../errors.ts';
import type { Logger } from '../../../sdk.ts';
import type { KeyValueStore } from '../../../../storage/ports.ts';
import { TtlCache } from '../caches.ts';

/** How long the store is left alone after it failed. */
const BACKOFF_MS = 1000;
/** How long a read answer is remembered (bounded by the entry count). */
const REMEMBER_MS = 24 * 3600 * 1000;
const MAX_ENTRIES = 10_000;

function storeDown(err: unknown): boolean {
  return isGatewayError(err) && err.code === 'GW_STORE_UNAVAILABLE';
}

export function lastKnownKv(store: KeyValueStore, log: Logger, now: () => number): KeyValueStore {
  const memory = new TtlCache<string | null>({ maxEntries: MAX_ENTRIES, now });
  let downUntil = 0;
  const failed = (err: unknown, what: string): void => {
    if (now() >= downUntil) log.warn({ err: err instanceof Error ? err.message : String(err) }, `openid-connect: the database is unavailable; session ${what} from memory`);
    downUntil = now() + BACKOFF_MS;
  };
  const kv: KeyValueStore = {
    async get(key) {
      if (now() < downUntil) return memory.get(key) ?? null;
      try {
        const value = await store.get(key);
        memory.set(key, value, REMEMBER_MS);
        return value;
      } catch (err) {
        if (!storeDown(err)) throw err;
        failed(err, 'markers are read');
        return memory.get(key) ?? null;
      }
    },
    async set(key, value, ttlMs) {
      memory.set(key, value, Math.min(ttlMs ?? REMEMBER_MS, REMEMBER_MS));
      if (now() < downUntil) return;
      try {
        await store.set(key, value, ttlMs);
      } catch (err) {
        if (!storeDown(err)) throw err;
        failed(err, 'markers are kept');
      }
    },
    add: (key, value, ttlMs) => store.add(key, value, ttlMs),
    take: (key) => store.take(key),
    async delete(key) {
      memory.delete(key);
      await store.delete(key);
    },
    // The store belongs to the node: closing the plugin does not close it.
    async close() {},
  };
  if (store.peek) kv.peek = store.peek.bind(store);
  return kv;
}
