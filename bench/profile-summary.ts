/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`, e.g. BENCH_CPU_PROF=dir npm run bench):
 * top functions by self time and by total (inclusive) time, with file:line.
 * Run: node bench/profile-summary.ts FILE.cpuprofile [TOP=30] [FILTER=regex on url]
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

const [file, topArg, filterArg] = process.argv.slice(2);
if (!file) throw new Error('usage: node bench/profile-summary.ts FILE.cpuprofile [TOP] [FILTER]');
const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; startTime: number; endTime: number };
const top = Number(topArg ?? 30);
const filter = filterArg ? new RegExp(filterArg) : null;
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const hits = new Map<number, number>();
for (const s of prof.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
const total = prof.samples.length;
const label = (n: Node): string => {
  const url = n.callFrame.url.replace(/^file:\/\/.*?\/(src|node_modules|bench|bin)\//, '$1/');
  return `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
};
const self = new Map<string, number>();
const incl = new Map<string, number>();
for (const [id, count] of hits) {
  const n = byId.get(id)!;
  self.set(label(n), (self.get(label(n)) ?? 0) + count);
  // Inclusive: every distinct frame on the stack once.
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const l = label(byId.get(cur)!);
    if (seen.has(l)) continue;
    seen.add(l);
    incl.set(l, (incl.get(l) ?? 0) + count);
  }
}
const print = (title: string, m: Map<string, number>): void => {
  console.log(`\n${title} (${total} samples, ${((prof.endTime - prof.startTime) / 1e6).toFixed(1)} s)`);
  const rows = [...m].filter(([l]) => !filter || filter.test(l)).sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [l, c] of rows) console.log(`${((c / total) * 100).toFixed(1).padStart(6)}%  ${l}`);
};
print('self time', self);
print('total time', incl);
