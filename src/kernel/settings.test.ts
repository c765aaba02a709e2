import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readSettings } from './settings.ts';

test('PORTCULLIS_ADMIN_TOKEN set but empty is refused, not taken as "no token"', () => {
  assert.equal(readSettings({}, {}).adminToken, null);
  assert.equal(readSettings({}, { PORTCULLIS_ADMIN_TOKEN: 's3cret' }).adminToken, 's3cret');
  assert.throws(() => readSettings({}, { PORTCULLIS_ADMIN_TOKEN: '' }), /PORTCULLIS_ADMIN_TOKEN is set but empty/);
  assert.throws(() => readSettings({}, { PORTCULLIS_ADMIN_TOKEN: '  ' }), /PORTCULLIS_ADMIN_TOKEN is set but empty/);
});
