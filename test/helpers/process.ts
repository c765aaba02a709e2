/**
 * Runs the real `portcullis start` command in a child process (as a user would), on free ports,
 * for process-level tests: workers, signals, drain, reload, memory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;

/** Ports this test process has handed out: the kernel may give a just-released port again. */
const handedOut = new Set<number>();

export async function freePort(): Promise<number> {
  for (;;) {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    // Two calls in a row (a proxy and an admin port) once got the same port: the gateway then
    // bound both listeners to it and the test hung.
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

export interface GatewayProcess {
  readonly proc: ChildProcess;
  readonly proxyUrl: string;
  readonly adminUrl: string;
  readonly configFile: string;
  readonly dir: string;
  output(): string;
  /** Resolves with the exit code once the process ends. */
  readonly exited: Promise<number | null>;
  writeConfig(text: string): Promise<void>;
  /** Peak resident memory (VmHWM) of the process, bytes (Linux). */
  peakRss(): Promise<number>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startGatewayProcess(opts: { config?: string; args?: string[]; env?: Record<string, string>; workers?: number; extraProxyListen?: string; startTimeoutMs?: number }): Promise<GatewayProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-proc-'));
  const configFile = join(dir, 'portcullis.yaml');
  if (opts.config !== undefined) await writeFile(configFile, opts.config);
  const proxyPort = await freePort();
  const adminPort = await freePort();
  const args = [join(root, 'bin/portcullis.js'), 'start', '--workers', String(opts.workers ?? 1),
    '--proxy-listen', `127.0.0.1:${proxyPort}${opts.extraProxyListen ? `, ${opts.extraProxyListen}` : ''}`, '--admin-listen', `127.0.0.1:${adminPort}`,
    ...(opts.config !== undefined ? ['-c', configFile] : []), ...(opts.args ?? [])];
  const proc = spawn(process.execPath, args, {
    cwd: dir,
    env: { ...process.env, PORTCULLIS_LOG_LEVEL: 'info', PORTCULLIS_DRAIN_TIMEOUT: '10', PORTCULLIS_ADMIN_GUI_LISTEN: 'off', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const proxyUrl = `http://127.0.0.1:${proxyPort}`;
  let dead = false;
  void exited.then(() => (dead = true));
  await waitFor(async () => {
    if (dead) throw new Error('exited');
    const r = await fetch(`${adminUrl}/status`);
    if (r.status !== 200) return false;
    // Proxy is up too (any HTTP answer).
    await fetch(`${proxyUrl}/__portcullis_probe__`);
    return true;
  }, opts.startTimeoutMs ?? 60_000, 'gateway start').catch((err: Error) => {
    proc.kill('SIGKILL');
    throw new Error(`${err.message}\n${out}`);
  });
  return {
    proc, proxyUrl, adminUrl, configFile, dir, exited,
    output: () => out,
    writeConfig: (text) => writeFile(configFile, text),
    async peakRss() {
      const status = await readFile(`/proc/${proc.pid}/status`, 'utf8');
      const m = /VmHWM:\s+(\d+) kB/.exec(status);
      return m ? Number(m[1]) * 1024 : 0;
    },
    async stop(signal = 'SIGTERM') {
      if (!dead) proc.kill(signal);
      const code = await exited;
      await rm(dir, { recursive: true, force: true });
      return code;
    },
  };
}
