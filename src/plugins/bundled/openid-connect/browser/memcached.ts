/**
 * Memcached for `session_storage: memcache|memcached`: a KeyValueStore over the `memcache-client`
 * package, built from Kong's `session_memcached_*` fields (host, port, TLS, key prefix). Session
 * records, refresh locks and logout markers then live in memcached, shared by every node that
 * talks to it, as with Redis.
 */
import { isIP } from 'node:net';
import { MemcacheClient } from 'memcache-client';
import type { KeyValueStore } from '../../../../storage/ports.ts';
import type { MemcachedSettings } from './config.ts';

/** memcached reads an expiry above 30 days as an absolute Unix time (protocol.txt, "Expiration times"). */
const relativeLimitS = 30 * 86_400;
/** Per-command and connect timeouts (ms): a session request never waits long on memcached. */
const timeoutMs = 2000;

/** The expiry argument for a TTL in ms: 0 = never; seconds up to 30 days; an absolute time beyond. */
function exptime(ttlMs: number | undefined, nowMs: number): number {
  if (ttlMs === undefined) return 0;
  const s = Math.max(1, Math.ceil(ttlMs / 1000));
  return s <= relativeLimitS ? s : Math.ceil(nowMs / 1000) + s;
}

function isNotStored(err: unknown): boolean {
  const m = (err as Error)?.message ?? '';
  return m.includes('NOT_STORED') || m.includes('EXISTS') || m.includes('NOT_FOUND');
}

export class MemcachedKv implements KeyValueStore {
  readonly #client: MemcacheClient;
  readonly #prefix: string;

  constructor(settings: MemcachedSettings) {
    this.#client = new MemcacheClient({
      server: `${settings.host}:${settings.port}`,
      connectTimeout: timeoutMs,
      cmdTimeout: timeoutMs,
      ...(settings.ssl ? { tls: { rejectUnauthorized: settings.sslVerify, ...(isIP(settings.host) ? {} : { servername: settings.host }) } } : {}),
    });
    // Connection errors reach the command's caller (a 500 for that request), not an unhandled event.
    this.#client.on('error', () => {});
    this.#prefix = settings.prefix ? `${settings.prefix}:` : '';
  }

  async get(key: string): Promise<string | null> {
    const r = await this.#client.get<string>(this.#prefix + key);
    return r === undefined ? null : String(r.value);
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    await this.#client.set(this.#prefix + key, value, { lifetime: exptime(ttlMs, Date.now()) });
  }

  async add(key: string, value: string, ttlMs?: number): Promise<boolean> {
    try {
      await this.#client.add(this.#prefix + key, value, { lifetime: exptime(ttlMs, Date.now()) });
      return true;
    } catch (err) {
      if (isNotStored(err)) return false;
      throw err;
    }
  }

  /** Atomic: `gets`, then a `cas` that expires the item at once; only one caller's cas succeeds. */
  async take(key: string): Promise<string | null> {
    const k = this.#prefix + key;
    const r = await this.#client.gets<string>(k);
    if (r === undefined) return null;
    try {
      await this.#client.cas(k, '', { casUniq: r.casUniq, lifetime: -1 });
      return String(r.value);
    } catch (err) {
      if (isNotStored(err)) return null;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.#client.delete(this.#prefix + key);
    } catch (err) {
      if (!isNotStored(err)) throw err;
    }
  }

  async close(): Promise<void> {
    this.#client.shutdown();
  }
}
