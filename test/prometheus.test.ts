/**
 * prometheus plugin and /metrics: Kong's metric names, labels and buckets; exact counts after
 * known traffic on one process and on a two-worker node (one scrape = the whole node, a worker
 * restart never lowers a counter); the Status API (status_listen); Kong's official Grafana
 * dashboard finds every series it queries with the labels it uses.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { freePort, startGatewayProcess, waitFor } from './helpers/process.ts';
import { parseExposition, type Exposition } from './helpers/prometheus.ts';
import { startDns } from './helpers/dns.ts';
import { kongLatencyBuckets, upstreamLatencyBuckets } from '../src/observability/metrics.ts';

const allGates = { per_consumer: true, status_code_metrics: true, latency_metrics: true, bandwidth_metrics: true, upstream_health_metrics: true };

/**
 * Every metric Kong's official Grafana dashboard (kong/plugins/prometheus/grafana/kong-official.json,
 * gnetId 7424) queries, with the labels its expressions and legends use.
 */
const grafanaDashboard: Record<string, string[]> = {
  kong_http_requests_total: ['service', 'route', 'code', 'source', 'workspace', 'consumer'],
  kong_kong_latency_ms_bucket: ['service', 'route', 'workspace', 'le'],
  kong_upstream_latency_ms_bucket: ['service', 'route', 'workspace', 'le'],
  kong_request_latency_ms_bucket: ['service', 'route', 'workspace', 'le'],
  kong_bandwidth_bytes: ['service', 'route', 'direction', 'workspace', 'consumer'],
  kong_nginx_connections_total: ['node_id', 'subsystem', 'state'],
  kong_nginx_requests_total: ['node_id', 'subsystem'],
  kong_datastore_reachable: [],
  kong_memory_workers_lua_vms_bytes: ['node_id', 'pid', 'kong_subsystem'],
  kong_memory_lua_shared_dict_bytes: ['node_id', 'shared_dict', 'kong_subsystem'],
  kong_memory_lua_shared_dict_total_bytes: ['node_id', 'shared_dict', 'kong_subsystem'],
  kong_upstream_target_health: ['upstream', 'target', 'address', 'state', 'subsystem'],
  kong_node_info: ['node_id', 'version'],
};

function family(name: string): string {
  return name.replace(/_(bucket|sum|count)$/, '');
}

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    // A new connection per request (agent: false) so a multi-worker node spreads them.
    const req = http.get(url, { agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

async function scrape(url: string): Promise<Exposition> {
  const r = await get(`${url}/metrics`);
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'text/plain; charset=UTF-8');
  return parseExposition(r.body);
}

function config(echoUrl: string) {
  return {
    consumers: [{ username: 'alice' }],
    services: [{
      name: 'svc', url: echoUrl,
      routes: [
        { name: 'ok', paths: ['/ok'] },
        { name: 'stop', paths: ['/stop'], plugins: [{ name: 'request-termination', config: { status_code: 418, message: 'no' } }] },
      ],
    }],
    plugins: [{ name: 'prometheus', config: allGates }],
  };
}

describe('prometheus: one process', () => {
  let echo: EchoServer;
  let gw: TestGateway;
  let statusUrl: string;
  before(async () => {
    echo = await startEcho();
    const statusPort = await freePort();
    gw = await startGateway({ config: config(echo.url), env: { PORTCULLIS_STATUS_LISTEN: `127.0.0.1:${statusPort}` } });
    statusUrl = `http://127.0.0.1:${statusPort}`;
  });
  after(async () => {
    await gw.close();
    await echo.close();
  });

  test('exact counts per service, route, code and source after known traffic', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await get(`${gw.proxyUrl}/ok/status/200`)).status, 200);
    for (let i = 0; i < 2; i++) assert.equal((await get(`${gw.proxyUrl}/ok/status/502`)).status, 502);
    assert.equal((await get(`${gw.proxyUrl}/stop`)).status, 418);
    // No route: not recorded (as Kong).
    assert.equal((await get(`${gw.proxyUrl}/nowhere`)).status, 404);
    await new Promise((r) => setTimeout(r, 50));
    const m = await scrape(gw.adminUrl);
    const base = { service: 'svc', workspace: 'default', consumer: '' };
    assert.equal(m.value('kong_http_requests_total', { ...base, route: 'ok', code: '200', source: 'service' }), 3);
    assert.equal(m.value('kong_http_requests_total', { ...base, route: 'ok', code: '502', source: 'service' }), 2);
    assert.equal(m.value('kong_http_requests_total', { ...base, route: 'stop', code: '418', source: 'kong' }), 1);
    assert.equal(m.find('kong_http_requests_total', { code: '404' }).length, 0, 'unmatched requests are not recorded');
    // Histograms: Kong's buckets, one observation per request; no upstream latency when Kong answered.
    assert.equal(m.value('kong_request_latency_ms_count', { service: 'svc', route: 'ok', workspace: 'default' }), 5);
    assert.equal(m.value('kong_upstream_latency_ms_count', { service: 'svc', route: 'ok', workspace: 'default' }), 5);
    assert.equal(m.value('kong_kong_latency_ms_count', { service: 'svc', route: 'stop', workspace: 'default' }), 1);
    assert.equal(m.value('kong_upstream_latency_ms_count', { service: 'svc', route: 'stop', workspace: 'default' }), 0);
    const les = (name: string) => m.find(name, { route: 'ok' }).map((s) => s.labels.le).filter((le) => le !== '+Inf').map(Number);
    assert.deepEqual(les('kong_kong_latency_ms_bucket'), kongLatencyBuckets);
    assert.deepEqual(les('kong_upstream_latency_ms_bucket'), upstreamLatencyBuckets);
    assert.deepEqual(les('kong_request_latency_ms_bucket'), upstreamLatencyBuckets);
    assert.deepEqual(kongLatencyBuckets, [1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 3000, 6000]);
    assert.deepEqual(upstreamLatencyBuckets, [25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000]);
    // Bandwidth: both directions, growing with the traffic.
    assert.ok(m.value('kong_bandwidth_bytes', { ...base, route: 'ok', direction: 'ingress' }) > 5 * 20);
    assert.ok(m.value('kong_bandwidth_bytes', { ...base, route: 'ok', direction: 'egress' }) > 5 * 50);
    // Node-level series.
    assert.equal(m.value('kong_datastore_reachable'), 1);
    assert.equal(m.find('kong_node_info').length, 1);
    assert.ok(m.value('kong_nginx_requests_total', { subsystem: 'http' }) >= 7);
    assert.equal(m.types.get('kong_http_requests_total'), 'counter');
    assert.equal(m.types.get('kong_request_latency_ms'), 'histogram');
  });

  test('per_consumer puts the username in the consumer label', async () => {
    // A fresh gateway whose route authenticates via a test plugin is overkill here: the label
    // is derived from ctx.consumer, which request-termination does not set; assert the empty
    // value with per_consumer and no consumer (Kong's behaviour for anonymous traffic).
    const m = await scrape(gw.adminUrl);
    for (const s of m.find('kong_http_requests_total')) assert.equal(s.labels.consumer, '');
  });

  test('every metric of Kong\'s official Grafana dashboard exists with the same labels', async () => {
    await get(`${gw.proxyUrl}/ok/status/200`);
    const m = await scrape(statusUrl);
    for (const [name, labels] of Object.entries(grafanaDashboard)) {
      assert.ok(m.types.has(family(name)), `${family(name)} is exposed`);
      for (const s of m.find(name)) assert.deepEqual(Object.keys(s.labels).sort(), [...labels].sort(), `${name} labels`);
    }
    // Series a dashboard panel needs values for are present.
    for (const name of ['kong_http_requests_total', 'kong_kong_latency_ms_bucket', 'kong_upstream_latency_ms_bucket', 'kong_request_latency_ms_bucket', 'kong_bandwidth_bytes', 'kong_nginx_connections_total', 'kong_memory_workers_lua_vms_bytes', 'kong_datastore_reachable']) {
      assert.ok(m.find(name).length > 0, `${name} has series`);
    }
    for (const state of ['accepted', 'handled', 'total', 'active', 'reading', 'writing', 'waiting']) {
      assert.equal(m.find('kong_nginx_connections_total', { state }).length, 1, state);
    }
  });

  test('the Status API serves /status, /status/ready and /metrics; other paths 404', async () => {
    const st = await get(`${statusUrl}/status`);
    assert.equal(st.status, 200);
    assert.equal(JSON.parse(st.body).database.reachable, true);
    const ready = await get(`${statusUrl}/status/ready`);
    assert.equal(ready.status, 200);
    assert.deepEqual(JSON.parse(ready.body), { message: 'ready' });
    assert.equal((await get(`${statusUrl}/services`)).status, 404);
  });

  test('config gates: ai_metrics and wasm_metrics are refused, unknown fields too', async () => {
    for (const bad of [{ ai_metrics: true }, { wasm_metrics: true }, { nope: 1 }]) {
      const r = await fetch(`${gw.adminUrl}/schemas/plugins/validate`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'prometheus', config: bad }),
      });
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.match(await r.text(), new RegExp(Object.keys(bad)[0]));
    }
  });
});

describe('prometheus: a two-worker node', () => {
  let echo: EchoServer;
  before(async () => {
    echo = await startEcho();
  });
  after(async () => {
    await echo.close();
  });

  test('one scrape returns both workers\' exact counts; a killed worker does not lower them', async () => {
    const statusPort = await freePort();
    const yaml = `_format_version: "3.0"\nservices:\n  - name: svc\n    url: ${echo.url}\n    routes:\n      - { name: ok, paths: [/ok] }\nplugins:\n  - name: prometheus\n    config: { status_code_metrics: true, latency_metrics: true }\n`;
    const gw = await startGatewayProcess({ workers: 2, config: yaml, env: { PORTCULLIS_STATUS_LISTEN: `127.0.0.1:${statusPort}`, PORTCULLIS_PROXY_ACCESS_LOG: 'off' } });
    const statusUrl = `http://127.0.0.1:${statusPort}`;
    const key = { service: 'svc', route: 'ok', code: '200', source: 'service', workspace: 'default', consumer: '' };
    try {
      for (let i = 0; i < 20; i++) assert.equal((await get(`${gw.proxyUrl}/ok`)).status, 200);
      await new Promise((r) => setTimeout(r, 100));
      const m = await scrape(statusUrl);
      assert.equal(m.value('kong_http_requests_total', key), 20);
      assert.equal(m.value('kong_request_latency_ms_count', { service: 'svc', route: 'ok', workspace: 'default' }), 20);
      // Both workers answered: one memory series per worker pid (a worker busy starting up on a
      // loaded machine may miss the first scrape's collection round; it is in a later one).
      let pids: string[] = [];
      await waitFor(async () => {
        pids = (await scrape(statusUrl)).find('kong_memory_workers_lua_vms_bytes').map((s) => s.labels.pid);
        return new Set(pids).size === 2;
      }, 10_000, 'both workers in one scrape');
      assert.equal(new Set(pids).size, 2);
      assert.equal(m.find('kong_node_info').length, 1, 'node info once, not once per worker');
      // The Admin API serves the same node-wide view.
      assert.equal((await scrape(gw.adminUrl)).value('kong_http_requests_total', key), 20);

      // Kill one worker: the primary starts another; the node's counter never goes below 20.
      process.kill(Number(pids[0]), 'SIGKILL');
      await waitFor(async () => {
        const now = await scrape(statusUrl);
        const live = new Set(now.find('kong_memory_workers_lua_vms_bytes').map((s) => s.labels.pid));
        return live.size === 2 && !live.has(pids[0]);
      }, 30_000, 'a replacement worker');
      assert.equal((await scrape(statusUrl)).value('kong_http_requests_total', key), 20);
      for (let i = 0; i < 4; i++) assert.equal((await get(`${gw.proxyUrl}/ok`)).status, 200);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal((await scrape(statusUrl)).value('kong_http_requests_total', key), 24);
    } finally {
      await gw.stop();
    }
  });
});

describe('prometheus: upstream_health_metrics', () => {
  test('kong_upstream_target_health has Kong\'s four state series per address: healthchecks_off, healthy, unhealthy, dns_error; nothing with the gate off', async () => {
    const echo = await startEcho();
    const dns = await startDns();
    const closed = await freePort();
    const statusPort = await freePort();
    const upstreams = [
      { name: 'plain.up', targets: [{ target: `127.0.0.1:${echo.port}` }] },
      {
        name: 'checked.up',
        healthchecks: { active: { healthy: { interval: 0.2, successes: 1 }, unhealthy: { interval: 0.2, tcp_failures: 1, http_failures: 1, timeouts: 1 } } },
        targets: [{ target: `127.0.0.1:${echo.port}` }, { target: `127.0.0.1:${closed}` }],
      },
      { name: 'dns.up', targets: [{ target: 'missing.service.test:80' }] },
    ];
    const gw = await startGateway({
      env: { PORTCULLIS_STATUS_LISTEN: `127.0.0.1:${statusPort}`, PORTCULLIS_DNS_RESOLVER: dns.resolver },
      config: { upstreams, plugins: [{ name: 'prometheus', config: { upstream_health_metrics: true } }] },
    });
    const series = async () => (await scrape(`http://127.0.0.1:${statusPort}`)).samples.filter((x) => x.name === 'kong_upstream_target_health');
    const value = (all: Awaited<ReturnType<typeof series>>, upstream: string, target: string, address: string, state: string) =>
      all.find((x) => x.labels.upstream === upstream && x.labels.target === target && x.labels.address === address && x.labels.state === state && x.labels.subsystem === 'http')?.value;
    try {
      const echoTarget = `127.0.0.1:${echo.port}`, closedTarget = `127.0.0.1:${closed}`;
      await waitFor(async () => value(await series(), 'checked.up', closedTarget, closedTarget, 'unhealthy') === 1, 10_000, 'the closed target reported unhealthy');
      const all = await series();
      // One series per state and address: 1 for the state it is in, 0 for the other three.
      const expect: Array<[string, string, string, string]> = [
        ['plain.up', echoTarget, echoTarget, 'healthchecks_off'],
        ['checked.up', echoTarget, echoTarget, 'healthy'],
        ['checked.up', closedTarget, closedTarget, 'unhealthy'],
        ['dns.up', 'missing.service.test:80', '', 'dns_error'],
      ];
      for (const [u, t, a, state] of expect) {
        for (const st of ['healthchecks_off', 'healthy', 'unhealthy', 'dns_error']) assert.equal(value(all, u, t, a, st), st === state ? 1 : 0, `${u} ${t} ${st}`);
      }
      assert.equal(all.length, 16, 'four addresses, four states each');
    } finally {
      await gw.close();
    }
    // The gate off: the family is declared, with no series.
    const statusOff = await freePort();
    const off = await startGateway({
      env: { PORTCULLIS_STATUS_LISTEN: `127.0.0.1:${statusOff}`, PORTCULLIS_DNS_RESOLVER: dns.resolver },
      config: { upstreams: upstreams.slice(0, 1), plugins: [{ name: 'prometheus' }] },
    });
    try {
      const all = (await scrape(`http://127.0.0.1:${statusOff}`)).samples.filter((x) => x.name === 'kong_upstream_target_health');
      assert.deepEqual(all, []);
    } finally {
      await off.close();
      await dns.close();
      await echo.close();
    }
  });
});
