/**
 * Memory under a flood of unknown API keys (issue 16): a 1-worker gateway with key-auth and one
 * consumer, then 100,000 requests each with a different unknown `apikey`; the gateway's resident
 * memory (VmRSS of every process in its group) before, after, and after 100,000 more. Every answer
 * must be 401. Unknown keys are looked up in the in-memory credential index and nothing about
 * them is kept, so memory stays flat. Run: node bench/keyauth-unknown.ts [requests]
 */
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { Children } from './lib.ts';
import { gatewayConfig, startGateway, startUpstream } from './contenders.ts';

const total = Number(process.argv[2] ?? 100_000);
const children = new Children();
const work = await mkdtemp(join(tmpdir(), 'portcullis-keyauth-unknown-'));

/** Resident memory (KiB) of every process in the group `pgid`. */
function groupRssKiB(pgid: number): number {
  let sum = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid) continue;
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) sum += Number(m[1]);
    } catch {
      // the process ended meanwhile
    }
  }
  return sum;
}

try {
  const upstream = await startUpstream(children, null, 1);
  const consumer = { username: 'bench-user', keyauth_credentials: [{ key: 'the-only-known-key' }] };
  const gw = await startGateway(children, {
    dir: join(work, 'gw'), config: gatewayConfig(upstream.port, 1, [{ name: 'key-auth', config: {} }], [consumer]), workers: 1, cpus: null,
    probe: { path: '/svc0/items', headers: { apikey: 'the-only-known-key' } },
  });
  const pgid = gw.child.proc.pid!;
  const pool = new Pool(`http://127.0.0.1:${gw.port}`, { connections: 32 });
  const flood = async (from: number): Promise<number> => {
    let unauthorized = 0;
    let next = from;
    const end = from + total;
    const lane = async (): Promise<void> => {
      while (next < end) {
        const i = next++;
        const r = await pool.request({ path: '/svc0/items', method: 'GET', headers: { apikey: `unknown-key-${i}-${'x'.repeat(24)}` } });
        await r.body.dump();
        if (r.statusCode === 401) unauthorized++;
      }
    };
    await Promise.all(Array.from({ length: 32 }, lane));
    return unauthorized;
  };
  // Warm-up, so the baseline includes a JIT-compiled request path.
  await flood(-total).then(() => undefined);
  global.gc?.();
  const before = groupRssKiB(pgid);
  const first = await flood(0);
  const after = groupRssKiB(pgid);
  const second = await flood(total);
  const after2 = groupRssKiB(pgid);
  await pool.close();
  console.log(JSON.stringify({
    requests_per_flood: total, answered_401: [first, second],
    rss_mib: { before: +(before / 1024).toFixed(1), after_first: +(after / 1024).toFixed(1), after_second: +(after2 / 1024).toFixed(1) },
    growth_mib: { first: +((after - before) / 1024).toFixed(1), second: +((after2 - after) / 1024).toFixed(1) },
  }));
} finally {
  await children.closeAll();
  await rm(work, { recursive: true, force: true });
}
