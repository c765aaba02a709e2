/**
 * `bin/portcullis.js` started by an older `node` re-runs itself on the project's Node 24. A user
 * who then sends SIGTERM to the pid they started must stop the gateway too (it drains and exits),
 * not leave it running orphaned. Skipped when the machine's `node` is already 24+ (no re-run).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './helpers/process.ts';

const root = new URL('..', import.meta.url).pathname;

function systemNodeMajor(): number | null {
  try {
    return Number(execFileSync('node', ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8', env: { PATH: process.env.PATH } }).trim());
  } catch {
    return null;
  }
}

const major = systemNodeMajor();

test('SIGTERM to the launcher stops the re-run gateway and frees its ports', { skip: major === null || major >= 24 ? 'the machine node re-runs nothing' : false }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-launcher-'));
  const adminPort = await freePort();
  const proxyPort = await freePort();
  const proc = spawn('node', [join(root, 'bin/portcullis.js'), 'start', '--workers', '1', '--proxy-listen', `127.0.0.1:${proxyPort}`, '--admin-listen', `127.0.0.1:${adminPort}`], {
    cwd: dir,
    env: { ...process.env, PORTCULLIS_LOG_LEVEL: 'info', PORTCULLIS_DRAIN_TIMEOUT: '5' },
    stdio: 'ignore',
  });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  try {
    await waitFor(async () => (await fetch(`http://127.0.0.1:${adminPort}/status`)).ok, 20_000, 'the gateway');
    proc.kill('SIGTERM');
    assert.equal(await exited, 0);
    // The gateway itself is gone: nothing answers on its admin port any more.
    await waitFor(async () => {
      try {
        await fetch(`http://127.0.0.1:${adminPort}/status`);
        return false;
      } catch {
        return true;
      }
    }, 10_000, 'the gateway to stop');
  } finally {
    proc.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});

/** An installed `node` older than 24 (the launcher's re-run case), if the machine has one. */
function olderNode(): string | null {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node', '/bin/node']) {
    try {
      const v = Number(execFileSync(candidate, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).trim());
      if (v < 24) return candidate;
    } catch {
      // not there
    }
  }
  return null;
}

const older = olderNode();

test('a launcher killed with SIGKILL leaves no gateway behind (its IPC channel is the lifeline)', { skip: older === null ? 'no node older than 24 on this machine' : false }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-launcher-'));
  const adminPort = await freePort();
  const proxyPort = await freePort();
  const proc = spawn(older!, [join(root, 'bin/portcullis.js'), 'start', '--workers', '1', '--proxy-listen', `127.0.0.1:${proxyPort}`, '--admin-listen', `127.0.0.1:${adminPort}`], {
    cwd: dir,
    env: { ...process.env, PORTCULLIS_LOG_LEVEL: 'info', PORTCULLIS_DRAIN_TIMEOUT: '5' },
    stdio: 'ignore',
  });
  try {
    await waitFor(async () => (await fetch(`http://127.0.0.1:${adminPort}/status`)).ok, 60_000, 'the gateway');
    proc.kill('SIGKILL');
    // The gateway and its workers go: nothing answers on the admin or proxy port any more.
    const gone = async (port: number) => {
      try {
        await fetch(`http://127.0.0.1:${port}/`);
        return false;
      } catch {
        return true;
      }
    };
    // Generous: the gateway drains first (PORTCULLIS_DRAIN_TIMEOUT 5 s) and the machine may be busy.
    await waitFor(async () => (await gone(adminPort)) && (await gone(proxyPort)), 60_000, 'the gateway to stop');
  } finally {
    proc.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});
