/**
 * The stream router: which route a TCP or TLS connection belongs to, by its source address and
 * port (`sources`), the listener address it reached (`destinations`) and, on TLS, the server name
 * of its ClientHello (`snis`). Compiled once per config Snapshot (kernel/snapshot.ts), like the
 * HTTP router.
 *
 * As Kong's default router (traditional_compatible, kong/router/transform.lua):
 *
 * - the fields a route sets must all match; within `sources` (or `destinations`) one entry must
 *   match, an entry's ip (address or CIDR) and port each matching when set;
 * - `snis` is checked only on TLS connections (on plain ones it is ignored, Kong issue #6425);
 *   an SNI may be `*.example.com` (suffix) or `example.*` (prefix); a trailing dot is ignored;
 * - precedence: a route with snis, or with both sources and destinations, first; then by the
 *   sources' weight, then the destinations' (an exact IP outranks a port, which outranks a CIDR).
 *   Routes of equal weight keep the config's order (Kong leaves that order to its router
 *   library: do not rely on it there either).
 *
 * A plain listener serves routes whose protocols contain `tcp`; an ssl listener those with `tls`
 * or `tls_passthrough`.
 */
import type { Route, Service } from '../config/types.ts';
import { IpMatcher, peerAddress } from '../config/ip-cidr.ts';

/** What the router knows about a connection. */
export interface StreamFacts {
  readonly srcIp: string;
  readonly srcPort: number;
  readonly dstIp: string;
  readonly dstPort: number;
  /** The ClientHello's server name (lower-case), null without one or on plain connections. */
  readonly sni: string | null;
  /** Plain listener (`tcp`) or ssl listener (`tls`: tls and tls_passthrough routes). */
  readonly kind: 'tcp' | 'tls';
}

export interface StreamMatch {
  readonly route: Route;
  /** Null when the route has no service, or its service was not found. */
  readonly service: Service | null;
  /** The route forwards the TLS bytes untouched (matched on an ssl listener). */
  readonly passthrough: boolean;
}

interface NetEntry {
  readonly ip: IpMatcher | null;
  readonly port: number | null;
}

interface SniMatcher {
  readonly exact: ReadonlySet<string>;
  /** `*.example.com` → `.example.com` */
  readonly suffixes: readonly string[];
  /** `example.*` → `example.` */
  readonly prefixes: readonly string[];
}

interface Compiled {
  readonly route: Route;
  readonly service: Service | null;
  readonly tcp: boolean;
  readonly tls: boolean;
  readonly passthrough: boolean;
  readonly sources: readonly NetEntry[] | null;
  readonly destinations: readonly NetEntry[] | null;
  readonly snis: SniMatcher | null;
  readonly priority: number;
}

const STREAM_PROTOCOLS = ['tcp', 'tls', 'tls_passthrough'];

/** Whether a route is served by the stream proxy (its protocols are stream ones). */
function isStreamRoute(route: Route): boolean {
  return route.protocols.some((p) => STREAM_PROTOCOLS.includes(p));
}

interface NetField {
  ip?: string;
  port?: number;
}

function netEntries(list: readonly unknown[] | null): NetEntry[] | null {
  if (list === null || list.length === 0) return null;
  return (list as NetField[]).map((e) => ({ ip: e.ip !== undefined && e.ip !== null ? new IpMatcher([e.ip]) : null, port: e.port ?? null }));
}

/** Kong's weight of a sources/destinations list: exact IP 8, port 4, CIDR 1 (bits, or-ed). */
function netWeight(list: readonly unknown[] | null): number {
  let w = 0;
  for (const e of (list ?? []) as NetField[]) {
    if (e.ip !== undefined && e.ip !== null) w |= e.ip.includes('/') ? 1 : 8;
    if (e.port !== undefined && e.port !== null) w |= 4;
  }
  return w;
}

function sniMatcher(snis: readonly string[] | null): SniMatcher | null {
  if (snis === null || snis.length === 0) return null;
  const exact = new Set<string>();
  const suffixes: string[] = [];
  const prefixes: string[] = [];
  for (const raw of snis) {
    let s = raw.toLowerCase();
    if (s.endsWith('*')) {
      prefixes.push(s.slice(0, -1));
      continue;
    }
    if (s.length > 1 && s.endsWith('.')) s = s.slice(0, -1);
    if (s.startsWith('*')) suffixes.push(s.slice(1));
    else exact.add(s);
  }
  return { exact, suffixes, prefixes };
}

function sniMatches(m: SniMatcher, sni: string | null): boolean {
  if (sni === null) return false;
  const name = sni.length > 1 && sni.endsWith('.') ? sni.slice(0, -1) : sni;
  return m.exact.has(name) || m.suffixes.some((s) => name.endsWith(s)) || m.prefixes.some((p) => name.startsWith(p));
}

function netMatches(entries: readonly NetEntry[], ip: string, port: number): boolean {
  const a = peerAddress(ip);
  return entries.some((e) => {
    if (e.port !== null && e.port !== port) return false;
    if (e.ip === null) return true;
    return a !== null && e.ip.has(a);
  });
}

export class StreamRouter {
  readonly #routes: readonly Compiled[];

  constructor(routes: readonly Route[], servicesById: ReadonlyMap<string, Service>) {
    const compiled: Compiled[] = [];
    for (const route of routes) {
      if (!isStreamRoute(route)) continue;
      const service = route.service === null ? null : servicesById.get(route.service.id) ?? null;
      if (service !== null && service.enabled === false) continue;
      const sources = netEntries(route.sources);
      const destinations = netEntries(route.destinations);
      const snis = sniMatcher(route.snis);
      // Kong's stream_get_priority: the SNI bit (also earned by sources + destinations together),
      // then the sources' weight above the destinations'.
      const top = snis !== null || (sources !== null && destinations !== null) ? 1 << 8 : 0;
      compiled.push({
        route,
        service,
        tcp: route.protocols.includes('tcp'),
        tls: route.protocols.includes('tls'),
        passthrough: route.protocols.includes('tls_passthrough'),
        sources,
        destinations,
        snis,
        priority: top + (netWeight(route.sources) << 4) + netWeight(route.destinations),
      });
    }
    // Array.prototype.sort is stable: equal priorities keep the config's order.
    this.#routes = compiled.sort((a, b) => b.priority - a.priority);
  }

  /** How many stream routes there are. */
  get size(): number {
    return this.#routes.length;
  }

  /** The route a connection belongs to, or null (the connection is closed). */
  match(f: StreamFacts): StreamMatch | null {
    for (const c of this.#routes) {
      if (f.kind === 'tcp' ? !c.tcp : !c.tls && !c.passthrough) continue;
      if (f.kind === 'tls' && c.snis !== null && !sniMatches(c.snis, f.sni)) continue;
      if (c.sources !== null && !netMatches(c.sources, f.srcIp, f.srcPort)) continue;
      if (c.destinations !== null && !netMatches(c.destinations, f.dstIp, f.dstPort)) continue;
      return { route: c.route, service: c.service, passthrough: f.kind === 'tls' && c.passthrough && !c.tls };
    }
    return null;
  }
}
