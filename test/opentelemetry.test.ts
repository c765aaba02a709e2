/**
 * opentelemetry plugin: a trace reaches an OTLP/HTTP receiver (protobuf) with the request's root
 * span as a child of the incoming `traceparent`, and the router, plugin access, upstream and IdP
 * spans linked under it by one trace id; propagation upstream; malformed/oversized trace
 * headers; an unreachable collector; sampling; refused fields. Also the openid-connect metrics
 * (portcullis_oidc_*): a cached bearer, an expired token, an IdP outage.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { startBadIdp, type BadIdp } from './helpers/idp.ts';
import { freePort, waitFor } from './helpers/process.ts';
import { startOtlpReceiver, type OtlpReceiver } from './helpers/otlp.ts';
import { parseExposition } from './helpers/prometheus.ts';
import { ROOT_CONTEXT, defaultTextMapSetter, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

const w3c = new W3CTraceContextPropagator();

const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const parentId = '00f067aa0ba902b7';

function oidcConfig(issuer: string) {
  return { issuer, client_id: ['kong'], client_secret: ['kong-secret'], auth_methods: ['bearer'], audience_required: ['api'] };
}

describe('opentelemetry', () => {
  let echo: EchoServer;
  let idp: BadIdp;
  let receiver: OtlpReceiver;
  let gw: TestGateway;
  before(async () => {
    echo = await startEcho();
    idp = await startBadIdp();
    receiver = await startOtlpReceiver();
    gw = await startGateway({
      config: {
        services: [{
          name: 's', url: echo.url,
          routes: [
            { name: 'open', paths: ['/open'] },
            { name: 'auth', paths: ['/auth'], plugins: [{ name: 'openid-connect', config: oidcConfig(idp.issuer) }] },
          ],
        }],
        plugins: [
          { name: 'opentelemetry', config: { traces_endpoint: `${receiver.url}/v1/traces`, sampling_rate: 1, queue: { max_coalescing_delay: 0.1 }, http_response_header_for_traceid: 'X-Trace-Id', resource_attributes: { 'deployment.environment': 'test' } } },
          { name: 'prometheus', config: { status_code_metrics: true } },
        ],
      },
    });
  });
  after(async () => {
    await gw.close();
    await receiver.close();
    await idp.close();
    await echo.close();
  });

  test('request, router, plugin, upstream and IdP spans under the incoming traceparent', async () => {
    receiver.spans = [];
    const token = await idp.sign({ aud: 'api', sub: 'alice' });
    const sentAt = BigInt(Date.now()) * 1_000_000n;
    const r = await fetch(`${gw.proxyUrl}/auth/x`, { headers: { authorization: `Bearer ${token}`, traceparent: `00-${traceId}-${parentId}-01`, tracestate: 'vendor=abc' } });
    const answeredAt = BigInt(Date.now()) * 1_000_000n;
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-trace-id'), traceId);
    const upstreamSaw = ((await r.json()) as { headers: Record<string, string> }).headers.traceparent;
    assert.match(upstreamSaw, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    await waitFor(() => receiver.spans.some((s) => s.name === 'kong'), 15_000, 'the trace');
    await new Promise((res) => setTimeout(res, 300));
    assert.ok(receiver.contentTypes.every((t) => t === 'application/x-protobuf'));
    const spans = receiver.spans.filter((s) => s.traceId === traceId);
    const root = spans.find((s) => s.name === 'kong')!;
    assert.ok(root, 'root span');
    assert.equal(root.parentSpanId, parentId, 'the incoming traceparent is the parent');
    assert.equal(root.kind, 2, 'server span');
    assert.equal(root.attributes['http.method'], 'GET');
    assert.equal(root.attributes['http.status_code'], 200);
    assert.equal(root.attributes['http.route'], '/auth', 'the matched route, set when the request ends');
    assert.equal(root.attributes['kong.request.id'], r.headers.get('x-kong-request-id'));
    assert.equal(root.resource['service.name'], 'kong');
    assert.equal(root.resource['deployment.environment'], 'test');
    assert.ok(upstreamSaw.includes(root.spanId), 'the upstream sees the root span as its parent');
    const names = spans.map((s) => s.name);
    for (const n of ['kong.router', 'kong.access.plugin.openid-connect', 'kong.balancer', 'kong.internal.request']) assert.ok(names.includes(n), `${n} in ${names.join(', ')}`);
    for (const s of spans) if (s !== root) assert.equal(s.parentSpanId, root.spanId, `${s.name} is a child of the request span`);
    // Real times: the root span covers the request as the client saw it (1 ms of clock slack),
    // every child lies inside it, and none ends before it starts.
    assert.ok(root.startNs >= sentAt - 1_000_000n && root.endNs <= answeredAt + 1_000_000n, `root ${root.startNs}..${root.endNs} within ${sentAt}..${answeredAt}`);
    for (const s of spans) {
      assert.ok(s.endNs >= s.startNs, `${s.name} ends after it starts`);
      assert.ok(s.startNs >= root.startNs && s.endNs <= root.endNs, `${s.name} within the request span`);
      assert.equal(s.status, 0, `${s.name}: status unset on success`);
    }
    assert.equal(root.traceState, 'vendor=abc', 'the incoming tracestate stays with the trace');
    assert.equal(new Set(spans.map((s) => s.spanId)).size, spans.length, 'every span has its own id');
    const idpSpans = spans.filter((s) => s.name === 'kong.internal.request').map((s) => s.attributes['portcullis.idp.endpoint']);
    assert.ok(idpSpans.includes('discovery') && idpSpans.includes('jwks'), idpSpans.join(','));
    // Attributes from the call's start and from its answer, on one span.
    for (const s of spans.filter((x) => x.name === 'kong.internal.request')) {
      assert.equal(s.attributes['http.method'], 'GET');
      assert.equal(s.attributes['http.status_code'], 200);
      assert.equal(s.kind, 3, 'client span');
    }
    assert.doesNotMatch(JSON.stringify(receiver.spans, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)), new RegExp(token.slice(-20)));
  });

  test('a malformed or oversized traceparent starts a new trace; the request is served', async () => {
    receiver.spans = [];
    for (const bad of ['00-zzzz-00f067aa0ba902b7-01', `00-${traceId}-${parentId}-01${'x'.repeat(600)}`, `00-${'0'.repeat(32)}-${parentId}-01`]) {
      const r = await fetch(`${gw.proxyUrl}/open/x`, { headers: { traceparent: bad } });
      assert.equal(r.status, 200);
      const id = r.headers.get('x-trace-id');
      assert.match(id ?? '', /^[0-9a-f]{32}$/);
      assert.notEqual(id, traceId);
    }
    await waitFor(() => receiver.spans.filter((s) => s.name === 'kong').length === 3, 15_000, 'three traces');
    for (const root of receiver.spans.filter((s) => s.name === 'kong')) assert.equal(root.parentSpanId, '');
  });

  test('a sampled new trace: the upstream gets the root span as parent with the sampled flag, as the W3C propagator writes it', async () => {
    receiver.spans = [];
    const r = await fetch(`${gw.proxyUrl}/open/fresh`);
    const sent = ((await r.json()) as { headers: Record<string, string> }).headers.traceparent;
    const id = r.headers.get('x-trace-id') ?? '';
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(sent ?? '');
    assert.ok(m, sent);
    assert.equal(m[1], id);
    const carrier: Record<string, string> = {};
    w3c.inject(trace.setSpanContext(ROOT_CONTEXT, { traceId: m[1], spanId: m[2], traceFlags: 1 }), carrier, defaultTextMapSetter);
    assert.deepEqual(carrier, { traceparent: sent });
    await waitFor(() => receiver.spans.some((s) => s.name === 'kong' && s.traceId === id), 15_000, 'the trace');
    const root = receiver.spans.find((s) => s.name === 'kong' && s.traceId === id)!;
    assert.equal(root.spanId, m[2], 'the upstream\'s parent is the request span');
    assert.equal(root.parentSpanId, '');
  });

  test('b3 headers are extracted and, with preserve, injected back as b3', async () => {
    const r = await fetch(`${gw.proxyUrl}/open/x`, { headers: { 'x-b3-traceid': traceId, 'x-b3-spanid': parentId, 'x-b3-sampled': '1' } });
    const h = ((await r.json()) as { headers: Record<string, string> }).headers;
    assert.equal(h['x-b3-traceid'], traceId);
    assert.notEqual(h['x-b3-spanid'], parentId);
    assert.equal(h.traceparent, undefined);
  });

  test('fields without an equivalent are refused with their name; Kong\'s deprecated aliases are rewritten', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ traces_endpoint: receiver.url, logs_endpoint: receiver.url }, /logs_endpoint/],
      [{ traces_endpoint: receiver.url, propagation: { extract: ['datadog'] } }, /datadog/],
      [{ traces_endpoint: receiver.url, header_type: 'jaeger' }, /header_type/],
      [{ traces_endpoint: receiver.url, read_timeout: 10 }, /read_timeout/],
      [{ traces_endpoint: receiver.url, queue: { max_bytes: 1000 } }, /max_bytes/],
      [{ traces_endpoint: receiver.url, queue: { concurrency_limit: 2 } }, /concurrency_limit/],
      [{ traces_endpoint: receiver.url, sampling_rate: 2 }, /sampling_rate/],
      [{}, /traces_endpoint/],
    ];
    for (const [config, field] of cases) {
      const r = await fetch(`${gw.adminUrl}/schemas/plugins/validate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'opentelemetry', config }) });
      assert.equal(r.status, 400, JSON.stringify(config));
      assert.match(await r.text(), field);
    }
    const ok = await fetch(`${gw.adminUrl}/schemas/plugins/validate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'opentelemetry', config: { endpoint: receiver.url, batch_span_count: 10 } }) });
    assert.equal(ok.status, 200, await ok.text());
  });

  test('Kong\'s validation rules: header names, extractors, non-empty attributes, no queue.name; header_type formats accepted', async () => {
    const validate = (config: Record<string, unknown>) => fetch(`${gw.adminUrl}/schemas/plugins/validate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'opentelemetry', config: { traces_endpoint: receiver.url, ...config } }) });
    const refused: Array<[Record<string, unknown>, RegExp]> = [
      [{ headers: { 'X.Token': 'a' } }, /bad header name 'X\.Token', allowed characters are A-Z, a-z, 0-9, '_', and '-'/],
      [{ propagation: { clear: ['x:y'] } }, /bad header name 'x:y'/],
      [{ propagation: { extract: ['b3-single'] } }, /extract/],
      [{ resource_attributes: { 'service.name': '' } }, /required field missing/],
      [{ queue: { name: 'shared' } }, /name/],
      [{ send_timeout: 2 ** 31 }, /send_timeout/],
      [{ header_type: 'datadog' }, /header_type/],
      [{ header_type: 'nope' }, /header_type/],
    ];
    for (const [config, message] of refused) {
      const r = await validate(config);
      const text = await r.text();
      assert.equal(r.status, 400, JSON.stringify(config));
      assert.match(text, message, JSON.stringify(config));
    }
    for (const config of [{ header_type: 'ignore' }, { header_type: 'b3-single' }, { headers: { 'X-Api_Key': 'k' } }]) {
      const r = await validate(config);
      assert.equal(r.status, 200, `${JSON.stringify(config)}: ${await r.text()}`);
    }
  });

  test('openid-connect metrics: cached bearer, expired token, IdP outage', async () => {
    const metrics = async () => parseExposition(await (await fetch(`${gw.adminUrl}/metrics`)).text());
    const token = await idp.sign({ aud: 'api', sub: 'bob' });
    const before0 = await metrics();
    for (let i = 0; i < 3; i++) assert.equal((await fetch(`${gw.proxyUrl}/auth/x`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
    const m1 = await metrics();
    const hits = (m: typeof m1) => m.value('portcullis_oidc_cache_lookups_total', { cache: 'verified_token', result: 'hit' });
    const misses = (m: typeof m1) => m.value('portcullis_oidc_cache_lookups_total', { cache: 'verified_token', result: 'miss' });
    assert.equal(misses(m1) - misses(before0), 1, 'first use: a miss');
    assert.equal(hits(m1) - hits(before0), 2, 'then hits');
    assert.ok(m1.value('portcullis_oidc_idp_requests_total', { endpoint: 'discovery', outcome: 'success' }) >= 1);
    assert.ok(m1.value('portcullis_oidc_idp_requests_total', { endpoint: 'jwks', outcome: 'success' }) >= 1);
    assert.ok(m1.value('portcullis_oidc_idp_latency_ms_count', { endpoint: 'jwks' }) >= 1);

    const expired = await idp.sign({ aud: 'api', sub: 'bob', iat: 1000, exp: 2000 });
    assert.equal((await fetch(`${gw.proxyUrl}/auth/x`, { headers: { authorization: `Bearer ${expired}` } })).status, 401);
    const wrongIss = await idp.sign({ aud: 'api', sub: 'bob', iss: 'https://somebody-else.example' });
    assert.equal((await fetch(`${gw.proxyUrl}/auth/x`, { headers: { authorization: `Bearer ${wrongIss}` } })).status, 401);
    assert.equal((await fetch(`${gw.proxyUrl}/auth/x`)).status, 401);
    const m2 = await metrics();
    const fail = (reason: string) => m2.value('portcullis_oidc_auth_failures_total', { reason }) - m1.value('portcullis_oidc_auth_failures_total', { reason });
    assert.equal(fail('expired'), 1);
    assert.equal(fail('issuer'), 1);
    assert.equal(fail('missing'), 1);

    // IdP outage: a token signed by a key the gateway has not seen makes it refetch the JWKS, which fails.
    idp.setJwksFailure('http500');
    try {
      const other = await idp.sign({ aud: 'api', sub: 'bob' }, { kid: 'unknown-kid' });
      await fetch(`${gw.proxyUrl}/auth/x`, { headers: { authorization: `Bearer ${other}` } });
      const m3 = await metrics();
      assert.equal(m3.value('portcullis_oidc_jwks_refreshes_total', { trigger: 'unknown_kid' }) - m2.value('portcullis_oidc_jwks_refreshes_total', { trigger: 'unknown_kid' }), 1);
      assert.ok(m3.value('portcullis_oidc_idp_requests_total', { endpoint: 'jwks', outcome: 'error' }) >= 1);
      // Labels are bounded: nothing per user, token or path.
      for (const s of m3.samples.filter((x) => x.name.startsWith('portcullis_oidc_'))) {
        for (const k of Object.keys(s.labels)) assert.ok(['endpoint', 'outcome', 'cache', 'result', 'reason', 'trigger', 'kind', 'le'].includes(k), k);
      }
    } finally {
      idp.setJwksFailure(null);
    }
  });
});

describe('opentelemetry: collector trouble and sampling', () => {
  test('an OTLP endpoint that refuses connections: requests unaffected, the failure logged once', async () => {
    const echo = await startEcho();
    const dead = await freePort();
    const gw = await startGateway({
      config: {
        services: [{ name: 's', url: echo.url, routes: [{ name: 'r', paths: ['/r'] }] }],
        plugins: [{ name: 'opentelemetry', config: { traces_endpoint: `http://127.0.0.1:${dead}/v1/traces`, sampling_rate: 1, queue: { max_coalescing_delay: 0.05, max_batch_size: 1 } } }],
      },
    });
    try {
      for (let i = 0; i < 20; i++) assert.equal((await fetch(`${gw.proxyUrl}/r/x`)).status, 200);
      await waitFor(() => gw.logs.some((l) => String(l.msg).startsWith('opentelemetry export failed')), 20_000, 'the export failure');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(gw.logs.filter((l) => String(l.msg).startsWith('opentelemetry export failed')).length, 1);
    } finally {
      await gw.close();
      await echo.close();
    }
  });

  test('sampling_rate 0: no spans, yet every request is propagated unsampled (as Kong); a sampled parent is still followed', async () => {
    const echo = await startEcho();
    const receiver = await startOtlpReceiver();
    const gw = await startGateway({
      config: {
        services: [{ name: 's', url: echo.url, routes: [{ name: 'r', paths: ['/r'] }] }],
        plugins: [{ name: 'opentelemetry', config: { traces_endpoint: `${receiver.url}/v1/traces`, sampling_rate: 0, queue: { max_coalescing_delay: 0.05 } } }],
      },
    });
    try {
      const seen = new Set<string>();
      for (let i = 0; i < 5; i++) {
        const h = ((await (await fetch(`${gw.proxyUrl}/r/x`)).json()) as { headers: Record<string, string> }).headers;
        // A new trace id per request, the sampled flag off.
        const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-00$/.exec(h.traceparent ?? '');
        assert.ok(m, h.traceparent);
        seen.add(m[1]);
        // Exactly what the official W3C propagator writes for that trace and span id.
        const carrier: Record<string, string> = {};
        w3c.inject(trace.setSpanContext(ROOT_CONTEXT, { traceId: m[1], spanId: m[2], traceFlags: 0 }), carrier, defaultTextMapSetter);
        assert.deepEqual(carrier, { traceparent: h.traceparent });
      }
      assert.equal(seen.size, 5);
      // An unsampled incoming trace keeps its id and flag; the gateway's span id replaces the parent's.
      const unsampledParent = ((await (await fetch(`${gw.proxyUrl}/r/x`, { headers: { traceparent: `00-${traceId}-${parentId}-00` } })).json()) as { headers: Record<string, string> }).headers;
      assert.match(unsampledParent.traceparent ?? '', new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`));
      assert.notEqual(unsampledParent.traceparent.split('-')[2], parentId);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(receiver.spans.length, 0, 'nothing recorded');
      await fetch(`${gw.proxyUrl}/r/x`, { headers: { traceparent: `00-${traceId}-${parentId}-01` } });
      await waitFor(() => receiver.spans.some((s) => s.name === 'kong'), 15_000, 'the parent-sampled trace');
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual([...new Set(receiver.spans.map((s) => s.traceId))], [traceId]);
    } finally {
      await gw.close();
      await receiver.close();
      await echo.close();
    }
  });
});

describe('opentelemetry propagation.inject and propagation.default_format', () => {
  let echo: EchoServer;
  let receiver: OtlpReceiver;
  let gw: TestGateway;
  before(async () => {
    echo = await startEcho();
    receiver = await startOtlpReceiver();
    const otel = (propagation: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ name: 'opentelemetry', config: { traces_endpoint: `${receiver.url}/v1/traces`, sampling_rate: 1, propagation, ...extra } });
    gw = await startGateway({
      config: {
        services: [{
          name: 's', url: echo.url,
          routes: [
            // Kong: once propagation sets inject, an unset extract extracts nothing; w3c is listed.
            { name: 'single', paths: ['/single'], plugins: [otel({ extract: ['w3c'], inject: ['b3-single'] })] },
            { name: 'fallback', paths: ['/fallback'], plugins: [otel({ default_format: 'b3' })] },
            { name: 'cleared', paths: ['/cleared'], plugins: [otel({ clear: ['X-Internal-Trace'] })] },
            { name: 'legacy-ignore', paths: ['/legacy-ignore'], plugins: [otel({}, { header_type: 'ignore' })] },
            { name: 'legacy-b3', paths: ['/legacy-b3'], plugins: [otel({}, { header_type: 'b3' })] },
            { name: 'preserve', paths: ['/preserve'], plugins: [otel({})] },
          ],
        }],
      },
    });
  });
  after(async () => {
    await gw.close();
    await receiver.close();
    await echo.close();
  });

  const upstreamHeaders = async (path: string, headers: Record<string, string> = {}): Promise<Record<string, string>> => {
    const r = await fetch(`${gw.proxyUrl}${path}`, { headers });
    assert.equal(r.status, 200);
    return ((await r.json()) as { headers: Record<string, string> }).headers;
  };

  test('inject [b3-single]: the upstream gets the trace as a single b3 header; the w3c header is not rewritten', async () => {
    const h = await upstreamHeaders('/single/x', { traceparent: `00-${traceId}-${parentId}-01` });
    assert.match(h.b3 ?? '', new RegExp(`^${traceId}-[0-9a-f]{16}-1$`));
    assert.ok(!h.b3.includes(parentId), 'the gateway span, not the client\'s, is the parent');
    assert.equal(h.traceparent, `00-${traceId}-${parentId}-01`, 'only the listed format is injected');
    assert.equal(h['x-b3-traceid'], undefined);
  });

  test('default_format b3: with no incoming trace context, preserve injects multi-header b3, not w3c', async () => {
    const h = await upstreamHeaders('/fallback/x');
    assert.match(h['x-b3-traceid'] ?? '', /^[0-9a-f]{32}$/);
    assert.match(h['x-b3-spanid'] ?? '', /^[0-9a-f]{16}$/);
    assert.equal(h.traceparent, undefined);
    // With an incoming w3c context, preserve answers in the incoming format.
    const w3c = await upstreamHeaders('/fallback/x', { traceparent: `00-${traceId}-${parentId}-01` });
    assert.match(w3c.traceparent, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    assert.equal(w3c['x-b3-traceid'], undefined);
  });

  test('propagation.clear: the listed headers are removed before the request goes upstream', async () => {
    const h = await upstreamHeaders('/cleared/x', { 'x-internal-trace': 'abc', 'x-kept': 'yes' });
    assert.equal(h['x-internal-trace'], undefined);
    assert.equal(h['x-kept'], 'yes');
  });

  test('as Kong, propagation with only clear set extracts and injects nothing: the client\'s traceparent passes through untouched', async () => {
    const incoming = `00-${traceId}-${parentId}-01`;
    const h = await upstreamHeaders('/cleared/x', { traceparent: incoming });
    assert.equal(h.traceparent, incoming);
    assert.equal(h['x-b3-traceid'], undefined);
    assert.equal(h.b3, undefined);
  });

  test('header_type (deprecated) decides while propagation is unset: preserve extracts b3 before w3c, ignore extracts nothing, b3 also injects b3', async () => {
    const otherTrace = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
    const both = { traceparent: `00-${traceId}-${parentId}-01`, 'x-b3-traceid': otherTrace, 'x-b3-spanid': parentId, 'x-b3-sampled': '1' };
    // preserve (the default): b3 is extracted first, and answered in b3; traceparent is left alone.
    const p = await upstreamHeaders('/preserve/x', both);
    assert.equal(p['x-b3-traceid'], otherTrace);
    assert.notEqual(p['x-b3-spanid'], parentId);
    assert.equal(p.traceparent, both.traceparent);
    // ignore: the incoming context is not used; a new trace is injected in default_format (w3c).
    const i = await upstreamHeaders('/legacy-ignore/x', { traceparent: both.traceparent });
    assert.match(i.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    assert.ok(!i.traceparent.includes(traceId), 'a new trace, not the incoming one');
    // b3: the incoming w3c context is followed and injected back as w3c (preserve) and as b3.
    const b = await upstreamHeaders('/legacy-b3/x', { traceparent: both.traceparent });
    assert.match(b.traceparent, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    assert.equal(b['x-b3-traceid'], traceId);
  });
});

test('opentelemetry send_timeout: an OTLP receiver that never answers fails the export after send_timeout; requests are unaffected', async () => {
  const sockets = new Set<import('node:net').Socket>();
  const hanging = createServer((s) => { sockets.add(s); s.on('error', () => {}); });
  await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', () => r()));
  const port = (hanging.address() as import('node:net').AddressInfo).port;
  const echo = await startEcho();
  const gw = await startGateway({ config: { services: [{ name: 's', url: echo.url, routes: [{ name: 'r', paths: ['/t'] }] }], plugins: [
    { name: 'opentelemetry', config: { traces_endpoint: `http://127.0.0.1:${port}/v1/traces`, sampling_rate: 1, send_timeout: 300, queue: { max_coalescing_delay: 0.05, max_retry_time: 0.5 } } },
  ] } });
  try {
    const started = Date.now();
    assert.equal((await fetch(`${gw.proxyUrl}/t/x`)).status, 200);
    const failed = async () => parseExposition(await (await fetch(`${gw.adminUrl}/metrics`)).text()).value('portcullis_log_queue_dropped_total', { plugin: 'opentelemetry', reason: 'retries_exhausted' });
    await waitFor(async () => (await failed()) >= 1, 20_000, 'the export failed');
    // Bounded by send_timeout (300 ms) and queue.max_retry_time (0.5 s: Kong's queue retries,
    // then drops), far below the 5 s default timeout.
    assert.ok(Date.now() - started < 4_500, `export gave up after ${Date.now() - started} ms`);
  } finally {
    await gw.close();
    await echo.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => hanging.close(() => r()));
  }
});

test('opentelemetry queue.max_entries bounds the spans waiting for a slow collector (the rest are dropped)', async () => {
  const slow = await startOtlpReceiver({ delayMs: 400 });
  const echo = await startEcho();
  const otel = (max: number) => ({ name: 'opentelemetry', config: { traces_endpoint: `${slow.url}/v1/traces`, sampling_rate: 1, http_response_header_for_traceid: 'x-trace-id', queue: { max_entries: max, max_batch_size: Math.min(max, 200), max_coalescing_delay: 0.01 } } });
  const gw = await startGateway({ config: { services: [{ name: 's', url: echo.url, routes: [
    { name: 'small', paths: ['/small'], plugins: [otel(2)] },
    { name: 'big', paths: ['/big'], plugins: [otel(1000)] },
  ] }] } });
  try {
    const ids: Record<'small' | 'big', string[]> = { small: [], big: [] };
    for (let i = 0; i < 15; i++) {
      for (const route of ['small', 'big'] as const) {
        const r = await fetch(`${gw.proxyUrl}/${route}/x`);
        assert.equal(r.status, 200);
        await r.body?.cancel();
        ids[route].push(r.headers.get('x-trace-id')!);
      }
    }
    const roots = (list: string[]): number => slow.spans.filter((s) => s.name === 'kong' && list.includes(s.traceId)).length;
    await waitFor(() => roots(ids.big) === 15, 20_000, 'every trace of the large queue');
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(roots(ids.small) < 15, `max_entries 2: only some traces got through (${roots(ids.small)} of 15)`);
    assert.ok(roots(ids.small) >= 1, 'but some did');
  } finally {
    await gw.close();
    await echo.close();
    await slow.close();
  }
});

test('opentelemetry batch_span_count / batch_flush_delay: stored as Kong stores them (null by default), with Kong\'s warning when they take effect', async () => {
  const receiver = await startOtlpReceiver();
  const gw = await startGateway({ database: 'sqlite' });
  try {
    const post = async (config: Record<string, unknown>) => {
      const r = await fetch(`${gw.adminUrl}/plugins`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'opentelemetry', config: { traces_endpoint: `${receiver.url}/v1/traces`, ...config } }) });
      const text = await r.text();
      assert.equal(r.status, 201, text);
      return JSON.parse(text) as { id: string; config: Record<string, unknown> & { queue: Record<string, unknown> } };
    };
    const plain = await post({});
    assert.equal(plain.config.batch_span_count, null);
    assert.equal(plain.config.batch_flush_delay, null);
    assert.equal(plain.config.header_type, 'preserve');
    assert.equal('name' in plain.config.queue, false, 'Kong\'s queue record has no name');
    const got = (await (await fetch(`${gw.adminUrl}/plugins/${plain.id}`)).json()) as { config: Record<string, unknown> };
    assert.equal(got.config.batch_span_count, null);
    const schema = (await (await fetch(`${gw.adminUrl}/schemas/plugins/opentelemetry`)).json()) as { fields: Array<Record<string, { fields?: Array<Record<string, unknown>> }>> };
    const configFields = schema.fields.find((f) => 'config' in f)!.config.fields!.map((f) => Object.keys(f)[0]);
    assert.ok(configFields.includes('batch_span_count') && configFields.includes('batch_flush_delay'));
    assert.equal((await fetch(`${gw.adminUrl}/plugins/${plain.id}`, { method: 'DELETE' })).status, 204);
    const old = await post({ batch_span_count: 200, batch_flush_delay: 3 });
    assert.equal(old.config.batch_span_count, 200, 'stored, not rewritten');
    assert.equal(old.config.queue.max_coalescing_delay, 1, 'the old defaults change nothing (Kong ignores them)');
    assert.equal((await fetch(`${gw.adminUrl}/plugins/${old.id}`, { method: 'DELETE' })).status, 204);
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(!gw.logs.some((l) => /batch_(span_count|flush_delay)/.test(String(l.msg))), 'no warning at the old defaults');
    const set = await post({ batch_span_count: 10, batch_flush_delay: 2 });
    assert.equal(set.config.batch_span_count, 10);
    assert.equal(set.config.batch_flush_delay, 2);
    await waitFor(() => gw.logs.some((l) => /batch_span_count parameter is deprecated/.test(String(l.msg))), 10_000, 'the batch_span_count warning');
    await waitFor(() => gw.logs.some((l) => /batch_flush_delay parameter is deprecated/.test(String(l.msg))), 10_000, 'the batch_flush_delay warning');
  } finally {
    await gw.close();
    await receiver.close();
  }
});

test('opentelemetry uses Kong\'s queue: a batch the collector refuses is sent again with back-off and arrives; -1 concurrency sends at once', async () => {
  const receiver = await startOtlpReceiver({ failFirst: 2 });
  const echo = await startEcho();
  const gw = await startGateway({ config: { services: [{ name: 's', url: echo.url, routes: [
    { name: 'queued', paths: ['/queued'], plugins: [{ name: 'opentelemetry', config: { traces_endpoint: `${receiver.url}/v1/traces`, sampling_rate: 1, http_response_header_for_traceid: 'x-trace-id', queue: { max_coalescing_delay: 0.01, initial_retry_delay: 0.05, max_retry_delay: 0.2, max_retry_time: 30 } } }] },
    { name: 'direct', paths: ['/direct'], plugins: [{ name: 'opentelemetry', config: { traces_endpoint: `${receiver.url}/v1/traces`, sampling_rate: 1, http_response_header_for_traceid: 'x-trace-id', queue: { concurrency_limit: -1 } } }] },
  ] }] } });
  try {
    const r = await fetch(`${gw.proxyUrl}/queued/x`);
    assert.equal(r.status, 200);
    const id = r.headers.get('x-trace-id')!;
    // Two refused exports, then the third attempt is accepted: the trace is not lost.
    await waitFor(() => receiver.spans.some((s) => s.traceId === id && s.name === 'kong'), 15_000, 'the retried trace');
    const failed = parseExposition(await (await fetch(`${gw.adminUrl}/metrics`)).text()).value('portcullis_log_queue_dropped_total', { plugin: 'opentelemetry', reason: 'retries_exhausted' });
    assert.equal(failed, 0, 'nothing dropped');
    assert.ok(gw.logs.some((l) => l.msg === 'opentelemetry export failed; retrying'), 'the failure is logged');
    const d = await fetch(`${gw.proxyUrl}/direct/x`);
    const directId = d.headers.get('x-trace-id')!;
    await waitFor(() => receiver.spans.some((s) => s.traceId === directId), 15_000, 'the unqueued trace');
  } finally {
    await gw.close();
    await echo.close();
    await receiver.close();
  }
});
