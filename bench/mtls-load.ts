/**
 * A small HTTPS load generator that presents a client certificate (wrk cannot), for the mTLS
 * scenarios of bench/run.ts: `node bench/mtls-load.ts <url> <seconds> <connections> <cert.pem>
 * <key.pem> <headers JSON>` keeps <connections> keep-alive connections busy (one request at a
 * time each, like wrk) through an undici Pool for <seconds>, then prints one JSON line in
 * bench/lib.ts's WrkResult shape (requests/s, p50/p99 latency, non-2xx/3xx answers, errors).
 * Both sides of a ratio are measured with it, so its own cost cancels out.
 */
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';

const [url, seconds, connections, certFile, keyFile, headersJson] = process.argv.slice(2);
const target = new URL(url);
const n = Number(connections);
const headers = JSON.parse(headersJson) as Record<string, string>;
const pool = new Pool(target.origin, {
  connections: n,
  pipelining: 1,
  connect: { cert: readFileSync(certFile), key: readFileSync(keyFile), rejectUnauthorized: false, servername: 'localhost' },
});
const path = target.pathname + target.search;
const latencies: number[] = [];
let non2xx = 0;
let errors = 0;
const t0 = performance.now();
const end = t0 + Number(seconds) * 1000;

async function loop(): Promise<void> {
  while (performance.now() < end) {
    const start = performance.now();
    try {
      const r = await pool.request({ path, method: 'GET', headers });
      await r.body.dump();
      if (r.statusCode >= 400) non2xx++;
      latencies.push(performance.now() - start);
    } catch {
      errors++;
    }
  }
}

await Promise.all(Array.from({ length: n }, loop));
const elapsed = (performance.now() - t0) / 1000;
await pool.close();
latencies.sort((a, b) => a - b);
const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] ?? Number.NaN;
console.log(JSON.stringify({ rps: latencies.length / elapsed, p50Ms: pct(50), p99Ms: pct(99), requests: latencies.length, non2xx, socketErrors: errors }));
