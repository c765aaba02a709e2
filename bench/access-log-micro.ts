/**
 * CPU cost of one access-log line, in one process (no network): the previous access log (a pino
 * `info` call with the logger's redaction paths) against observability/access-log.ts (a string
 * built by concatenation, written once per event-loop turn), both into the same SonicBoom on
 * /dev/null. `node bench/access-log-micro.ts` — prints ns per line for each; the ratio is what
 * matters on a shared machine. Not part of `npm run bench` (no wrk involved).
 */
import { pino } from 'pino';
import { createLogger } from '../src/observability/logger.ts';
import { AccessLog, type AccessEntry } from '../src/observability/access-log.ts';
import { openSync } from 'node:fs';

const n = Number(process.argv[2] ?? 200_000);
const fd = openSync('/dev/null', 'w');
const log = createLogger({ destination: fd });
const entry: AccessEntry = {
  requestId: '9f6dfc50-fc58-425d-a4df-6202be0e4f5e', method: 'GET', path: '/svc0/items', status: 200, latency: 1.2345,
  upstreamLatency: 0.9876, route: 'r', service: 's', consumer: null, clientIp: '127.0.0.1', aborted: false,
  bytesSent: 52, referer: undefined, userAgent: 'wrk', httpVersion: '1.1',
};

async function run(label: string, one: () => void): Promise<number> {
  // Batches of 50 lines per event-loop turn, like 50 connections' responses.
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i += 50) {
    for (let j = 0; j < 50; j++) one();
    await new Promise((r) => setImmediate(r));
  }
  const ns = Number(process.hrtime.bigint() - t0) / n;
  console.log(`${label.padEnd(28)} ${ns.toFixed(0)} ns/line`);
  return ns;
}

const stream = (log as unknown as Record<symbol, { write(s: string): unknown }>)[pino.symbols.streamSym];
const access = new AccessLog(stream, 'json');
const combined = new AccessLog(stream, 'combined');
const e = entry;
const old = () => log.info({
  type: 'access', request_id: e.requestId, method: e.method, path: e.path, status: e.status,
  latency_ms: Math.round(e.latency * 100) / 100, upstream_latency_ms: Math.round(e.upstreamLatency! * 100) / 100,
  route: e.route, service: e.service, consumer: e.consumer, client_ip: e.clientIp, aborted: e.aborted,
});
const empty = async () => {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i += 50) await new Promise((r) => setImmediate(r));
  return Number(process.hrtime.bigint() - t0) / n;
};
for (let round = 0; round < 3; round++) {
  const base = await empty();
  const a = await run('pino info (before)', old);
  const b = await run('AccessLog json (after)', () => access.write(entry, Date.now()));
  const c = await run('AccessLog combined', () => combined.write(entry, Date.now()));
  console.log(`round ${round + 1}: loop overhead ${base.toFixed(0)} ns; after/before cost ratio ${((b - base) / (a - base)).toFixed(2)}, combined ${((c - base) / (a - base)).toFixed(2)}`);
}
