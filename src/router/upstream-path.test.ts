import { test } from 'node:test';
import assert from 'node:assert/strict';
import { upstreamPathFor } from './upstream-path.ts';

interface Row {
  servicePath: string | null;
  /** Part of the request the route matched; null when the route matched without a path. */
  matched: string | null;
  strip: boolean;
  handling: 'v0' | 'v1';
  request: string;
  expected: string;
}

function run(rows: readonly Row[], label: string): void {
  for (const r of rows) {
    const name = `${label}: service ${r.servicePath ?? 'null'}, match ${r.matched ?? '-'}, strip ${r.strip}, ${r.handling}, ${r.request} → ${r.expected}`;
    test(name, () => {
      const got = upstreamPathFor(
        { strip_path: r.strip, path_handling: r.handling },
        r.servicePath === null ? null : { path: r.servicePath },
        r.request,
        r.matched,
      );
      assert.equal(got, r.expected);
    });
  }
}

// Kong's documented table (Admin API reference, "Path handling algorithms"), row for row.
run(
  [
    { servicePath: '/s', matched: '/fv0', strip: false, handling: 'v0', request: '/fv0req', expected: '/s/fv0req' },
    { servicePath: '/s', matched: '/fv1', strip: false, handling: 'v1', request: '/fv1req', expected: '/sfv1req' },
    { servicePath: '/s', matched: '/tv0', strip: true, handling: 'v0', request: '/tv0req', expected: '/s/req' },
    { servicePath: '/s', matched: '/tv1', strip: true, handling: 'v1', request: '/tv1req', expected: '/sreq' },
    { servicePath: '/s', matched: '/fv0/', strip: false, handling: 'v0', request: '/fv0/req', expected: '/s/fv0/req' },
    { servicePath: '/s', matched: '/fv1/', strip: false, handling: 'v1', request: '/fv1/req', expected: '/sfv1/req' },
    { servicePath: '/s', matched: '/tv0/', strip: true, handling: 'v0', request: '/tv0/req', expected: '/s/req' },
    { servicePath: '/s', matched: '/tv1/', strip: true, handling: 'v1', request: '/tv1/req', expected: '/sreq' },
  ],
  'documented table',
);

// Further combinations (service path with/without trailing slash, request with/without one,
// no service path, no path match), following Kong's v0/v1 joining rules.
run(
  [
    // Reference §8.1 examples.
    { servicePath: '/s', matched: '/tv0', strip: true, handling: 'v0', request: '/tv0/req', expected: '/s/req' },
    { servicePath: '/s', matched: '/tv0', strip: true, handling: 'v0', request: '/tv0', expected: '/s' },
    { servicePath: '/anything', matched: '/anything', strip: true, handling: 'v0', request: '/anything', expected: '/anything' },
    // The client's trailing slash survives.
    { servicePath: '/s', matched: '/tv0', strip: true, handling: 'v0', request: '/tv0/', expected: '/s/' },
    { servicePath: '/s', matched: '/tv0/', strip: true, handling: 'v0', request: '/tv0/', expected: '/s/' },
    // Service path ending in a slash: never a double slash, trailing slash only if the client sent one.
    { servicePath: '/s/', matched: '/tv0', strip: true, handling: 'v0', request: '/tv0/req', expected: '/s/req' },
    { servicePath: '/s/', matched: '/tv0', strip: true, handling: 'v0', request: '/tv0req', expected: '/s/req' },
    { servicePath: '/s/', matched: '/tv0', strip: true, handling: 'v0', request: '/tv0', expected: '/s' },
    { servicePath: '/s/', matched: '/tv0/', strip: true, handling: 'v0', request: '/tv0/', expected: '/s/' },
    { servicePath: '/s/', matched: '/fv0', strip: false, handling: 'v0', request: '/fv0/req', expected: '/s/fv0/req' },
    { servicePath: '/s/', matched: '/tv1', strip: true, handling: 'v1', request: '/tv1/req', expected: '/s/req' },
    { servicePath: '/s/', matched: '/tv1', strip: true, handling: 'v1', request: '/tv1req', expected: '/s/req' },
    // No service path: base is "/".
    { servicePath: null, matched: '/tv0', strip: true, handling: 'v0', request: '/tv0/req', expected: '/req' },
    { servicePath: null, matched: '/tv0', strip: true, handling: 'v0', request: '/tv0', expected: '/' },
    { servicePath: null, matched: '/fv0', strip: false, handling: 'v0', request: '/fv0/req', expected: '/fv0/req' },
    { servicePath: null, matched: '/fv1', strip: false, handling: 'v1', request: '/fv1/req', expected: '/fv1/req' },
    { servicePath: '/', matched: '/tv0', strip: true, handling: 'v0', request: '/tv0req', expected: '/req' },
    // Route matched without a path (hosts only): the whole request path is kept.
    { servicePath: '/s', matched: null, strip: true, handling: 'v0', request: '/a/b', expected: '/s/a/b' },
    { servicePath: '/s', matched: null, strip: false, handling: 'v0', request: '/', expected: '/s' },
    { servicePath: '/s', matched: null, strip: true, handling: 'v0', request: '/', expected: '/s' },
    // A regex route strips its whole match.
    { servicePath: null, matched: '/version/1/service', strip: true, handling: 'v0', request: '/version/1/service/path', expected: '/path' },
    // A leading dot segment left over by stripping is dropped.
    { servicePath: '/s', matched: '/foo', strip: true, handling: 'v0', request: '/foo./x', expected: '/s/x' },
  ],
  'v0/v1 combinations',
);
