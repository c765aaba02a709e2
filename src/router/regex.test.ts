import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRoutePath } from '../config/fields.ts';
import { parseDeclarative } from '../config/index.ts';
import { testRegistry } from '../config/testkit.ts';
import { compileRoutePathRegex } from './regex.ts';

test('compileRoutePathRegex: PCRE (?P<name>...) becomes a JavaScript named group', () => {
  const m = compileRoutePathRegex('/users/(?P<id>\\d+)').exec('/users/42/x');
  assert.equal(m?.groups?.id, '42');
  assert.equal(m?.[0], '/users/42');
});

test('compileRoutePathRegex: PCRE (?P=name) back-reference becomes \\k<name>', () => {
  const re = compileRoutePathRegex('/(?P<w>[a-z]+)/(?P=w)$');
  assert.ok(re.test('/ab/ab'));
  assert.ok(!re.test('/ab/cd'));
});

test('compileRoutePathRegex: escaped parentheses and character classes are not translated', () => {
  // `\(?P<` is an optional literal "(" followed by "P<": it must keep its P.
  assert.ok(compileRoutePathRegex('/a\\(?P<b').test('/aP<b'));
  assert.ok(compileRoutePathRegex('/[(?P<]+x').test('/P<x'));
});

test('compileRoutePathRegex: anchored at the start, percent-encoding normalised', () => {
  assert.ok(!compileRoutePathRegex('/v1').test('/x/v1'));
  // %2E stays a literal dot (decoded then escaped), as the router matches normalised paths.
  const re = compileRoutePathRegex('/a%2Eb');
  assert.ok(re.test('/a.b'));
  assert.ok(!re.test('/axb'));
});

test('compileRoutePathRegex: recursion and broken patterns throw', () => {
  assert.throws(() => compileRoutePathRegex('/(?P>x)'), /recursive/);
  assert.throws(() => compileRoutePathRegex('/a(b'), SyntaxError);
});

test('route path validator accepts exactly what the router compiles', () => {
  for (const ok of ['~/users/(?P<id>\\d+)$', '~/(?P<w>a)/(?P=w)', '~/v(?<n>\\d)']) assert.equal(checkRoutePath(ok), null, ok);
  assert.match(checkRoutePath('~/a(b') ?? '', /^invalid regex '\/a\(b'/);
  assert.match(checkRoutePath('~/(?P>x)') ?? '', /^invalid regex .*recursive/);
});

test('a decK file with a (?P<name>) route path is valid', () => {
  const data = parseDeclarative(`
_format_version: "3.0"
services:
  - name: s
    url: http://upstream.test
    routes:
      - name: r
        paths: ["~/users/(?P<id>\\\\d+)$"]
`, { registry: testRegistry(), env: {}, now: 1 });
  assert.deepEqual(data.routes[0].paths, ['~/users/(?P<id>\\d+)$']);
});
