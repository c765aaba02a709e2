import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressKey, type Address } from './address.ts';
import { ConsistentHashing, LeastConnections, Latency, RoundRobin } from './algorithms.ts';
import { hashReady } from './hash.ts';

await hashReady;

function addr(ip: string, port: number, weight = 100): Address {
  const key = addressKey(ip, port);
  return { key, healthKey: `${key}|${key}`, ip, port, weight, target: key, hostname: ip, available: weight > 0, healthy: true, inflight: 0, ewma: 0, ewmaAt: 0 };
}

test('round-robin: every address gets exactly its weighted share of each full wheel', () => {
  const list = [addr('10.0.0.1', 80, 100), addr('10.0.0.2', 80, 200), addr('10.0.0.3', 80, 300)];
  const rr = new RoundRobin(list);
  const counts = new Map<string, number>();
  for (let i = 0; i < 600; i++) {
    const a = rr.pick('', null)!;
    counts.set(a.key, (counts.get(a.key) ?? 0) + 1);
  }
  assert.deepEqual([...list].map((a) => counts.get(a.key)), [100, 200, 300]);
});

test('round-robin: weight 0 and unavailable addresses are skipped; none left → null', () => {
  const a = addr('10.0.0.1', 80), b = addr('10.0.0.2', 80, 0), c = addr('10.0.0.3', 80);
  const rr = new RoundRobin([a, b, c]);
  c.available = false;
  for (let i = 0; i < 10; i++) assert.equal(rr.pick('', null), a);
  assert.equal(rr.pick('', [a]), null);
  a.available = false;
  assert.equal(rr.pick('', null), null);
});

test('consistent-hashing: a key always reaches the same address; adding one of N+1 moves about 1/(N+1) of keys', () => {
  const three = [addr('10.0.0.1', 80), addr('10.0.0.2', 80), addr('10.0.0.3', 80)];
  const ring = new ConsistentHashing(three, 10000);
  const before = new Map<string, string>();
  for (let i = 0; i < 1000; i++) {
    const k = `user-${i}`;
    const a = ring.pick(k, null)!;
    assert.equal(ring.pick(k, null), a);
    before.set(k, a.key);
  }
  const shares = new Map<string, number>();
  for (const v of before.values()) shares.set(v, (shares.get(v) ?? 0) + 1);
  for (const n of shares.values()) assert.ok(n > 200 && n < 470, `share ${n}`);
  const four = new ConsistentHashing([...three, addr('10.0.0.4', 80)], 10000);
  let moved = 0;
  for (const [k, v] of before) if (four.pick(k, null)!.key !== v) moved++;
  assert.ok(moved <= 1000 * 1.5 / 4, `moved ${moved}`);
  assert.ok(moved > 100, `moved ${moved}`);
});

test('consistent-hashing: an unavailable address sends its keys to the next point, the others stay', () => {
  const list = [addr('10.0.0.1', 80), addr('10.0.0.2', 80), addr('10.0.0.3', 80)];
  const ring = new ConsistentHashing(list, 10000);
  const before = new Map<string, Address>();
  for (let i = 0; i < 300; i++) before.set(`k${i}`, ring.pick(`k${i}`, null)!);
  list[0].available = false;
  for (const [k, a] of before) {
    const now = ring.pick(k, null)!;
    assert.notEqual(now, list[0]);
    if (a !== list[0]) assert.equal(now, a);
  }
});

test('least-connections prefers the address with fewer requests in flight (by weight)', () => {
  const a = addr('10.0.0.1', 80), b = addr('10.0.0.2', 80), c = addr('10.0.0.3', 80, 300);
  const lc = new LeastConnections([a, b, c]);
  a.inflight = 5;
  b.inflight = 1;
  c.inflight = 2; // (2+1)/300 is lowest
  assert.equal(lc.pick('', null), c);
  c.inflight = 30;
  assert.equal(lc.pick('', null), b);
  assert.equal(lc.pick('', [b]), a);
});

test('latency prefers the address with the lowest response-time average', () => {
  const a = addr('10.0.0.1', 80), b = addr('10.0.0.2', 80);
  const lat = new Latency([a, b]);
  lat.observe(a, 50, 1000);
  lat.observe(b, 5, 1000);
  for (let i = 0; i < 5; i++) assert.equal(lat.pick('', null), b);
  lat.observe(b, 500, 1001); // peak: a slow answer counts at once
  assert.equal(lat.pick('', null), a);
});
