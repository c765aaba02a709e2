/**
 * Micro-benchmark of Router.match (not a test): ops/sec for 1 vs 1,000 prefix routes, plus
 * 1,000 host-routed routes and a few regex routes. Run: ./node_modules/.bin/node bench/router-bench.ts
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Route, Service } from '../src/config/types.ts';
import { compileRouter, pathNeedsCheck, type Router, type RouterInput } from '../src/router/index.ts';

const service: Service = {
  id: 'svc', name: 'svc', protocol: 'http', host: 'upstream.test', port: 80, path: '/base',
  retries: 5, connect_timeout: 60000, write_timeout: 60000, read_timeout: 60000,
  tls_verify: null, tls_verify_depth: null, ca_certificates: null, client_certificate: null,
  enabled: true, tags: null, created_at: 1, updated_at: 1,
};

function route(i: number, extra: Partial<Route>): Route {
  return {
    id: `r${i}`, name: `r${i}`, protocols: ['http', 'https'], methods: null, hosts: null, paths: null,
    headers: null, snis: null, sources: null, destinations: null, strip_path: true, preserve_host: false,
    regex_priority: 0, path_handling: 'v0', https_redirect_status_code: 426, request_buffering: true,
    response_buffering: true, service: { id: 'svc' }, tags: null, created_at: i, updated_at: i, ...extra,
  };
}

function input(path: string, host = 'api.example.com'): RouterInput {
  return { method: 'GET', host, path, headers: { accept: '*/*' } as IncomingHttpHeaders, scheme: 'http' };
}

/** What the kernel does per request: the path-safety scan (and check when it asks), then match. */
function route1(router: Router, input: RouterInput): boolean {
  if (pathNeedsCheck(input.path) && router.pathRefusal(input) !== null) return false;
  return router.match(input) !== null;
}

function bench(label: string, router: Router, inputs: readonly RouterInput[]): void {
  // Warm up so the JIT has settled before timing.
  for (let i = 0; i < 200_000; i++) route1(router, inputs[i % inputs.length]);
  const iterations = 2_000_000;
  let hits = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) if (route1(router, inputs[i % inputs.length])) hits++;
  const ns = Number(process.hrtime.bigint() - start);
  const opsPerSec = Math.round((iterations / ns) * 1e9);
  console.log(`${label.padEnd(44)} ${opsPerSec.toLocaleString('en-US').padStart(12)} ops/sec  (${hits === iterations ? 'all matched' : `${hits} matched`})`);
}

const services = new Map([[service.id, service]]);

const one = compileRouter([route(0, { paths: ['/svc0'] })], services);
bench('1 prefix route', one, [input('/svc0/users/42')]);

const thousand: Route[] = [];
for (let i = 0; i < 1000; i++) thousand.push(route(i, { paths: [`/svc${i}`] }));
const many = compileRouter(thousand, services);
bench('1,000 prefix routes (same request)', many, [input('/svc0/users/42')]);
// Paths with `%`, `\\` or `;` take the path-safety check (every other reading routed too).
bench('1,000 prefix routes, path with %2F and %20', many, [input('/svc999/group%2Fproject/a%20b')]);
bench('1,000 prefix routes (spread requests)', many, [0, 137, 500, 999].map((i) => input(`/svc${i}/users/42`)));

const hosts: Route[] = [];
for (let i = 0; i < 1000; i++) hosts.push(route(i, { hosts: [`h${i}.example.com`], paths: ['/'] }));
bench('1,000 host routes sharing path /', compileRouter(hosts, services), [input('/x', 'h500.example.com')]);

const mixed = [...thousand];
for (let i = 0; i < 10; i++) mixed.push(route(1000 + i, { paths: [`~/re${i}/\\d+$`] }));
bench('1,000 prefix + 10 regex routes (prefix hit)', compileRouter(mixed, services), [input('/svc999/a')]);
bench('1,000 prefix + 10 regex routes (regex hit)', compileRouter(mixed, services), [input('/re9/123')]);

// The path-safety scan alone (what a request without `%`, `\`, `;` or NUL pays), in ns per call,
// to set against the gateway's CPU cost per request (bench/RESULTS.md: ~40-70 µs).
{
  const paths = ['/svc0/users/42', '/api/v1/orders/12345/items', '/svc999/items'];
  let n = 0;
  for (let i = 0; i < 1_000_000; i++) if (pathNeedsCheck(paths[i % 3])) n++;
  const iterations = 10_000_000;
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) if (pathNeedsCheck(paths[i % 3])) n++;
  const ns = Number(process.hrtime.bigint() - start) / iterations;
  console.log(`${'path-safety scan only (plain paths)'.padEnd(44)} ${ns.toFixed(1).padStart(12)} ns/call  (${n === 0 ? 'no check needed' : `${n} needed a check`})`);
}
