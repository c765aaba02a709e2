import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TtlCache, cacheTtlMs } from './caches.ts';

test('TtlCache expires entries and evicts the least recently used', () => {
  let now = 1000;
  const c = new TtlCache<number>({ maxEntries: 2, now: () => now });
  c.set('a', 1, 100);
  c.set('b', 2, 100);
  assert.equal(c.get('a'), 1); // a is now most recent
  c.set('c', 3, 100); // evicts b
  assert.equal(c.get('b'), undefined);
  assert.equal(c.get('a'), 1);
  assert.equal(c.size, 2);
  now += 100;
  assert.equal(c.get('a'), undefined);
  c.set('z', 9, 0);
  assert.equal(c.get('z'), undefined);
});

test('cacheTtlMs bounds by the object expiry and the cache_ttl settings', () => {
  const base = { cache_ttl: 3600, cache_ttl_min: null, cache_ttl_max: null };
  assert.equal(cacheTtlMs(base, 0, null), 3_600_000);
  assert.equal(cacheTtlMs(base, 0, 300, 10_000), 290_000);
  assert.equal(cacheTtlMs(base, 500_000, 300), 0, 'already expired → not cached');
  assert.equal(cacheTtlMs({ ...base, cache_ttl_max: 165 }, 0, 300), 165_000);
  assert.equal(cacheTtlMs({ ...base, cache_ttl_min: 600 }, 0, 300), 300_000, 'min never outlives expiry');
  assert.equal(cacheTtlMs({ ...base, cache_ttl_min: 60 }, 0, null), 3_600_000);
});
