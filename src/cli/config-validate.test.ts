import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runConfigValidate } from './config-validate.ts';
import { testRegistry } from '../config/testkit.ts';

async function withFile(content: string, fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-cfg-'));
  try {
    const path = join(dir, 'kong.yaml');
    await writeFile(path, content);
    await fn(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: (l: string) => out.push(l), stderr: (l: string) => err.push(l), env: {} } };
}

test('valid file: exit 0 and OK', async () => {
  await withFile('_format_version: "3.0"\nservices: [{ name: s, host: h, routes: [{ paths: [/] }] }]\n', async (path) => {
    const c = capture();
    assert.equal(await runConfigValidate(path, testRegistry(), c.io), 0);
    assert.deepEqual(c.out, ['OK']);
    assert.deepEqual(c.err, []);
  });
});

test('invalid file: exit 1 and one line per issue', async () => {
  await withFile('_format_version: "3.0"\nservices: [{ name: s, port: 1 }]\nroutes: [{ paths: [x] }]\n', async (path) => {
    const c = capture();
    assert.equal(await runConfigValidate(path, testRegistry(), c.io), 1);
    assert.deepEqual(c.out, []);
    assert.deepEqual(c.err, ['services[0].host: required field missing', 'routes[0].paths[0]: should start with: / (fixed path) or ~/ (regex path)']);
  });
});

test('missing file: exit 1 with a message', async () => {
  const c = capture();
  assert.equal(await runConfigValidate('/nonexistent/kong.yaml', testRegistry(), c.io), 1);
  assert.deepEqual(c.err, ['/nonexistent/kong.yaml: no such file']);
});
