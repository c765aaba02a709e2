import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogThrottle } from './log-throttle.ts';

test('LogThrottle: one line per interval and kind, with the count held back in between', () => {
  let now = 1_000;
  const t = new LogThrottle(60_000, () => now);
  assert.equal(t.admit('a'), 0);
  assert.equal(t.admit('a'), null);
  assert.equal(t.admit('a'), null);
  // Another kind has its own interval.
  assert.equal(t.admit('b'), 0);
  now += 59_999;
  assert.equal(t.admit('a'), null);
  now += 1;
  assert.equal(t.admit('a'), 3);
  assert.equal(t.admit('a'), null);
  now += 60_000;
  assert.equal(t.admit('a'), 1);
  assert.equal(t.admit(), 0);
});
