/**
 * Name resolution for targets given as host names (Kong's balancer DNS): the hosts file first
 * (`dns_hostsfile`), then the DNS servers (`dns_resolver`, else the system's), A and AAAA with
 * their TTLs, or SRV for `_service._proto.name` names (their own port and weight, best priority
 * only). Answers are cached until their TTL runs out and then resolved again in the background;
 * a name that stops resolving keeps its last good answer (and says so in the log) while it is
 * retried every `errorRetryMs`.
 */
import { Resolver } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { Logger } from '../plugins/sdk.ts';

export interface ResolvedAddress {
  ip: string;
  /** From an SRV answer; otherwise the target's own port applies. */
  port: number | null;
  /** From an SRV answer (0 → 1); otherwise the target's weight applies. */
  weight: number | null;
  /** The SRV record's target name (Host/SNI with the upstream's `use_srv_name`). */
  srvName?: string;
}

export interface Resolution {
  addresses: readonly ResolvedAddress[];
  /** The last lookup failed (the addresses, if any, are the last good ones). */
  error: string | null;
}

export interface ResolverOptions {
  /** DNS servers (`ip` or `ip:port`); empty = the system's. */
  servers?: readonly string[];
  /** Hosts file (default /etc/hosts; '' = none). */
  hostsFile?: string;
  log: Logger;
  /** Retry delay after a failed lookup (Kong: 30 s by default). */
  errorRetryMs?: number;
  /** Shortest / longest time an answer is kept. */
  minTtlMs?: number;
  maxTtlMs?: number;
}

interface Entry {
  name: string;
  current: Resolution;
  timer: NodeJS.Timeout | null;
  listeners: Set<(r: Resolution) => void>;
  /** A lookup in progress (the first one is awaited by callers). */
  pending: Promise<void> | null;
  failing: boolean;
}

function sameAddresses(a: readonly ResolvedAddress[], b: readonly ResolvedAddress[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i].ip !== b[i].ip || a[i].port !== b[i].port || a[i].weight !== b[i].weight) return false;
  return true;
}

function parseHosts(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    const [ip, ...names] = line.split(/\s+/);
    if (isIP(ip) === 0) continue;
    for (const n of names) {
      const k = n.toLowerCase();
      const list = out.get(k) ?? [];
      if (!list.includes(ip)) list.push(ip);
      out.set(k, list);
    }
  }
  return out;
}

/** The refresh period of hosts-file answers (the file is read again then). */
const hostsTtlMs = 10_000;

export class NameResolver {
  readonly #o: ResolverOptions;
  readonly #resolver: Resolver;
  readonly #entries = new Map<string, Entry>();
  #closed = false;

  constructor(o: ResolverOptions) {
    this.#o = o;
    this.#resolver = new Resolver({ timeout: 2000, tries: 2 });
    if (o.servers !== undefined && o.servers.length > 0) this.#resolver.setServers([...o.servers]);
  }

  /**
   * Watches `name`: resolves it now (the promise settles after the first answer) and again at
   * every TTL expiry; `listener` hears each change. Returns the current resolution.
   */
  async watch(name: string, listener: (r: Resolution) => void): Promise<Resolution> {
    let e = this.#entries.get(name);
    if (e === undefined) {
      e = { name, current: { addresses: [], error: null }, timer: null, listeners: new Set(), pending: null, failing: false };
      this.#entries.set(name, e);
      e.pending = this.#refresh(e);
    }
    e.listeners.add(listener);
    if (e.pending !== null) await e.pending;
    return e.current;
  }

  unwatch(name: string, listener: (r: Resolution) => void): void {
    const e = this.#entries.get(name);
    if (e === undefined) return;
    e.listeners.delete(listener);
    if (e.listeners.size === 0) {
      if (e.timer !== null) clearTimeout(e.timer);
      this.#entries.delete(name);
    }
  }

  current(name: string): Resolution | null {
    return this.#entries.get(name)?.current ?? null;
  }

  close(): void {
    this.#closed = true;
    for (const e of this.#entries.values()) if (e.timer !== null) clearTimeout(e.timer);
    this.#entries.clear();
  }

  async #lookup(name: string): Promise<{ addresses: ResolvedAddress[]; ttlMs: number }> {
    const hostsFile = this.#o.hostsFile ?? '/etc/hosts';
    if (hostsFile !== '') {
      const text = await readFile(hostsFile, 'utf8').catch(() => '');
      const ips = parseHosts(text).get(name.toLowerCase());
      if (ips !== undefined) return { addresses: ips.map((ip) => ({ ip, port: null, weight: null })), ttlMs: hostsTtlMs };
    }
    if (name.startsWith('_')) {
      const srv = await this.#resolver.resolveSrv(name);
      if (srv.length === 0) throw Object.assign(new Error('no SRV records'), { code: 'ENODATA' });
      const best = Math.min(...srv.map((r) => r.priority));
      const out: ResolvedAddress[] = [];
      for (const r of srv.filter((x) => x.priority === best)) {
        // An SRV target is itself a name: resolve it (A records), keeping the SRV port and weight.
        const ips = isIP(r.name) !== 0 ? [r.name] : (await this.#resolver.resolve4(r.name).catch(() => [] as string[]));
        for (const ip of ips) out.push({ ip, port: r.port, weight: r.weight === 0 ? 1 : r.weight, srvName: r.name });
      }
      if (out.length === 0) throw Object.assign(new Error('SRV targets do not resolve'), { code: 'ENODATA' });
      // node's resolveSrv gives no TTL: refresh as Kong refreshes failed/unknown-TTL records.
      return { addresses: out, ttlMs: 30_000 };
    }
    const [v4, v6] = await Promise.allSettled([this.#resolver.resolve4(name, { ttl: true }), this.#resolver.resolve6(name, { ttl: true })]);
    const list = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (list.length === 0) {
      const err = v4.status === 'rejected' ? v4.reason : v6.status === 'rejected' ? v6.reason : new Error('no address records');
      throw err;
    }
    const ttl = Math.min(...list.map((r) => r.ttl));
    return { addresses: list.map((r) => ({ ip: r.address, port: null, weight: null })), ttlMs: ttl * 1000 };
  }

  async #refresh(e: Entry): Promise<void> {
    let next: Resolution;
    let delay: number;
    try {
      const { addresses, ttlMs } = await this.#lookup(e.name);
      next = { addresses, error: null };
      delay = Math.min(this.#o.maxTtlMs ?? 3_600_000, Math.max(this.#o.minTtlMs ?? 1000, ttlMs));
      if (e.failing) this.#o.log.info({ name: e.name }, 'target name resolves again');
      e.failing = false;
    } catch (err) {
      const code = (err as { code?: string }).code ?? (err as Error).message;
      next = { addresses: e.current.addresses, error: code };
      delay = this.#o.errorRetryMs ?? 30_000;
      if (!e.failing) {
        this.#o.log.warn({ name: e.name, error: code, kept: e.current.addresses.length },
          e.current.addresses.length > 0 ? 'target name no longer resolves; keeping its last known addresses' : 'target name does not resolve');
      }
      e.failing = true;
    }
    if (this.#closed || this.#entries.get(e.name) !== e) return;
    const changed = !sameAddresses(next.addresses, e.current.addresses) || next.error !== e.current.error;
    e.current = next;
    e.pending = null;
    if (changed) for (const l of e.listeners) l(next);
    e.timer = setTimeout(() => {
      e.timer = null;
      void this.#refresh(e);
    }, delay);
    e.timer.unref();
  }
}
