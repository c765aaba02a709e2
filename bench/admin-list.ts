/**
 * Admin API list calls as the admin UI (Kong's @kong-ui-public/entities-* packages) makes them,
 * on a node holding 1,000 routes (100 services × 10 routes), 1,000 route plugins, 200 consumers
 * and 20 upstreams. Target (issue 19): every call under 100 ms. Prints a report; not a test.
 *
 *   ./node_modules/.bin/node bench/admin-list.ts                 # SQLite store
 *   BENCH_ADMIN_DB=postgres ./node_modules/.bin/node bench/admin-list.ts   # PostgreSQL (127.0.0.1:5432, db test)
 *   BENCH_ADMIN_ROUNDS=50 ...                                    # timed rounds per call (default 20)
 *
 * Page sizes are the packages': tables ask `size=30` (entities-shared's default table page
 * size) and follow `offset`; select boxes load `size=1000` (useDebouncedFilter); OSS search is
 * an exact `GET /<entity>/<name>`. Every navigation starts with `GET /`.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { startGateway, type TestGateway } from '../test/helpers/gateway.ts';

const SERVICES = 100;
const ROUTES_PER_SERVICE = 10;
const CONSUMERS = 200;
const UPSTREAMS = 20;
const rounds = Number(process.env.BENCH_ADMIN_ROUNDS ?? 20);
const database = process.env.BENCH_ADMIN_DB === 'postgres' ? 'postgres' : 'sqlite';

function seedDocument(): Record<string, unknown> {
  const services = [];
  for (let s = 0; s < SERVICES; s++) {
    const routes = [];
    for (let r = 0; r < ROUTES_PER_SERVICE; r++) {
      const n = s * ROUTES_PER_SERVICE + r;
      routes.push({
        name: `route-${n}`, paths: [`/svc-${s}/r-${r}`], methods: ['GET', 'POST'], tags: ['bench', `svc-${s}`],
        plugins: [{ name: 'cors', config: { origins: [`https://app-${n}.example.test`] } }],
      });
    }
    services.push({ name: `service-${s}`, url: `http://upstream-${s % UPSTREAMS}.test:8080/base`, tags: ['bench'], routes });
  }
  const consumers = Array.from({ length: CONSUMERS }, (_, i) => ({ username: `user-${i}`, custom_id: `cid-${i}`, tags: ['bench'] }));
  const upstreams = Array.from({ length: UPSTREAMS }, (_, i) => ({
    name: `upstream-${i}.test`, targets: [{ target: `10.0.${i}.1:8080` }, { target: `10.0.${i}.2:8080` }],
  }));
  return { _format_version: '3.0', services, consumers, upstreams };
}

async function json(gw: TestGateway, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(gw.adminUrl + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

async function main(): Promise<void> {
  const schema = `bench_${randomUUID().replaceAll('-', '')}`;
  const env: Record<string, string> = database === 'postgres'
    ? { PORTCULLIS_PG_HOST: '127.0.0.1', PORTCULLIS_PG_USER: 'postgres', PORTCULLIS_PG_DATABASE: 'test', PORTCULLIS_PG_SCHEMA: schema }
    : {};
  const gw = await startGateway({ database, env });
  try {
    const seedStart = performance.now();
    const seeded = await json(gw, 'POST', '/config', seedDocument());
    if (seeded.status !== 201) throw new Error(`seeding failed: ${seeded.status} ${JSON.stringify(seeded.body).slice(0, 500)}`);
    console.log(`seeded ${SERVICES} services, ${SERVICES * ROUTES_PER_SERVICE} routes, ${SERVICES * ROUTES_PER_SERVICE} plugins, ${CONSUMERS} consumers, ${UPSTREAMS} upstreams in ${Math.round(performance.now() - seedStart)} ms (${database})`);

    const service = (await json(gw, 'GET', '/services/service-50')).body;
    const route = (await json(gw, 'GET', '/routes/route-500')).body;
    const upstream = (await json(gw, 'GET', '/upstreams/upstream-7.test')).body;
    const page1 = (await json(gw, 'GET', '/routes?size=30')).body;
    const midOffset = await (async () => {
      // The offset of page 17 of 34 (routes 480-509): a page in the middle of the table.
      let offset: string | undefined = page1.offset;
      for (let i = 1; i < 16 && offset; i++) offset = (await json(gw, 'GET', `/routes?size=30&offset=${encodeURIComponent(offset)}`)).body.offset;
      return offset!;
    })();

    const calls: [string, string][] = [
      ['GET / (every navigation)', '/'],
      ['routes, first page', '/routes?size=30'],
      ['routes, a middle page', `/routes?size=30&offset=${encodeURIComponent(midOffset)}`],
      ['routes, size=100', '/routes?size=100'],
      ['routes, size=1000 (select)', '/routes?size=1000'],
      ['routes by tag', '/routes?size=30&tags=svc-42'],
      ['route by name (OSS search)', '/routes/route-777'],
      ['route by id', `/routes/${route.id}`],
      ['services, first page', '/services?size=30'],
      ['services, size=1000 (route form select)', '/services?size=1000'],
      ['service routes', `/services/${service.id}/routes?size=30`],
      ['plugins, first page', '/plugins?size=30'],
      ['plugins, size=1000', '/plugins?size=1000'],
      ['route plugins', `/routes/${route.id}/plugins?size=30`],
      ['consumers, first page', '/consumers?size=30'],
      ['consumer by custom_id', '/consumers?custom_id=cid-150'],
      ['upstreams, first page', '/upstreams?size=30'],
      ['upstream targets', `/upstreams/${upstream.id}/targets?size=30`],
      ['certificates (empty)', '/certificates?size=30'],
      ['plugin schema (openid-connect form)', '/schemas/plugins/openid-connect'],
      ['entity schema (routes)', '/schemas/routes'],
      ['consumer groups, counter', '/consumer_groups?size=30&counter=true'],
    ];

    const rows: { name: string; median: number; p95: number; max: number; items: number }[] = [];
    for (const [name, path] of calls) {
      const first = await json(gw, 'GET', path);
      if (first.status !== 200) throw new Error(`${path}: ${first.status}`);
      const items = Array.isArray(first.body?.data) ? first.body.data.length : 1;
      for (let i = 0; i < 3; i++) await json(gw, 'GET', path);
      const times: number[] = [];
      for (let i = 0; i < rounds; i++) {
        const t0 = performance.now();
        await json(gw, 'GET', path);
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      rows.push({ name, median: quantile(times, 0.5), p95: quantile(times, 0.95), max: times[times.length - 1]!, items });
    }

    const w = Math.max(...rows.map((r) => r.name.length));
    console.log(`\n${'call'.padEnd(w)}  items  median ms   p95 ms   max ms`);
    for (const r of rows) {
      const flag = r.max >= 100 ? '  ← over 100 ms' : '';
      console.log(`${r.name.padEnd(w)}  ${String(r.items).padStart(5)}  ${r.median.toFixed(2).padStart(9)}  ${r.p95.toFixed(2).padStart(7)}  ${r.max.toFixed(2).padStart(7)}${flag}`);
    }
    const worst = rows.reduce((a, b) => (b.max > a.max ? b : a));
    console.log(`\nslowest call: ${worst.name}, max ${worst.max.toFixed(1)} ms over ${rounds} rounds (target: every call under 100 ms)`);
  } finally {
    await gw.close();
    if (database === 'postgres') {
      const c = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: 'test' });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.end();
    }
  }
}

await main();
