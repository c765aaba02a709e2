/** Small helpers shared by the store adapters. Instances only: no module-level state. */
import type { ConfigTx } from './ports.ts';

/** Serializes async sections (one SQLite connection, one in-memory dataset). */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();
  #depth = 0;

  get busy(): boolean {
    return this.#depth > 0;
  }

  run<T>(fn: () => Promise<T>): Promise<T> {
    this.#depth++;
    const next = this.#tail.then(fn, fn);
    this.#tail = next.then(
      () => this.#depth--,
      () => this.#depth--,
    );
    return next;
  }
}

/** A set of change listeners; a throwing listener never stops the others. */
export class Listeners {
  #set = new Set<() => void>();

  add(fn: () => void): () => void {
    this.#set.add(fn);
    return () => this.#set.delete(fn);
  }

  emit(): void {
    for (const fn of [...this.#set]) {
      try {
        fn();
      } catch {
        // Listener errors are the listener's business (the kernel logs its own).
      }
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * A store's single-entity operations, each run as its own read or write transaction: what every
 * adapter exposes on top of its `ConfigTx`.
 */
export function txOperations(
  read: <T>(fn: (tx: ConfigTx) => Promise<T>) => Promise<T>,
  write: <T>(fn: (tx: ConfigTx) => Promise<T>) => Promise<T>,
): ConfigTx {
  return {
    get: (entity, id) => read((tx) => tx.get(entity, id)),
    findBy: (entity, key, value) => read((tx) => tx.findBy(entity, key, value)),
    list: (entity, o) => read((tx) => tx.list(entity, o)),
    insert: (entity, row) => write((tx) => tx.insert(entity, row)),
    update: (entity, row) => write((tx) => tx.update(entity, row)),
    delete: (entity, id) => write((tx) => tx.delete(entity, id)),
  };
}
