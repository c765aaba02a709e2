#!/usr/bin/env node
// Launcher: Portcullis runs on Node 24 (TypeScript type stripping). When started by an older
// `node`, re-run with the Node 24 the project installs (the `node` npm package).
import { spawn } from 'node:child_process';
import os from 'node:os';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  const local = join(root, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(local)) {
    console.error('portcullis needs Node.js 24 or newer; run `npm install` in the project first.');
    process.exit(1);
  }
  // Not spawnSync: `kill <this pid>` must reach the gateway too, so signals are passed on to the
  // child (which drains and exits), and this process exits with the child's status.
  // The IPC channel is the child's lifeline: if this launcher dies in any way (even SIGKILL), the
  // channel closes and the gateway drains and exits with its workers instead of living on.
  const child = spawn(local, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, PORTCULLIS_LAUNCHER_PID: String(process.pid) },
  });
  for (const signal of ['SIGHUP', 'SIGTERM', 'SIGINT']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
} else {
  // Loading the code takes a moment: remember signals that arrive meanwhile instead of dying
  // (SIGHUP's default action) — the CLI replays them once its own handlers are in place.
  const early = [];
  const remember = (signal) => early.push(signal);
  for (const signal of ['SIGHUP', 'SIGTERM', 'SIGINT']) process.on(signal, remember);
  globalThis.portcullisEarlySignals = { signals: early, release: () => { for (const s of ['SIGHUP', 'SIGTERM', 'SIGINT']) process.off(s, remember); } };
  await import(join(root, 'src', 'cli', 'main.ts'));
}
