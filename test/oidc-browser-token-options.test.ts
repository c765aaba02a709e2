/**
 * The browser flows' IdP calls take every token request and user info option of openid-connect,
 * as the API grants do (steps/token-request.ts), against the demo OpenID Provider (oidc-provider)
 * and the plugin's whole access pipeline:
 *
 * - the code exchange at the callback and the refresh of a session's tokens carry
 *   `token_post_args_names`/`_values`/`_client` and `token_headers_names`/`_values`/`_client`;
 * - `token_headers_replay` + `token_headers_prefix`: the token endpoint's response headers reach
 *   the callback's response (`authorization_code`) and the response to a session request whose
 *   tokens were refreshed (`refresh_token`), as `token_headers_grants` says (every grant when unset);
 * - `search_user_info` at sign-in with `userinfo_accept: application/jwt` (and
 *   `userinfo_headers_*`): the signed user info is asked for, verified, and its JWT goes upstream
 *   (`upstream_user_info_jwt_header`) on the callback and on later session requests.
 *
 * The IdP's token and user info endpoints are reached through a recording reverse proxy (the
 * plugin's `token_endpoint` / `userinfo_endpoint`): it keeps each request as sent and adds two
 * headers to each answer (`x-ratelimit-remaining: 41`, `x-other: no`).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { CookieJar, navigate, send, type Step } from './helpers/fake-ctx.ts';
import { baseConfig, setup, type Setup } from './helpers/oidc-browser-setup.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { startIdp } from './helpers/idp.ts';
import { oidcDeck } from './helpers/oidc-deck.ts';
import { startEcho } from '../demo/echo.ts';

const alex = { login: 'alex', password: 'doe' };
const api = { accept: 'application/json' };

interface Recorded {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Recorder {
  url: string;
  /** Where requests are forwarded (the IdP's origin), set once the IdP runs. */
  target: string;
  readonly seen: Recorded[];
  close(): Promise<void>;
}

const hopByHop = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive', 'content-encoding']);

async function startRecorder(): Promise<Recorder> {
  const seen: Recorded[] = [];
  const rec: Recorder = { url: '', target: '', seen, close: async () => {} };
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString();
    seen.push({ method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !hopByHop.has(k)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    const r = await fetch(`${rec.target}${req.url}`, { method: req.method, headers, body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body, redirect: 'manual' });
    const out: Record<string, string> = {};
    r.headers.forEach((v, k) => {
      if (!hopByHop.has(k)) out[k] = v;
    });
    out['x-ratelimit-remaining'] = '41';
    out['x-other'] = 'no';
    res.writeHead(r.status, out).end(Buffer.from(await r.arrayBuffer()));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  rec.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  rec.close = () => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  });
  return rec;
}

/** The plugin with its token (and user info) endpoint behind the recorder. */
async function start(config: Record<string, unknown>, opts: Parameters<typeof setup>[1] = {}): Promise<{ s: Setup; rec: Recorder; close(): Promise<void> }> {
  const rec = await startRecorder();
  let s: Setup;
  try {
    s = await setup({ ...baseConfig, token_endpoint: `${rec.url}/token`, userinfo_endpoint: `${rec.url}/me`, ...config }, { idp: { accessTokenTtl: 300 }, ...opts });
  } catch (err) {
    await rec.close();
    throw err;
  }
  rec.target = s.idp.issuer;
  return { s, rec, close: async () => { await s.close(); await rec.close(); } };
}

/** The token requests of one grant the recorder saw, as forms. */
function tokenRequests(rec: Recorder, grant: string): Array<{ form: URLSearchParams; headers: IncomingHttpHeaders }> {
  return rec.seen
    .filter((r) => r.path === '/token')
    .map((r) => ({ form: new URLSearchParams(r.body), headers: r.headers }))
    .filter((r) => r.form.get('grant_type') === grant);
}

/** Sign in through the IdP; the step that was the callback (code and state in its query). */
async function signIn(s: Setup, jar: CookieJar, headers: Record<string, string> = {}): Promise<{ steps: Step[]; callback: Step }> {
  const steps = await navigate(jar, `${s.harness.url}/app`, { credentials: alex, originHeaders: { origin: s.harness.url, headers } });
  const callback = steps.find((st) => st.url.startsWith(s.harness.url) && new URL(st.url).searchParams.has('code'));
  assert.ok(callback, `no callback in ${steps.map((st) => `${st.status} ${st.url}`).join(' → ')}`);
  return { steps, callback };
}

function echoOf(step: Step): { headers: Record<string, string>; extra: Record<string, unknown> } {
  return JSON.parse(step.body) as { headers: Record<string, string>; extra: Record<string, unknown> };
}

/** A session request after the access token expired (the plugin's clock moved on): the session is refreshed. */
async function refreshed(s: Setup, jar: CookieJar, headers: Record<string, string> = {}): Promise<Step> {
  s.clock.offsetMs += 400_000;
  const r = await send(jar, `${s.harness.url}/x`, { headers: { ...api, ...headers } });
  assert.equal(r.status, 200, r.body);
  return r;
}

describe('token request options on the code exchange and the session refresh', () => {
  let env: Awaited<ReturnType<typeof start>>;
  before(async () => {
    env = await start({
      token_post_args_names: ['tenant'],
      token_post_args_values: ['acme'],
      token_post_args_client: ['x-region'],
      token_headers_names: ['x-api-key'],
      token_headers_values: ['k-1'],
      token_headers_client: ['x-trace'],
    });
  });
  after(() => env.close());

  it('the code exchange carries the fixed and the client-sent arguments and headers', async () => {
    const jar = new CookieJar();
    const { callback } = await signIn(env.s, jar, { 'x-trace': 't-1', 'x-region': 'eu' });
    assert.equal(callback.status, 200, callback.body);
    assert.equal(echoOf(callback).extra.sub, 'alex');
    const [exchange] = tokenRequests(env.rec, 'authorization_code');
    assert.ok(exchange, 'the code exchange went through the recorder');
    // token_post_args_names/values, and token_post_args_client (found in a header of the callback request)
    assert.equal(exchange.form.get('tenant'), 'acme');
    assert.equal(exchange.form.get('x-region'), 'eu');
    assert.ok(exchange.form.get('code'));
    // token_headers_names/values and token_headers_client
    assert.equal(exchange.headers['x-api-key'], 'k-1');
    assert.equal(exchange.headers['x-trace'], 't-1');
  });

  it('the session refresh carries them too (from the request that needed the refresh)', async () => {
    env.s.clock.offsetMs = 0;
    const jar = new CookieJar();
    await signIn(env.s, jar);
    const before = tokenRequests(env.rec, 'refresh_token').length;
    const r = await refreshed(env.s, jar, { 'x-trace': 't-2', 'x-region': 'us' });
    assert.equal(echoOf(r).extra.sub, 'alex');
    const refreshes = tokenRequests(env.rec, 'refresh_token');
    assert.equal(refreshes.length, before + 1);
    const refresh = refreshes.at(-1)!;
    assert.ok(refresh.form.get('refresh_token'));
    assert.equal(refresh.form.get('tenant'), 'acme');
    assert.equal(refresh.form.get('x-region'), 'us');
    assert.equal(refresh.headers['x-api-key'], 'k-1');
    assert.equal(refresh.headers['x-trace'], 't-2');
  });
});

describe('token_headers_replay on the browser flows', () => {
  const replayed = (st: Step) => st.headers.get('x-idp-x-ratelimit-remaining');
  const cases: Array<{ grants: string[] | null; onCallback: boolean; onRefresh: boolean }> = [
    { grants: ['authorization_code'], onCallback: true, onRefresh: false },
    { grants: ['refresh_token', 'password'], onCallback: false, onRefresh: true },
    { grants: null, onCallback: true, onRefresh: true },
  ];
  for (const c of cases) {
    it(`token_headers_grants ${c.grants ? JSON.stringify(c.grants) : 'unset'}: callback ${c.onCallback ? 'replays' : 'does not'}, refresh ${c.onRefresh ? 'replays' : 'does not'}`, async () => {
      const env = await start({
        token_headers_replay: ['x-ratelimit-remaining'],
        token_headers_prefix: 'x-idp-',
        ...(c.grants ? { token_headers_grants: c.grants } : {}),
      });
      try {
        const jar = new CookieJar();
        const { callback } = await signIn(env.s, jar);
        assert.equal(callback.status, 200, callback.body);
        assert.equal(replayed(callback), c.onCallback ? '41' : null);
        // Only the named headers are replayed.
        assert.equal(callback.headers.get('x-idp-x-other'), null);
        assert.equal(callback.headers.get('x-ratelimit-remaining'), null, 'never without the prefix');
        // A session request with no refresh due: nothing to replay.
        const quiet = await send(jar, `${env.s.harness.url}/x`, { headers: api });
        assert.equal(quiet.status, 200);
        assert.equal(replayed(quiet), null);
        const r = await refreshed(env.s, jar);
        assert.equal(tokenRequests(env.rec, 'refresh_token').length, 1);
        assert.equal(replayed(r), c.onRefresh ? '41' : null);
      } finally {
        await env.close();
      }
    });
  }

  it('on a callback answered by the gateway itself (login_action: redirect)', async () => {
    const env = await start({ token_headers_replay: ['x-ratelimit-remaining'], token_headers_prefix: 'x-idp-', token_headers_grants: ['authorization_code'], login_action: 'redirect' });
    try {
      const { callback, steps } = await signIn(env.s, new CookieJar());
      assert.equal(callback.status, 302);
      assert.equal(replayed(callback), '41');
      // The redirect leads back to the page first asked for, now in a session.
      assert.equal(steps.at(-1)!.status, 200);
      assert.equal(replayed(steps.at(-1)!), null);
    } finally {
      await env.close();
    }
  });
});

describe('search_user_info at sign-in with userinfo_accept: application/jwt', () => {
  const signed = { client_id: 'kong-signed-userinfo', client_secret: 'kong-signed-userinfo-secret' };
  let env: Awaited<ReturnType<typeof start>>;
  before(async () => {
    env = await start({
      client_id: [signed.client_id],
      client_secret: [signed.client_secret],
      scopes: ['openid', 'email'],
      search_user_info: true,
      userinfo_accept: 'application/jwt',
      userinfo_headers_names: ['x-userinfo-key'],
      userinfo_headers_values: ['u-1'],
      upstream_user_info_jwt_header: 'x-userinfo-jwt',
    }, {
      idp: {
        accessTokenTtl: 300,
        // Not one of the demo's JWT-access-token clients: oidc-provider answers user info itself, signed.
        extraClients: [{
          ...signed,
          redirect_uris: ['http://127.0.0.1/callback'],
          response_types: ['code'],
          grant_types: ['authorization_code', 'refresh_token'],
          token_endpoint_auth_method: 'client_secret_post',
          userinfo_signed_response_alg: 'RS256',
        }],
      },
    });
  });
  after(() => env.close());

  it('asks for the signed user info with the user info options, verifies it and forwards the JWT', async () => {
    const jar = new CookieJar();
    const { callback } = await signIn(env.s, jar);
    assert.equal(callback.status, 200, callback.body);
    const calls = env.rec.seen.filter((r) => r.path.startsWith('/me'));
    assert.equal(calls.length, 1);
    assert.equal(calls[0].headers.accept, 'application/jwt');
    assert.equal(calls[0].headers['x-userinfo-key'], 'u-1');
    const echo = echoOf(callback);
    const jwt = echo.headers['x-userinfo-jwt'];
    assert.ok(jwt, 'the user info JWT goes upstream on the callback');
    assert.equal(decodeProtectedHeader(jwt).alg, 'RS256');
    assert.equal(decodeJwt(jwt).sub, 'alex');
    assert.equal(decodeJwt(jwt).iss, env.s.idp.issuer);
    const info = echo.extra.userinfo as Record<string, unknown>;
    assert.equal(info.sub, 'alex');
    assert.equal(typeof info.email, 'string');
    // Later requests of the session: the claims and the JWT from the session, no new user info call.
    const later = await send(jar, `${env.s.harness.url}/x`, { headers: api });
    assert.equal(later.status, 200);
    assert.equal(echoOf(later).headers['x-userinfo-jwt'], jwt);
    assert.equal((echoOf(later).extra.userinfo as Record<string, unknown>).sub, 'alex');
    assert.equal(env.rec.seen.filter((r) => r.path.startsWith('/me')).length, 1);
  });
});

describe('through the gateway', () => {
  it('the callback\'s proxied response carries the replayed headers; the code exchange the extra arguments and headers', async () => {
    const idp = await startIdp();
    const echo = await startEcho();
    const rec = await startRecorder();
    rec.target = idp.issuer;
    let gw: TestGateway | null = null;
    try {
      gw = await startGateway({
        config: oidcDeck(echo.url, idp.issuer, `      client_id: [kong]
      client_secret: [kong-secret]
      client_auth: [client_secret_post]
      auth_methods: [session, authorization_code]
      session_secret: a-long-enough-session-secret-for-tests-0123456789
      token_endpoint: ${rec.url}/token
      token_post_args_names: [tenant]
      token_post_args_values: [acme]
      token_headers_client: [x-trace]
      token_headers_replay: [x-ratelimit-remaining]
      token_headers_prefix: x-idp-
      token_headers_grants: [authorization_code]
`),
      });
      const proxy = gw.proxyUrl;
      const jar = new CookieJar();
      const steps = await navigate(jar, `${proxy}/api/page`, { credentials: alex, originHeaders: { origin: proxy, headers: { 'x-trace': 't-gw' } } });
      const callback = steps.find((st) => st.url.startsWith(proxy) && new URL(st.url).searchParams.has('code'));
      assert.ok(callback, `no callback in ${steps.map((st) => `${st.status} ${st.url}`).join(' → ')}`);
      assert.equal(callback.status, 200, callback.body);
      assert.equal(callback.headers.get('x-idp-x-ratelimit-remaining'), '41');
      assert.equal(callback.headers.get('x-idp-x-other'), null);
      const [exchange] = tokenRequests(rec, 'authorization_code');
      assert.equal(exchange.form.get('tenant'), 'acme');
      assert.equal(exchange.headers['x-trace'], 't-gw');
      // The next request of the session: no token call, nothing replayed.
      const later = await send(jar, `${proxy}/api/page`, { headers: api });
      assert.equal(later.status, 200);
      assert.equal(later.headers.get('x-idp-x-ratelimit-remaining'), null);
    } finally {
      await gw?.close();
      await rec.close();
      await echo.close();
      await idp.close();
    }
  });
});
