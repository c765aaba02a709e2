/**
 * The SDK's upstream request through a real gateway: a plugin's method and Host reach the
 * upstream (Host over preserve_host and the service host, as Kong's set_header("Host")), and
 * the matched route's uri captures are on the request context.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { definePlugin } from '../src/plugins/sdk.ts';
import { echoGatewaySuite } from './helpers/echo-gateway.ts';

/** Sets what the request's X-Do header asks for; reports ctx.uriCaptures in X-Captures. */
const upstreamEditor = definePlugin({
  name: 'upstream-editor',
  version: '1.0.0',
  priority: 800,
  schema: z.strictObject({}),
  create() {
    return {
      access(ctx) {
        const up = ctx.upstream;
        const captures = ctx.uriCaptures;
        up.setHeader('x-captures', captures === null ? 'null' : JSON.stringify(captures));
        up.setHeader('x-client-method', ctx.request.method);
        for (const op of (ctx.request.header('x-do') ?? '').split(',')) {
          if (op === 'method') up.method = 'DELETE';
          else if (op === 'set') up.setHeader('Host', 'set.example');
          else if (op === 'add') up.addHeader('host', 'added.example');
          else if (op === 'lower') up.setLowerHeaders([{ name: 'host', value: 'lower.example' }]);
          else if (op === 'remove') up.removeHeader('host');
        }
      },
    };
  },
});

const t = echoGatewaySuite({
  plugins: [upstreamEditor],
  servicePlugins: [{ name: 'upstream-editor', config: {} }],
  routes: [
    { name: 'plain', paths: ['/plain'], preserve_host: false },
    { name: 'preserved', paths: ['/preserved'], preserve_host: true },
    { name: 'regex', paths: ['~/r/(?<user>\\w+)/(\\d+)$'] },
  ],
});

test('a method set by a plugin is what the upstream receives; the client method stays on ctx.request', async () => {
  const r = await t.call('/plain', { 'x-do': 'method' }, 'GET');
  assert.equal(r.status, 200);
  assert.equal(r.body.method, 'DELETE');
  assert.equal(r.body.headers['x-client-method'], 'GET');
  const untouched = await t.call('/plain', {}, 'PUT');
  assert.equal(untouched.body.method, 'PUT');
});

test('a Host set by a plugin (setHeader, addHeader, setLowerHeaders) wins over preserve_host and the service host', async () => {
  for (const path of ['/plain', '/preserved']) {
    for (const [op, host] of [['set', 'set.example'], ['add', 'added.example'], ['lower', 'lower.example']]) {
      const r = await t.call(path, { host: 'client.example', 'x-do': op });
      assert.equal(r.status, 200);
      assert.equal(r.body.headers.host, host, `${path} ${op}`);
    }
  }
  // Without a plugin's Host, or once it removed it again: the proxy's Host.
  assert.match((await t.call('/plain', { host: 'client.example' })).body.headers.host, /^127\.0\.0\.1:\d+$/);
  assert.match((await t.call('/plain', { host: 'client.example', 'x-do': 'set,remove' })).body.headers.host, /^127\.0\.0\.1:\d+$/);
  assert.equal((await t.call('/preserved', { host: 'client.example', 'x-do': 'set,remove' })).body.headers.host, 'client.example');
});

test('ctx.uriCaptures: the regex route\'s groups (Kong\'s unnamed/named shape), null on a prefix route', async () => {
  const r = await t.call('/r/ann/7', {});
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body.headers['x-captures']), { unnamed: ['ann', '7'], named: { user: 'ann' } });
  assert.equal((await t.call('/plain', {})).body.headers['x-captures'], 'null');
});
