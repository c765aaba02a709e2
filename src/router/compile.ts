/**
 * Compile routes into an indexed, immutable matcher following Kong's traditional router
 * (`traditional_compatible` flavour, as documented at developer.konghq.com/gateway/routing/traditional).
 *
 * Every route is split into one *entry* per path (a route without paths is one entry), because
 * Kong ranks each path of a route separately. Entries are ranked once, here, by:
 *   1. match weight: how many of methods / hosts / headers / paths / snis the route sets;
 *   2. hosts: routes without any wildcard host before routes with one;
 *   3. more header conditions first;
 *   4. regex paths before plain ones; regexes by `regex_priority` (higher first), plain prefixes
 *      by length (longer first);
 *   5. `created_at` (older first), then position in the input array.
 * `match` returns the lowest-ranked entry whose conditions all hold.
 *
 * To stay fast with thousands of routes the entries are indexed by host (exact map, a short list
 * of wildcard patterns, and the host-less bucket) and, inside each host bucket, plain prefixes
 * live in a character trie. A lookup therefore walks the request path once per relevant bucket
 * and only examines entries whose host and path prefix already match.
 */
import type { Route, Service } from '../config/types.ts';
import { ConfigError, type ValidationIssue } from '../errors.ts';
import { normalizePath } from './normalize.ts';
import { alternativeReadings, pathRefusals, preparePath, routingPath, type EscapedSlashes, type PathRefusal } from './path-safety.ts';
import { compileRoutePathRegex } from './regex.ts';
import type { CompileRouterOptions, RouteMatch, Router, RouterInput, UriCaptures } from './types.ts';
import { upstreamPathFor } from './upstream-path.ts';

interface HeaderCondition {
  readonly name: string;
  /** Accepted values, lower case (Kong compares header values case-insensitively). */
  readonly values: ReadonlySet<string>;
  /** `~*regex` values: searched (not anchored), case-insensitively. */
  readonly patterns: readonly RegExp[];
}

const pathKinds = ['prefix', 'regex', 'any'] as const;
type PathKind = (typeof pathKinds)[number];

interface Entry {
  /** Position in the global priority order; lower wins. Set after sorting. */
  rank: number;
  readonly route: Route;
  readonly service: Service | null;
  readonly kind: PathKind;
  /** Normalised plain prefix (kind `prefix`). */
  readonly prefix: string;
  /** Start-anchored regex (kind `regex`). */
  readonly regex: RegExp | null;
  readonly methods: ReadonlySet<string> | null;
  readonly headers: readonly HeaderCondition[] | null;
  readonly snis: ReadonlySet<string> | null;
  readonly allowHttp: boolean;
  readonly allowHttps: boolean;
  // Sort keys.
  readonly weight: number;
  readonly plainHostsOnly: boolean;
  readonly headerCount: number;
  readonly regexPriority: number;
  readonly pathLength: number;
  readonly createdAt: number;
  readonly order: number;
}

interface TrieNode {
  children: Map<number, TrieNode> | null;
  /** Entries whose prefix ends exactly here, best rank first. */
  entries: Entry[] | null;
}

/** The entries reachable for one host condition, split by how they match the path. */
interface PathIndex {
  readonly root: TrieNode;
  /** Regex entries, best rank first. */
  readonly regex: Entry[];
  /** Entries without a path condition, best rank first. */
  readonly any: Entry[];
}

interface WildcardBucket {
  /** `*.example.com` → suffix `.example.com`; `example.*` → prefix `example.`. */
  readonly suffix: string | null;
  readonly prefix: string | null;
  readonly port: number | null;
  readonly index: PathIndex;
}

function newPathIndex(): PathIndex {
  return { root: { children: null, entries: null }, regex: [], any: [] };
}

function addToIndex(index: PathIndex, entry: Entry): void {
  if (entry.kind === 'regex') {
    index.regex.push(entry);
    return;
  }
  if (entry.kind === 'any') {
    index.any.push(entry);
    return;
  }
  let node = index.root;
  for (let i = 0; i < entry.prefix.length; i++) {
    const code = entry.prefix.charCodeAt(i);
    node.children ??= new Map();
    let next = node.children.get(code);
    if (!next) {
      next = { children: null, entries: null };
      node.children.set(code, next);
    }
    node = next;
  }
  (node.entries ??= []).push(entry);
}

function byRank(a: Entry, b: Entry): number {
  return a.rank - b.rank;
}

function sortIndex(index: PathIndex): void {
  index.regex.sort(byRank);
  index.any.sort(byRank);
  const stack: TrieNode[] = [index.root];
  while (stack.length > 0) {
    const node = stack.pop() as TrieNode;
    node.entries?.sort(byRank);
    if (node.children) for (const child of node.children.values()) stack.push(child);
  }
}

/** Kong's priority order; negative when `a` is tried before `b`. */
function comparePriority(a: Entry, b: Entry): number {
  return (
    b.weight - a.weight ||
    Number(b.plainHostsOnly) - Number(a.plainHostsOnly) ||
    b.headerCount - a.headerCount ||
    Number(b.kind === 'regex') - Number(a.kind === 'regex') ||
    b.regexPriority - a.regexPriority ||
    b.pathLength - a.pathLength ||
    a.createdAt - b.createdAt ||
    a.order - b.order
  );
}

function nonEmpty<T>(list: readonly T[] | null | undefined): list is readonly T[] {
  return list !== null && list !== undefined && list.length > 0;
}

/** Split `host[:port]`; bracketed IPv6 literals keep their colons. */
function splitHostPort(value: string): { host: string; port: number | null } {
  const m = /^(.*?):(\d+)$/.exec(value);
  if (m && (!m[1].includes(':') || m[1].endsWith(']'))) return { host: m[1], port: Number(m[2]) };
  return { host: value, port: null };
}

function compileHeaders(
  headers: Record<string, string[]> | null,
  issues: ValidationIssue[],
  where: string,
): HeaderCondition[] | null {
  if (!headers) return null;
  const out: HeaderCondition[] = [];
  for (const [name, list] of Object.entries(headers)) {
    const values = new Set<string>();
    const patterns: RegExp[] = [];
    for (const [i, value] of list.entries()) {
      if (value.startsWith('~*')) {
        try {
          patterns.push(new RegExp(value.slice(2), 'i'));
        } catch (err) {
          issues.push({ path: `${where}.headers.${name}[${i}]`, message: `invalid regex: ${(err as Error).message}` });
        }
      } else {
        values.add(value.toLowerCase());
      }
    }
    out.push({ name: name.toLowerCase(), values, patterns });
  }
  return out.length > 0 ? out : null;
}

function headerValueMatches(cond: HeaderCondition, value: string): boolean {
  if (cond.values.size > 0 && cond.values.has(value.toLowerCase())) return true;
  for (const re of cond.patterns) if (re.test(value)) return true;
  return false;
}

function headerMatches(cond: HeaderCondition, raw: string | string[] | undefined): boolean {
  if (raw === undefined) return false;
  if (typeof raw !== 'string') {
    for (const v of raw) if (headerMatches(cond, v)) return true;
    return false;
  }
  if (headerValueMatches(cond, raw)) return true;
  // Node joins repeated header lines with ", "; Kong sees each line, so try each part too.
  if (raw.includes(',')) {
    for (const part of raw.split(',')) if (headerValueMatches(cond, part.trim())) return true;
  }
  return false;
}

class CompiledRouter implements Router {
  readonly #exact: ReadonlyMap<string, PathIndex>;
  readonly #exactWithPort: ReadonlyMap<string, PathIndex>;
  readonly #wildcards: readonly WildcardBucket[];
  readonly #anyHost: PathIndex;
  readonly #httpsRedirect: boolean;
  readonly #escapedSlashes: EscapedSlashes;

  constructor(
    exact: Map<string, PathIndex>,
    exactWithPort: Map<string, PathIndex>,
    wildcards: WildcardBucket[],
    anyHost: PathIndex,
    httpsRedirect: boolean,
    escapedSlashes: EscapedSlashes,
  ) {
    this.#exact = exact;
    this.#exactWithPort = exactWithPort;
    this.#wildcards = wildcards;
    this.#anyHost = anyHost;
    this.#httpsRedirect = httpsRedirect;
    this.#escapedSlashes = escapedSlashes;
  }

  pathRefusal(input: RouterInput): PathRefusal | null {
    const prepared = preparePath(input.path, this.#escapedSlashes);
    if (prepared.refusal !== null) return prepared.refusal;
    const readings = alternativeReadings(prepared.path);
    if (typeof readings === 'string') return readings;
    if (readings.size === 0) return null;
    const route = this.#find(input, normalizePath(prepared.path))?.route ?? null;
    for (const reading of readings) {
      if ((this.#find(input, reading)?.route ?? null) !== route) return pathRefusals.ambiguous;
    }
    return null;
  }

  match(input: RouterInput): RouteMatch | null {
    const path = routingPath(input.path, this.#escapedSlashes);
    const best = this.#find(input, path);
    if (best === null) return null;

    let matchedPath: string | null = null;
    let uriCaptures: UriCaptures | null = null;
    if (best.kind === 'prefix') {
      matchedPath = best.prefix;
    } else if (best.kind === 'regex') {
      // Re-run the winner only: cheaper than keeping every candidate's match result.
      const m = (best.regex as RegExp).exec(path) as RegExpExecArray;
      matchedPath = m[0];
      uriCaptures = { unnamed: m.slice(1), named: m.groups ? { ...m.groups } : {} };
    }
    return {
      route: best.route,
      service: best.service,
      upstreamPath: upstreamPathFor(best.route, best.service, path, matchedPath),
      matchedPath,
      normalizedPath: path,
      uriCaptures,
      httpsRedirect: input.scheme === 'http' && !best.allowHttp,
    };
  }

  /** The best entry for the request with `path` (normalised) as its path, or null. */
  #find(input: RouterInput, path: string): Entry | null {
    const host = input.host;
    let best: Entry | null = null;

    const exact = this.#exact.get(host);
    if (exact) best = this.#search(exact, input, path, best);
    if (this.#exactWithPort.size > 0 && input.port !== undefined) {
      const withPort = this.#exactWithPort.get(`${host}:${input.port}`);
      if (withPort) best = this.#search(withPort, input, path, best);
    }
    for (const w of this.#wildcards) {
      if (w.port !== null && w.port !== input.port) continue;
      const fixed = w.suffix ?? (w.prefix as string);
      if (host.length <= fixed.length) continue;
      if (w.suffix !== null ? host.endsWith(fixed) : host.startsWith(fixed)) {
        best = this.#search(w.index, input, path, best);
      }
    }
    return this.#search(this.#anyHost, input, path, best);
  }

  /** Best entry of `index` that beats `best`, or `best` itself. */
  #search(index: PathIndex, input: RouterInput, path: string, best: Entry | null): Entry | null {
    let bestRank = best === null ? Number.POSITIVE_INFINITY : best.rank;
    let node: TrieNode | undefined = index.root;
    for (let i = 0; i < path.length; i++) {
      node = node.children?.get(path.charCodeAt(i));
      if (node === undefined) break;
      if (node.entries !== null) {
        for (const e of node.entries) {
          if (e.rank >= bestRank) break;
          if (this.#accepts(e, input)) {
            best = e;
            bestRank = e.rank;
            break;
          }
        }
      }
    }
    for (const e of index.any) {
      if (e.rank >= bestRank) break;
      if (this.#accepts(e, input)) {
        best = e;
        bestRank = e.rank;
        break;
      }
    }
    for (const e of index.regex) {
      if (e.rank >= bestRank) break;
      // Cheap conditions first; the regex last.
      if (this.#accepts(e, input) && (e.regex as RegExp).test(path)) {
        best = e;
        bestRank = e.rank;
        break;
      }
    }
    return best;
  }

  /** Every condition except host (decided by the bucket) and path (decided by the index). */
  #accepts(e: Entry, input: RouterInput): boolean {
    if (input.scheme === 'https') {
      if (!e.allowHttps) return false;
      if (e.snis !== null && (input.sni === undefined || !e.snis.has(input.sni))) return false;
    } else if (!e.allowHttp && !(this.#httpsRedirect && e.allowHttps)) {
      return false;
    }
    if (e.methods !== null && !e.methods.has(input.method)) return false;
    if (e.headers !== null) {
      for (const cond of e.headers) if (!headerMatches(cond, input.headers[cond.name])) return false;
    }
    return true;
  }
}

/**
 * Compile routes into a {@link Router}. Routes whose protocols include neither `http` nor
 * `https`, and routes whose service is disabled, are left out (Kong does not route to them).
 *
 * @throws ConfigError listing every regex (path or header) that JavaScript cannot compile.
 */
export function compileRouter(
  routes: readonly Route[],
  servicesById: ReadonlyMap<string, Service>,
  options: CompileRouterOptions = {},
): Router {
  const issues: ValidationIssue[] = [];
  const entries: Entry[] = [];

  for (const [order, route] of routes.entries()) {
    const allowHttp = route.protocols.includes('http');
    const allowHttps = route.protocols.includes('https');
    if (!allowHttp && !allowHttps) continue;
    const service = route.service ? (servicesById.get(route.service.id) ?? null) : null;
    if (service !== null && service.enabled === false) continue;

    const where = `routes[${order}]`;
    const methods = nonEmpty(route.methods) ? new Set(route.methods.map((m) => m.toUpperCase())) : null;
    const hosts = nonEmpty(route.hosts) ? route.hosts : null;
    const headers = compileHeaders(route.headers, issues, where);
    const snis = nonEmpty(route.snis) ? new Set(route.snis.map((s) => s.toLowerCase())) : null;
    const paths = nonEmpty(route.paths) ? route.paths : null;
    const weight =
      Number(methods !== null) + Number(hosts !== null) + Number(headers !== null) + Number(paths !== null) + Number(snis !== null);
    const base = {
      rank: 0,
      route,
      service,
      methods,
      headers,
      snis,
      allowHttp,
      allowHttps,
      weight,
      plainHostsOnly: hosts === null || hosts.every((h) => !h.includes('*')),
      headerCount: headers?.length ?? 0,
      createdAt: route.created_at ?? 0,
      order,
    };

    if (paths === null) {
      entries.push({ ...base, kind: 'any', prefix: '', regex: null, regexPriority: 0, pathLength: 0 });
      continue;
    }
    for (const [i, p] of paths.entries()) {
      if (p.startsWith('~')) {
        let regex: RegExp;
        try {
          regex = compileRoutePathRegex(p.slice(1));
        } catch (err) {
          issues.push({ path: `${where}.paths[${i}]`, message: `invalid regex: ${(err as Error).message}` });
          continue;
        }
        entries.push({ ...base, kind: 'regex', prefix: '', regex, regexPriority: route.regex_priority ?? 0, pathLength: 0 });
      } else {
        const prefix = normalizePath(p);
        entries.push({ ...base, kind: 'prefix', prefix, regex: null, regexPriority: 0, pathLength: prefix.length });
      }
    }
  }
  if (issues.length > 0) throw new ConfigError(issues, 'routes cannot be compiled');

  entries.sort(comparePriority);
  for (const [rank, e] of entries.entries()) e.rank = rank;

  const exact = new Map<string, PathIndex>();
  const exactWithPort = new Map<string, PathIndex>();
  const wildcardByPattern = new Map<string, WildcardBucket>();
  const anyHost = newPathIndex();

  for (const e of entries) {
    if (!nonEmpty(e.route.hosts)) {
      addToIndex(anyHost, e);
      continue;
    }
    // A route listing the same host twice must not be indexed twice in one bucket.
    const seen = new Set<PathIndex>();
    for (const raw of e.route.hosts) {
      const lower = raw.toLowerCase();
      const { host, port } = splitHostPort(lower);
      let index: PathIndex | undefined;
      if (host.startsWith('*') || host.endsWith('*')) {
        let bucket = wildcardByPattern.get(lower);
        if (!bucket) {
          bucket = host.startsWith('*')
            ? { suffix: host.slice(1), prefix: null, port, index: newPathIndex() }
            : { suffix: null, prefix: host.slice(0, -1), port, index: newPathIndex() };
          wildcardByPattern.set(lower, bucket);
        }
        index = bucket.index;
      } else {
        const map = port === null ? exact : exactWithPort;
        const key = port === null ? host : `${host}:${port}`;
        index = map.get(key);
        if (!index) {
          index = newPathIndex();
          map.set(key, index);
        }
      }
      if (seen.has(index)) continue;
      seen.add(index);
      addToIndex(index, e);
    }
  }

  // Entries were added in rank order already, but sorting keeps that an explicit invariant.
  for (const index of exact.values()) sortIndex(index);
  for (const index of exactWithPort.values()) sortIndex(index);
  for (const bucket of wildcardByPattern.values()) sortIndex(bucket.index);
  sortIndex(anyHost);

  return new CompiledRouter(
    exact, exactWithPort, [...wildcardByPattern.values()], anyHost, options.httpsRedirect === true, options.escapedSlashes ?? 'keep',
  );
}
