/**
 * Kong's tracing node settings with the opentelemetry plugin: PORTCULLIS_TRACING_INSTRUMENTATIONS
 * (tracing_instrumentations) decides which spans reach the OTLP receiver — the root `kong` span
 * always, as in Kong, and only the listed kinds under it; `off` exports nothing but still
 * propagates the trace upstream — and PORTCULLIS_TRACING_SAMPLING_RATE (tracing_sampling_rate) is
 * what an opentelemetry instance with `sampling_rate` unset samples. Bad values stop the start
 * with an error naming the setting.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { z } from 'zod';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { startBadIdp, type BadIdp } from './helpers/idp.ts';
import { waitFor } from './helpers/process.ts';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './helpers/otlp.ts';
import { definePlugin } from '../src/plugins/sdk.ts';
import { readSettings, SettingsError } from '../src/kernel/index.ts';

/** A global plugin that runs after opentelemetry (priority 5 < 14) in rewrite, access and response. */
const lateProbe = definePlugin({
  name: 'late-probe',
  version: '1.0.0',
  priority: 5,
  schema: z.strictObject({}),
  create() {
    return {
      rewrite(ctx) { ctx.upstream.setHeader('x-late-rewrite', '1'); },
      access(ctx) { ctx.upstream.setHeader('x-late-access', '1'); },
      response(ctx) { ctx.response.setHeader('x-late-response', '1'); },
    };
  },
});

/** A global rewrite handler that runs before opentelemetry's (priority 20000 > 14): before the trace starts. */
const earlyProbe = definePlugin({
  name: 'early-probe',
  version: '1.0.0',
  priority: 20000,
  schema: z.strictObject({}),
  create() {
    return { rewrite(ctx) { ctx.upstream.setHeader('x-early-rewrite', '1'); } };
  },
});

const parentId = '00f067aa0ba902b7';
let traceCounter = 0;
/** A fresh sampled trace id per request, so each test reads only its own spans. */
const nextTraceId = (): string => `4bf92f3577b34da6a3ce929d${(++traceCounter).toString(16).padStart(8, '0')}`;

interface Setup {
  echo: EchoServer;
  idp: BadIdp;
  receiver: OtlpReceiver;
  gw: TestGateway;
  close(): Promise<void>;
}

async function setup(env: Record<string, string>, otel: Record<string, unknown> = { sampling_rate: 1 }): Promise<Setup> {
  const echo = await startEcho();
  const idp = await startBadIdp();
  const receiver = await startOtlpReceiver();
  const gw = await startGateway({
    env,
    plugins: [lateProbe, earlyProbe],
    config: {
      services: [{
        name: 's', url: echo.url,
        routes: [
          { name: 'open', paths: ['/open'] },
          { name: 'auth', paths: ['/auth'], plugins: [{ name: 'openid-connect', config: { issuer: idp.issuer, client_id: ['kong'], client_secret: ['kong-secret'], auth_methods: ['bearer'], audience_required: ['api'] } }] },
        ],
      }],
      plugins: [
        { name: 'opentelemetry', config: { traces_endpoint: `${receiver.url}/v1/traces`, queue: { max_coalescing_delay: 0.05 }, http_response_header_for_traceid: 'X-Trace-Id', ...otel } },
        { name: 'correlation-id', config: {} },
        { name: 'late-probe', config: {} },
        { name: 'early-probe', config: {} },
      ],
    },
  });
  return {
    echo, idp, receiver, gw,
    async close() {
      await gw.close();
      await receiver.close();
      await idp.close();
      await echo.close();
    },
  };
}

/** One authenticated request under a fresh sampled traceparent; the spans of its trace once the root arrived. */
async function tracedRequest(s: Setup): Promise<{ root: ReceivedSpan; spans: ReceivedSpan[]; upstream: Record<string, string> }> {
  const traceId = nextTraceId();
  const token = await s.idp.sign({ aud: 'api', sub: 'alice' });
  const r = await fetch(`${s.gw.proxyUrl}/auth/x`, { headers: { authorization: `Bearer ${token}`, traceparent: `00-${traceId}-${parentId}-01` } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-late-response'), '1', 'the response handler ran');
  const upstream = ((await r.json()) as { headers: Record<string, string> }).headers;
  assert.equal(upstream['x-early-rewrite'], '1');
  assert.equal(upstream['x-late-rewrite'], '1');
  assert.equal(upstream['x-late-access'], '1');
  await waitFor(() => s.receiver.spans.some((x) => x.traceId === traceId && x.name === 'kong'), 15_000, 'the root span');
  // The children end before the root, so they are in the same batch or an earlier one; wait one more flush.
  await new Promise((res) => setTimeout(res, 300));
  const spans = s.receiver.spans.filter((x) => x.traceId === traceId);
  const root = spans.find((x) => x.name === 'kong')!;
  assert.equal(root.parentSpanId, parentId);
  for (const x of spans) if (x !== root) assert.equal(x.parentSpanId, root.spanId, `${x.name} is a child of the root span`);
  return { root, spans, upstream };
}

const namesOf = (spans: ReceivedSpan[]): string[] => [...new Set(spans.map((x) => x.name))].sort();

describe('PORTCULLIS_TRACING_INSTRUMENTATIONS (Kong\'s tracing_instrumentations)', () => {
  test('unset: every span kind (our default, all)', async () => {
    const s = await setup({});
    try {
      const { spans } = await tracedRequest(s);
      const names = namesOf(spans);
      for (const n of ['kong', 'kong.router', 'kong.rewrite.plugin.late-probe', 'kong.access.plugin.openid-connect', 'kong.access.plugin.late-probe',
        'kong.access.plugin.correlation-id', 'kong.header_filter.plugin.correlation-id', 'kong.header_filter.plugin.late-probe', 'kong.balancer', 'kong.internal.request']) {
        assert.ok(names.includes(n), `${n} in ${names.join(', ')}`);
      }
      // Its rewrite handler ran before opentelemetry's started the trace.
      assert.ok(!names.includes('kong.rewrite.plugin.early-probe'), names.join(', '));
      assert.ok(!names.includes('kong.rewrite.plugin.opentelemetry'), names.join(', '));
    } finally {
      await s.close();
    }
  });

  test('request: only the root kong span arrives', async () => {
    const s = await setup({ PORTCULLIS_TRACING_INSTRUMENTATIONS: 'request' });
    try {
      const { root, spans, upstream } = await tracedRequest(s);
      assert.deepEqual(spans.map((x) => x.name), ['kong']);
      assert.equal(root.attributes['http.status_code'], 200);
      assert.match(upstream.traceparent, new RegExp(`^00-${root.traceId}-${root.spanId}-01$`), 'the upstream\'s parent is the root span');
    } finally {
      await s.close();
    }
  });

  test('router,balancer without request: the root kong span is still recorded (as Kong), with only those children', async () => {
    const s = await setup({ PORTCULLIS_TRACING_INSTRUMENTATIONS: 'router, balancer' });
    try {
      const { spans } = await tracedRequest(s);
      assert.deepEqual(namesOf(spans), ['kong', 'kong.balancer', 'kong.router']);
      assert.equal(spans.find((x) => x.name === 'kong.balancer')!.kind, 3, 'client span');
    } finally {
      await s.close();
    }
  });

  test('plugin_rewrite,plugin_header_filter,http_client: rewrite and response handlers after the trace starts, the IdP calls, nothing else', async () => {
    const s = await setup({ PORTCULLIS_TRACING_INSTRUMENTATIONS: 'plugin_rewrite,plugin_header_filter,http_client' });
    try {
      const { spans } = await tracedRequest(s);
      assert.deepEqual(namesOf(spans), ['kong', 'kong.header_filter.plugin.correlation-id', 'kong.header_filter.plugin.late-probe', 'kong.internal.request', 'kong.rewrite.plugin.late-probe']);
      const idp = spans.filter((x) => x.name === 'kong.internal.request').map((x) => x.attributes['portcullis.idp.endpoint']);
      assert.ok(idp.includes('discovery') && idp.includes('jwks'), idp.join(','));
    } finally {
      await s.close();
    }
  });

  test('plugin_access without http_client: access spans, no IdP call span', async () => {
    const s = await setup({ PORTCULLIS_TRACING_INSTRUMENTATIONS: 'plugin_access' });
    try {
      const { spans } = await tracedRequest(s);
      assert.deepEqual(namesOf(spans), ['kong', 'kong.access.plugin.correlation-id', 'kong.access.plugin.late-probe', 'kong.access.plugin.openid-connect']);
    } finally {
      await s.close();
    }
  });

  test('off: no span is exported, but the upstream still gets a traceparent (the incoming trace id and flags, or a new unsampled trace)', async () => {
    const s = await setup({ PORTCULLIS_TRACING_INSTRUMENTATIONS: 'off' });
    try {
      const fresh = await fetch(`${s.gw.proxyUrl}/open/x`);
      assert.equal(fresh.status, 200);
      const freshUp = ((await fresh.json()) as { headers: Record<string, string> }).headers;
      const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-00$/.exec(freshUp.traceparent ?? '');
      assert.ok(m, `a new, unsampled trace: ${freshUp.traceparent}`);
      assert.equal(fresh.headers.get('x-trace-id'), m[1], 'http_response_header_for_traceid still answers the trace id');

      const traceId = nextTraceId();
      const carried = await fetch(`${s.gw.proxyUrl}/open/x`, { headers: { traceparent: `00-${traceId}-${parentId}-01` } });
      const carriedUp = ((await carried.json()) as { headers: Record<string, string> }).headers;
      const c = new RegExp(`^00-${traceId}-([0-9a-f]{16})-01$`).exec(carriedUp.traceparent ?? '');
      assert.ok(c, `the extracted parent's trace id and sampled flag: ${carriedUp.traceparent}`);
      assert.notEqual(c[1], parentId, 'with a span id of the gateway\'s own');
      assert.equal(carried.headers.get('x-trace-id'), traceId);

      for (let i = 0; i < 3; i++) assert.equal((await fetch(`${s.gw.proxyUrl}/open/x`)).status, 200);
      // Any span would be exported after 50 ms (max_coalescing_delay); give it well over that.
      await new Promise((res) => setTimeout(res, 800));
      assert.deepEqual(s.receiver.spans, []);
      assert.equal(s.receiver.contentTypes.length, 0, 'no export request at all');
    } finally {
      await s.close();
    }
  });
});

test('off with a global and a route-scoped instance: the request is propagated once, by the global one (as a started trace would be)', async () => {
  const echo = await startEcho();
  const receiver = await startOtlpReceiver();
  const otel = (inject: string[]) => ({ name: 'opentelemetry', config: { traces_endpoint: `${receiver.url}/v1/traces`, sampling_rate: 1, http_response_header_for_traceid: 'x-trace-id', propagation: { inject } } });
  const gw = await startGateway({
    env: { PORTCULLIS_TRACING_INSTRUMENTATIONS: 'off' },
    config: { services: [{ name: 's', url: echo.url, routes: [{ name: 'r', paths: ['/r'], plugins: [otel(['b3'])] }] }], plugins: [otel(['w3c'])] },
  });
  try {
    const r = await fetch(`${gw.proxyUrl}/r/x`);
    const h = ((await r.json()) as { headers: Record<string, string> }).headers;
    assert.match(h.traceparent ?? '', new RegExp(`^00-${r.headers.get('x-trace-id')}-[0-9a-f]{16}-00$`));
    assert.equal(h['x-b3-traceid'], undefined, 'the route-scoped instance did not propagate a second trace');
  } finally {
    await gw.close();
    await receiver.close();
    await echo.close();
  }
});

test('an unsampled request under a global and a route-scoped instance: propagated once, by the global one, and no span recorded by either', async () => {
  const echo = await startEcho();
  const receiver = await startOtlpReceiver();
  // The global instance samples nothing; the route-scoped one would sample everything it starts.
  const otel = (inject: string[], rate: number) => ({ name: 'opentelemetry', config: { traces_endpoint: `${receiver.url}/v1/traces`, sampling_rate: rate, http_response_header_for_traceid: 'x-trace-id', propagation: { inject }, queue: { max_coalescing_delay: 0.05 } } });
  const gw = await startGateway({
    config: { services: [{ name: 's', url: echo.url, routes: [{ name: 'r', paths: ['/r'], plugins: [otel(['b3'], 1)] }] }], plugins: [otel(['w3c'], 0)] },
  });
  try {
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${gw.proxyUrl}/r/x`);
      const h = ((await r.json()) as { headers: Record<string, string> }).headers;
      assert.match(h.traceparent ?? '', new RegExp(`^00-${r.headers.get('x-trace-id')}-[0-9a-f]{16}-00$`), 'a new unsampled trace, propagated by the global instance');
      assert.equal(h['x-b3-traceid'], undefined, 'the route-scoped instance did not start a second trace');
    }
    await new Promise((res) => setTimeout(res, 400));
    assert.deepEqual(receiver.spans, [], 'nothing recorded');
  } finally {
    await gw.close();
    await receiver.close();
    await echo.close();
  }
});

describe('PORTCULLIS_TRACING_SAMPLING_RATE (Kong\'s tracing_sampling_rate): what sampling_rate null uses', () => {
  /** The trace ids of the requests that were recorded (sampled flag set in what went upstream). */
  const untraced = async (s: Setup, n: number): Promise<string[]> => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await fetch(`${s.gw.proxyUrl}/open/x`);
      assert.equal(r.status, 200);
      const up = ((await r.json()) as { headers: Record<string, string> }).headers.traceparent ?? '';
      // Every request is propagated (Kong); only a sampled one carries flags 01.
      assert.match(up, /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
      assert.equal(r.headers.get('x-trace-id'), up.split('-')[1]);
      if (up.endsWith('-01')) ids.push(up.split('-')[1]);
    }
    return ids;
  };

  test('=1 with sampling_rate unset: every request is traced', async () => {
    const s = await setup({ PORTCULLIS_TRACING_SAMPLING_RATE: '1', PORTCULLIS_TRACING_INSTRUMENTATIONS: 'request' }, {});
    try {
      const ids = await untraced(s, 8);
      assert.equal(ids.length, 8, 'each response names its trace');
      const roots = (): Set<string> => new Set(s.receiver.spans.filter((x) => x.name === 'kong' && ids.includes(x.traceId)).map((x) => x.traceId));
      await waitFor(() => roots().size === 8, 15_000, 'eight traces');
    } finally {
      await s.close();
    }
  });

  test('=0 with sampling_rate unset: none is (a sampled parent is still followed); a plugin\'s own sampling_rate wins', async () => {
    const s = await setup({ PORTCULLIS_TRACING_SAMPLING_RATE: '0' }, {});
    try {
      assert.deepEqual(await untraced(s, 8), [], 'no request traced');
      const traceId = nextTraceId();
      await (await fetch(`${s.gw.proxyUrl}/open/x`, { headers: { traceparent: `00-${traceId}-${parentId}-01` } })).body?.cancel();
      await waitFor(() => s.receiver.spans.some((x) => x.name === 'kong'), 15_000, 'the parent-sampled trace');
      await new Promise((res) => setTimeout(res, 300));
      assert.deepEqual([...new Set(s.receiver.spans.map((x) => x.traceId))], [traceId]);
    } finally {
      await s.close();
    }
    const pinned = await setup({ PORTCULLIS_TRACING_SAMPLING_RATE: '0', PORTCULLIS_TRACING_INSTRUMENTATIONS: 'request' }, { sampling_rate: 1 });
    try {
      assert.equal((await untraced(pinned, 3)).length, 3, 'sampling_rate 1 in the plugin config overrides the node setting');
    } finally {
      await pinned.close();
    }
  });
});

describe('bad tracing settings are refused at start, naming the setting', () => {
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ PORTCULLIS_TRACING_INSTRUMENTATIONS: 'off,router' }, /PORTCULLIS_TRACING_INSTRUMENTATIONS: "off" cannot be combined/],
    [{ PORTCULLIS_TRACING_INSTRUMENTATIONS: 'request, off' }, /PORTCULLIS_TRACING_INSTRUMENTATIONS: "off" cannot be combined/],
    [{ PORTCULLIS_TRACING_INSTRUMENTATIONS: 'router,routr' }, /PORTCULLIS_TRACING_INSTRUMENTATIONS: 'routr' is not one of/],
    [{ PORTCULLIS_TRACING_INSTRUMENTATIONS: 'db_query' }, /PORTCULLIS_TRACING_INSTRUMENTATIONS: 'db_query' is not available: .*database/],
    [{ PORTCULLIS_TRACING_INSTRUMENTATIONS: 'router,dns_query' }, /PORTCULLIS_TRACING_INSTRUMENTATIONS: 'dns_query' is not available: .*resolved in the background/],
    [{ PORTCULLIS_TRACING_SAMPLING_RATE: '1.5' }, /PORTCULLIS_TRACING_SAMPLING_RATE: '1.5' must be a number from 0 to 1/],
    [{ PORTCULLIS_TRACING_SAMPLING_RATE: '-0.1' }, /PORTCULLIS_TRACING_SAMPLING_RATE/],
    [{ PORTCULLIS_TRACING_SAMPLING_RATE: 'half' }, /PORTCULLIS_TRACING_SAMPLING_RATE: 'half'/],
    [{ PORTCULLIS_TRACING_SAMPLING_RATE: '0x1' }, /PORTCULLIS_TRACING_SAMPLING_RATE/],
  ];

  test('readSettings throws a SettingsError for each bad value', () => {
    for (const [env, message] of bad) {
      assert.throws(() => readSettings({}, env), (err: unknown) => err instanceof SettingsError && message.test(err.message), JSON.stringify(env));
    }
  });

  test('good values: the instrumentation flags and the sampling rate', () => {
    const t = (env: Record<string, string>) => readSettings({}, env).tracing;
    assert.deepEqual(t({}), { off: false, samplingRate: 0.01, instrumentations: { router: true, balancer: true, pluginRewrite: true, pluginAccess: true, pluginHeaderFilter: true, httpClient: true } });
    assert.deepEqual(t({ PORTCULLIS_TRACING_INSTRUMENTATIONS: ' Router ,http_client', PORTCULLIS_TRACING_SAMPLING_RATE: '0.25' }), { off: false, samplingRate: 0.25, instrumentations: { router: true, balancer: false, pluginRewrite: false, pluginAccess: false, pluginHeaderFilter: false, httpClient: true } });
    assert.equal(t({ PORTCULLIS_TRACING_INSTRUMENTATIONS: 'off' }).off, true);
    assert.equal(t({ PORTCULLIS_TRACING_INSTRUMENTATIONS: 'request,all' }).instrumentations.balancer, true);
    assert.equal(t({ PORTCULLIS_TRACING_SAMPLING_RATE: '1' }).samplingRate, 1);
    assert.equal(t({ PORTCULLIS_TRACING_SAMPLING_RATE: '0' }).samplingRate, 0);
  });

  test('a gateway does not start with one; `portcullis start` exits 2 with the message', async () => {
    await assert.rejects(startGateway({ env: { PORTCULLIS_TRACING_INSTRUMENTATIONS: 'off,request' } }), /PORTCULLIS_TRACING_INSTRUMENTATIONS/);
    const bin = new URL('../bin/portcullis.js', import.meta.url).pathname;
    const r = spawnSync(process.execPath, [bin, 'start', '--admin-listen', 'off', '--proxy-listen', '127.0.0.1:0'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, PORTCULLIS_TRACING_INSTRUMENTATIONS: 'dns_query' } });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /PORTCULLIS_TRACING_INSTRUMENTATIONS: 'dns_query' is not available/);
  });
});
