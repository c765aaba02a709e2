/**
 * The balancing side of a process, in the two shapes a node has:
 *
 * - `LocalBalancing` (single process, or the cluster primary): balancers, the DNS resolver, the
 *   node's health states and the health checker that writes them (active probes run here, once
 *   per node; passive outcomes are counted here);
 * - `WorkerBalancing` (a cluster worker): its own balancers and resolver, a copy of the
 *   primary's health states (fed over IPC), and passive outcomes sent to the primary in batches.
 *
 * The proxy sees only the `Balancing` interface.
 */
import type { Target, Upstream } from '../config/upstreams.ts';
import type { Logger } from '../plugins/sdk.ts';
import { Balancers } from './balancer.ts';
import { NameResolver } from './dns.ts';
import { HealthChecker, checksEnabled, type ProbeCertificate } from './health-checker.ts';
import { HealthStates, type HealthEntries } from './health-states.ts';

export interface Balancing {
  readonly balancers: Balancers;
  /** `certificates`: PEM by certificate id, for upstreams' client_certificate in HTTPS probes. */
  apply(upstreams: readonly Upstream[], targets: readonly Target[], certificates?: ReadonlyMap<string, ProbeCertificate>): Promise<void>;
  /** A proxied outcome (HTTP status, or TCP_FAILURE / TIMEOUT) for passive checks. */
  report(upstream: string, key: string, code: number): void;
  close(): void;
}

export interface DnsSettings {
  /** `ip[:port]` servers; empty = the system's. */
  servers: readonly string[];
  /** Hosts file read before DNS ('' = none). */
  hostsFile: string;
  /** Retry delay after a failed lookup (ms). */
  errorRetryMs?: number;
}

export class LocalBalancing implements Balancing {
  readonly states = new HealthStates();
  readonly resolver: NameResolver;
  readonly balancers: Balancers;
  readonly checker: HealthChecker;

  /** `probeCa`: the CA bundle HTTPS probes trust (PORTCULLIS_UPSTREAM_CA_FILE; default Node's roots). */
  constructor(dns: DnsSettings, log: Logger, probeCa: string | null = null) {
    this.resolver = new NameResolver({ servers: dns.servers, hostsFile: dns.hostsFile, log, errorRetryMs: dns.errorRetryMs });
    this.balancers = new Balancers({ health: this.states, resolver: this.resolver, log });
    this.checker = new HealthChecker(this.balancers, this.states, log, probeCa);
  }

  async apply(upstreams: readonly Upstream[], targets: readonly Target[], certificates?: ReadonlyMap<string, ProbeCertificate>): Promise<void> {
    await this.balancers.apply(upstreams, targets);
    if (certificates !== undefined) this.checker.setCertificates(certificates);
    this.checker.sync();
  }

  report(upstream: string, key: string, code: number): void {
    this.checker.report(upstream, key, code);
  }

  close(): void {
    this.checker.close();
    this.balancers.close();
    this.resolver.close();
  }
}

/** Messages between the primary and its workers about health. */
export type HealthToWorker = { type: 'health'; entries: HealthEntries };
export type HealthToPrimary = { type: 'health-report'; events: [string, string, number][] };

export class WorkerBalancing implements Balancing {
  readonly states = new HealthStates();
  readonly resolver: NameResolver;
  readonly balancers: Balancers;
  readonly #send: (m: HealthToPrimary) => void;
  #queue: [string, string, number][] = [];
  #timer: NodeJS.Timeout | null = null;

  constructor(dns: DnsSettings, log: Logger, send: (m: HealthToPrimary) => void) {
    this.resolver = new NameResolver({ servers: dns.servers, hostsFile: dns.hostsFile, log, errorRetryMs: dns.errorRetryMs });
    this.balancers = new Balancers({ health: this.states, resolver: this.resolver, log });
    this.#send = send;
  }

  apply(upstreams: readonly Upstream[], targets: readonly Target[]): Promise<void> {
    return this.balancers.apply(upstreams, targets);
  }

  /** The primary's states (whole copy, sent on start and after every change). */
  receive(m: HealthToWorker): void {
    this.states.load(m.entries);
  }

  report(upstream: string, key: string, code: number): void {
    const b = this.balancers.get(upstream);
    if (b === undefined || !checksEnabled(b.upstream)) return;
    this.#queue.push([upstream, key, code]);
    // Batched: one IPC message per few milliseconds, however busy the worker is.
    this.#timer ??= setTimeout(() => {
      this.#timer = null;
      const events = this.#queue;
      this.#queue = [];
      this.#send({ type: 'health-report', events });
    }, 5);
  }

  close(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.balancers.close();
    this.resolver.close();
  }
}
