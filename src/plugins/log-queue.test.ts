import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogQueue, queueSchema, type QueueConfig } from './log-queue.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function queue(over: Partial<QueueConfig>, send: (batch: number[]) => Promise<void>) {
  const dropped: Array<[number, string]> = [];
  const reports: string[] = [];
  const q = new LogQueue<number>(queueSchema.parse(over), {
    send,
    dropped: (n, why) => dropped.push([n, why]),
    report: (kind) => reports.push(kind),
  });
  return { q, dropped, reports };
}

test('a partial batch leaves once max_coalescing_delay has passed since its first entry; a full one at once', async () => {
  const sent: number[][] = [];
  const { q } = queue({ max_batch_size: 3, max_coalescing_delay: 0.1 }, async (b) => { sent.push(b); });
  q.add(1);
  q.add(2);
  await sleep(30);
  assert.deepEqual(sent, [], 'still gathering');
  await sleep(150);
  assert.deepEqual(sent, [[1, 2]], 'the partial batch went after the delay');
  q.add(3);
  q.add(4);
  q.add(5);
  await sleep(5);
  assert.deepEqual(sent, [[1, 2], [3, 4, 5]], 'a full batch does not wait');
  await q.close();
});

test('entries that come while a batch is being sent form the next batch, sent after its own delay', async () => {
  const sent: number[][] = [];
  let release: () => void = () => {};
  const { q } = queue({ max_batch_size: 2, max_coalescing_delay: 0.05 }, (b) => {
    sent.push(b);
    return sent.length === 1 ? new Promise<void>((r) => { release = r; }) : Promise.resolve();
  });
  q.add(1);
  q.add(2);
  await sleep(5);
  q.add(3);
  release();
  await sleep(120);
  assert.deepEqual(sent, [[1, 2], [3]]);
  await q.close();
});

test('a failed batch is retried with back-off until max_retry_time, then dropped and reported', async () => {
  let calls = 0;
  const { q, dropped, reports } = queue({ max_retry_time: 0.15, initial_retry_delay: 0.02, max_retry_delay: 0.05 }, async () => {
    calls++;
    throw new Error('collector down');
  });
  q.add(1);
  await sleep(400);
  assert.ok(calls >= 3, `tried ${calls} times`);
  assert.deepEqual(dropped, [[1, 'retries_exhausted']]);
  assert.ok(reports.includes('send_failed') && reports.includes('gave_up'));
  await q.close();
});

test('a full queue drops its oldest entries and counts them', async () => {
  const sent: number[][] = [];
  const { q, dropped } = queue({ max_entries: 3, max_batch_size: 10, max_coalescing_delay: 0.05 }, async (b) => { sent.push(b); });
  for (let i = 1; i <= 5; i++) q.add(i);
  assert.deepEqual(dropped, [[1, 'queue_full'], [1, 'queue_full']]);
  await sleep(100);
  assert.deepEqual(sent, [[3, 4, 5]]);
  await q.close();
});

test('close: a back-off in progress ends, and a failing collector drops what waits at once instead of trying each batch', async () => {
  let calls = 0;
  const { q, dropped } = queue({ max_batch_size: 1, max_retry_time: 60, initial_retry_delay: 5, max_retry_delay: 60 }, async () => {
    calls++;
    throw new Error('collector down');
  });
  for (let i = 1; i <= 5; i++) q.add(i);
  await sleep(20);
  const started = Date.now();
  await q.close();
  assert.ok(Date.now() - started < 1000, `closed in ${Date.now() - started} ms`);
  assert.equal(calls, 2, 'the first batch once, then once more on closing');
  assert.deepEqual(dropped, [[5, 'retries_exhausted']]);
});
