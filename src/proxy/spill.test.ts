import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { text } from 'node:stream/consumers';
import { BodyCollector } from './spill.ts';

test('BodyCollector keeps a body up to the threshold in memory', async () => {
  const c = new BodyCollector(10);
  c.write(Buffer.from('abc'), () => {});
  c.write(Buffer.from('def'), () => {});
  const held = await c.finish();
  assert.equal(held.path, null);
  assert.equal(held.buffer!.toString(), 'abcdef');
  assert.equal(held.size, 6);
  assert.equal(await text(held.open()), 'abcdef');
});

test('BodyCollector moves a body over the threshold to a temporary file, which dispose() removes', async () => {
  const c = new BodyCollector(10);
  for (const part of ['0123456', '789abcd', 'efghij']) {
    if (!c.write(Buffer.from(part), () => {})) await new Promise((r) => setTimeout(r, 10));
  }
  const held = await c.finish();
  assert.equal(held.buffer, null);
  assert.equal(held.size, 20);
  assert.equal(readFileSync(held.path!, 'utf8'), '0123456789abcdefghij');
  // Opened once per attempt (retries): each stream has the whole body.
  assert.equal(await text(held.open()), '0123456789abcdefghij');
  assert.equal(await text(held.open()), '0123456789abcdefghij');
  held.dispose();
  assert.equal(existsSync(held.path!), false);
});

test('BodyCollector.discard right after the spill (the file not open yet) leaves no file behind', async () => {
  const { readdirSync, mkdtempSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'spill-test-'));
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  try {
    for (let i = 0; i < 20; i++) {
      const c = new BodyCollector(4);
      c.write(Buffer.from('0123456789'), () => {});
      c.discard();
    }
  } finally {
    process.env.TMPDIR = saved;
  }
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(readdirSync(dir), []);
});
