/**
 * One balancer address: an ip:port a target resolved to, with the per-address state the
 * algorithms read (availability, requests in flight, latency EWMA). Owned by an UpstreamBalancer.
 */
export interface Address {
  /** `ip:port` (IPv6 as `[ip]:port`). */
  readonly key: string;
  /** Health key inside the upstream: `<target>|<ip:port>`. */
  readonly healthKey: string;
  readonly ip: string;
  readonly port: number;
  readonly weight: number;
  /** The target entity's normalised `host:port`. */
  readonly target: string;
  /** The target's host name (or IP) — Host header and SNI when the upstream sets no host_header. */
  readonly hostname: string;
  /** healthy and weight > 0 */
  available: boolean;
  healthy: boolean;
  inflight: number;
  /** Latency EWMA in ms (0 = not measured yet) and when it was last updated (ms). */
  ewma: number;
  ewmaAt: number;
}

export function addressKey(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}
