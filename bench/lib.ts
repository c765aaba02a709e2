/**
 * Plumbing for bench/run.ts: child processes in their own process groups (so a cluster primary
 * and its workers stop together), CPU pinning with taskset, readiness polling, wrk runs and the
 * parsing of wrk's report, and a description of the machine.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';

let nextPort = 20000 + Math.floor(Math.random() * 8000);

/**
 * A free 127.0.0.1 port below Linux's ephemeral range (32768–60999): a port the kernel hands
 * out for `listen(0)` may be taken as the local port of one of the bench's many client
 * connections before the contender binds it (EADDRINUSE at start-up).
 */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = nextPort++;
    if (nextPort >= 32000) nextPort = 20000;
    const srv = net.createServer();
    const ok = await new Promise<boolean>((r) => {
      srv.once('error', () => r(false));
      srv.listen(port, '127.0.0.1', () => r(true));
    });
    if (ok) {
      await new Promise<void>((r) => srv.close(() => r()));
      return port;
    }
  }
  throw new Error('no free port found between 20000 and 32000');
}

export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/**
 * The Debian packages the contenders need (wrk, nginx, Apache + mod_auth_openidc, Redis). Missing
 * ones are installed with apt-get when running as root (BENCH_NO_INSTALL=1 skips that); otherwise
 * the command to run is printed and the scenarios that need them are reported as failed.
 */
export function ensureDebianPackages(): void {
  const wanted: Array<[string, string]> = [
    ['wrk', 'command -v wrk'],
    ['nginx', 'command -v nginx'],
    ['apache2', 'command -v apache2'],
    ['libapache2-mod-auth-openidc', 'test -f /usr/lib/apache2/modules/mod_auth_openidc.so'],
    ['redis-server', 'command -v redis-server'],
    // h2load: the HTTP/2 scenario (100 streams per connection).
    ['nghttp2-client', 'command -v h2load'],
  ];
  const missing = wanted.filter(([, check]) => spawnSync('sh', ['-c', check], { stdio: 'ignore' }).status !== 0).map(([pkg]) => pkg);
  if (missing.length === 0) return;
  const root = process.getuid?.() === 0;
  if (!root || process.env.BENCH_NO_INSTALL === '1' || !hasCommand('apt-get')) {
    console.log(`bench: missing Debian packages; install them with: apt-get install -y ${missing.join(' ')}`);
    return;
  }
  console.log(`bench: installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: ['ignore', 'ignore', 'inherit'], env });
  if (r.status !== 0) console.log(`bench: apt-get install failed (exit ${r.status}); scenarios needing ${missing.join(', ')} will fail`);
  // The packages start their system services on install; the bench runs its own instances.
  for (const svc of ['nginx', 'apache2']) if (missing.includes(svc)) spawnSync('sh', ['-c', `service ${svc} stop`], { stdio: 'ignore' });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Which CPUs each role runs on (taskset -c lists), or null when pinning is off. */
export interface Pinning {
  load: string | null;
  single: string | null;
  multi: string | null;
}

export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Every child started here, so an interrupted run (Ctrl-C, crash) still stops them all. Owned by
 * the run, not the module: bench/run.ts creates one and closes it in `finally`.
 */
export class Children {
  readonly #live = new Set<Child>();

  /** Starts `cmd args` in its own process group, optionally pinned with `taskset -c cpus`. */
  start(name: string, cmd: string, args: readonly string[], opts: { cpus?: string | null; env?: Record<string, string>; cwd?: string; stdoutFile?: string } = {}): Child {
    const [file, argv] = opts.cpus ? ['taskset', ['-c', opts.cpus, cmd, ...args]] : [cmd, [...args]];
    // stdoutFile: the child's stdout goes straight to a file (as a log collector would take it),
    // so the run's own reading of a busy stdout pipe is not charged to the contender.
    const outFd = opts.stdoutFile ? openSync(opts.stdoutFile, 'a') : null;
    const proc = spawn(file, argv, {
      detached: true,
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', outFd ?? 'pipe', 'pipe'],
    });
    if (outFd !== null) closeSync(outFd);
    let out = '';
    const keep = (c: Buffer): void => {
      out += c.toString();
      if (out.length > 64_000) out = out.slice(-32_000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr!.on('data', keep);
    const exited = new Promise<void>((r) => {
      if (proc.exitCode !== null || proc.signalCode !== null) r();
      else proc.once('exit', () => r());
    });
    const group = (signal: NodeJS.Signals): void => {
      try {
        process.kill(-proc.pid!, signal);
      } catch {
        // already gone
      }
    };
    const child: Child = {
      name,
      proc,
      output: () => out,
      stop: async () => {
        this.#live.delete(child);
        group('SIGTERM');
        const done = await Promise.race([exited.then(() => true), sleep(8_000).then(() => false)]);
        // Workers of a cluster may outlive the primary by a moment: make sure the group is gone.
        group('SIGKILL');
        if (!done) await exited;
      },
    };
    this.#live.add(child);
    return child;
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.#live].map((c) => c.stop()));
  }
}

/** Polls `check` every 50 ms until it returns true; throws with `child`'s output on timeout or exit. */
export async function waitUntil(what: string, check: () => Promise<boolean>, child?: Child, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (child && (child.proc.exitCode !== null || child.proc.signalCode !== null)) {
      throw new Error(`${what}: process exited (${child.proc.exitCode ?? child.proc.signalCode})\n${child.output()}`);
    }
    try {
      if (await check()) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > end) throw new Error(`${what}: not ready after ${timeoutMs} ms\n${child?.output() ?? ''}`);
    await sleep(50);
  }
}

/** GET `url` with `headers`; resolves to the status (2 s timeout). */
export async function statusOf(url: string, headers: Record<string, string> = {}): Promise<number> {
  const r = await fetch(url, { headers, signal: AbortSignal.timeout(2_000) });
  await r.arrayBuffer();
  return r.status;
}

export interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  non2xx: number;
  socketErrors: number;
  /** CPU time the contender spent per request, µs (filled in by the caller when known). */
  cpuUsPerReq?: number;
  /** A log plugin's dropped entries per request during the run (http-log scenarios). */
  droppedShare?: number;
}

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(value.trim());
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

/** Parses wrk 4's text report (run with --latency). */
export function parseWrk(text: string): WrkResult {
  const num = (re: RegExp): number => {
    const m = re.exec(text);
    return m ? Number(m[1]) : 0;
  };
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(text);
    return m ? toMs(m[1]) : Number.NaN;
  };
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50Ms: pct('50'),
    p99Ms: pct('99'),
    requests: num(/(\d+) requests in/),
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
    socketErrors: errs ? errs.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
  };
}

export interface WrkOptions {
  threads: number;
  connections: number;
  durationSec: number;
  cpus: string | null;
  /** `wrk -s <file> <url> <args...>`: a Lua script that builds each request. */
  script?: { file: string; args: string[] };
}

/**
 * Runs a load generator (`wrk`, `h2load`), pinned to `cpus` with taskset when given, and returns
 * its output (stdout and stderr); killed 30 s after its run should have ended.
 */
function runLoadTool(tool: string, args: readonly string[], cpus: string | null, durationSec: number): Promise<string> {
  const [file, argv] = cpus ? ['taskset', ['-c', cpus, tool, ...args]] : [tool, [...args]];
  return new Promise<string>((resolve, reject) => {
    const p = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), (durationSec + 30) * 1000);
    p.once('error', reject);
    p.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${tool} exited with ${code}: ${out}`));
    });
  });
}

/** Runs wrk against `url` and returns its parsed report. */
export async function wrk(url: string, headers: Record<string, string>, o: WrkOptions): Promise<WrkResult> {
  const args = [`-t${o.threads}`, `-c${o.connections}`, `-d${o.durationSec}s`, '--latency', '--timeout', '5s'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  if (o.script) args.push('-s', o.script.file);
  args.push(url, ...(o.script?.args ?? []));
  const text = await runLoadTool('wrk', args, o.cpus, o.durationSec);
  const r = parseWrk(text);
  if (!(r.rps > 0)) throw new Error(`could not read wrk's report:\n${text}`);
  return r;
}

export interface H2loadOptions {
  clients: number;
  /** Concurrent streams per connection (h2load -m). */
  streams: number;
  durationSec: number;
  cpus: string | null;
}

/**
 * Runs h2load (nghttp2) against an https URL over h2 for `durationSec` and reports it as wrk's
 * result (h2load gives no percentiles: p50 is its mean request time, p99 its maximum).
 */
export async function h2load(url: string, headers: Record<string, string>, o: H2loadOptions): Promise<WrkResult> {
  const args = ['-c', String(o.clients), '-m', String(o.streams), '-t', '1', '-D', String(o.durationSec), '--warm-up-time', '1'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  args.push(url);
  const text = await runLoadTool('h2load', args, o.cpus, o.durationSec);
  const rps = Number(/finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(text)?.[1]);
  const req = /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(text);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(text);
  const times = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)/.exec(text);
  if (!(rps > 0) || req === null) throw new Error(`could not read h2load's report:\n${text}`);
  // The status line also counts answers that arrived after the measured duration: count the
  // non-2xx classes, not done − 2xx.
  return {
    rps,
    p50Ms: times ? toMs(times[3]) : Number.NaN,
    p99Ms: times ? toMs(times[2]) : Number.NaN,
    requests: Number(req[2]),
    non2xx: codes === null ? 0 : Number(codes[2]) + Number(codes[3]) + Number(codes[4]),
    socketErrors: Number(req[4]) + Number(req[5]),
  };
}

export interface Machine {
  cpus: number;
  model: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  wrk: string;
}

export function describeMachine(): Machine {
  let model = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) model = m[1].trim();
  } catch {
    // not Linux
  }
  const wrkVersion = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  return {
    cpus: os.availableParallelism(),
    model,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    wrk: (wrkVersion.stdout || wrkVersion.stderr || '').split('\n')[0].trim(),
  };
}

/** Clock ticks per second of /proc/<pid>/stat times (sysconf CLK_TCK; 100 on Linux in practice). */
export function clockTicks(): number {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return n > 0 ? n : 100;
}

/**
 * CPU seconds (user + system) used so far by every live process in process group `pgid` — a
 * contender's primary and its workers. On a machine shared with other work, CPU time per request
 * is a steadier measure of a proxy's cost than requests per second, which depends on how much CPU
 * the process happened to get. Linux only (0 elsewhere).
 */
export function groupCpuSeconds(pgid: number, ticksPerSec: number): number {
  let ticks = 0;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return 0;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // Fields after the command name (which may contain spaces) — see proc(5): pgrp is field 5,
    // utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(rest[2]) !== pgid) continue;
    ticks += Number(rest[11]) + Number(rest[12]);
  }
  return ticks / ticksPerSec;
}
