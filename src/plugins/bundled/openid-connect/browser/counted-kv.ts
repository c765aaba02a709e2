/**
 * The session store seen through a counter of its failures: every operation that throws or
 * rejects is counted in `portcullis_oidc_session_store_errors_total{storage, operation}` and the
 * error goes on to the caller unchanged (which decides whether the request can go on without a
 * session, see the session-store outage handling). `peek` is kept when the store offers it, so the
 * remembered-session hot path stays synchronous.
 */
import type { KeyValueStore } from '../../../../storage/ports.ts';
import type { OidcMetrics, SessionStoreKind, SessionStoreOperation } from '../../../../observability/oidc-metrics.ts';

export function countedKv(kv: KeyValueStore, storage: SessionStoreKind, metrics: OidcMetrics | undefined): KeyValueStore {
  if (metrics === undefined) return kv;
  const failed = (operation: SessionStoreOperation) => (err: unknown): never => {
    metrics.sessionStoreError(storage, operation);
    throw err;
  };
  const counted: KeyValueStore = {
    get: (key) => kv.get(key).catch(failed('get')),
    set: (key, value, ttlMs) => kv.set(key, value, ttlMs).catch(failed('set')),
    add: (key, value, ttlMs) => kv.add(key, value, ttlMs).catch(failed('add')),
    take: (key) => kv.take(key).catch(failed('take')),
    delete: (key) => kv.delete(key).catch(failed('delete')),
    close: () => kv.close(),
  };
  if (kv.peek) {
    const peek = kv.peek.bind(kv);
    counted.peek = (key) => {
      try {
        return peek(key);
      } catch (err) {
        return failed('get')(err);
      }
    };
  }
  if (kv.scan) counted.scan = kv.scan.bind(kv);
  return counted;
}
