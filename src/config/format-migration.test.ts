import { test } from 'node:test';
import assert from 'node:assert/strict';
import { migrateOldFormat, migratePath } from './format-migration.ts';

test('plain 2.x prefixes stay prefixes (URI-normalised); regex-looking ones get "~" with escapes cleaned up', () => {
  assert.equal(migratePath('/users'), '/users');
  assert.equal(migratePath('/a%7Eb%2fc'), '/a~b%2Fc');
  assert.equal(migratePath('/users/\\d+'), '~/users/\\d+');
  assert.equal(migratePath('/v(1|2)/items'), '~/v(1|2)/items');
  // Encoded reserved characters stay encoded, encoded regex metacharacters become literals.
  assert.equal(migratePath('/x(%2f|%2E)%41$'), '~/x(%2F|\\.)A$');
});

test('a format 1.1 document: top-level and nested route paths migrated, one warning per changed path', () => {
  const doc: Record<string, unknown> = {
    _format_version: '1.1',
    services: [{ name: 's', url: 'http://up', routes: [{ name: 'r1', paths: ['/plain', '/items/\\d+$'] }] }],
    routes: [{ name: 'r2', service: 's', paths: ['/(a|b)'] }],
  };
  const warnings = migrateOldFormat(doc);
  assert.equal(doc._format_version, '3.0');
  assert.deepEqual((doc.services as { routes: { paths: string[] }[] }[])[0].routes[0].paths, ['/plain', '~/items/\\d+$']);
  assert.deepEqual((doc.routes as { paths: string[] }[])[0].paths, ['~/(a|b)']);
  assert.equal(warnings.length, 2);
  assert.match(warnings[0], /services\[0\]\.routes\[0\]\.paths\[1\] \(route 'r1'\): format 1\.1 path '\/items\/\\d\+\$' migrated to '~\/items\/\\d\+\$'/);
  assert.match(warnings[1], /routes\[0\]\.paths\[0\] \(route 'r2'\)/);
});
