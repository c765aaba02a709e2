import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LogContext } from './sdk.ts';
import { serializeLog, serializeLogJson } from './log-record.ts';

/** The fields of a finished request that the log record reads. */
function logContext(over: Record<string, unknown> = {}): LogContext {
  return {
    id: '2ef8c58f-4ec4-43b3-8603-626ad5c0f819',
    startedAt: 1796636223391,
    request: {
      method: 'GET', scheme: 'http', host: 'example.test', port: 8000, path: '/items', rawQuery: 'a=1&access_token=secret',
      headers: { host: 'example.test:8000', authorization: 'Bearer abc', 'x-many': ['1', '2'] }, clientIp: '127.0.0.1', tls: null,
    },
    upstream: { path: '/items' },
    response: { status: 200, local: false, headers: { 'content-type': 'application/json', 'set-cookie': 's=1', 'content-length': 45 } },
    latencies: { total: 12.6, upstream: 9.2, kong: 3.4 },
    bytes: { received: 120, sent: 412 },
    tries: 1,
    upstreamTries: [{ ip: '10.0.0.1', port: 8080, startMs: 1796636223392, failed: null }],
    serializeValues: null,
    route: null, service: null, consumer: null, credential: null,
    ...over,
  } as unknown as LogContext;
}

const route = Object.freeze({ id: 'r1', name: 'r', paths: Object.freeze(['/']), service: Object.freeze({ id: 's1' }) });
const service = Object.freeze({ id: 's1', name: 's', host: '10.0.0.1', port: 8080, protocol: 'http' });
const consumer = Object.freeze({ id: 'c1', username: 'alex', custom_id: null });

test('serializeLogJson is the JSON text of serializeLog (with and without entities, credential)', () => {
  for (const ctx of [
    logContext(),
    logContext({ route, service }),
    logContext({ route, service, consumer, credential: { id: 'k1', consumer: { id: 'c1' } } }),
    logContext({ route, service, response: { status: 401, local: true, headers: {} }, latencies: { total: 1, upstream: null, kong: 1 }, tries: 0 }),
  ]) {
    const text = serializeLogJson(ctx);
    assert.equal(text, JSON.stringify(serializeLog(ctx)));
    const parsed = JSON.parse(text);
    assert.equal(parsed.request.headers.authorization, 'REDACTED');
    assert.equal(parsed.request.querystring.access_token, 'REDACTED');
  }
  // The remembered text of a frozen entity is reused for the next request of the same version.
  assert.equal(serializeLogJson(logContext({ route, service })), JSON.stringify(serializeLog(logContext({ route, service }))));
});

test('an entity that is not frozen is serialized afresh each time (a change shows in the next record)', () => {
  const mutable: Record<string, unknown> = { id: 'r2', name: 'before' };
  assert.equal(JSON.parse(serializeLogJson(logContext({ route: mutable }))).route.name, 'before');
  mutable.name = 'after';
  assert.equal(JSON.parse(serializeLogJson(logContext({ route: mutable }))).route.name, 'after');
});

test('values set with setSerializeValue: top level, dotted paths, inside an entity (copied), undefined removes', () => {
  const values = new Map<string, unknown>([
    ['correlation_id', 'abc-1'],
    ['trace_id', { w3c: '4bf92f3577b34da6a3ce929d0e0e4736' }],
    ['request.headers.x-extra', 'yes'],
    ['workspace_name', undefined],
    ['deep.new.key', 1],
  ]);
  const ctx = logContext({ route, service, serializeValues: values });
  const text = serializeLogJson(ctx);
  assert.equal(text, JSON.stringify(serializeLog(ctx)));
  const rec = JSON.parse(text);
  assert.equal(rec.correlation_id, 'abc-1');
  assert.deepEqual(rec.trace_id, { w3c: '4bf92f3577b34da6a3ce929d0e0e4736' });
  assert.equal(rec.request.headers['x-extra'], 'yes');
  assert.equal(rec.request.headers.authorization, 'REDACTED', 'the other headers stay');
  assert.equal('workspace_name' in rec, false);
  assert.deepEqual(rec.deep, { new: { key: 1 } });
  // Into a snapshot entity: the record gets an edited copy, the entity itself is unchanged.
  const edited = logContext({ route, service, serializeValues: new Map([['route.name', 'renamed']]) });
  const recE = JSON.parse(serializeLogJson(edited));
  assert.equal(recE.route.name, 'renamed');
  assert.equal(recE.route.id, 'r1');
  assert.equal(route.name, 'r');
  assert.equal(JSON.parse(serializeLogJson(logContext({ route, service }))).route.name, 'r', 'the remembered text is not the edited one');
});

test('request.url always carries the server port (Kong); request.tls only over TLS, with $ssl_client_verify', () => {
  assert.equal(JSON.parse(serializeLogJson(logContext())).request.url, 'http://example.test:8000/items?a=1&access_token=REDACTED');
  const plain = JSON.parse(serializeLogJson(logContext()));
  assert.equal('tls' in plain.request, false);
  const tlsCtx = logContext({
    request: { ...logContext().request, scheme: 'https', port: 443, tls: { version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', clientVerify: 'NONE' } },
  });
  const rec = JSON.parse(serializeLogJson(tlsCtx));
  assert.equal(rec.request.url, 'https://example.test:443/items?a=1&access_token=REDACTED');
  assert.deepEqual(rec.request.tls, { version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', client_verify: 'NONE' });
});
