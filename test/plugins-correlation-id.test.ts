import { test } from 'node:test';
import assert from 'node:assert/strict';
import { echoGatewaySuite } from './helpers/echo-gateway.ts';

const t = echoGatewaySuite({
  routes: [
    { name: 'default', paths: ['/default'], plugins: [{ name: 'correlation-id' }] },
    { name: 'echoed', paths: ['/echoed'], plugins: [{ name: 'correlation-id', config: { header_name: 'X-Correlation-ID', generator: 'uuid', echo_downstream: true } }] },
  ],
});
const call = (path: string, headers: Record<string, string> = {}) => t.call(path, headers);

test('correlation-id generated (uuid#counter) and sent upstream only', async () => {
  const a = await call('/default');
  const b = await call('/default');
  const ida = a.body.headers['kong-request-id'];
  const idb = b.body.headers['kong-request-id'];
  assert.match(ida, /^[0-9a-f-]{36}#\d+$/);
  assert.equal(ida.split('#')[0], idb.split('#')[0]);
  assert.equal(Number(idb.split('#')[1]), Number(ida.split('#')[1]) + 1);
  assert.equal(a.headers['kong-request-id'], undefined);
});

test('correlation-id propagated from the client and echoed downstream', async () => {
  const r = await call('/echoed', { 'x-correlation-id': 'client-given-42' });
  assert.equal(r.body.headers['x-correlation-id'], 'client-given-42');
  assert.equal(r.headers['x-correlation-id'], 'client-given-42');
  const g = await call('/echoed');
  assert.match(String(g.headers['x-correlation-id']), /^[0-9a-f]{8}-[0-9a-f]{4}-4/);
  assert.equal(g.body.headers['x-correlation-id'], g.headers['x-correlation-id']);
});
