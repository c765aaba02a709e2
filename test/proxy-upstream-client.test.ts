/**
 * Both upstream clients behind the proxy: the lean HTTP/1.1 client (body-less requests to plain
 * HTTP upstreams, the default) and undici (PORTCULLIS_UPSTREAM_CLIENT=undici, and always for
 * bodies and TLS) forward the same things, and a plugin-set header value that could smuggle a
 * request never reaches the upstream.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { definePlugin } from '../src/plugins/sdk.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';

/** Copies `?set=` (decoded) into an upstream header: a plugin writing whatever it is given. */
const headerSetter = definePlugin({
  name: 'test-header-setter',
  version: '0.0.0',
  priority: 900,
  schema: z.strictObject({}),
  create() {
    return {
      access(ctx) {
        const v = ctx.request.query.get('set');
        if (v !== null) ctx.upstream.setHeader('x-set', v);
      },
    };
  },
});

const config = (echoUrl: string) => ({
  _format_version: '3.0',
  services: [{ name: 'echo', url: echoUrl, routes: [{ name: 'r', paths: ['/'], strip_path: false, plugins: [{ name: 'test-header-setter' }] }] }],
});

for (const client of ['lean', 'undici']) {
  describe(`upstream client: ${client}`, () => {
    let echo: EchoServer;
    let gw: TestGateway;
    before(async () => {
      echo = await startEcho();
      gw = await startGateway({ config: config(echo.url), plugins: [headerSetter], env: { PORTCULLIS_UPSTREAM_CLIENT: client } });
    });
    after(async () => {
      await gw.close();
      await echo.close();
    });

    test('GET, HEAD and DELETE with query strings, repeated headers and a 1 MB body', async () => {
      const r = await fetch(`${gw.proxyUrl}/anything/a?x=1&y=%20`, { headers: { 'x-multi': 'one', accept: 'text/plain' } });
      assert.equal(r.status, 200);
      const seen = (await r.json()) as { url: string; headers: Record<string, string> };
      assert.equal(seen.url, '/anything/a?x=1&y=%20');
      assert.equal(seen.headers['x-multi'], 'one');
      assert.equal(seen.headers['x-forwarded-path'], '/anything/a');
      const head = await fetch(`${gw.proxyUrl}/anything/h`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(await head.text(), '');
      const del = await fetch(`${gw.proxyUrl}/anything/d`, { method: 'DELETE' });
      assert.equal(((await del.json()) as { method: string }).method, 'DELETE');
      const big = await fetch(`${gw.proxyUrl}/bytes/1048576`);
      assert.equal((await big.arrayBuffer()).byteLength, 1048576);
      const missing = await fetch(`${gw.proxyUrl}/status/418`);
      assert.equal(missing.status, 418);
      await missing.body?.cancel();
    });

    test('which client carried the request: body-less ones the configured client, bodies always undici', async () => {
      // undici announces `connection: keep-alive`; the lean client sends no Connection header
      // (HTTP/1.1 connections persist by default).
      const get = await fetch(`${gw.proxyUrl}/anything/which`);
      assert.equal(((await get.json()) as { headers: Record<string, string> }).headers.connection, client === 'lean' ? undefined : 'keep-alive');
      const post = await fetch(`${gw.proxyUrl}/anything/which`, { method: 'POST', body: 'x' });
      assert.equal(((await post.json()) as { headers: Record<string, string> }).headers.connection, 'keep-alive');
    });

    test('a plugin-set header with CR/LF fails the request (502) and never reaches the upstream', async () => {
      const before = echo.received.length;
      const r = await fetch(`${gw.proxyUrl}/anything/x?set=${encodeURIComponent('a\r\nx-smuggled: 1')}`);
      assert.equal(r.status, 502);
      await r.body?.cancel();
      assert.equal(echo.received.length, before);
      const ok = await fetch(`${gw.proxyUrl}/anything/x?set=fine`);
      assert.equal(((await ok.json()) as { headers: Record<string, string> }).headers['x-set'], 'fine');
    });
  });
}

test('PORTCULLIS_UPSTREAM_CLIENT takes lean or undici only', async () => {
  await assert.rejects(startGateway({ config: { _format_version: '3.0' }, env: { PORTCULLIS_UPSTREAM_CLIENT: 'curl' } }), /PORTCULLIS_UPSTREAM_CLIENT must be lean or undici/);
});
