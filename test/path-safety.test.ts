/**
 * Path safety end to end (issue: paths that an upstream decodes into another route's path).
 * An open /public route and a protected /admin route share the echo upstream, which resolves
 * paths with a WHATWG parser (`new URL`), as Hono, Deno or Bun would. Every path of the issue's
 * list must be refused with 400 before any plugin runs, for each route layout (prefix, regex,
 * strip_path), and must never reach the upstream.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { z } from 'zod';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { readSettings, SettingsError } from '../src/kernel/index.ts';
import { definePlugin } from '../src/plugins/sdk.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';

/** Sends `path` exactly as given (no client-side URL parsing) and returns status and body. */
function rawGet(port: number, path: string, host: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'GET', headers: { host }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => {
        let body: any = text;
        try { body = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Counts every phase a plugin could run in, to prove refused paths run none. */
const phaseCount = { rewrite: 0, access: 0, log: 0 };
const phaseCounter = definePlugin({
  name: 'phase-counter',
  version: '1.0.0',
  priority: 100_000,
  schema: z.strictObject({}),
  create() {
    return {
      rewrite() { phaseCount.rewrite++; },
      access() { phaseCount.access++; },
      log() { phaseCount.log++; },
    };
  },
});

const traversals = [
  '/public/..\\admin', '/public/..%2Fadmin', '/public/..%2fadmin', '/public/%2e%2e%2fadmin', '/public/..;/admin',
  '/public/%5c..%5cadmin', '/public%2F..%2Fadmin', '/public/%252e%252e/admin', '/public/%00', '/public/%00/../../admin',
];

/** One host per layout of the public route; /admin is terminated with 403 on every host. */
const layouts: Record<string, object> = {
  prefix: { paths: ['/public'], strip_path: false },
  'prefix, strip_path': { paths: ['/public'], strip_path: true },
  regex: { paths: ['~/public(?:/.*)?$'], strip_path: false },
  'regex, strip_path': { paths: ['~/public'], strip_path: true },
};
const hostOf = (layout: string): string => `${layout.replace(/[^a-z]+/g, '-')}.test`;

function config(echo: EchoServer): object {
  const routes = Object.entries(layouts).flatMap(([layout, r]) => [
    { name: `${hostOf(layout)}-public`, hosts: [hostOf(layout)], ...r },
    {
      name: `${hostOf(layout)}-admin`, hosts: [hostOf(layout)], paths: ['/admin'],
      plugins: [{ name: 'request-termination', config: { status_code: 403, message: 'protected' } }],
    },
  ]);
  return {
    _format_version: '3.0',
    services: [{ name: 'echo', url: echo.url, routes }],
    plugins: [{ name: 'phase-counter' }],
  };
}

describe('path safety at the default setting (keep)', () => {
  let echo: EchoServer;
  let gw: TestGateway;
  before(async () => {
    echo = await startEcho();
    gw = await startGateway({ config: config(echo), plugins: [phaseCounter] });
  });
  after(async () => {
    await gw?.close();
    await echo?.close();
  });

  test('the echo upstream resolves paths like a WHATWG parser', async () => {
    const r = await rawGet(echo.port, '/public/..\\admin', 'echo');
    assert.equal(r.body.path, '/admin');
  });

  for (const layout of Object.keys(layouts)) {
    test(`${layout}: the route and its neighbour work as usual`, async () => {
      const host = hostOf(layout);
      const ok = await rawGet(gw.proxyPort, '/public/x', host);
      assert.equal(ok.status, 200);
      assert.equal(ok.body.path, layout.includes('strip_path') ? '/x' : '/public/x');
      assert.equal((await rawGet(gw.proxyPort, '/admin/x', host)).status, 403);
    });

    test(`${layout}: every path that decodes into /admin is refused with 400 before any plugin`, async () => {
      const host = hostOf(layout);
      const before = { received: echo.received.length, ...phaseCount };
      for (const path of traversals) {
        const r = await rawGet(gw.proxyPort, path, host);
        assert.equal(r.status, 400, `${path} → ${r.status} ${JSON.stringify(r.body)}`);
        assert.match(r.body.message, /^Bad request: /, path);
      }
      assert.equal(echo.received.length, before.received, 'a refused path reached the upstream');
      assert.deepEqual({ ...phaseCount }, { rewrite: before.rewrite, access: before.access, log: before.log }, 'a plugin ran on a refused path');
    });

    test(`${layout}: invalid percent-encoding is refused with 400`, async () => {
      for (const path of ['/public/%zz', '/public/a%', '/public/%c0%af']) {
        const r = await rawGet(gw.proxyPort, path, hostOf(layout));
        assert.equal(r.status, 400, path);
        assert.equal(r.body.message, 'Bad request: invalid percent-encoding in the path');
      }
    });

    test(`${layout}: an encoded slash that changes nothing is forwarded exactly as routed`, async () => {
      const r = await rawGet(gw.proxyPort, '/public/group%2Fproject/files', hostOf(layout));
      assert.equal(r.status, 200);
      const sent = echo.received.at(-1)!.url;
      assert.equal(sent, layout.includes('strip_path') ? '/group%2Fproject/files' : '/public/group%2Fproject/files');
    });
  }
});

describe('PORTCULLIS_PATH_ESCAPED_SLASHES', () => {
  let echo: EchoServer;
  let reject: TestGateway;
  let unescape: TestGateway;
  before(async () => {
    echo = await startEcho();
    reject = await startGateway({ config: config(echo), plugins: [phaseCounter], env: { PORTCULLIS_PATH_ESCAPED_SLASHES: 'reject' } });
    unescape = await startGateway({ config: config(echo), plugins: [phaseCounter], env: { PORTCULLIS_PATH_ESCAPED_SLASHES: 'unescape' } });
  });
  after(async () => {
    await reject?.close();
    await unescape?.close();
    await echo?.close();
  });

  test('reject: any encoded / or \\ is refused with 400', async () => {
    const host = hostOf('prefix');
    for (const path of ['/public/group%2Fproject', '/public/a%5cb']) {
      const r = await rawGet(reject.proxyPort, path, host);
      assert.equal(r.status, 400, path);
      assert.equal(r.body.message, 'Bad request: encoded slash or backslash in the path');
    }
    assert.equal((await rawGet(reject.proxyPort, '/public/a%20b', host)).status, 200);
  });

  test('unescape: decoded, then routed, and forwarded decoded', async () => {
    const host = hostOf('prefix');
    const r = await rawGet(unescape.proxyPort, '/public/group%2Fproject', host);
    assert.equal(r.status, 200);
    assert.equal(echo.received.at(-1)!.url, '/public/group/project');
    // The decoded path is /admin: the protected route answers.
    assert.equal((await rawGet(unescape.proxyPort, '/public/..%2Fadmin', host)).status, 403);
    assert.equal((await rawGet(unescape.proxyPort, '/public/..\\admin', host)).status, 400);
  });

  test('an unknown value is refused with an error naming the setting', () => {
    assert.throws(() => readSettings({}, { PORTCULLIS_PATH_ESCAPED_SLASHES: 'drop' }), (err: unknown) =>
      err instanceof SettingsError && /PORTCULLIS_PATH_ESCAPED_SLASHES must be keep, reject or unescape/.test(err.message));
    assert.equal(readSettings({}, {}).pathEscapedSlashes, 'keep');
    assert.equal(readSettings({}, { PORTCULLIS_PATH_ESCAPED_SLASHES: 'UNESCAPE' }).pathEscapedSlashes, 'unescape');
  });
});
