/**
 * A service whose host names an upstream: the seam between the proxy and the balancer. It picks
 * peers (first try and retries, never an address that already failed this request while another
 * is usable), maps each address to its keep-alive pool, keeps the per-address in-flight count
 * (least-connections) and response-time average (latency), and reports outcomes for passive
 * health checks.
 */
import type { Service } from '../config/types.ts';
import type { Address } from '../balancer/address.ts';
import type { UpstreamBalancer } from '../balancer/balancer.ts';
import type { Balancing } from '../balancer/balancing.ts';
import { checksEnabled, TCP_FAILURE, TIMEOUT } from '../balancer/health-checker.ts';
import { hashKey, type HashExtras, type HashSource } from '../balancer/hash-input.ts';
import type { ProxyPools, UpstreamTarget, UpstreamTls } from './pools.ts';

/** Kong's reply when no address can take the request. */
export const noPeerMessage = 'failure to get a peer from the ring-balancer';

const timeoutCodes = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'ETIMEDOUT']);

/** A balanced request's peer state: the address of the current try and those that failed. */
export interface Peer {
  readonly balanced: BalancedService;
  /** The consistent-hashing input ('' for the other algorithms). */
  readonly key: string;
  address: Address;
  tried: Address[] | null;
}

export class BalancedService {
  readonly balancer: UpstreamBalancer;
  readonly #service: Service;
  readonly #pools: ProxyPools;
  readonly #balancing: Balancing;
  readonly #passive: boolean;
  readonly #hashing: boolean;
  readonly #latency: boolean;
  readonly #targets = new WeakMap<Address, UpstreamTarget>();
  /** The service's TLS material (CA certificates, client certificate) for every address's pool. */
  readonly #tls: UpstreamTls | null;

  constructor(service: Service, balancer: UpstreamBalancer, pools: ProxyPools, balancing: Balancing, tls: UpstreamTls | null = null) {
    this.#service = service;
    this.#tls = tls;
    this.balancer = balancer;
    this.#pools = pools;
    this.#balancing = balancing;
    const u = balancer.upstream;
    this.#passive = checksEnabled(u);
    this.#hashing = u.algorithm === 'consistent-hashing';
    this.#latency = u.algorithm === 'latency';
  }

  /** The consistent-hashing input of this request ('' for the other algorithms). */
  hashKey(src: HashSource, extra: HashExtras): string {
    return this.#hashing ? hashKey(this.balancer.upstream, src, extra) : '';
  }

  /** First try: an address, or null (→ 503 `failure to get a peer from the ring-balancer`). */
  first(key: string): Address | null {
    const a = this.balancer.pick(key, null);
    if (a !== null) a.inflight++;
    return a;
  }

  /**
   * A retry after `failed` could not be reached: another address if one is usable, else the same
   * one again (as Kong, when it is the only one left); null when nothing is usable any more.
   */
  next(key: string, tried: readonly Address[]): Address | null {
    const a = this.balancer.pick(key, tried) ?? this.balancer.pick(key, null);
    if (a !== null) a.inflight++;
    return a;
  }

  targetFor(a: Address): UpstreamTarget {
    let t = this.#targets.get(a);
    if (t === undefined) {
      const u = this.balancer.upstream;
      const secure = this.#service.protocol === 'https' || this.#service.protocol === 'wss' || this.#service.protocol === 'grpcs';
      const name = u.host_header ?? (a.hostname.includes(':') ? `[${a.hostname}]` : a.hostname);
      // Kong: `:port` appended unless the scheme's default (host_header keeps its own port, if any).
      const hostHeader = u.host_header !== null && /:\d+$/.test(u.host_header) ? u.host_header
        : a.port === (secure ? 443 : 80) ? name : `${name}:${a.port}`;
      t = this.#pools.targetAt(this.#service, a.ip, a.port, hostHeader, this.#tls);
      this.#targets.set(a, t);
    }
    return t;
  }

  /** Pool keys of every current address (kept on a reload). */
  poolKeys(): string[] {
    return this.balancer.addresses.map((a) => this.targetFor(a).key);
  }

  /** The upstream answered (status line received) after `ms`. */
  answered(a: Address, status: number, ms: number, now: number): void {
    if (this.#latency) this.balancer.observe(a, ms, now);
    if (this.#passive) this.#balancing.report(this.balancer.upstream.name, a.healthKey, status);
  }

  /** The exchange failed before an answer. */
  failed(a: Address, err: unknown): void {
    if (!this.#passive) return;
    const e = err as { code?: string; cause?: { code?: string } };
    const code = e?.code ?? e?.cause?.code ?? '';
    this.#balancing.report(this.balancer.upstream.name, a.healthKey, timeoutCodes.has(code) ? TIMEOUT : TCP_FAILURE);
  }

  /** The exchange with `a` is over (either way). */
  release(a: Address): void {
    if (a.inflight > 0) a.inflight--;
  }
}
