import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryKv } from '../../../../../test/helpers/fake-ctx.ts';
import { RefreshCoordinator, type RefreshOutcome } from './refresh.ts';
import { Sealer } from './seal.ts';

const refreshed = (n: number): RefreshOutcome => ({ kind: 'refreshed', tokens: { access_token: `at-${n}` }, idTokenClaims: null });

describe('RefreshCoordinator', () => {
  it('runs one grant for concurrent callers in a process', async () => {
    const c = new RefreshCoordinator(new MemoryKv(), new Sealer(['s']));
    let grants = 0;
    const grant = async () => {
      grants++;
      await sleep(30);
      return refreshed(grants);
    };
    const results = await Promise.all(Array.from({ length: 10 }, () => c.refresh('rt-1', grant)));
    assert.equal(grants, 1);
    for (const r of results) assert.deepEqual(r, refreshed(1));
  });

  it('runs one grant across coordinators sharing a store, including one that arrives just after the first finished', async () => {
    const kv = new MemoryKv();
    const a = new RefreshCoordinator(kv, new Sealer(['s']));
    const b = new RefreshCoordinator(kv, new Sealer(['s']));
    let grants = 0;
    const grant = async () => {
      grants++;
      await sleep(20);
      return refreshed(grants);
    };
    const [ra, rb] = await Promise.all([a.refresh('rt-2', grant), b.refresh('rt-2', grant)]);
    const rc = await new RefreshCoordinator(kv, new Sealer(['s'])).refresh('rt-2', grant);
    assert.equal(grants, 1);
    assert.deepEqual([ra, rb, rc], [refreshed(1), refreshed(1), refreshed(1)]);
  });

  it('does not grant again when the other holder finishes between our read and our lock', async () => {
    const kv = new MemoryKv();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // b reads "no result yet", then its lock attempt is held back until a has finished entirely
    const slowAdd = Object.assign(Object.create(kv) as MemoryKv, {
      get: (k: string) => kv.get(k),
      set: (k: string, v: string, t?: number) => kv.set(k, v, t),
      delete: (k: string) => kv.delete(k),
      add: async (k: string, v: string, t?: number) => {
        await gate;
        return kv.add(k, v, t);
      },
    });
    const a = new RefreshCoordinator(kv, new Sealer(['s']));
    const b = new RefreshCoordinator(slowAdd, new Sealer(['s']));
    let grants = 0;
    const grant = async () => refreshed(++grants);
    const pb = b.refresh('rt-4', grant);
    await sleep(5);
    const ra = await a.refresh('rt-4', grant);
    release();
    assert.deepEqual(await pb, ra);
    assert.equal(grants, 1);
  });

  it('passes a grant failure to every waiter and lets a later call try again', async () => {
    const c = new RefreshCoordinator(new MemoryKv(), new Sealer(['s']));
    const failing = async (): Promise<RefreshOutcome> => {
      await sleep(10);
      throw new Error('idp down');
    };
    const settled = await Promise.allSettled([c.refresh('rt-3', failing), c.refresh('rt-3', failing)]);
    assert.deepEqual(settled.map((x) => x.status), ['rejected', 'rejected']);
    assert.deepEqual(await c.refresh('rt-3', async () => refreshed(7)), refreshed(7));
  });
});
