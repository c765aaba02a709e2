/**
 * CPU cost of active health checks: one upstream of 1,000 targets (127.0.x.y on one echo port:
 * all of 127/8 is loopback) probed over HTTP every second, measured with process.cpuUsage()
 * over ~20 s in this process (the echo server runs in a child process, so its CPU is not
 * counted). Prints the share of one CPU. Run: node bench/health-cpu.ts [targets] [seconds]
 */
import { fork } from 'node:child_process';
import { pino } from 'pino';
import { LocalBalancing } from '../src/balancer/balancing.ts';
import { defaultHealthchecks, type Target, type Upstream } from '../src/config/upstreams.ts';

const count = Number(process.argv[2] ?? 1000);
const seconds = Number(process.argv[3] ?? 20);

if (process.argv[2] === 'child') {
  const { startEcho } = await import('../demo/echo.ts');
  const echo = await startEcho({ host: '0.0.0.0' });
  let connections = 0;
  (echo as unknown as { server?: unknown });
  process.on('message', () => process.send!({ requests: echo.received.length, connections }));
  process.send!(echo.port);
} else {
  const child = fork(new URL(import.meta.url).pathname, ['child'], { stdio: 'inherit' });
  const port = await new Promise<number>((resolve) => child.once('message', (m) => resolve(m as number)));
  const hc = defaultHealthchecks();
  hc.active.healthy.interval = 1;
  hc.active.unhealthy.interval = 1;
  hc.active.healthy.successes = 2;
  hc.active.unhealthy.http_failures = 2;
  hc.active.unhealthy.tcp_failures = 2;
  hc.active.concurrency = 50;
  const upstream: Upstream = {
    id: '00000000-0000-4000-8000-000000000001', name: 'bench-upstream', algorithm: 'round-robin', hash_on: 'none', hash_fallback: 'none',
    hash_on_header: null, hash_fallback_header: null, hash_on_cookie: null, hash_on_cookie_path: '/', hash_on_query_arg: null,
    hash_fallback_query_arg: null, hash_on_uri_capture: null, hash_fallback_uri_capture: null, slots: 10000, healthchecks: hc,
    host_header: null, client_certificate: null, use_srv_name: false, tags: null, created_at: 0, updated_at: 0,
  };
  const targets: Target[] = Array.from({ length: count }, (_, i) => ({
    id: `t${i}`, upstream: { id: upstream.id }, target: `127.0.${Math.floor(i / 250) + 1}.${(i % 250) + 1}:${port}`, weight: 100, tags: null, created_at: 0, updated_at: 0,
  }));
  const balancing = new LocalBalancing({ servers: [], hostsFile: '' }, pino({ level: 'warn' }));
  await balancing.apply([upstream], targets);
  await new Promise((r) => setTimeout(r, 3000)); // warm-up: connections opened
  const stats = (): Promise<{ requests: number }> => new Promise((resolve) => {
    child.once('message', (m) => resolve(m as { requests: number }));
    child.send('stats');
  });
  const r0 = await stats();
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const c1 = process.cpuUsage(c0);
  const r1 = await stats();
  const wall = Number(process.hrtime.bigint() - t0) / 1e3;
  const unhealthy = balancing.states.entries().filter((e) => !e[2]).length;
  console.log(JSON.stringify({ targets: count, interval_s: 1, seconds, probes_per_s: Math.round((r1.requests - r0.requests) / seconds), cpu_share_of_one_core: Number(((c1.user + c1.system) / wall).toFixed(4)), user: Number((c1.user / wall).toFixed(4)), system: Number((c1.system / wall).toFixed(4)), unhealthy }));
  balancing.close();
  child.kill();
}
