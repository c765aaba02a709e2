import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import type { Route, Service } from '../config/types.ts';
import { compileRouter, type CompileRouterOptions, type RouterInput } from './index.ts';
import { alternativeReadings, pathNeedsCheck, pathRefusals, percentDecode, preparePath } from './path-safety.ts';

const svc = { id: 'svc', name: 'svc', protocol: 'http', host: 'upstream.test', port: 80, path: null, enabled: true } as Service;

function route(name: string, paths: string[], extra: Partial<Route> = {}): Route {
  return {
    id: name, name, protocols: ['http', 'https'], methods: null, hosts: null, paths, headers: null, snis: null,
    sources: null, destinations: null, strip_path: false, preserve_host: false, regex_priority: 0, path_handling: 'v0',
    https_redirect_status_code: 426, request_buffering: true, response_buffering: true, service: { id: 'svc' },
    tags: null, created_at: 100, updated_at: 100, ...extra,
  };
}

function req(path: string): RouterInput {
  return { method: 'GET', host: 'example.com', path, headers: {} as IncomingHttpHeaders, scheme: 'http' };
}

/** The public route in each layout the issue names, next to a protected /admin route. */
const layouts: Record<string, Route> = {
  prefix: route('public', ['/public']),
  'prefix, strip_path': route('public', ['/public'], { strip_path: true }),
  regex: route('public', ['~/public(?:/.*)?$']),
  'regex, strip_path': route('public', ['~/public'], { strip_path: true }),
};

function routerFor(publicRoute: Route, options: CompileRouterOptions = {}) {
  return compileRouter([publicRoute, route('admin', ['/admin'])], new Map([[svc.id, svc]]), options);
}

/** What the handler does: pathRefusal first (only when the scan asks), then match. */
function decide(router: ReturnType<typeof routerFor>, path: string): string {
  const refusal = pathNeedsCheck(path) ? router.pathRefusal(req(path)) : null;
  if (refusal !== null) return refusal;
  const m = router.match(req(path));
  return m === null ? 'no route' : `${m.route.name} ${m.upstreamPath}`;
}

// The list: each names /admin once the upstream decodes it.
const traversals = [
  '/public/..\\admin', '/public/..%2Fadmin', '/public/..%2fadmin', '/public/%2e%2e%2fadmin', '/public/..;/admin',
  '/public/%5c..%5cadmin', '/public%2F..%2Fadmin', '/public/%252e%252e/admin',
];

for (const [layout, publicRoute] of Object.entries(layouts)) {
  test(`path safety (${layout}): every decoding that reaches /admin is refused`, () => {
    const router = routerFor(publicRoute);
    for (const path of traversals) assert.equal(decide(router, path), pathRefusals.ambiguous, path);
    assert.equal(decide(router, '/public/%00'), pathRefusals.nul);
  });

  test(`path safety (${layout}): encodings that change nothing stay legal`, () => {
    const router = routerFor(publicRoute);
    for (const path of ['/public/a%2Fb', '/public/a%5Cb', '/public/a\\b', '/public/x;jsessionid=1', '/public/a%20b', '/public/50%25off', '/public/100%25cafe', '/public/a%252Fb']) {
      assert.match(decide(router, path), /^public /, path);
    }
  });
}

test('path safety: the upstream path is the normalised path the route was chosen on', () => {
  const strip = routerFor(layouts['prefix, strip_path']);
  assert.equal(decide(strip, '/public/a%2Fb'), 'public /a%2Fb');
  assert.equal(decide(strip, '/public/%7euser/a%2fb'), 'public /~user/a%2Fb');
  assert.equal(decide(routerFor(layouts.prefix), '/public/a%2Fb'), 'public /public/a%2Fb');
});

test('path safety: a decoding that matches no route at all is refused too', () => {
  const router = compileRouter([route('public', ['/public'])], new Map([[svc.id, svc]]));
  // Otherwise the public upstream would receive a path that, decoded, leaves /public.
  assert.equal(decide(router, '/public/..%2Fadmin'), pathRefusals.ambiguous);
  assert.equal(decide(router, '/public/a%2Fb'), 'public /public/a%2Fb');
});

test('path safety: a decoding that reaches the same route through another path is legal', () => {
  const router = compileRouter([route('public', ['/public', '/also']), route('admin', ['/admin'])], new Map([[svc.id, svc]]));
  assert.equal(decide(router, '/public/..%2Falso/x'), 'public /public/..%2Falso/x');
});

test('path safety: escapes that only rename a segment give no second reading', () => {
  // A route whose own path holds an escape still matches; decoding %C3%A9 or %20 is not a second reading.
  const router = compileRouter([route('cafe', ['/caf%C3%A9'])], new Map([[svc.id, svc]]));
  assert.equal(decide(router, '/caf%c3%a9/a%20b'), 'cafe /caf%C3%A9/a%20b');
  assert.deepEqual([...(alternativeReadings('/caf%C3%A9/a%20b%2e') as Set<string>)], []);
});

test('path safety: invalid percent-encoding is refused', () => {
  const router = routerFor(layouts.prefix);
  for (const path of ['/public/%zz', '/public/%', '/public/a%2', '/public/%c0%af', '/public/%e0%80%af', '/public/%ff', '/public/%ed%a0%80']) {
    assert.equal(decide(router, path), pathRefusals.encoding, path);
  }
  assert.match(decide(router, '/public/%c3%a9'), /^public /);
});

test('path safety: escaped-slash modes', () => {
  const reject = routerFor(layouts.prefix, { escapedSlashes: 'reject' });
  for (const path of ['/public/a%2Fb', '/public/a%2fb', '/public/a%5Cb', '/public/a%5cb']) assert.equal(decide(reject, path), pathRefusals.escapedSlash, path);
  assert.match(decide(reject, '/public/a%20b'), /^public /);
  assert.equal(decide(reject, '/public/..\\admin'), pathRefusals.ambiguous);

  const unescape = routerFor(layouts['prefix, strip_path'], { escapedSlashes: 'unescape' });
  assert.equal(decide(unescape, '/public/a%2Fb'), 'public /a/b');
  // Decoded first, then routed: the protected route is the one that answers.
  assert.equal(decide(unescape, '/public/..%2Fadmin'), 'admin /admin');
  // A decoded backslash is still a second reading.
  assert.equal(decide(unescape, '/public/..%5cadmin'), pathRefusals.ambiguous);

  const keep = routerFor(layouts.prefix, { escapedSlashes: 'keep' });
  assert.equal(decide(keep, '/public/a%2Fb'), 'public /public/a%2Fb');
});

test('pathNeedsCheck: only %, \\, ; and NUL call for the slow path', () => {
  for (const path of ['/', '/public/a/b', '/.well-known/x', '/a/../b', '/a//b', '/a:b@c!$&\'()*+,=~']) assert.equal(pathNeedsCheck(path), false, path);
  for (const path of ['/a%20', '/a\\b', '/a;b', '/a\0']) assert.equal(pathNeedsCheck(path), true, path);
});

test('percentDecode: strict for the first round, lenient for the second', () => {
  assert.equal(percentDecode('/a%2Fb%c3%A9'), '/a/bé');
  assert.equal(percentDecode('/a%zz'), null);
  assert.equal(percentDecode('/a%c0%af'), null);
  assert.equal(percentDecode('/a%zz%41', false), '/a%zzA');
  assert.equal(percentDecode('/a%c0%af', false), '/a\uFFFD\uFFFD');
  // A byte-order mark is content, not something to drop.
  assert.equal(percentDecode('/%EF%BB%BFa'), '/\uFEFFa');
});

test('preparePath and alternativeReadings', () => {
  assert.deepEqual(preparePath('/a%2Fb', 'unescape'), { path: '/a/b', refusal: null });
  assert.deepEqual(preparePath('/a%2Fb', 'keep'), { path: '/a%2Fb', refusal: null });
  assert.deepEqual(preparePath('/a%2500', 'keep'), { path: '/a%2500', refusal: null });
  assert.deepEqual(alternativeReadings('/a%2500'), pathRefusals.nul);
  assert.deepEqual([...(alternativeReadings('/p/..;/a') as Set<string>)], ['/a']);
  assert.deepEqual([...(alternativeReadings('/p/x') as Set<string>)], []);
  // WHATWG reading only (no decoding) differs from the fully decoded one: both are produced.
  const readings = alternativeReadings('/p/..\\a\\x%2F..%2F..%2Fp') as Set<string>;
  assert.ok(readings.has('/a/x%2F..%2F..%2Fp'), [...readings].join(' '));
  assert.ok(readings.has('/p'), [...readings].join(' '));
  // The readings depend on which transformations apply, not on the path's length: bounded.
  const layered = alternativeReadings(`/${'a;b\\c%2F%5C%3B%255C%253B%252F%25255C'.repeat(50)}`);
  assert.ok(layered instanceof Set && layered.size > 10 && layered.size < 128, String(layered));
});
