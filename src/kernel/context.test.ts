import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Incoming, Upstream } from './context.ts';
import type { IncomingMessage } from 'node:http';

test('Upstream: batch header changes with lower-case names behave as setHeader/removeHeader', () => {
  const up = new Upstream({ authorization: 'Bearer client', 'x-consumer-id': 'spoofed', accept: '*/*' }, '/p', '', 'GET');
  up.removeLowerHeaders(['authorization', 'x-consumer-id', 'x-not-sent']);
  // Removed headers stay as undefined keys (both upstream clients skip them); absent ones are not added.
  assert.equal(up.getHeader('authorization'), undefined);
  assert.equal(up.getHeader('x-consumer-id'), undefined);
  assert.equal('x-not-sent' in up.headers, false);
  assert.equal(up.getHeader('accept'), '*/*');
  up.setLowerHeaders([{ name: 'authorization', value: 'Bearer gateway' }, { name: 'x-credential-identifier', value: 'alex' }]);
  assert.equal(up.getHeader('Authorization'), 'Bearer gateway');
  assert.equal(up.getHeader('x-credential-identifier'), 'alex');
  up.setLowerHeader('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  assert.equal(up.getHeader('TraceParent'), '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  assert.equal(up.hostSet, false);
  up.setLowerHeader('host', 'upstream.example');
  assert.equal(up.hostSet, true);
  up.removeLowerHeaders(['traceparent', 'host']);
  assert.deepEqual(Object.entries(up.headers).filter(([, v]) => v !== undefined), [
    ['authorization', 'Bearer gateway'], ['accept', '*/*'], ['x-credential-identifier', 'alex'],
  ]);
});

test('Incoming.cookies: long Cookie headers that share a tail are parsed each on their own', () => {
  const tail = `session=${'x'.repeat(300)}`;
  const cookiesOf = (header: string) => new Incoming({ method: 'GET', headers: { cookie: header } } as unknown as IncomingMessage, {
    scheme: 'http', host: 'h', port: 80, path: '/', rawQuery: '', clientIp: '127.0.0.1', trusted: false,
  }, { maxBodySize: 0, bufferCap: 1024, bodyTimeout: 60_000 }).cookies;
  for (const theme of ['dark', 'light', 'dark']) {
    const cookies = cookiesOf(`theme=${theme}; ${tail}`);
    assert.equal(cookies.get('theme'), theme);
    assert.equal(cookies.get('session'), 'x'.repeat(300));
  }
  assert.equal(cookiesOf('a=1; b=2').get('b'), '2');
});
