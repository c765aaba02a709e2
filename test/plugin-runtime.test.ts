import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { definePlugin, type PluginDefinition } from '../src/plugins/sdk.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';

/** Authenticates the consumer named in X-Test-Consumer (a stand-in for a real auth plugin). */
const testAuth = definePlugin({
  name: 'test-auth',
  version: '1.0.0',
  priority: 1500,
  schema: z.strictObject({}),
  create() {
    return {
      access(ctx) {
        const name = ctx.request.header('x-test-consumer');
        if (name === undefined) return;
        const consumer = ctx.entities.consumerByUsername(name);
        if (consumer) ctx.authenticate({ consumer, credential: { id: `cred-${consumer.id}` } });
      },
    };
  },
});

/** Writes its configured scope name into X-Scope upstream, so a test can see which config won. */
const scopeTag = definePlugin({
  name: 'scope-tag',
  version: '1.0.0',
  priority: 800,
  schema: z.strictObject({ scope: z.string() }),
  create(config) {
    return {
      access(ctx) {
        ctx.upstream.setHeader('x-scope', config.scope);
      },
    };
  },
});

const events: string[] = [];

const terminator = definePlugin({
  name: 'terminator',
  version: '1.0.0',
  priority: 900,
  schema: z.strictObject({ mode: z.enum(['reply', 'throw', 'sync-throw', 'async-reply', 'sync-reply']).default('reply') }),
  create(config) {
    return {
      access(ctx) {
        events.push('terminator:access');
        // Plain (non-async) handlers: the kernel must take both a sync answer and a sync throw.
        if (config.mode === 'sync-throw') throw new Error('plugin exploded');
        if (config.mode === 'sync-reply') return ctx.reply(418, { message: 'short-circuited' });
        return (async () => {
          if (config.mode === 'throw') throw new Error('plugin exploded');
          if (config.mode === 'async-reply') await new Promise((r) => setTimeout(r, 5));
          return ctx.reply(418, { message: 'short-circuited' });
        })();
      },
      response(ctx) {
        events.push(`terminator:response:${ctx.response.status}`);
        ctx.response.setHeader('x-terminator-response', 'ran');
      },
      log(ctx) {
        events.push(`terminator:log:${ctx.response.status}`);
      },
    };
  },
});

/** Lower priority than terminator: its access must not run, its response/log must. */
const observer = definePlugin({
  name: 'observer',
  version: '1.0.0',
  priority: 10,
  schema: z.strictObject({}),
  create() {
    return {
      access() {
        events.push('observer:access');
      },
      async response(ctx) {
        await new Promise((r) => setTimeout(r, 2));
        events.push('observer:response');
        ctx.response.setHeader('x-observer', 'ran');
      },
      log() {
        events.push('observer:log');
      },
    };
  },
});

const plugins: PluginDefinition[] = [testAuth, scopeTag, terminator, observer];

describe('scope precedence (Kong: consumer+route+service … global)', () => {
  let echo: EchoServer;
  let gw: TestGateway;
  before(async () => {
    echo = await startEcho();
    // Routes r1..r4 on service s1, r5 on s2. Instances at every scope, chosen so each level of
    // the precedence list is visible from at least one request.
    gw = await startGateway({
      plugins,
      config: `
_format_version: "3.0"
services:
  - name: s1
    url: ${echo.url}
    routes:
      - { name: r1, paths: [/r1] }
      - { name: r2, paths: [/r2] }
      - { name: r3, paths: [/r3] }
      - { name: r4, paths: [/r4] }
  - name: s2
    url: ${echo.url}
    routes:
      - { name: r5, paths: [/r5] }
routes:
  - { name: r6, paths: [/r6] }
consumers:
  - username: alice
  - username: bob
  - username: carol
plugins:
  - { name: test-auth }
  - { name: scope-tag, config: { scope: global } }
  - { name: scope-tag, service: s1, config: { scope: service } }
  - { name: scope-tag, route: r2, config: { scope: route } }
  - { name: scope-tag, route: r3, service: s1, config: { scope: route+service } }
  - { name: scope-tag, consumer: alice, config: { scope: consumer } }
  - { name: scope-tag, consumer: bob, route: r2, config: { scope: consumer+route } }
  - { name: scope-tag, consumer: bob, service: s1, config: { scope: consumer+service } }
  - { name: scope-tag, consumer: carol, route: r3, service: s1, config: { scope: consumer+route+service } }
`,
    });
  });
  after(async () => {
    await gw.close();
    await echo.close();
  });

  const cases: Array<[string, string | null, string]> = [
    ['/r1', null, 'service'],
    ['/r2', null, 'route'],
    ['/r3', null, 'route+service'],
    ['/r5', null, 'global'],
    ['/r1', 'alice', 'consumer'],
    ['/r2', 'alice', 'consumer'],
    ['/r3', 'alice', 'route+service'],
    ['/r5', 'alice', 'consumer'],
    ['/r2', 'bob', 'consumer+route'],
    ['/r1', 'bob', 'consumer+service'],
    ['/r4', 'bob', 'consumer+service'],
    ['/r5', 'bob', 'global'],
    ['/r3', 'carol', 'consumer+route+service'],
    ['/r1', 'carol', 'service'],
    ['/r3', 'bob', 'consumer+service'],
  ];
  for (const [path, consumer, expected] of cases) {
    test(`${path} as ${consumer ?? 'anonymous'} → ${expected}`, async () => {
      const r = await fetch(`${gw.proxyUrl}${path}`, { headers: consumer ? { 'x-test-consumer': consumer } : {} });
      assert.equal(r.status, 200);
      const body = (await r.json()) as { headers: Record<string, string> };
      assert.equal(body.headers['x-scope'], expected);
    });
  }

  test('a route without a service gets 503 after its plugins ran', async () => {
    const r = await fetch(`${gw.proxyUrl}/r6`);
    assert.equal(r.status, 503);
  });
});

describe('short-circuit, response and log phases, failures', () => {
  let echo: EchoServer;
  let gw: TestGateway;
  before(async () => {
    echo = await startEcho();
    gw = await startGateway({
      plugins,
      config: `
_format_version: "3.0"
services:
  - name: s
    url: ${echo.url}
    routes:
      - { name: stop, paths: [/stop] }
      - { name: stop-async, paths: [/stop-async] }
      - { name: boom, paths: [/boom] }
      - { name: boom-sync, paths: [/boom-sync] }
      - { name: stop-sync, paths: [/stop-sync] }
      - { name: pass, paths: [/pass] }
plugins:
  - { name: terminator, route: stop }
  - { name: terminator, route: stop-async, config: { mode: async-reply } }
  - { name: terminator, route: boom, config: { mode: throw } }
  - { name: terminator, route: boom-sync, config: { mode: sync-throw } }
  - { name: terminator, route: stop-sync, config: { mode: sync-reply } }
  - { name: observer }
`,
    });
  });
  after(async () => {
    await gw.close();
    await echo.close();
  });

  test('a plugin reply ends the request; response and log phases still run for every plugin', async () => {
    for (const path of ['/stop', '/stop-async', '/stop-sync']) {
      events.length = 0;
      const before = echo.received.length;
      const r = await fetch(`${gw.proxyUrl}${path}`);
      assert.equal(r.status, 418);
      assert.deepEqual(await r.json(), { message: 'short-circuited' });
      assert.equal(r.headers.get('x-terminator-response'), 'ran');
      assert.equal(r.headers.get('x-observer'), 'ran');
      await new Promise((res) => setTimeout(res, 20));
      assert.equal(echo.received.length, before, 'nothing reached the upstream');
      assert.ok(!events.includes('observer:access'), 'lower-priority access did not run');
      assert.ok(events.includes('terminator:response:418'));
      assert.ok(events.includes('observer:response'));
      assert.ok(events.includes('terminator:log:418'));
      assert.ok(events.includes('observer:log'));
    }
  });

  test('response phase runs on proxied responses too', async () => {
    const r = await fetch(`${gw.proxyUrl}/pass`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-observer'), 'ran');
    assert.equal(((await r.json()) as { path: string }).path, '/');
  });

  test('a throwing plugin gives 500 with the request id, a logged error, and the gateway keeps serving', async () => {
    for (const path of ['/boom', '/boom-sync']) {
      const r = await fetch(`${gw.proxyUrl}${path}`);
      assert.equal(r.status, 500);
      const body = (await r.json()) as { message: string; request_id: string };
      assert.equal(body.message, 'An unexpected error occurred');
      assert.equal(body.request_id, r.headers.get('x-request-id'));
      await new Promise((res) => setTimeout(res, 20));
      const logged = gw.logs.find((l) => l.request_id === body.request_id && l.level === 50);
      assert.ok(logged, 'error logged with the request id');
      assert.match(JSON.stringify(logged), /plugin exploded/);
      const again = await fetch(`${gw.proxyUrl}/pass`);
      assert.equal(again.status, 200);
    }
  });
});
