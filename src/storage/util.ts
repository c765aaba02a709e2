/** Small helpers shared by the store adapters. Instances only: no module-level state. */

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
