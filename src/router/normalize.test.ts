import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizePath, normalizeRegexSource } from './normalize.ts';

// Kong's documented normalisation steps (routing/traditional "Path normalization").
const cases: ReadonlyArray<readonly [string, string, string]> = [
  ['plain path unchanged', '/foo/bar', '/foo/bar'],
  ['root unchanged', '/', '/'],
  ['escape of a reserved char upper-cased', '/foo%3a', '/foo%3A'],
  ['escape of an unreserved char decoded', '/fo%6F', '/foo'],
  ['encoded dots decoded, then removed', '/a/%2e%2E/b', '/b'],
  ['single dot segment removed', '/foo/./bar', '/foo/bar'],
  ['double dot segment removed', '/foo/./bar/../baz', '/foo/baz'],
  ['.. above root stays at root', '/../../etc', '/etc'],
  ['trailing /.. keeps the directory slash', '/a/b/..', '/a/'],
  ['duplicate slashes merged', '/foo//bar///baz', '/foo/bar/baz'],
  ['slashes merged before dot removal', '/a//../b', '/b'],
  ['dot-prefixed names are not dot segments', '/.well-known/openid-configuration', '/.well-known/openid-configuration'],
  ['..name is not a dot segment', '/a/..b/c', '/a/..b/c'],
  ['malformed escape kept verbatim', '/a%zz/%', '/a%zz/%'],
  ['encoded slash stays encoded', '/a%2fb', '/a%2Fb'],
  ['asterisk-form untouched', '*', '*'],
];

for (const [name, input, expected] of cases) {
  test(`normalizePath: ${name}`, () => {
    assert.equal(normalizePath(input), expected);
  });
}

test('normalizePath returns the very same string when nothing changes (no allocation)', () => {
  const s = '/api/v1/users/42';
  assert.equal(normalizePath(s), s);
});

test('normalizeRegexSource decodes unreserved chars and escapes decoded regex metacharacters', () => {
  assert.equal(normalizeRegexSource('/v%31/a%2Eb'), '/v1/a\\.b');
  assert.equal(normalizeRegexSource('/a%3ab'), '/a%3Ab');
  assert.equal(normalizeRegexSource('/users/\\d+'), '/users/\\d+');
});
