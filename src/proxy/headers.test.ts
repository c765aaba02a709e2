import { test } from 'node:test';
import assert from 'node:assert/strict';
import { downstreamHeadersFromRaw, upstreamHeadersFrom } from './headers.ts';

const raw = (...pairs: string[]): Buffer[] => pairs.map((p) => Buffer.from(p, 'latin1'));

test('response headers from the raw list: names lower-cased, repeats joined, hop-by-hop and Connection-named fields dropped', () => {
  const out = downstreamHeadersFromRaw(raw(
    'Content-Type', 'application/json',
    'Set-Cookie', 'a=1',
    'set-cookie', 'b=2',
    'Connection', 'keep-alive, X-Hop',
    'Keep-Alive', 'timeout=5',
    'Transfer-Encoding', 'chunked',
    'X-Hop', 'secret',
    'X-Custom-Thing', 'yes',
    '__proto__', 'ignored',
  ));
  assert.deepEqual({ ...out }, {
    'content-type': 'application/json',
    'set-cookie': ['a=1', 'b=2'],
    'x-custom-thing': 'yes',
  });
  assert.equal(Object.getPrototypeOf(out), Object.prototype);
});

test('a Connection header given twice names fields from both', () => {
  const out = downstreamHeadersFromRaw(raw('Connection', 'x-a', 'connection', 'X-B', 'X-A', '1', 'X-B', '2', 'X-C', '3'));
  assert.deepEqual({ ...out }, { 'x-c': '3' });
});

test('request headers for the upstream: hop-by-hop, Connection-named and Host removed', () => {
  const out = upstreamHeadersFrom({ host: 'h', connection: 'close, x-drop', 'x-drop': '1', te: 'trailers', accept: '*/*' });
  assert.deepEqual(out, { accept: '*/*' });
});
