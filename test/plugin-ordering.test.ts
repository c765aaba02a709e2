/**
 * Kong's dynamic plugin ordering: `ordering.before.access` / `ordering.after.access` change the
 * access-phase order of a plugin instance (default: priority, higher first).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { definePlugin, type PluginDefinition } from '../src/plugins/sdk.ts';
import { normalizeEntity } from '../src/config/normalize.ts';
import { createRegistry } from '../src/plugins/registry.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';

/** Appends its name to X-Order upstream, so the upstream sees the access order. */
function marker(name: string, priority: number): PluginDefinition {
  return definePlugin({
    name, version: '1.0.0', priority, schema: z.strictObject({}),
    create: () => ({
      access(ctx) {
        const prev = ctx.upstream.getHeader('x-order');
        ctx.upstream.setHeader('x-order', prev ? `${String(prev)},${name}` : name);
      },
    }),
  });
}

const plugins = [marker('first', 3000), marker('second', 2000), marker('third', 1000)];

describe('plugin ordering (ordering.before.access / ordering.after.access)', () => {
  let echo: EchoServer;
  let gw: TestGateway;
  const order = async (path: string): Promise<string> => {
    const r = await fetch(`${gw.proxyUrl}${path}`);
    assert.equal(r.status, 200);
    return ((await r.json()) as { headers: Record<string, string> }).headers['x-order'];
  };
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
      - { name: plain, paths: [/plain] }
      - { name: moved, paths: [/moved] }
      - { name: after, paths: [/after] }
plugins:
  - { name: first, route: plain }
  - { name: second, route: plain }
  - { name: third, route: plain }
  - { name: first, route: moved }
  - { name: second, route: moved }
  - { name: third, route: moved, ordering: { before: { access: [first] } } }
  - { name: first, route: after, ordering: { after: { access: [third] } } }
  - { name: second, route: after }
  - { name: third, route: after }
`,
    });
  });
  after(async () => {
    await gw?.close();
    await echo?.close();
  });

  test('without ordering, priority decides', async () => {
    assert.equal(await order('/plain'), 'first,second,third');
  });

  test('before.access moves a plugin ahead of the named one', async () => {
    assert.equal(await order('/moved'), 'third,first,second');
  });

  test('after.access moves a plugin behind the named one', async () => {
    // Depth-first from the highest priority: first needs third before it, so third comes first.
    assert.equal(await order('/after'), 'third,first,second');
  });

  test('ordering is validated: known plugins, not itself, not on a consumer-scoped instance', () => {
    const registry = createRegistry(plugins);
    const issues = (input: Record<string, unknown>) => {
      const r = normalizeEntity('plugins', input, { registry, now: 0 });
      return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
    };
    assert.deepEqual(issues({ name: 'first', ordering: { before: { access: ['nope'] } } }), ["ordering.before.access[0]: plugin 'nope' not enabled"]);
    assert.deepEqual(issues({ name: 'first', ordering: { after: { access: ['first'] } } }), ['ordering.after.access[0]: a plugin cannot be ordered relative to itself']);
    assert.deepEqual(issues({ name: 'first', consumer: { id: '00000000-0000-4000-8000-000000000001' }, ordering: { before: { access: ['second'] } } }), ['ordering: cannot be set on a plugin scoped to a consumer']);
    assert.deepEqual(issues({ name: 'first', ordering: { before: { access: ['second'] } } }), []);
  });
});
