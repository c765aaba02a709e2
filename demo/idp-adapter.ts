/**
 * A per-instance in-memory storage adapter for oidc-provider.
 *
 * Why not oidc-provider's bundled MemoryAdapter: that one keeps one LRU (1000 entries) at module
 * scope, shared by every Provider in the process, so parallel test IdPs would evict each other's
 * tokens. This store belongs to one IdP instance and is dropped with it.
 */

type Payload = Record<string, unknown> & {
  grantId?: string;
  uid?: string;
  userCode?: string;
  consumed?: number;
};

interface Entry {
  payload: Payload;
  /** epoch ms; Infinity when the model has no expiry */
  expiresAt: number;
}

const grantableModels = ['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'PreAuthorizedCode'] as const;

/** All models of one IdP instance share this store; keys are `${model}:${id}`. */
export class DemoStore {
  readonly #entries = new Map<string, Entry>();

  get(key: string): Payload | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.payload;
  }

  set(key: string, payload: Payload, expiresInSeconds: number | undefined): void {
    const expiresAt = typeof expiresInSeconds === 'number' ? Date.now() + expiresInSeconds * 1000 : Infinity;
    this.#entries.set(key, { payload, expiresAt });
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  /** Live entries of one model, e.g. every `Session`. */
  *values(model: string): Generator<[string, Payload]> {
    const prefix = `${model}:`;
    for (const key of [...this.#entries.keys()]) {
      if (!key.startsWith(prefix)) continue;
      const payload = this.get(key);
      if (payload) yield [key.slice(prefix.length), payload];
    }
  }

  /** Deletes every token issued under a grant. */
  revokeGrant(grantId: string): void {
    for (const model of grantableModels) {
      for (const [id, payload] of this.values(model)) {
        if (payload.grantId === grantId) this.delete(`${model}:${id}`);
      }
    }
  }

  clear(): void {
    this.#entries.clear();
  }
}

/**
 * Builds the adapter class oidc-provider instantiates once per model name
 * (see oidc-provider's "adapter" configuration option).
 */
export function adapterFor(store: DemoStore) {
  return class DemoAdapter {
    readonly model: string;

    constructor(model: string) {
      this.model = model;
    }

    #key(id: string): string {
      return `${this.model}:${id}`;
    }

    async upsert(id: string, payload: Payload, expiresIn?: number): Promise<void> {
      store.set(this.#key(id), payload, expiresIn);
    }

    async find(id: string): Promise<Payload | undefined> {
      return store.get(this.#key(id));
    }

    async findByUid(uid: string): Promise<Payload | undefined> {
      for (const [, payload] of store.values(this.model)) {
        if (payload.uid === uid) return payload;
      }
      return undefined;
    }

    async findByUserCode(userCode: string): Promise<Payload | undefined> {
      for (const [, payload] of store.values(this.model)) {
        if (payload.userCode === userCode) return payload;
      }
      return undefined;
    }

    async consume(id: string): Promise<void> {
      const payload = store.get(this.#key(id));
      if (payload) payload.consumed = Math.floor(Date.now() / 1000);
    }

    async destroy(id: string): Promise<void> {
      store.delete(this.#key(id));
    }

    /** Revokes every token of a grant, whatever model it is (RFC 7009 §2.1 cascade). */
    async revokeByGrantId(grantId: string): Promise<void> {
      store.revokeGrant(grantId);
    }
  };
}
