/**
 * Connecting a stream connection to its service: a plain TCP connection (`tcp` service) or a TLS
 * one (`tls` service: tls_verify, tls_verify_depth, ca_certificates and client_certificate applied
 * as for HTTPS upstreams, proxy/pools.ts), within `connect_timeout` (the TLS handshake included),
 * tried again on failure up to `retries` times. A service whose host names an upstream entity
 * picks its address through the balancer (proxy/balanced.ts: first/next, failed, release), as
 * the HTTP proxy does; otherwise the service's host and port are connected (host names resolved
 * by the system resolver, as node:net does).
 *
 * Deviation from Kong: a service with any protocol other than `tls` is connected in plain TCP
 * (Kong's stream subsystem turns proxy_ssl on only for `tls` services too).
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Service } from '../config/types.ts';
import type { Address } from '../balancer/address.ts';
import type { BalancedService } from '../proxy/balanced.ts';
import { depthCheck, type UpstreamTls } from '../proxy/pools.ts';
import type { UpstreamTry } from '../plugins/sdk.ts';
import { upstreamError } from '../proxy/errors.ts';

export interface UpstreamSettings {
  /** PORTCULLIS_UPSTREAM_TLS_VERIFY: verify when the service leaves tls_verify unset. */
  tlsVerifyDefault: boolean;
  /** PORTCULLIS_UPSTREAM_CA_FILE (PEM), added to the trust store. */
  ca: string | null;
}

/** Where one try goes. */
interface Peer {
  host: string;
  port: number;
  /** TLS server name (null for IP literals). */
  servername: string | null;
  address: Address | null;
}

export interface Connected {
  socket: net.Socket;
  /** The exchange is over: releases a balancer address (no-op otherwise). */
  release(): void;
  /** Every try, the last one the connected address (Kong's `tries`). */
  tries: UpstreamTry[];
}

export class ConnectError extends Error {
  override name = 'ConnectError';
  readonly tries: UpstreamTry[];
  constructor(message: string, tries: UpstreamTry[]) {
    super(message);
    this.tries = tries;
  }
}

const isIp = (h: string): boolean => net.isIP(h) !== 0;

function tlsOptions(s: Service, material: UpstreamTls | null, settings: UpstreamSettings, servername: string | null): tls.ConnectionOptions {
  const verify = s.tls_verify ?? settings.tlsVerifyDefault;
  const ca = [...(material?.ca ?? []), ...(settings.ca !== null ? [settings.ca] : [])];
  return {
    rejectUnauthorized: verify,
    ...(servername !== null ? { servername } : {}),
    ...(ca.length > 0 ? { ca } : {}),
    ...(material?.clientCert ? { cert: material.clientCert.cert, key: material.clientCert.key } : {}),
    ...(verify && s.tls_verify_depth !== null ? { checkServerIdentity: depthCheck(s.tls_verify_depth) } : {}),
  };
}

/** One try: resolves with a connected (and, for tls, handshaken) socket, or rejects. */
function connectOnce(s: Service, peer: Peer, material: UpstreamTls | null, settings: UpstreamSettings): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const secure = s.protocol === 'tls';
    const socket: net.Socket = secure
      ? tls.connect({ host: peer.host, port: peer.port, ...tlsOptions(s, material, settings, peer.servername) })
      : net.connect({ host: peer.host, port: peer.port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error(`connect to ${peer.host}:${peer.port} timed out after ${s.connect_timeout} ms`), { code: 'ETIMEDOUT' }));
    }, s.connect_timeout);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once('error', fail);
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      socket.off('error', fail);
      resolve(socket);
    });
  });
}

/**
 * Connects to the service: 1 + `retries` tries (a balanced service moves on to another address
 * when one is usable). Rejects with a ConnectError when every try failed.
 */
export async function connectUpstream(s: Service, balanced: BalancedService | null, material: UpstreamTls | null, settings: UpstreamSettings, hashKey: string): Promise<Connected> {
  const tried: Address[] = [];
  const tries: UpstreamTry[] = [];
  let last: unknown = null;
  for (let attempt = 0; attempt <= s.retries; attempt++) {
    let peer: Peer;
    if (balanced !== null) {
      const a = attempt === 0 ? balanced.first(hashKey) : balanced.next(hashKey, tried);
      if (a === null) throw new ConnectError('failure to get a peer from the ring-balancer', tries);
      const name = balanced.balancer.upstream.host_header?.replace(/:\d+$/, '') ?? a.hostname;
      peer = { host: a.ip, port: a.port, servername: isIp(name) ? null : name, address: a };
    } else {
      peer = { host: s.host, port: s.port, servername: isIp(s.host) ? null : s.host, address: null };
    }
    // The try before this one failed (Kong marks a try "failed" when the next one starts).
    const previous = tries[tries.length - 1];
    if (previous !== undefined) previous.failed = upstreamError(last).status === 504 ? 504 : 502;
    tries.push({ ip: peer.host, port: peer.port, startMs: Date.now(), failed: null });
    try {
      const socket = await connectOnce(s, peer, material, settings);
      const a = peer.address;
      return { socket, tries, release: () => { if (a !== null && balanced !== null) balanced.release(a); } };
    } catch (err) {
      last = err;
      if (peer.address !== null && balanced !== null) {
        balanced.failed(peer.address, err);
        balanced.release(peer.address);
        tried.push(peer.address);
      }
    }
  }
  throw new ConnectError((last as Error | null)?.message ?? 'connect failed', tries);
}
