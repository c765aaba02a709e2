/**
 * Stream listeners (Kong's `stream_listen`): raw TCP and TLS connections proxied to the service
 * of a stream route (tcp, tls, tls_passthrough; router.ts).
 *
 * A connection goes through:
 * 1. the preamble: the PROXY protocol header on `proxy_protocol` listeners (its source is the
 *    client address when the peer is in trusted_ips), and on `ssl` listeners the ClientHello,
 *    read for its server name without answering it;
 * 2. routing by source, destination (the listener address) and SNI, on the config current at
 *    that moment (StreamConfig, built per Snapshot by kernel/stream.ts); no route → the connection is closed (Kong: "no Route found", exit);
 * 3. `preread` plugin handlers (ip-restriction) of the route's chain; a refusal closes;
 * 4. on an ssl listener, a `tls_passthrough` route gets the bytes as they came (the ClientHello
 *    included) without termination; a `tls` route is terminated here with the certificate the
 *    HTTP listeners would pick for that SNI (tls/store.ts; no client certificate is asked for);
 * 5. the service is connected (upstream.ts) and bytes are relayed both ways: each side's end is
 *    passed on to the other (half-close), an error or reset on one side destroys both, and the
 *    session is closed after `read_timeout` ms without bytes in either direction, or when a write
 *    to one side stays blocked for `write_timeout` ms.
 *
 * Deviations from Kong: nginx's stream proxy has one idle timeout (proxy_timeout, either
 * direction); here read_timeout is that timeout and write_timeout bounds a blocked write on its
 * own. Stream connections are not in the HTTP connection counters (/status,
 * kong_nginx_connections_total), as in Kong, whose counters come from the HTTP subsystem; no
 * access-log line is written. When a routed session ends (relayed, refused by a plugin, or the
 * service unreachable), the route's `streamLog` plugin handlers run (Kong's stream log phase).
 */
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { CertificateStore } from '../tls/store.ts';
import { maxHelloBytes, readHelloServerName } from '../tls/client-hello.ts';
import { tlsInfoOf } from '../tls/client-cert.ts';
import type { Service } from '../config/types.ts';
import type { UpstreamTls } from '../proxy/pools.ts';
import type { BalancedService } from '../proxy/balanced.ts';
import type { StreamContext, StreamLogContext, StreamRefusal, UpstreamTry } from '../plugins/sdk.ts';
import type { StreamMatch, StreamRouter } from './router.ts';
import { ConnectError, connectUpstream, type UpstreamSettings } from './upstream.ts';

/** How long a new connection may take to send its PROXY header / ClientHello (Kong's preread_timeout default 30 s). */
const prereadTimeoutMs = 30_000;

/** A stream_listen entry (kernel/settings.ts ListenSpec has this shape). */
export interface StreamListenSpec {
  readonly host: string;
  readonly port: number;
  readonly ssl: boolean;
  readonly proxyProtocol: boolean;
  readonly reuseport: boolean;
  readonly backlog: number | null;
}

/**
 * What the stream proxy reads from the current config (the kernel builds one per Snapshot:
 * kernel/stream.ts), so that this module needs nothing of the kernel.
 */
export interface StreamConfig {
  readonly router: StreamRouter;
  /** The balancer of a service whose host names an upstream entity, else null. */
  balanced(service: Service): BalancedService | null;
  /** The service's upstream TLS material (CA certificates, client certificate). */
  upstreamTls(service: Service, balanced: BalancedService | null): UpstreamTls | null;
  /** Runs the route's `preread` plugin handlers: the first refusal, or null. */
  preread(match: StreamMatch, ctx: StreamContext): StreamRefusal | null;
  /** Runs the route's `streamLog` plugin handlers for a finished session. */
  sessionLog(match: StreamMatch, ctx: StreamLogContext): void;
}

/** The PROXY protocol header reader (kernel/preamble.ts): 'more', an Error, or its length and source. */
export type ProxyHeaderReader = (buf: Buffer) => { length: number; peer: { address: string; port: number } | null } | 'more' | Error;

export interface StreamListenerOptions {
  readonly spec: StreamListenSpec;
  /** The config current when a connection is routed. */
  config(): StreamConfig;
  /** Certificates of `ssl` listeners (the store the HTTP listeners use). */
  readonly certificates?: CertificateStore;
  /** trusted_ips: whose PROXY protocol source address is believed. */
  readonly trusted: { has(ip: string): boolean };
  readonly readProxyHeader: ProxyHeaderReader;
  readonly upstream: UpstreamSettings;
  readonly reusePort: boolean;
  readonly log: Logger;
}

/** What the preamble learned. */
interface Preamble {
  /** Bytes read that belong to the stream (the ClientHello and whatever followed). */
  rest: Buffer;
  srcIp: string;
  srcPort: number;
  sni: string | null;
  /** Epoch ms and performance.now() when the connection was accepted. */
  startedAt: number;
  t0: number;
}

/** A routed session, for the stream log phase (StreamLogContext). */
interface Session {
  readonly match: StreamMatch;
  readonly protocol: StreamLogContext['protocol'];
  readonly p: Preamble;
  readonly serverPort: number;
  tls: StreamLogContext['tls'];
  /** ms from accept until the service connection was started. */
  kongMs: number;
  tries: readonly UpstreamTry[];
  /** Bytes relayed client → service and service → client (the relay counts them). */
  readonly counts: RelayCounts;
  logged: boolean;
}

/** Bytes a relay moved each way. */
export interface RelayCounts {
  aToB: number;
  bToA: number;
}

export class StreamListener {
  readonly spec: StreamListenSpec;
  readonly #o: StreamListenerOptions;
  readonly #server: net.Server;
  /** Open client sockets (destroyed when the drain time is over). */
  readonly #open = new Set<net.Socket>();

  /** The context of handshakes whose SNI has no certificate entity (the file/default certificate). */
  #defaultContext: tls.SecureContext | null = null;
  /** Follows the store's default context (it changes with the CA certificates). */
  readonly #holder = { setSecureContext: (options: tls.SecureContextOptions): void => { this.#defaultContext = tls.createSecureContext(options); } };

  private constructor(o: StreamListenerOptions) {
    this.#o = o;
    this.spec = o.spec;
    this.#server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, (socket) => this.#accept(socket));
    if (o.spec.ssl && o.certificates !== undefined) {
      this.#holder.setSecureContext(o.certificates.defaultOptions());
      o.certificates.attach(this.#holder);
      this.#server.once('close', () => o.certificates?.detach(this.#holder));
    }
  }

  static async open(o: StreamListenerOptions): Promise<StreamListener> {
    if (o.spec.ssl && o.certificates === undefined) throw new Error(`stream listener ${o.spec.host}:${o.spec.port} is "ssl" but no certificate is loaded`);
    const l = new StreamListener(o);
    await new Promise<void>((resolve, reject) => {
      l.#server.once('error', reject);
      const reusePort = o.reusePort || o.spec.reuseport;
      l.#server.listen({ host: o.spec.host, port: o.spec.port, reusePort, exclusive: reusePort, ...(o.spec.backlog !== null ? { backlog: o.spec.backlog } : {}) }, () => {
        l.#server.off('error', reject);
        resolve();
      });
    });
    return l;
  }

  port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** Stops accepting; open sessions may run on for `timeoutMs`, then are cut. */
  async close(timeoutMs: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        for (const s of this.#open) s.destroy();
        resolve();
      }, timeoutMs);
      timer.unref();
      this.#server.close(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #accept(socket: net.Socket): void {
    this.#open.add(socket);
    socket.once('close', () => this.#open.delete(socket));
    socket.on('error', () => socket.destroy());
    this.#readPreamble(socket, (p) => this.#route(socket, p));
  }

  /** Reads the PROXY header and/or the ClientHello, then calls `done` with the socket paused. */
  #readPreamble(socket: net.Socket, done: (p: Preamble) => void): void {
    const spec = this.#o.spec;
    const p: Preamble = { rest: Buffer.alloc(0), srcIp: socket.remoteAddress ?? '', srcPort: socket.remotePort ?? 0, sni: null, startedAt: Date.now(), t0: performance.now() };
    if (!spec.proxyProtocol && !spec.ssl) return done(p);
    let seen: Buffer = Buffer.alloc(0);
    let offset = 0;
    let headerDone = !spec.proxyProtocol;
    const timer = setTimeout(() => socket.destroy(), prereadTimeoutMs);
    timer.unref();
    const onData = (chunk: Buffer): void => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      if (!headerDone) {
        const h = this.#o.readProxyHeader(seen);
        if (h === 'more') return;
        if (h instanceof Error) {
          clearTimeout(timer);
          this.#o.log.debug({ listener: `${spec.host}:${spec.port}`, reason: h.message }, 'stream connection closed: no valid PROXY protocol header');
          socket.destroy();
          return;
        }
        if (h.peer !== null && this.#o.trusted.has(p.srcIp)) {
          p.srcIp = h.peer.address;
          p.srcPort = h.peer.port;
        }
        offset = h.length;
        headerDone = true;
      }
      if (spec.ssl) {
        const hello = readHelloServerName(seen.subarray(offset));
        if (hello === 'more' && seen.length - offset < maxHelloBytes) return;
        if (hello === null || hello === 'more') {
          // Not TLS: nothing on this listener can serve it.
          clearTimeout(timer);
          socket.destroy();
          return;
        }
        p.sni = hello.sni;
      }
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      p.rest = seen.subarray(offset);
      done(p);
    };
    socket.on('data', onData);
  }

  #route(socket: net.Socket, p: Preamble): void {
    const config = this.#o.config();
    const kind = this.#o.spec.ssl ? 'tls' : 'tcp';
    const facts = { srcIp: p.srcIp, srcPort: p.srcPort, dstIp: socket.localAddress ?? '', dstPort: socket.localPort ?? 0, sni: p.sni, kind } as const;
    const match = config.router.match(facts);
    const log = this.#o.log;
    if (match === null) {
      log.error({ client_ip: p.srcIp, server_port: facts.dstPort, sni: p.sni ?? undefined }, 'no Route found with those values');
      socket.destroy();
      return;
    }
    if (match.service === null) {
      log.error({ route_id: match.route.id }, 'stream route has no service; connection closed');
      socket.destroy();
      return;
    }
    const protocol = kind === 'tls' && !match.passthrough ? 'tls' : kind === 'tcp' ? 'tcp' : null;
    const session: Session = {
      match, protocol: protocol ?? 'tls_passthrough', p, serverPort: facts.dstPort, tls: null, kongMs: 0, tries: [], counts: { aToB: 0, bToA: 0 }, logged: false,
    };
    if (protocol !== null) {
      const ctx: StreamContext = { clientIp: p.srcIp, clientPort: p.srcPort, serverIp: facts.dstIp, serverPort: facts.dstPort, protocol, sni: p.sni, route: match.route, service: match.service, log };
      const refusal = config.preread(match, ctx);
      if (refusal !== null) {
        log.info({ route_id: match.route.id, status: refusal.status, client_ip: p.srcIp }, 'stream connection refused by a plugin; closed');
        socket.destroy();
        session.kongMs = performance.now() - p.t0;
        this.#logSession(config, session, refusal.status, 'kong');
        return;
      }
    }
    if (kind === 'tcp' || match.passthrough) {
      void this.#proxy(config, match.service, socket, socket, session);
      return;
    }
    this.#terminate(config, match.service, socket, session);
  }

  /** The stream log phase of a session, once (Kong's log phase: status, bytes, latencies, tries). */
  #logSession(config: StreamConfig, session: Session, status: number, source: 'service' | 'kong'): void {
    if (session.logged) return;
    session.logged = true;
    const p = session.p;
    const c = session.counts;
    config.sessionLog(session.match, {
      protocol: session.protocol, clientIp: p.srcIp, serverPort: session.serverPort, route: session.match.route, service: session.match.service,
      startedAt: p.startedAt, status, source, tls: session.tls,
      bytes: { received: c.aToB, sent: c.bToA }, upstreamBytes: { received: c.bToA, sent: c.aToB },
      latencies: { kong: session.kongMs, session: performance.now() - p.t0 }, upstreamTries: session.tries, log: this.#o.log,
    });
  }

  /** TLS termination with the SNI certificate selection of the HTTP listeners. */
  #terminate(config: StreamConfig, service: Service, socket: net.Socket, session: Session): void {
    const p = session.p;
    const store = this.#o.certificates!;
    if (p.rest.length > 0) socket.unshift(p.rest);
    const secure = new tls.TLSSocket(socket, {
      isServer: true,
      secureContext: this.#defaultContext!,
      SNICallback: store.sniCallback,
      requestCert: false,
      rejectUnauthorized: false,
    });
    const timer = setTimeout(() => secure.destroy(), prereadTimeoutMs);
    timer.unref();
    secure.on('error', () => {
      clearTimeout(timer);
      secure.destroy();
      socket.destroy();
    });
    secure.once('secure', () => {
      clearTimeout(timer);
      session.tls = tlsInfoOf(secure);
      p.rest = Buffer.alloc(0);
      void this.#proxy(config, service, secure, socket, session);
    });
  }

  /** Connects the service and relays bytes both ways; `raw` is the client's TCP socket. */
  async #proxy(config: StreamConfig, service: Service, client: net.Socket, raw: net.Socket, session: Session): Promise<void> {
    const p = session.p;
    session.kongMs = performance.now() - p.t0;
    const balanced = config.balanced(service);
    const material = config.upstreamTls(service, balanced);
    const key = balanced === null ? '' : balanced.hashKey(streamHashSource(p.srcIp), { path: '', captures: null });
    // Bytes arriving while the upstream is being connected stay in the socket's buffer.
    client.pause();
    let up;
    try {
      up = await connectUpstream(service, balanced, material, this.#o.upstream, key);
    } catch (err) {
      this.#o.log.error({ service_id: service.id, client_ip: p.srcIp, err: { message: (err as Error).message } }, 'stream upstream connection failed; client connection closed');
      client.destroy();
      raw.destroy();
      if (err instanceof ConnectError) session.tries = err.tries;
      this.#logSession(config, session, 502, 'kong');
      return;
    }
    session.tries = up.tries;
    if (client.destroyed) {
      up.socket.destroy();
      up.release();
      this.#logSession(config, session, 200, 'service');
      return;
    }
    const upstream = up.socket;
    upstream.once('close', () => up.release());
    // The session ends when both sides are closed.
    let open = 2;
    const closed = (): void => {
      if (--open === 0) this.#logSession(config, session, 200, 'service');
    };
    client.once('close', closed);
    upstream.once('close', closed);
    if (p.rest.length > 0) {
      session.counts.aToB += p.rest.length;
      upstream.write(p.rest);
    }
    relay(client, upstream, service.read_timeout, service.write_timeout, () => raw.destroy(), session.counts);
  }
}

/** The balancer's hash input for a stream connection: the client address is all there is. */
function streamHashSource(clientIp: string) {
  return {
    request: { clientIp, headers: {}, cookies: new Map<string, string>(), query: new URLSearchParams() },
    consumer: null,
    credential: null,
    downstreamHeaders: { add() {} },
  };
}

/**
 * Relays bytes between `a` and `b` until both directions have ended: each end is passed on
 * (half-close), an error or abrupt close of one destroys both, `idleMs` without bytes either way
 * or a write blocked for `writeMs` closes the session.
 */
export function relay(a: net.Socket, b: net.Socket, idleMs: number, writeMs: number, onDestroy: () => void = () => {}, counts: RelayCounts | null = null): void {
  let idle: NodeJS.Timeout | null = null;
  let done = false;
  const destroy = (): void => {
    if (done) return;
    done = true;
    if (idle !== null) clearTimeout(idle);
    a.destroy();
    b.destroy();
    onDestroy();
  };
  const touch = (): void => {
    if (idleMs <= 0) return;
    if (idle !== null) idle.refresh();
    else idle = setTimeout(destroy, idleMs);
  };
  const pipeOne = (from: net.Socket, to: net.Socket): void => {
    const ab = from === a;
    from.on('data', (chunk: Buffer) => {
      touch();
      if (counts !== null) {
        if (ab) counts.aToB += chunk.length;
        else counts.bToA += chunk.length;
      }
      if (to.write(chunk)) return;
      from.pause();
      const stall = writeMs > 0 ? setTimeout(destroy, writeMs) : null;
      to.once('drain', () => {
        if (stall !== null) clearTimeout(stall);
        from.resume();
      });
    });
    // The client may have ended before the relay started (its 'end' came while the preamble
    // was read or the service connected): pass it on now.
    if (from.readableEnded) to.end();
    else {
      from.once('end', () => {
        if (!to.destroyed) to.end();
      });
    }
    from.once('error', destroy);
    from.once('close', () => {
      // Closed before its end was relayed (a reset): the other side goes too.
      if (!from.readableEnded) destroy();
      else if (a.destroyed && b.destroyed && idle !== null) clearTimeout(idle);
    });
  };
  pipeOne(a, b);
  pipeOne(b, a);
  touch();
  a.resume();
  b.resume();
}
