import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envVaultVariable, resolveVaultRefs, substituteDeckEnv } from './index.ts';

test('env vault names: upper-cased, dashes become underscores', () => {
  assert.equal(envVaultVariable('my-secret'), 'MY_SECRET');
  assert.equal(envVaultVariable('ALREADY_UP'), 'ALREADY_UP');
});

test('resolveVaultRefs walks arrays and objects and reports missing variables by path', () => {
  const env = { CLIENT_SECRET: 's3cret', JSONVAR: '{"user":"u1"}' };
  const { value, issues } = resolveVaultRefs(
    { a: ['{vault://env/client-secret}', 'plain', '{vault://env/jsonvar/user}'], b: { c: '{vault://env/nope}' }, n: 1, z: null },
    env,
  );
  assert.deepEqual(value, { a: ['s3cret', 'plain', 'u1'], b: { c: '{vault://env/nope}' }, n: 1, z: null });
  assert.deepEqual(issues, [{ path: 'b.c', message: "environment variable 'NOPE' referenced by the vault reference is not set" }]);
  const bad = resolveVaultRefs('{vault://env}', env, 'x');
  assert.deepEqual(bad.issues, [{ path: 'x', message: 'invalid vault reference: expected {vault://env/NAME}' }]);
});

test('messages never contain the secret values', () => {
  const { issues } = resolveVaultRefs({ k: '{vault://env/jsonvar/missing}' }, { JSONVAR: '{"pw":"hunter2"}' });
  assert.equal(issues.length, 1);
  assert.ok(!issues[0]!.message.includes('hunter2'));
});

test('substituteDeckEnv replaces placeholders and reports the line of a missing one', () => {
  const { text, issues } = substituteDeckEnv('a: ${{ env "DECK_A" }}\nb: ${{env "DECK_B"}}\n', { DECK_A: 'one' });
  assert.equal(text, 'a: one\nb: ${{env "DECK_B"}}\n');
  assert.deepEqual(issues, [{ path: 'line 2', message: "environment variable 'DECK_B' is not set" }]);
});
