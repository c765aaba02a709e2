/**
 * Health checks of a node (Kong's healthchecker, one per upstream with checks on): active probes
 * (HTTP/HTTPS GET of `http_path`, or a TCP connect) every `healthy.interval` /
 * `unhealthy.interval`, and passive counting of proxied outcomes. Counters follow Kong's rules:
 * a healthy result bumps Successes and resets the failure counters; a TCP failure, timeout or
 * unhealthy status bumps its counter and resets Successes; reaching a threshold (0 = off) flips
 * the address and resets the counters. Results go to the node's HealthStates.
 *
 * Runs once per node: in the single process, or in the cluster primary (workers send their
 * passive outcomes to it and receive the states).
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Dispatcher } from 'undici';
import type { Upstream } from '../config/upstreams.ts';
import { H1Pool, h1Available } from '../proxy/h1.ts';
import type { Logger } from '../plugins/sdk.ts';
import type { Address } from './address.ts';
import type { Balancers, UpstreamBalancer } from './balancer.ts';
import type { HealthStates } from './health-states.ts';

/** Outcome codes: an HTTP status, or one of these. */
export const TCP_FAILURE = -1;
export const TIMEOUT = -2;

/** Whether Kong would run a health checker for this upstream at all. */
export function checksEnabled(u: Upstream): boolean {
  const a = u.healthchecks.active, p = u.healthchecks.passive;
  return a.healthy.interval > 0 || a.unhealthy.interval > 0 || p.unhealthy.tcp_failures > 0 || p.unhealthy.timeouts > 0 || p.unhealthy.http_failures > 0;
}

/** Whether proxied outcomes must be reported (a checker exists and passive counting can matter). */
export function passiveEnabled(u: Upstream): boolean {
  return checksEnabled(u);
}

interface Counters {
  successes: number;
  tcp: number;
  timeouts: number;
  http: number;
}

/** A certificate entity's PEM, presented by HTTPS probes of an upstream with client_certificate. */
export interface ProbeCertificate {
  cert: string;
  key: string;
}

interface Probing {
  upstream: Upstream;
  /** TLS options of HTTPS probes: trust store, the upstream's client certificate. */
  tls: https.RequestOptions;
  /** What `tls` was built from: a change restarts the probing. */
  tlsSig: string;
  healthyTimer: NodeJS.Timeout | null;
  unhealthyTimer: NodeJS.Timeout | null;
  agent: http.Agent;
  /** Plain-HTTP probes: the lean keep-alive client, one socket per address. */
  lean: Map<string, H1Pool>;
  busy: Set<string>;
}

const timeoutCodes = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

/** Dispatch handler of one probe: the status once the answer is read; failures as codes. */
class ProbeHandler implements Dispatcher.DispatchHandler {
  #status = 0;
  #timedOut = false;
  readonly #done: (code: number) => void;
  readonly #timer: NodeJS.Timeout;
  #abort: ((err?: Error) => void) | null = null;
  constructor(timeoutMs: number, done: (code: number) => void) {
    this.#done = (code) => {
      clearTimeout(this.#timer);
      done(code);
    };
    // The probe's own deadline (the connection's read timeout would also close idle keep-alives).
    this.#timer = setTimeout(() => {
      this.#timedOut = true;
      if (this.#abort !== null) this.#abort(Object.assign(new Error('health check timeout'), { code: 'ETIMEDOUT' }));
      else this.#done(TIMEOUT);
    }, timeoutMs);
  }
  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
  }
  onHeaders(statusCode: number): boolean {
    if (statusCode >= 200) this.#status = statusCode;
    return true;
  }
  onData(): boolean {
    return true;
  }
  onComplete(): void {
    this.#done(this.#status);
  }
  onError(err: Error): void {
    if (this.#timedOut) return this.#done(TIMEOUT);
    this.#done(timeoutCodes.has((err as { code?: string }).code ?? '') ? TIMEOUT : TCP_FAILURE);
  }
}

export class HealthChecker {
  readonly #balancers: Balancers;
  readonly #states: HealthStates;
  readonly #log: Logger;
  readonly #counters = new Map<string, Counters>();
  readonly #probing = new Map<string, Probing>();
  #closed = false;

  readonly #ca: string | null;
  #certificates: ReadonlyMap<string, ProbeCertificate> = new Map();

  constructor(balancers: Balancers, states: HealthStates, log: Logger, ca: string | null = null) {
    this.#balancers = balancers;
    this.#states = states;
    this.#log = log;
    this.#ca = ca;
  }

  /** The certificate entities (by id) upstreams' client_certificate refer to; applied by sync(). */
  setCertificates(certificates: ReadonlyMap<string, ProbeCertificate>): void {
    this.#certificates = certificates;
  }

  /**
   * HTTPS probes as Kong's health checker makes them: `https_sni` as the server name (else the
   * target's hostname), `https_verify_certificate` against the upstream trust store, and the
   * upstream's client_certificate presented for mTLS.
   */
  #tlsOf(u: Upstream): { tls: https.RequestOptions; sig: string } {
    const tls: https.RequestOptions = {};
    if (this.#ca !== null) tls.ca = this.#ca;
    const client = u.client_certificate === null ? undefined : this.#certificates.get(u.client_certificate.id);
    if (client !== undefined) {
      tls.cert = client.cert;
      tls.key = client.key;
    }
    return { tls, sig: client === undefined ? '' : `${client.cert}\0${client.key}` };
  }

  /** Starts/stops probing after a config change (unchanged upstreams keep their timers). */
  sync(): void {
    const seen = new Set<string>();
    for (const b of this.#balancers.all()) {
      const u = b.upstream;
      if (!checksEnabled(u)) {
        // No checker: Kong forgets the states (HEALTHCHECKS_OFF); everything is usable again.
        this.#states.drop(u.name);
        continue;
      }
      seen.add(u.name);
      const p = this.#probing.get(u.name);
      if (p !== undefined && p.upstream === u && p.tlsSig === this.#tlsOf(u).sig) continue;
      if (p !== undefined) this.#stop(p);
      this.#start(u);
    }
    for (const [name, p] of this.#probing) if (!seen.has(name)) {
      this.#stop(p);
      this.#probing.delete(name);
    }
  }

  #start(u: Upstream): void {
    const a = u.healthchecks.active;
    const agent = a.type === 'https' ? new https.Agent({ keepAlive: true, maxSockets: 1 }) : new http.Agent({ keepAlive: true, maxSockets: 1 });
    const { tls, sig } = this.#tlsOf(u);
    const p: Probing = { upstream: u, tls, tlsSig: sig, healthyTimer: null, unhealthyTimer: null, agent, lean: new Map(), busy: new Set() };
    this.#probing.set(u.name, p);
    if (a.type === 'grpc' || a.type === 'grpcs') return; // refused by the config rules; never probed
    if (a.healthy.interval > 0) p.healthyTimer = setInterval(() => this.#round(p, true), a.healthy.interval * 1000);
    if (a.unhealthy.interval > 0) p.unhealthyTimer = setInterval(() => this.#round(p, false), a.unhealthy.interval * 1000);
    p.healthyTimer?.unref();
    p.unhealthyTimer?.unref();
  }

  #stop(p: Probing): void {
    if (p.healthyTimer !== null) clearInterval(p.healthyTimer);
    if (p.unhealthyTimer !== null) clearInterval(p.unhealthyTimer);
    p.agent.destroy();
    for (const pool of p.lean.values()) void pool.close();
    p.lean.clear();
  }

  /** Probes every address currently in the given state, `concurrency` at a time. */
  #round(p: Probing, healthyOnes: boolean): void {
    const b = this.#balancers.get(p.upstream.name);
    if (b === undefined || this.#closed) return;
    const due = b.addresses.filter((a) => a.healthy === healthyOnes && !p.busy.has(a.healthKey));
    let next = 0;
    const runOne = (): void => {
      if (next >= due.length || this.#closed) return;
      const a = due[next++];
      p.busy.add(a.healthKey);
      this.#probe(p, b, a, (code) => {
        p.busy.delete(a.healthKey);
        if (this.#closed || this.#probing.get(p.upstream.name) !== p) return;
        this.#count(p.upstream, a.healthKey, code, 'active');
        runOne();
      });
    };
    for (let i = 0; i < p.upstream.healthchecks.active.concurrency && i < due.length; i++) runOne();
  }

  #probe(p: Probing, b: UpstreamBalancer, a: Address, done: (code: number) => void): void {
    const act = p.upstream.healthchecks.active;
    const timeoutMs = Math.max(1, act.timeout * 1000);
    let finished = false;
    const finish = (code: number): void => {
      if (finished) return;
      finished = true;
      done(code);
    };
    if (act.type === 'tcp') {
      const sock = net.connect({ host: a.ip, port: a.port });
      sock.setTimeout(timeoutMs, () => {
        sock.destroy();
        finish(TIMEOUT);
      });
      sock.once('connect', () => {
        sock.destroy();
        finish(200);
      });
      sock.once('error', () => finish(TCP_FAILURE));
      return;
    }
    const host = b.upstream.host_header ?? a.hostname;
    const headers: Record<string, string | string[]> = { host: a.port === (act.type === 'https' ? 443 : 80) ? host : `${host}:${a.port}` };
    // A configured Host (any case) replaces the default one rather than adding a second.
    for (const [k, v] of Object.entries(act.headers ?? {})) {
      if (k.toLowerCase() === 'host') headers.host = v[0] ?? host;
      else headers[k] = v;
    }
    const secure = act.type === 'https';
    if (!secure && h1Available) {
      let pool = p.lean.get(a.key);
      if (pool === undefined) p.lean.set(a.key, (pool = new H1Pool(a.ip, a.port, { connectTimeout: timeoutMs, connections: 1, keepAliveTimeout: 60_000 })));
      pool.dispatch({ path: act.http_path, method: 'GET', headers, clientHeaders: {}, readTimeout: 0, writeTimeout: timeoutMs }, new ProbeHandler(timeoutMs, finish));
      return;
    }
    const options: https.RequestOptions = {
      host: a.ip, port: a.port, path: act.http_path, method: 'GET', headers, agent: p.agent, timeout: timeoutMs,
      ...(secure ? { ...p.tls, servername: act.https_sni ?? (net.isIP(a.hostname) === 0 ? a.hostname : undefined), rejectUnauthorized: act.https_verify_certificate } : {}),
    };
    const req = (secure ? https : http).request(options, (res) => {
      res.resume();
      res.once('end', () => finish(res.statusCode ?? 0));
      res.once('error', () => finish(TCP_FAILURE));
    });
    req.once('timeout', () => {
      req.destroy();
      finish(TIMEOUT);
    });
    req.once('error', () => finish(TCP_FAILURE));
    req.end();
  }

  /** A proxied outcome (passive check) of `key` in `upstream`. */
  report(upstream: string, key: string, code: number): void {
    const b = this.#balancers.get(upstream);
    if (b === undefined || !checksEnabled(b.upstream)) return;
    this.#count(b.upstream, key, code, 'passive');
  }

  #count(u: Upstream, key: string, code: number, source: 'active' | 'passive'): void {
    const hc = source === 'active' ? u.healthchecks.active : u.healthchecks.passive;
    const id = `${u.name}\n${key}`;
    let c = this.#counters.get(id);
    if (c === undefined) this.#counters.set(id, (c = { successes: 0, tcp: 0, timeouts: 0, http: 0 }));
    const healthy = this.#states.isHealthy(u.name, key);
    const flip = (to: boolean): void => {
      c.successes = c.tcp = c.timeouts = c.http = 0;
      this.#states.set(u.name, key, to);
      this.#log.warn({ upstream: u.name, address: key, check: source }, to ? 'target address is healthy again' : 'target address marked unhealthy');
    };
    if (code === TCP_FAILURE || code === TIMEOUT) {
      const limit = code === TCP_FAILURE ? hc.unhealthy.tcp_failures : hc.unhealthy.timeouts;
      if (limit === 0) return;
      c.successes = 0;
      const n = code === TCP_FAILURE ? ++c.tcp : ++c.timeouts;
      if (healthy && n >= limit) flip(false);
      return;
    }
    const passiveTcp = source === 'passive' && u.healthchecks.passive.type === 'tcp';
    if (passiveTcp) return; // a TCP check only judges connections
    if (hc.healthy.http_statuses.includes(code)) {
      const limit = hc.healthy.successes;
      if (limit === 0) return;
      c.tcp = c.timeouts = c.http = 0;
      c.successes++;
      if (!healthy && c.successes >= limit) flip(true);
    } else if (hc.unhealthy.http_statuses.includes(code)) {
      const limit = hc.unhealthy.http_failures;
      if (limit === 0) return;
      c.successes = 0;
      c.http++;
      if (healthy && c.http >= limit) flip(false);
    }
  }

  /**
   * Manual override (`PUT /upstreams/{u}/targets/{t}[/{address}]/healthy|unhealthy`). False when
   * the upstream has no health checker (Kong: 400 "no healthchecker found").
   */
  setManual(upstream: string, target: string, address: string | null, healthy: boolean): boolean {
    const b = this.#balancers.get(upstream);
    if (b === undefined || !checksEnabled(b.upstream)) return false;
    for (const a of b.addresses) {
      if (a.target !== target || (address !== null && a.key !== address)) continue;
      this.#counters.delete(`${upstream}\n${a.healthKey}`);
      this.#states.set(upstream, a.healthKey, healthy);
    }
    return true;
  }

  close(): void {
    this.#closed = true;
    for (const p of this.#probing.values()) this.#stop(p);
    this.#probing.clear();
  }
}
