import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TailMemo, TtlCache, cacheTtlMs, memoKey } from './caches.ts';

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

test('TtlCache: a hit entry survives at least half the capacity of later insertions; a recent hit does not reorder', () => {
  const c = new TtlCache<number>({ maxEntries: 8, now: () => 0 });
  for (let i = 0; i < 8; i++) c.set(`k${i}`, i, 100);
  // k0 is the oldest: a hit moves it to the recent end, so k1 goes first.
  assert.equal(c.get('k0'), 0);
  c.set('n0', 0, 100);
  assert.equal(c.get('k1'), undefined);
  assert.equal(c.get('k0'), 0, 'moved; a hit right after does not move it again');
  for (let i = 1; i <= 3; i++) c.set(`n${i}`, i, 100);
  assert.equal(c.get('k0'), 0, 'still there after 4 (= capacity / 2) insertions');
  for (let i = 4; i <= 7; i++) c.set(`n${i}`, i, 100);
  assert.equal(c.get('k0'), 0, 'the hit after 4 insertions moved it again');
  for (let i = 8; i <= 11; i++) c.set(`n${i}`, i, 100);
  assert.equal(c.get('k0'), 0);
  assert.equal(c.size, 8);

  // A hit in the recent half is read-only (exact LRU would move k5 and evict k6 instead).
  const d = new TtlCache<number>({ maxEntries: 8, now: () => 0 });
  for (let i = 0; i < 8; i++) d.set(`k${i}`, i, 100);
  assert.equal(d.get('k5'), 5);
  for (let i = 0; i < 6; i++) d.set(`n${i}`, i, 100);
  assert.equal(d.get('k5'), undefined);
  assert.equal(d.get('k6'), 6);
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

test('TailMemo: found only for the exact value (a value with the same tail is a miss), bounded, hot entries kept', () => {
  const memo = new TailMemo<number>(4);
  const tail = 'x'.repeat(32);
  const a = `aaaa${tail}`;
  const forged = `bbbb${tail}`;
  assert.equal(memoKey(a), memoKey(forged));
  memo.set(a, 1);
  assert.equal(memo.get(a), 1);
  assert.equal(memo.get(forged), undefined, 'same tail, different value: a miss');
  memo.set(forged, 2);
  assert.equal(memo.get(a), undefined, 'the forged value replaced the entry; the original is a miss, never the wrong value');
  assert.equal(memo.get(forged), 2);
  for (let i = 0; i < 10; i++) {
    memo.set(`value-${i}-${tail}-${i}`, i);
    memo.get(forged);
  }
  assert.equal(memo.size, 4);
  assert.equal(memo.get(forged), 2, 'an entry hit all along stays');
  assert.equal(memo.get('value-0-' + tail + '-0'), undefined, 'old entries are evicted');
});
