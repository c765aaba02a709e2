import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startIdp } from '../demo/idp.ts';
import { startGatewayProcess, waitFor } from './helpers/process.ts';
import { startGateway } from './helpers/gateway.ts';

const bin = new URL('../bin/portcullis.js', import.meta.url).pathname;

function deck(echoUrl: string, routes: string[]): string {
  return `_format_version: "3.0"
services:
  - name: echo
    url: ${echoUrl}
    routes:
${routes.map((p, i) => `      - { name: r${i}, paths: [${p}] }`).join('\n')}
`;
}

/** Fires requests back to back from `concurrency` loops until stopped; counts failures. */
function load(url: () => string, concurrency: number): { stop(): Promise<{ ok: number; failed: string[] }> } {
  let running = true;
  let ok = 0;
  const failed: string[] = [];
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      try {
        const r = await fetch(url());
        await r.arrayBuffer();
        if (r.status === 200) ok++;
        else failed.push(`status ${r.status}`);
      } catch (err) {
        failed.push((err as Error).message);
      }
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return { ok, failed };
    },
  };
}

describe('command line', () => {
  test('--help documents the settings', () => {
    const r = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    assert.equal(r.status, 0);
    for (const name of ['PORTCULLIS_PROXY_LISTEN', 'PORTCULLIS_ADMIN_LISTEN', 'PORTCULLIS_DATABASE', 'PORTCULLIS_DECLARATIVE_CONFIG', 'PORTCULLIS_WORKERS', 'PORTCULLIS_LOG_LEVEL', '--workers', '--watch']) {
      assert.ok(r.stdout.includes(name), `--help mentions ${name}`);
    }
  });

  test('--help works on every sub-command (exit 0, the command\'s usage)', () => {
    for (const [cmd, expected] of [['start', /portcullis start \[-c FILE\]/], ['config', /portcullis config sync FILE/], ['migrations', /portcullis migrations bootstrap\|up\|status/]] as const) {
      const r = spawnSync(process.execPath, [bin, cmd, '--help'], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${cmd}: ${r.stderr}`);
      assert.match(r.stdout, expected, cmd);
    }
    const empty = spawnSync(process.execPath, [bin, 'start', '--admin-listen', 'off'], { encoding: 'utf8', env: { ...process.env, PORTCULLIS_ADMIN_TOKEN: '' } });
    assert.equal(empty.status, 2);
    assert.match(empty.stderr, /PORTCULLIS_ADMIN_TOKEN is set but empty/);
  });

  test('config validate: exit 0 for a good file, 1 with every problem and its path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-validate-'));
    const good = join(dir, 'good.yaml');
    const bad = join(dir, 'bad.yaml');
    await writeFile(good, deck('http://127.0.0.1:9', ['/a']));
    await writeFile(bad, `_format_version: "3.0"
services:
  - name: s
    url: http://127.0.0.1:9
    routes:
      - name: r1
        paths: [/ok]
      - name: r2
        paths: [no-slash]
    bogus: 1
`);
    const ok = spawnSync(process.execPath, [bin, 'config', 'validate', good], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    const ko = spawnSync(process.execPath, [bin, 'config', 'validate', bad], { encoding: 'utf8' });
    assert.equal(ko.status, 1);
    const out = ko.stdout + ko.stderr;
    assert.match(out, /services\[0\]\.routes\[1\]\.paths\[0\]/);
    assert.match(out, /services\[0\]\.bogus/);
    // Judged for the worker count `start` would use: a DB-less session without a secret is fine
    // on one worker and refused on two, naming the field.
    const session = join(dir, 'session.yaml');
    await writeFile(session, `_format_version: "3.0"
plugins:
  - name: openid-connect
    config: { issuer: "http://127.0.0.1:9/", auth_methods: [session, password] }
`);
    const one = spawnSync(process.execPath, [bin, 'config', 'validate', session, '--workers', '1'], { encoding: 'utf8' });
    assert.equal(one.status, 0, one.stdout + one.stderr);
    // Kong's session how-to runs unchanged with several workers: the node shares one generated secret.
    const two = spawnSync(process.execPath, [bin, 'config', 'validate', session, '--workers', '2'], { encoding: 'utf8' });
    assert.equal(two.status, 0, two.stdout + two.stderr);
  });

  test('an invalid file at start: exit 1 listing the problems', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-badstart-'));
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, `_format_version: "3.0"\nservices:\n  - name: s\n    port: 99999\n    host: x\n`);
    const r = spawnSync(process.execPath, [bin, 'start', '-c', bad, '--workers', '1', '--proxy-listen', '127.0.0.1:0', '--admin-listen', 'off'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 1);
    assert.match(r.stdout + r.stderr, /services\[0\]\.port/);
  });
});

describe('reloads', () => {
  let echo: EchoServer;
  before(async () => {
    echo = await startEcho();
  });
  after(async () => {
    await echo.close();
  });

  test('20 reloads under load: zero failed requests, new routes served', async () => {
    const gw = await startGateway({ config: deck(echo.url, ['/stable']) });
    try {
      const traffic = load(() => `${gw.proxyUrl}/stable`, 8);
      for (let i = 1; i <= 20; i++) {
        assert.equal(await gw.reload(deck(echo.url, ['/stable', `/added-${i}`])), true);
        const r = await fetch(`${gw.proxyUrl}/added-${i}`);
        assert.equal(r.status, 200);
        await r.arrayBuffer();
      }
      const { ok, failed } = await traffic.stop();
      assert.deepEqual(failed, []);
      assert.ok(ok > 100, `requests served during reloads: ${ok}`);
    } finally {
      await gw.close();
    }
  });

  test('an invalid new file leaves the running config serving and logs every problem', async () => {
    const gw = await startGateway({ config: deck(echo.url, ['/kept']) });
    try {
      const bad = `_format_version: "3.0"\nservices:\n  - name: echo\n    url: ${echo.url}\n    routes:\n      - { name: r0, paths: [nope] }\n      - { name: r1, methods: [get] }\n`;
      assert.equal(await gw.reload(bad), false);
      assert.equal((await fetch(`${gw.proxyUrl}/kept`)).status, 200);
      const logged = gw.logs.find((l) => Array.isArray(l.problems));
      assert.ok(logged, 'problems logged');
      const problems = (logged.problems as string[]).join('\n');
      assert.match(problems, /services\[0\]\.routes\[0\]\.paths\[0\]/);
      assert.match(problems, /services\[0\]\.routes\[1\]/);
    } finally {
      await gw.close();
    }
  });

  test('SIGHUP and --watch reload a gateway process; 2 workers serve', async () => {
    const gw = await startGatewayProcess({ config: deck(echo.url, ['/one']), workers: 2, args: ['--watch'] });
    try {
      assert.equal((await fetch(`${gw.proxyUrl}/one`)).status, 200);
      assert.equal((await fetch(`${gw.proxyUrl}/two`)).status, 404);
      // --watch: editing the file is enough.
      await gw.writeConfig(deck(echo.url, ['/one', '/two']));
      await waitFor(async () => (await fetch(`${gw.proxyUrl}/two`)).status === 200, 10_000, 'watch reload');
      // SIGHUP after a change (--watch would catch it too; SIGHUP must not break anything).
      await gw.writeConfig(deck(echo.url, ['/three']));
      gw.proc.kill('SIGHUP');
      // Every worker applies it (each fresh connection may land on either worker).
      const fresh = async (): Promise<number> => {
        const r = await fetch(`${gw.proxyUrl}/three`, { headers: { connection: 'close' } });
        await r.arrayBuffer();
        return r.status;
      };
      await waitFor(async () => (await Promise.all(Array.from({ length: 10 }, fresh))).every((s) => s === 200), 10_000, 'SIGHUP reload');
      // Both workers got the config: many requests, all 200 (connections spread over workers).
      const results = await Promise.all(Array.from({ length: 40 }, fresh));
      assert.deepEqual(new Set(results), new Set([200]));
    } finally {
      const code = await gw.stop('SIGTERM');
      assert.equal(code, 0, gw.output().slice(-3000));
    }
  });

  test('--watch keeps reloading when editors replace the file (write to a temp file, then rename)', async () => {
    const gw = await startGatewayProcess({ config: deck(echo.url, ['/one']), args: ['--watch'] });
    const replace = async (text: string): Promise<void> => {
      // What `sed -i`, vim, VS Code's atomic save and ConfigMap updates do: a new inode each time.
      const tmp = `${gw.configFile}.tmp`;
      await writeFile(tmp, text);
      await rename(tmp, gw.configFile);
    };
    try {
      await replace(deck(echo.url, ['/two']));
      await waitFor(async () => (await fetch(`${gw.proxyUrl}/two`)).status === 200, 10_000, 'first replace');
      await replace(deck(echo.url, ['/three']));
      await waitFor(async () => (await fetch(`${gw.proxyUrl}/three`)).status === 200, 10_000, 'second replace');
      // An in-place write after the replacements is noticed too.
      await gw.writeConfig(deck(echo.url, ['/four']));
      await waitFor(async () => (await fetch(`${gw.proxyUrl}/four`)).status === 200, 10_000, 'in-place write');
      assert.equal((await fetch(`${gw.proxyUrl}/three`)).status, 404);
    } finally {
      assert.equal(await gw.stop('SIGTERM'), 0);
    }
  });
});

describe('SIGTERM', () => {
  test('drains in-flight requests, refuses new connections, exits 0', async () => {
    const echo = await startEcho();
    // A gateway that fails to start must not leave the echo server holding the test file open.
    const gw = await startGatewayProcess({ config: deck(echo.url, ['/']) }).catch(async (err: unknown) => { await echo.close(); throw err; });
    try {
      const slow = fetch(`${gw.proxyUrl}/delay/1500`).then(async (r) => ({ status: r.status, body: await r.text() }));
      await new Promise((r) => setTimeout(r, 300));
      gw.proc.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      const refused = await fetch(`${gw.proxyUrl}/anything`).then(() => 'served', () => 'refused');
      assert.equal(refused, 'refused');
      const done = await slow;
      assert.equal(done.status, 200);
      assert.equal(await gw.exited, 0);
    } finally {
      await gw.stop();
      await echo.close();
    }
  });
});

describe('embedded store with several workers', () => {
  test('a route created through the Admin API serves on every worker within 1 s', async () => {
    const echo = await startEcho();
    const gw = await startGatewayProcess({ workers: 2, env: { PORTCULLIS_DATABASE: 'sqlite', PORTCULLIS_PROXY_ACCESS_LOG: 'off' } })
      .catch(async (err: unknown) => { await echo.close(); throw err; });
    try {
      const svc = await fetch(`${gw.adminUrl}/services`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'echo', url: echo.url }) });
      assert.equal(svc.status, 201);
      const created = Date.now();
      const route = await fetch(`${gw.adminUrl}/services/echo/routes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'new', paths: ['/new'] }) });
      assert.equal(route.status, 201);
      const fresh = async (): Promise<number> => {
        const r = await fetch(`${gw.proxyUrl}/new`, { headers: { connection: 'close' } });
        await r.arrayBuffer();
        return r.status;
      };
      await waitFor(async () => (await Promise.all(Array.from({ length: 10 }, fresh))).every((s) => s === 200), 5000, 'every worker serves the new route');
      assert.ok(Date.now() - created <= 1500, `took ${Date.now() - created} ms`);
      // Shutdown drains and exits cleanly with the SQLite store open in every process.
      assert.equal(await gw.stop('SIGTERM'), 0);
    } finally {
      await gw.stop();
      await echo.close();
    }
  });

  test("Kong's session how-to, DB-less with 2 workers and no session_secret: one secret generated for the node serves every worker", async () => {
    const echo = await startEcho();
    const idp = await startIdp();
    const config = `_format_version: "3.0"
services:
  - name: example-service
    url: ${echo.url}/anything
    routes:
      - name: example-route
        paths: [/anything]
plugins:
  - name: openid-connect
    service: example-service
    config:
      issuer: ${idp.issuer}
      client_id: [kong]
      client_secret: [kong-secret]
      client_auth: [client_secret_post]
      auth_methods: [session, password]
`;
    let gw: Awaited<ReturnType<typeof startGatewayProcess>> | undefined;
    try {
      gw = await startGatewayProcess({ config, workers: 2, env: { PORTCULLIS_PROXY_ACCESS_LOG: 'off' } });
      const proxyUrl = gw.proxyUrl;
      const login = await fetch(`${proxyUrl}/anything`, { headers: { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}`, connection: 'close' } });
      await login.arrayBuffer();
      assert.equal(login.status, 200);
      const cookie = login.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
      assert.match(cookie, /^session=/);
      const withCookie = async (): Promise<number> => {
        const r = await fetch(`${proxyUrl}/anything`, { headers: { cookie, connection: 'close' } });
        await r.arrayBuffer();
        return r.status;
      };
      const statuses = await Promise.all(Array.from({ length: 20 }, withCookie));
      assert.deepEqual(statuses, Array.from({ length: 20 }, () => 200));
    } finally {
      await gw?.stop();
      await idp.close();
      await echo.close();
    }
  });

  test("Kong's session how-to through the Admin API on a 2-worker SQLite node: a generated secret stored in the database serves every worker", async () => {
    // The how-to's plugin, unchanged (no session_secret). As Kong with a database: the secret is
    // generated once and stored there, so a session made by one worker opens on the other. (A
    // DB-less node generates one per node at start instead: the test above.)
    const echo = await startEcho();
    const idp = await startIdp();
    const gw = await startGatewayProcess({ workers: 2, env: { PORTCULLIS_DATABASE: 'sqlite', PORTCULLIS_PROXY_ACCESS_LOG: 'off' } })
      .catch(async (err: unknown) => { await idp.close(); await echo.close(); throw err; });
    const post = (path: string, body: unknown): Promise<Response> =>
      fetch(`${gw.adminUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    try {
      assert.equal((await post('/services', { name: 'example-service', url: `${echo.url}/anything` })).status, 201);
      assert.equal((await post('/services/example-service/routes', { name: 'example-route', paths: ['/anything'] })).status, 201);
      const config = {
        issuer: idp.issuer, client_id: ['kong'], client_secret: ['kong-secret'],
        client_auth: ['client_secret_post'], auth_methods: ['session', 'password'],
      };
      const accepted = await post('/services/example-service/plugins', { name: 'openid-connect', config });
      assert.equal(accepted.status, 201);
      const anonymous = async (): Promise<number> => {
        const r = await fetch(`${gw.proxyUrl}/anything`, { headers: { connection: 'close' } });
        await r.arrayBuffer();
        return r.status;
      };
      await waitFor(async () => (await Promise.all(Array.from({ length: 10 }, anonymous))).every((st) => st === 401), 5000, 'every worker applies the plugin');
      const login = await fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}`, connection: 'close' } });
      await login.arrayBuffer();
      assert.equal(login.status, 200);
      const cookie = login.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
      assert.match(cookie, /^session=/);
      // New connections spread over both workers (SO_REUSEPORT): the cookie opens on each.
      const withCookie = async (): Promise<number> => {
        const r = await fetch(`${gw.proxyUrl}/anything`, { headers: { cookie, connection: 'close' } });
        await r.arrayBuffer();
        return r.status;
      };
      const statuses = await Promise.all(Array.from({ length: 20 }, withCookie));
      assert.deepEqual(statuses, Array.from({ length: 20 }, () => 200));
      assert.doesNotMatch(gw.output(), /applying the new config failed/);
    } finally {
      await gw.stop();
      await idp.close();
      await echo.close();
    }
  });
});
