/**
 * Failure handling of the browser flows without an IdP: `*_redirect_uri`, IdP unreachable at the
 * callback, discovery failure, expired authorization cookie, login_action=response, logout
 * triggers by query and body argument.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { pino } from 'pino';
import { createBrowserFlows, type BrowserConfig, type BrowserFlows } from '../src/plugins/bundled/openid-connect/browser/index.ts';
import { CookieJar, MemoryKv, send, startHarness, type Harness } from './helpers/fake-ctx.ts';

const nav = { accept: 'text/html', 'sec-fetch-mode': 'navigate' };

/** A client whose IdP endpoints point at a closed port: every call to it fails to connect. */
function deadIdpClient(): oidc.Configuration {
  const c = new oidc.Configuration(
    {
      issuer: 'http://127.0.0.1:9',
      authorization_endpoint: 'http://127.0.0.1:9/auth',
      token_endpoint: 'http://127.0.0.1:9/token',
      end_session_endpoint: 'http://127.0.0.1:9/logout',
      code_challenge_methods_supported: ['S256'],
    },
    'kong',
    'kong-secret',
  );
  oidc.allowInsecureRequests(c);
  c.timeout = 2;
  return c;
}

interface Env {
  harness: Harness;
  flows: BrowserFlows;
  clock: { offsetMs: number };
}

async function env(config: BrowserConfig, getClient: () => Promise<oidc.Configuration> = async () => deadIdpClient()): Promise<Env> {
  const clock = { offsetMs: 0 };
  const now = () => Date.now() + clock.offsetMs;
  const flows = createBrowserFlows(
    { client_id: ['kong'], session_secret: 'failure-tests-secret', ...config },
    { getClient, selectClient: () => 0, sharedKv: new MemoryKv(now), workers: 1, log: pino({ level: 'silent' }), now },
  );
  const harness = await startHarness(async (ctx) => {
    const session = await flows.loadSession(ctx, now());
    const out = await flows.logout(ctx, session);
    if (out) return out;
    if (session) return { upstream: true };
    const r = await flows.authorizationCode(ctx);
    return r.kind === 'reply' ? r.reply : { upstream: true };
  }, { now });
  return { harness, flows, clock };
}

describe('failure redirects', () => {
  let e: Env;
  before(async () => {
    e = await env({
      unauthorized_redirect_uri: ['https://app.example/unauthorized'],
      unexpected_redirect_uri: ['https://app.example/oops'],
    });
  });
  after(async () => {
    await e.flows.close();
    await e.harness.close();
  });

  it('sends a bad callback to unauthorized_redirect_uri', async () => {
    const r = await send(new CookieJar(), `${e.harness.url}/p?code=x&state=nope`, { headers: nav });
    assert.equal(r.status, 302);
    assert.equal(r.location, 'https://app.example/unauthorized');
  });

  it('sends an IdP outage at the code exchange to unexpected_redirect_uri', async () => {
    const jar = new CookieJar();
    const start = await send(jar, `${e.harness.url}/p`, { headers: nav });
    assert.equal(start.status, 302);
    assert.ok(start.location!.startsWith('http://127.0.0.1:9/auth?'));
    const state = new URL(start.location!).searchParams.get('state')!;
    const r = await send(jar, `${e.harness.url}/p?code=abc&state=${encodeURIComponent(state)}`, { headers: nav });
    assert.equal(r.status, 302);
    assert.equal(r.location, 'https://app.example/oops');
    assert.ok(!r.setCookies.some((c) => c.startsWith('session=')));
  });

  it('browser-flow 401/403 challenges follow the API methods: realm = host, expose_error_code, display_errors', async () => {
    const { makeCtx } = await import('./helpers/plugin-ctx.ts');
    const json = { headers: { accept: 'application/json' }, host: 'api.example' };
    const plain = await env({});
    const hidden = await env({ expose_error_code: false });
    const shown = await env({ display_errors: true });
    try {
      const r = plain.flows.failure(makeCtx(json), 'unauthorized', 'state mismatch', 'invalid_token');
      assert.equal(r.headers?.['www-authenticate'], 'Bearer realm="api.example", error="invalid_token"');
      assert.deepEqual(r.body, { message: 'Unauthorized' }, 'the reason stays private');
      assert.equal(plain.flows.failure(makeCtx(json), 'forbidden', 'claims').headers?.['www-authenticate'], 'Bearer realm="api.example", error="insufficient_scope"');
      const h = hidden.flows.failure(makeCtx(json), 'unauthorized', 'state mismatch', 'invalid_token');
      assert.equal(h.headers?.['www-authenticate'], 'Bearer realm="api.example"');
      const d = shown.flows.failure(makeCtx(json), 'unauthorized', 'state "x" mismatch', 'invalid_token');
      assert.equal(d.headers?.['www-authenticate'], 'Bearer realm="api.example", error="invalid_token", error_description="state  x  mismatch"');
      assert.deepEqual(d.body, { message: 'Unauthorized', error_description: 'state "x" mismatch' });
    } finally {
      for (const e2 of [plain, hidden, shown]) {
        await e2.flows.close();
        await e2.harness.close();
      }
    }
  });

  it('builds forbidden replies through flows.failure', async () => {
    const plain = await env({ forbidden_error_message: 'Nope' });
    try {
      const { makeCtx } = await import('./helpers/plugin-ctx.ts');
      const reply = plain.flows.failure(makeCtx({ headers: { accept: 'application/json' } }), 'forbidden', 'claims');
      assert.equal(reply.status, 403);
      assert.deepEqual(reply.body, { message: 'Nope' });
      assert.match(String(reply.headers?.['www-authenticate']), /insufficient_scope/);
      const redirected = await env({ forbidden_redirect_uri: ['https://app.example/forbidden'] });
      const r2 = redirected.flows.failure(makeCtx(), 'forbidden', 'claims');
      assert.equal(r2.status, 302);
      assert.equal(r2.headers?.location, 'https://app.example/forbidden');
      await redirected.flows.close();
      await redirected.harness.close();
    } finally {
      await plain.flows.close();
      await plain.harness.close();
    }
  });
});

describe('callback edge cases', () => {
  let e: Env;
  before(async () => {
    e = await env({ authorization_rolling_timeout: 60 });
  });
  after(async () => {
    await e.flows.close();
    await e.harness.close();
  });

  it('rejects an expired authorization cookie with 401 and does not restart the sign-in', async () => {
    e.clock.offsetMs = 0;
    const jar = new CookieJar();
    const start = await send(jar, `${e.harness.url}/p`, { headers: nav });
    const state = new URL(start.location!).searchParams.get('state')!;
    e.clock.offsetMs = 61_000;
    const r = await send(jar, `${e.harness.url}/p?code=abc&state=${encodeURIComponent(state)}`, { headers: nav });
    assert.equal(r.status, 401);
    assert.equal(r.location, null);
    e.clock.offsetMs = 0;
  });

  it('answers 500 (not a loop) when discovery fails', async () => {
    const broken = await env({}, async () => {
      throw new Error('discovery failed');
    });
    try {
      const r = await send(new CookieJar(), `${broken.harness.url}/p`, { headers: nav });
      assert.equal(r.status, 500);
      assert.equal(r.location, null);
    } finally {
      await broken.flows.close();
      await broken.harness.close();
    }
  });
});

describe('logout triggers', () => {
  let e: Env;
  before(async () => {
    e = await env({ logout_query_arg: 'logout', logout_post_arg: 'bye', logout_methods: ['GET', 'POST'], logout_redirect_uri: ['https://app.example/bye'] });
  });
  after(async () => {
    await e.flows.close();
    await e.harness.close();
  });

  it('logs out by query argument (GET allowed) and by body argument, redirecting to the end-session endpoint', async () => {
    const q = await send(new CookieJar(), `${e.harness.url}/any?logout`, { headers: nav });
    assert.equal(q.status, 302);
    const loc = new URL(q.location!);
    assert.equal(loc.origin + loc.pathname, 'http://127.0.0.1:9/logout');
    assert.equal(loc.searchParams.get('post_logout_redirect_uri'), 'https://app.example/bye');
    assert.equal(loc.searchParams.get('id_token_hint'), null);
    const b = await send(new CookieJar(), `${e.harness.url}/any`, { method: 'POST', body: 'bye=1', headers: { ...nav, 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(b.status, 302);
    // not a logout: no trigger present → the code flow starts
    const none = await send(new CookieJar(), `${e.harness.url}/any`, { headers: nav });
    assert.ok(none.location!.startsWith('http://127.0.0.1:9/auth?'));
  });
});

describe('token endpoint answers at the callback (misbehaving in-test IdP)', () => {
  let idp: Server;
  let mode: 'html-503' | 'invalid-grant' = 'html-503';
  let e: Env;
  before(async () => {
    idp = createServer((req, res) => {
      req.resume();
      if (mode === 'html-503') res.writeHead(503, { 'content-type': 'text/html' }).end('<h1>Service Unavailable</h1>');
      else res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_grant' }));
    });
    await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
    const client = new oidc.Configuration({ issuer: base, authorization_endpoint: `${base}/auth`, token_endpoint: `${base}/token` }, 'kong', 'kong-secret');
    oidc.allowInsecureRequests(client);
    client.timeout = 2;
    e = await env({}, async () => client);
  });
  after(async () => {
    await e.flows.close();
    await e.harness.close();
    await new Promise<void>((r) => idp.close(() => r()));
  });

  async function callback(): Promise<number> {
    const jar = new CookieJar();
    const start = await send(jar, `${e.harness.url}/p`, { headers: { accept: 'application/json, text/html', 'sec-fetch-mode': 'navigate' } });
    const state = new URL(start.location!).searchParams.get('state')!;
    const r = await send(jar, `${e.harness.url}/p?code=abc&state=${encodeURIComponent(state)}`, { headers: { accept: 'application/json' } });
    assert.ok(!r.setCookies.some((c) => c.startsWith('session=')));
    return r.status;
  }

  it('an IdP outage (503 HTML) is unexpected: 500', async () => {
    mode = 'html-503';
    assert.equal(await callback(), 500);
  });

  it('an OAuth error (400 invalid_grant) is the person’s: 401', async () => {
    mode = 'invalid-grant';
    assert.equal(await callback(), 401);
  });
});
