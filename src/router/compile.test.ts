import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import type { Route, Service } from '../config/types.ts';
import { ConfigError } from '../errors.ts';
import { compileRouter, type CompileRouterOptions, type RouterInput } from './index.ts';

function service(id: string, path: string | null, extra: Partial<Service> = {}): Service {
  return {
    id,
    name: id,
    protocol: 'http',
    host: 'upstream.test',
    port: 80,
    path,
    retries: 5,
    connect_timeout: 60000,
    write_timeout: 60000,
    read_timeout: 60000,
    tls_verify: null,
    tls_verify_depth: null,
    ca_certificates: null,
    client_certificate: null,
    enabled: true,
    tags: null,
    created_at: 1,
    updated_at: 1,
    ...extra,
  };
}

/** A route with Kong's defaults; `name` doubles as id so assertions read well. */
function route(name: string, extra: Partial<Route> = {}): Route {
  return {
    id: name,
    name,
    protocols: ['http', 'https'],
    methods: null,
    hosts: null,
    paths: null,
    headers: null,
    snis: null,
    sources: null,
    destinations: null,
    strip_path: true,
    preserve_host: false,
    regex_priority: 0,
    path_handling: 'v0',
    https_redirect_status_code: 426,
    request_buffering: true,
    response_buffering: true,
    service: { id: 'svc' },
    tags: null,
    created_at: 100,
    updated_at: 100,
    ...extra,
  };
}

function req(path: string, extra: Partial<RouterInput> = {}): RouterInput {
  return { method: 'GET', host: 'example.com', path, headers: {} as IncomingHttpHeaders, scheme: 'http', ...extra };
}

interface Case {
  name: string;
  routes: Route[];
  request: RouterInput;
  /** Name of the route expected to match, or null for no match. */
  expect: string | null;
  upstreamPath?: string;
  matchedPath?: string | null;
  services?: Service[];
  options?: CompileRouterOptions;
}

const svc = service('svc', null);

const cases: Case[] = [
  // --- paths: prefix -------------------------------------------------------------------------
  { name: 'prefix path matches a longer request path', routes: [route('r', { paths: ['/foo'] })], request: req('/foo/bar'), expect: 'r', matchedPath: '/foo' },
  { name: 'prefix match is by characters, not segments', routes: [route('r', { paths: ['/foo'] })], request: req('/foobar'), expect: 'r' },
  { name: 'no route for the path → null', routes: [route('r', { paths: ['/foo'] })], request: req('/bar'), expect: null },
  { name: 'shorter request than the prefix does not match', routes: [route('r', { paths: ['/foo/bar'] })], request: req('/foo'), expect: null },
  {
    name: 'longest prefix wins',
    routes: [route('short', { paths: ['/service'] }), route('long', { paths: ['/service/resource'] })],
    request: req('/service/resource/1'),
    expect: 'long',
  },
  {
    name: 'longest prefix wins whatever the input order',
    routes: [route('long', { paths: ['/service/resource'] }), route('short', { paths: ['/service'] })],
    request: req('/service/other'),
    expect: 'short',
  },
  { name: 'route path with trailing slash does not match the bare path', routes: [route('r', { paths: ['/foo/'] })], request: req('/foo'), expect: null },
  { name: 'route path with trailing slash matches the slashed path', routes: [route('r', { paths: ['/foo/'] })], request: req('/foo/'), expect: 'r', upstreamPath: '/' },
  { name: 'root path matches everything', routes: [route('r', { paths: ['/'] })], request: req('/any/thing'), expect: 'r', upstreamPath: '/any/thing' },
  {
    name: 'each path of a route is ranked on its own',
    routes: [route('multi', { paths: ['/a', '/longer/path'] }), route('mid', { paths: ['/longer'] })],
    request: req('/longer/path/x'),
    expect: 'multi',
    matchedPath: '/longer/path',
  },
  { name: 'route without paths matches any path', routes: [route('r', { hosts: ['example.com'] })], request: req('/whatever/x'), expect: 'r', matchedPath: null, upstreamPath: '/whatever/x' },

  // --- paths: regex ---------------------------------------------------------------------------
  {
    name: 'regex path is evaluated before a (longer) prefix path',
    routes: [route('plain', { paths: ['/api/account'] }), route('regex', { paths: ['~/api/.*'] })],
    request: req('/api/account/getAll'),
    expect: 'regex',
  },
  {
    name: 'higher regex_priority wins',
    routes: [route('low', { paths: ['~/status/\\d+'], regex_priority: 0 }), route('high', { paths: ['~/status/\\d+'], regex_priority: 6 })],
    request: req('/status/42'),
    expect: 'high',
  },
  // Kong's documented evaluation-order example: /version/\d+/status/\d+ (6), /status/\d+ (0), /version/any/, /version.
  ...(() => {
    const doc = [
      route('status', { paths: ['~/status/\\d+'], regex_priority: 0 }),
      route('version-status', { paths: ['~/version/\\d+/status/\\d+'], regex_priority: 6 }),
      route('version', { paths: ['/version'] }),
      route('version-any', { paths: ['~/version/any/'] }),
    ];
    return [
      { name: 'doc order 1: /version/\\d+/status/\\d+', routes: doc, request: req('/version/1/status/2'), expect: 'version-status' },
      { name: 'doc order 2: /status/\\d+', routes: doc, request: req('/status/7'), expect: 'status' },
      { name: 'doc order 3: /version/any/ before /version', routes: doc, request: req('/version/any/x'), expect: 'version-any' },
      { name: 'doc order 4: plain /version last', routes: doc, request: req('/version/other'), expect: 'version' },
    ] satisfies Case[];
  })(),
  { name: 'regex is anchored at the start of the path', routes: [route('r', { paths: ['~/bar'] })], request: req('/foo/bar'), expect: null },
  {
    name: 'regex match is stripped as a whole',
    routes: [route('r', { paths: ['~/version/\\d+/service'] })],
    request: req('/version/1/service/path/to'),
    expect: 'r',
    matchedPath: '/version/1/service',
    upstreamPath: '/path/to',
  },
  {
    name: 'regex $ works because the query string is never part of the path',
    routes: [route('exact', { paths: ['~/search$'] })],
    request: req('/search'),
    expect: 'exact',
  },
  {
    name: 'equal regex_priority falls back to created_at',
    routes: [route('newer', { paths: ['~/x/\\w+'], created_at: 200 }), route('older', { paths: ['~/x/\\d+'], created_at: 100 })],
    request: req('/x/1'),
    expect: 'older',
  },

  // --- hosts ----------------------------------------------------------------------------------
  { name: 'exact host matches', routes: [route('r', { hosts: ['example.com'] })], request: req('/'), expect: 'r' },
  { name: 'other host does not match', routes: [route('r', { hosts: ['example.com'] })], request: req('/', { host: 'foo.com' }), expect: null },
  { name: 'route host compared case-insensitively', routes: [route('r', { hosts: ['Example.COM'] })], request: req('/'), expect: 'r' },
  { name: 'leading wildcard matches one label', routes: [route('r', { hosts: ['*.example.com'] })], request: req('/', { host: 'an.example.com' }), expect: 'r' },
  { name: 'leading wildcard matches several labels', routes: [route('r', { hosts: ['*.example.com'] })], request: req('/', { host: 'x.y.example.com' }), expect: 'r' },
  { name: 'leading wildcard does not match the bare domain', routes: [route('r', { hosts: ['*.example.com'] })], request: req('/', { host: 'example.com' }), expect: null },
  { name: 'trailing wildcard matches any TLD', routes: [route('r', { hosts: ['example.*'] })], request: req('/', { host: 'example.org' }), expect: 'r' },
  {
    name: 'plain host beats wildcard host at equal weight',
    routes: [route('wild', { hosts: ['*.example.com'], paths: ['/'], created_at: 1 }), route('plain', { hosts: ['a.example.com'], paths: ['/'], created_at: 2 })],
    request: req('/x', { host: 'a.example.com' }),
    expect: 'plain',
  },
  { name: 'request port is ignored by a host without port', routes: [route('r', { hosts: ['example.com'] })], request: req('/', { port: 8443 }), expect: 'r' },
  { name: 'host with port matches that port', routes: [route('r', { hosts: ['example.com:8000'] })], request: req('/', { port: 8000 }), expect: 'r' },
  { name: 'host with port rejects another port', routes: [route('r', { hosts: ['example.com:8000'] })], request: req('/', { port: 9000 }), expect: null },
  {
    name: 'routes differing only by host are told apart',
    routes: [route('a', { hosts: ['a.test'], paths: ['/'] }), route('b', { hosts: ['b.test'], paths: ['/'] })],
    request: req('/p', { host: 'b.test' }),
    expect: 'b',
  },

  // --- methods, weight ------------------------------------------------------------------------
  { name: 'method listed matches', routes: [route('r', { methods: ['GET', 'HEAD'] })], request: req('/x', { method: 'HEAD' }), expect: 'r' },
  { name: 'method not listed does not match', routes: [route('r', { methods: ['GET'], paths: ['/foo'] })], request: req('/foo', { method: 'POST' }), expect: null },
  {
    name: 'more attribute kinds win over a longer prefix (hosts+methods vs hosts)',
    routes: [route('hosts', { hosts: ['example.com'] }), route('hosts-methods', { hosts: ['example.com'], methods: ['POST'] })],
    request: req('/', { method: 'POST' }),
    expect: 'hosts-methods',
  },
  {
    name: 'fewer attributes used when the richer route does not match',
    routes: [route('hosts', { hosts: ['example.com'] }), route('hosts-methods', { hosts: ['example.com'], methods: ['POST'] })],
    request: req('/', { method: 'GET' }),
    expect: 'hosts',
  },
  {
    name: 'weight beats path length',
    routes: [route('long', { paths: ['/foo/bar/baz'] }), route('method', { methods: ['GET'], paths: ['/foo'] })],
    request: req('/foo/bar/baz'),
    expect: 'method',
  },

  // --- headers --------------------------------------------------------------------------------
  { name: 'header value matches case-insensitively', routes: [route('r', { headers: { version: ['v1', 'v2'] } })], request: req('/', { headers: { version: 'V2' } }), expect: 'r' },
  { name: 'header with another value does not match', routes: [route('r', { headers: { version: ['v1', 'v2'] } })], request: req('/', { headers: { version: 'v3' } }), expect: null },
  { name: 'missing header does not match', routes: [route('r', { headers: { version: ['v1'] } })], request: req('/'), expect: null },
  { name: '~* header value is a regex', routes: [route('r', { headers: { version: ['~*^v\\d+$'] } })], request: req('/', { headers: { version: 'V10' } }), expect: 'r' },
  {
    name: 'all header names must match (AND)',
    routes: [route('r', { headers: { a: ['1'], b: ['2'] } })],
    request: req('/', { headers: { a: '1', b: '3' } }),
    expect: null,
  },
  { name: 'repeated header lines: any one may match', routes: [route('r', { headers: { region: ['north'] } })], request: req('/', { headers: { region: 'south, North' } }), expect: 'r' },
  {
    name: 'more headers win at equal weight',
    routes: [route('one', { headers: { a: ['1'] }, paths: ['/'] }), route('two', { headers: { a: ['1'], b: ['2'] }, paths: ['/'] })],
    request: req('/x', { headers: { a: '1', b: '2' } }),
    expect: 'two',
  },

  // --- protocols, snis ------------------------------------------------------------------------
  { name: 'http-only route does not match https', routes: [route('r', { protocols: ['http'], paths: ['/'] })], request: req('/', { scheme: 'https' }), expect: null },
  { name: 'https-only route does not match http by default', routes: [route('r', { protocols: ['https'], paths: ['/'] })], request: req('/'), expect: null },
  { name: 'https-only route matches https', routes: [route('r', { protocols: ['https'], paths: ['/'] })], request: req('/', { scheme: 'https' }), expect: 'r' },
  { name: 'grpc routes are not HTTP routes', routes: [route('r', { protocols: ['grpc', 'grpcs'], paths: ['/'] })], request: req('/'), expect: null },
  {
    name: 'snis match the TLS server name on https',
    routes: [route('r', { protocols: ['https'], snis: ['example.com'] })],
    request: req('/', { scheme: 'https', sni: 'example.com' }),
    expect: 'r',
  },
  {
    name: 'snis reject another server name',
    routes: [route('r', { protocols: ['https'], snis: ['example.com'] })],
    request: req('/', { scheme: 'https', sni: 'other.com' }),
    expect: null,
  },

  // --- strip_path / path_handling through match ----------------------------------------------
  {
    name: 'strip_path on (v0): /tv0/req → /s/req',
    routes: [route('r', { paths: ['/tv0'] })],
    services: [service('svc', '/s')],
    request: req('/tv0/req'),
    expect: 'r',
    upstreamPath: '/s/req',
  },
  {
    name: 'strip_path off (v0): /fv0/req → /s/fv0/req',
    routes: [route('r', { paths: ['/fv0'], strip_path: false })],
    services: [service('svc', '/s')],
    request: req('/fv0/req'),
    expect: 'r',
    upstreamPath: '/s/fv0/req',
  },
  {
    name: 'v1 joining through match: /tv1req → /sreq',
    routes: [route('r', { paths: ['/tv1'], path_handling: 'v1' })],
    services: [service('svc', '/s')],
    request: req('/tv1req'),
    expect: 'r',
    upstreamPath: '/sreq',
  },
  { name: 'strip_path with no service path leaves the rest or /', routes: [route('r', { paths: ['/tv0'] })], request: req('/tv0'), expect: 'r', upstreamPath: '/' },

  // --- normalisation --------------------------------------------------------------------------
  { name: 'percent-encoded unreserved chars cannot bypass a route', routes: [route('r', { paths: ['/foo'] })], request: req('/fo%6F/bar'), expect: 'r', upstreamPath: '/bar' },
  { name: 'dot segments are resolved before matching', routes: [route('admin', { paths: ['/admin'] })], request: req('/public/../admin/x'), expect: 'admin', upstreamPath: '/x' },
  { name: 'duplicate slashes are merged before matching', routes: [route('r', { paths: ['/foo/bar'] })], request: req('//foo//bar'), expect: 'r' },

  // --- tie-breaks -----------------------------------------------------------------------------
  {
    name: 'identical routes: the older created_at wins',
    routes: [route('newer', { paths: ['/same'], created_at: 300 }), route('older', { paths: ['/same'], created_at: 200 })],
    request: req('/same'),
    expect: 'older',
  },
  {
    name: 'identical routes and created_at: first in the array wins',
    routes: [route('first', { paths: ['/same'] }), route('second', { paths: ['/same'] })],
    request: req('/same'),
    expect: 'first',
  },

  // --- services -------------------------------------------------------------------------------
  {
    name: 'route of a disabled service is not routed to',
    routes: [route('r', { paths: ['/'] })],
    services: [service('svc', null, { enabled: false })],
    request: req('/'),
    expect: null,
  },
];

for (const c of cases) {
  test(`match: ${c.name}`, () => {
    const services = c.services ?? [svc];
    const router = compileRouter(c.routes, new Map(services.map((s) => [s.id, s])), c.options);
    const m = router.match(c.request);
    assert.equal(m?.route.name ?? null, c.expect);
    if (c.upstreamPath !== undefined) assert.equal(m?.upstreamPath, c.upstreamPath);
    if (c.matchedPath !== undefined) assert.equal(m?.matchedPath, c.matchedPath);
  });
}

test('match: the matched route carries its service; a route without service gets null', () => {
  const s = service('svc', '/s');
  const router = compileRouter([route('with', { paths: ['/a'] }), route('without', { paths: ['/b'], service: null })], new Map([[s.id, s]]));
  assert.equal(router.match(req('/a'))?.service, s);
  const m = router.match(req('/b/c'));
  assert.equal(m?.service, null);
  assert.equal(m?.upstreamPath, '/c');
});

test('match: named and numbered regex captures are exposed', () => {
  const router = compileRouter([route('r', { paths: ['~/version/(?<version>\\d+)/users/(?<user>\\S+)'] })], new Map([[svc.id, svc]]));
  const m = router.match(req('/version/1/users/john'));
  assert.ok(m);
  assert.deepEqual(m.uriCaptures?.unnamed, ['1', 'john']);
  assert.deepEqual(m.uriCaptures?.named, { version: '1', user: 'john' });
  assert.equal(m.normalizedPath, '/version/1/users/john');
});

test('match: PCRE (?P<name>) groups are accepted', () => {
  const router = compileRouter([route('r', { paths: ['~/v(?P<n>\\d+)'] })], new Map([[svc.id, svc]]));
  assert.equal(router.match(req('/v3/x'))?.uriCaptures?.named.n, '3');
});

test('match: with httpsRedirect, an https-only route matches http and flags the redirect', () => {
  const routes = [route('secure', { protocols: ['https'], paths: ['/'] })];
  const router = compileRouter(routes, new Map([[svc.id, svc]]), { httpsRedirect: true });
  const m = router.match(req('/x'));
  assert.equal(m?.route.name, 'secure');
  assert.equal(m?.httpsRedirect, true);
  assert.equal(router.match(req('/x', { scheme: 'https' }))?.httpsRedirect, false);
});

test('compileRouter: invalid regexes are reported together with their paths', () => {
  assert.throws(
    () => compileRouter([route('r', { paths: ['/ok', '~/bad(', '/fine'], headers: { v: ['~*[z-a]'] } })], new Map()),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(
        err.issues.map((i) => i.path),
        ['routes[0].headers.v[0]', 'routes[0].paths[1]'],
      );
      return true;
    },
  );
});

test('match: 1,000 prefix routes, each reachable, longest wins', () => {
  const routes: Route[] = [];
  for (let i = 0; i < 1000; i++) routes.push(route(`r${i}`, { paths: [`/svc${i}`], created_at: i }));
  routes.push(route('deep', { paths: ['/svc500/deeper'] }));
  const router = compileRouter(routes, new Map([[svc.id, svc]]));
  for (const i of [0, 1, 99, 500, 999]) assert.equal(router.match(req(`/svc${i}/x`))?.route.name, `r${i}`);
  // `/svc10` is a character prefix of `/svc100`: the longer prefix must win.
  assert.equal(router.match(req('/svc100/x'))?.route.name, 'r100');
  assert.equal(router.match(req('/svc500/deeper/x'))?.route.name, 'deep');
  assert.equal(router.match(req('/nope')), null);
});

test('match: 1,000 host-based routes sharing one path', () => {
  const routes: Route[] = [];
  for (let i = 0; i < 1000; i++) routes.push(route(`h${i}`, { hosts: [`h${i}.test`], paths: ['/'] }));
  routes.push(route('wild', { hosts: ['*.test'], paths: ['/'] }));
  const router = compileRouter(routes, new Map([[svc.id, svc]]));
  assert.equal(router.match(req('/a', { host: 'h777.test' }))?.route.name, 'h777');
  assert.equal(router.match(req('/a', { host: 'other.test' }))?.route.name, 'wild');
  assert.equal(router.match(req('/a', { host: 'h1.example' })), null);
});
