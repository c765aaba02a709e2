/**
 * FAPI pieces of the authorization code flow against the demo IdP (oidc-provider with PAR, JAR and
 * JARM switched on): signed request objects (`require_signed_request_object`, RFC 9101) with the
 * client's `client_jwk` or the plugin-generated key, with and without PAR; the PAR endpoint's own
 * client authentication (`pushed_authorization_request_endpoint_auth_method`); JARM response
 * modes (`query.jwt`, `form_post.jwt`, `jwt`); and forged JARM responses from the misbehaving IdP
 * (bad signature, wrong aud, wrong iss, expired), none of which reaches the upstream. Finally
 * the whole of it (PAR + JAR + form_post.jwt) in Chromium through a real gateway.
 */
import http from 'node:http';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import type { JWK, JSONWebKeySet } from 'jose';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { chromium, type Browser } from 'playwright-core';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { relay } from './helpers/tcp-relay.ts';
import { CookieJar, MemoryKv, navigate, send, type Step, type UpstreamEcho } from './helpers/fake-ctx.ts';
import { baseConfig, setup, type Setup } from './helpers/oidc-browser-setup.ts';
import type { BrowserConfig } from '../src/plugins/bundled/openid-connect/browser/index.ts';
import { startBadIdp, startIdp, type BadIdp, type DemoIdp } from './helpers/idp.ts';
import { publicGeneratedJwks } from '../src/plugins/bundled/openid-connect/clients.ts';
import { oidcConfigSchema } from '../src/plugins/bundled/openid-connect/schema.ts';

const alex = { login: 'alex', password: 'doe' };
const nav = { accept: 'text/html', 'sec-fetch-mode': 'navigate' };

function echo(body: string): UpstreamEcho & { extra: Record<string, unknown> } {
  return JSON.parse(body) as UpstreamEcho & { extra: Record<string, unknown> };
}

/** A private RSA key as a `client_jwk` entry, and its public JWKS for the IdP's client record. */
async function clientKey(): Promise<{ jwk: JWK; jwks: JSONWebKeySet }> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = `jar-${Date.now().toString(36)}`;
  return {
    jwk: { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' },
    jwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }] },
  };
}

/** Records what reaches the IdP's PAR endpoint (headers and parsed body). */
function recordPar(s: Setup): { authorization: string | undefined; body: Record<string, unknown> }[] {
  const seen: { authorization: string | undefined; body: Record<string, unknown> }[] = [];
  s.idp.provider.on('pushed_authorization_request.success', (ctx: KoaContextWithOIDC) => {
    seen.push({ authorization: ctx.headers.authorization, body: { ...(ctx.oidc?.body ?? {}) } });
  });
  return seen;
}

const pkjClient = (jwk: JWK | null): BrowserConfig & Record<string, unknown> => ({
  ...baseConfig,
  client_id: ['kong-private-key-jwt'],
  client_secret: null,
  client_auth: ['private_key_jwt'],
  client_jwk: jwk ? [jwk] : null,
  login_action: 'redirect',
  login_tokens: null,
});

async function signIn(s: Setup, path: string): Promise<{ first: Step; steps: Step[] }> {
  const jar = new CookieJar();
  const first = await send(jar, `${s.harness.url}${path}`, { headers: nav });
  assert.equal(first.status, 302, first.body);
  const steps = await navigate(jar, first.location!, { credentials: alex });
  return { first, steps };
}

function assertSignedIn(s: Setup, steps: Step[], path: string): void {
  const last = steps.at(-1)!;
  assert.equal(last.url, `${s.harness.url}${path}`, steps.map((x) => `${x.status} ${x.url}`).join(' → '));
  assert.equal(last.status, 200, last.body);
  assert.equal(echo(last.body).extra.sub, 'alex');
}

describe('JAR: signed request objects (require_signed_request_object)', () => {
  it('without PAR: the browser carries only client_id and a request object signed with client_jwk', async () => {
    const key = await clientKey();
    const s = await setup({ ...pkjClient(key.jwk), require_signed_request_object: true }, { idp: { privateKeyJwtJwks: key.jwks, requestObjects: { requireSigned: true } } });
    try {
      const { first, steps } = await signIn(s, '/jar');
      const loc = new URL(first.location!);
      assert.equal(loc.origin + loc.pathname, `${s.idp.issuer}/auth`);
      assert.deepEqual([...loc.searchParams.keys()].sort(), ['client_id', 'request']);
      const request = loc.searchParams.get('request')!;
      assert.equal(decodeProtectedHeader(request).kid, key.jwk.kid);
      // Signed by the client's key (RFC 9101 §4), for this IdP, with the authorization parameters inside.
      const { payload } = await jwtVerify(request, createLocalJWKSet(key.jwks), { issuer: 'kong-private-key-jwt', audience: s.idp.issuer });
      assert.equal(payload.client_id, 'kong-private-key-jwt');
      assert.equal(payload.response_type, 'code');
      assert.equal(payload.redirect_uri, `${s.harness.url}/jar`);
      assert.equal(typeof payload.state, 'string');
      assert.equal(typeof payload.nonce, 'string');
      assert.equal(payload.code_challenge_method, 'S256');
      assertSignedIn(s, steps, '/jar');
    } finally {
      await s.close();
    }
  });

  it('with the plugin-generated key when there is no client_jwk (the IdP reads its public part)', async () => {
    const kv = new MemoryKv();
    // What GET /openid-connect/jwks publishes: the generated keys' public parts.
    const jwksServer = http.createServer((_req, res) => {
      publicGeneratedJwks(kv).then((jwks) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks ?? { keys: [] })), () => res.writeHead(500).end());
    });
    await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
    const jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;
    const s = await setup({ ...pkjClient(null), require_signed_request_object: true }, { kv, idp: { privateKeyJwtJwksUri: jwksUri, requestObjects: { requireSigned: true } } });
    try {
      const { first, steps } = await signIn(s, '/jar-generated');
      const request = new URL(first.location!).searchParams.get('request')!;
      const published = (await publicGeneratedJwks(kv))!;
      assert.equal(decodeProtectedHeader(request).kid, published.keys[0].kid);
      await jwtVerify(request, createLocalJWKSet(published), { issuer: 'kong-private-key-jwt', audience: s.idp.issuer });
      assertSignedIn(s, steps, '/jar-generated');
    } finally {
      await s.close();
      jwksServer.close();
      jwksServer.closeAllConnections();
    }
  });

  it('unset: follows the discovery document (require_signed_request_object: true there → JAR)', async () => {
    const key = await clientKey();
    const s = await setup({ ...pkjClient(key.jwk) }, { idp: { privateKeyJwtJwks: key.jwks, requestObjects: { requireSigned: true } } });
    try {
      const meta = (await (await fetch(`${s.idp.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
      assert.equal(meta.require_signed_request_object, true);
      const { first, steps } = await signIn(s, '/jar-discovered');
      assert.deepEqual([...new URL(first.location!).searchParams.keys()].sort(), ['client_id', 'request']);
      assertSignedIn(s, steps, '/jar-discovered');
    } finally {
      await s.close();
    }
  });

  it('an IdP that requires signed request objects refuses the plain request (the field is what makes it work)', async () => {
    const key = await clientKey();
    const s = await setup({ ...pkjClient(key.jwk), require_signed_request_object: false }, { idp: { privateKeyJwtJwks: key.jwks, requestObjects: { requireSigned: true } } });
    try {
      const { first, steps } = await signIn(s, '/nojar');
      assert.equal(new URL(first.location!).searchParams.get('request'), null);
      // The IdP sends the browser back with an error (RFC 6749 §4.1.2.1), which ends in a 401.
      const back = steps.find((x) => x.url.startsWith(`${s.harness.url}/nojar?`))!;
      assert.equal(new URL(back.url).searchParams.get('error'), 'invalid_request');
      assert.equal(steps.at(-1)!.status, 401);
    } finally {
      await s.close();
    }
  });

  it('a request object signed with a key the IdP does not know is refused by the IdP; no code comes back', async () => {
    const registered = await clientKey();
    const other = await clientKey();
    const s = await setup({ ...pkjClient(other.jwk), require_signed_request_object: true }, { idp: { privateKeyJwtJwks: registered.jwks, requestObjects: { requireSigned: true } } });
    try {
      const { steps } = await signIn(s, '/jar-wrong-key');
      const last = steps.at(-1)!;
      // The IdP cannot trust a redirect_uri it read from an unverified object: it answers itself.
      assert.ok(last.url.startsWith(s.idp.issuer), steps.map((x) => `${x.status} ${x.url}`).join(' → '));
      assert.equal(last.status, 400);
      assert.match(last.body, /invalid_request_object/);
      assert.equal(steps.filter((x) => x.url.startsWith(s.harness.url)).length, 0);
    } finally {
      await s.close();
    }
  });

  it('with PAR: the request object is pushed; the browser carries only client_id and request_uri', async () => {
    const key = await clientKey();
    const s = await setup(
      { ...pkjClient(key.jwk), require_signed_request_object: true, require_pushed_authorization_requests: true },
      { idp: { privateKeyJwtJwks: key.jwks, requestObjects: { requireSigned: true }, par: { required: true } } },
    );
    const pushed = recordPar(s);
    try {
      const { first, steps } = await signIn(s, '/par-jar');
      assert.deepEqual([...new URL(first.location!).searchParams.keys()].sort(), ['client_id', 'request_uri']);
      assert.equal(pushed.length, 1);
      const request = pushed[0].body.request;
      assert.equal(typeof request, 'string', 'a request object was pushed');
      const { payload } = await jwtVerify(request as string, createLocalJWKSet(key.jwks), { issuer: 'kong-private-key-jwt', audience: s.idp.issuer });
      assert.equal(payload.redirect_uri, `${s.harness.url}/par-jar`);
      // private_key_jwt on the PAR endpoint too (client_auth)
      assert.equal(pushed[0].body.client_assertion_type, 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
      assertSignedIn(s, steps, '/par-jar');
    } finally {
      await s.close();
    }
  });
});

describe('PAR client authentication (pushed_authorization_request_endpoint_auth_method)', () => {
  it('uses its own method at the PAR endpoint while the token endpoint keeps client_auth', async () => {
    const s = await setup({ ...baseConfig, require_pushed_authorization_requests: true, pushed_authorization_request_endpoint_auth_method: 'client_secret_basic', login_action: 'redirect', login_tokens: null });
    const pushed = recordPar(s);
    const tokenCalls: { authorization: string | undefined; secretInBody: boolean }[] = [];
    s.idp.provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
      tokenCalls.push({ authorization: ctx.headers.authorization, secretInBody: typeof ctx.oidc?.body?.client_secret === 'string' });
    });
    try {
      const { steps } = await signIn(s, '/par-basic');
      assertSignedIn(s, steps, '/par-basic');
      assert.equal(pushed.length, 1);
      assert.match(pushed[0].authorization ?? '', /^Basic /);
      assert.equal(pushed[0].body.client_secret, undefined);
      assert.equal(tokenCalls.length, 1);
      assert.equal(tokenCalls[0].authorization, undefined);
      assert.equal(tokenCalls[0].secretInBody, true);
    } finally {
      await s.close();
    }
  });

  it('falls back to token_endpoint_auth_method, then client_auth', async () => {
    const s = await setup({ ...baseConfig, require_pushed_authorization_requests: true, token_endpoint_auth_method: 'client_secret_basic', login_action: 'redirect', login_tokens: null });
    const pushed = recordPar(s);
    try {
      const { steps } = await signIn(s, '/par-fallback');
      assertSignedIn(s, steps, '/par-fallback');
      assert.match(pushed[0].authorization ?? '', /^Basic /);
    } finally {
      await s.close();
    }
    const s2 = await setup({ ...baseConfig, require_pushed_authorization_requests: true, login_action: 'redirect', login_tokens: null });
    const pushed2 = recordPar(s2);
    try {
      await signIn(s2, '/par-client-auth');
      assert.equal(pushed2[0].authorization, undefined);
      assert.equal(pushed2[0].body.client_secret, 'kong-secret');
    } finally {
      await s2.close();
    }
  });

  it('pushed_authorization_request_endpoint overrides the discovered PAR endpoint', async () => {
    const s = await setup({ ...baseConfig });
    // The IdP's own endpoint through a relay (a second gateway instance uses it): only a PAR
    // request sent to the configured URL goes through the relay.
    const via = relay(s.idp.port);
    const port = await via.start();
    const s2 = await setup({ ...baseConfig, issuer: s.idp.issuer, require_pushed_authorization_requests: true, pushed_authorization_request_endpoint: `http://127.0.0.1:${port}/request`, login_action: 'redirect', login_tokens: null });
    try {
      const { steps } = await signIn(s2, '/par-endpoint');
      assertSignedIn(s2, steps, '/par-endpoint');
      assert.equal(via.connections(), 1);
      assert.equal(s.idp.counts().par, 1);
    } finally {
      await s2.close();
      await via.stop();
      await s.close();
    }
  });

  it('a PAR method the IdP does not accept for the client is refused there: 401, no redirect to the IdP', async () => {
    const s = await setup({ ...baseConfig, require_pushed_authorization_requests: true, pushed_authorization_request_endpoint_auth_method: 'client_secret_jwt' });
    try {
      const r = await send(new CookieJar(), `${s.harness.url}/par-bad`, { headers: nav });
      assert.equal(r.status, 401);
      assert.equal(r.location, null);
      assert.equal(s.idp.counts().par, 1);
      assert.equal(s.idp.counts().authorization ?? 0, 0);
    } finally {
      await s.close();
    }
  });
});

describe('JARM response modes', () => {
  for (const mode of ['query.jwt', 'form_post.jwt', 'jwt'] as const) {
    it(`${mode}: the response JWT is verified and the sign-in completes`, async () => {
      const s = await setup({ ...baseConfig, response_mode: mode, login_action: 'redirect', login_tokens: null }, { idp: { jarm: true } });
      try {
        const { first, steps } = await signIn(s, `/jarm`);
        assert.equal(new URL(first.location!).searchParams.get('response_mode'), mode);
        const callback = steps.find((x) => x.url.startsWith(`${s.harness.url}/jarm`) && x.status === 302)!;
        assert.ok(callback, 'the callback came back to the gateway');
        if (mode === 'form_post.jwt') {
          assert.equal(new URL(callback.url).search, '');
        } else {
          const q = new URL(callback.url).searchParams;
          assert.deepEqual([...q.keys()], ['response'], 'only the response JWT in the query');
          const claims = decodeJwt(q.get('response')!);
          assert.equal(claims.iss, s.idp.issuer);
          assert.equal(claims.aud, 'kong');
          assert.equal(typeof claims.code, 'string');
        }
        assertSignedIn(s, steps, '/jarm');
      } finally {
        await s.close();
      }
    });
  }

  it('the fragment modes are refused at configuration time (the gateway never receives a fragment)', () => {
    for (const mode of ['fragment', 'fragment.jwt']) {
      const r = oidcConfigSchema.safeParse({ issuer: 'http://127.0.0.1:1', response_mode: mode });
      assert.equal(r.success, false);
      const issue = r.error!.issues.find((i) => i.path.join('.') === 'response_mode');
      assert.match(issue?.message ?? '', /the gateway never (sees|receives) a fragment/);
    }
    assert.equal(oidcConfigSchema.safeParse({ issuer: 'http://127.0.0.1:1', response_mode: 'query.jwt' }).success, true);
  });
});

describe('JARM bad input (misbehaving IdP)', () => {
  let bad: BadIdp;
  let s: Setup;
  before(async () => {
    bad = await startBadIdp();
    // The control case only counts the code exchange; its answer does not matter.
    bad.setTokenResponse({ status: 'unused' });
    s = await setup({ ...baseConfig, issuer: bad.issuer, response_mode: 'query.jwt' });
  });
  after(async () => {
    await s.close();
    await bad.close();
  });

  /** The sign-in with the bad IdP answering `forge(state)` as the JARM response. */
  async function callbackWith(forge: (state: string) => Promise<string>): Promise<Step[]> {
    bad.setAuthorizeResponse(async (params) => ({ response: await forge(params.get('state') ?? '') }));
    bad.resetCounts();
    return navigate(new CookieJar(), `${s.harness.url}/jarm-bad`);
  }

  const now = () => Math.floor(Date.now() / 1000);
  const cases: { name: string; forge: (state: string) => Promise<string> }[] = [
    { name: 'a signature by a key the IdP never published', forge: (state) => bad.sign({ aud: 'kong', state, code: 'c1' }, { key: 'other' }) },
    { name: 'a wrong aud', forge: (state) => bad.sign({ aud: 'someone-else', state, code: 'c2' }) },
    { name: 'a wrong iss', forge: (state) => bad.sign({ iss: 'https://evil.example', aud: 'kong', state, code: 'c3' }) },
    { name: 'an expired response', forge: (state) => bad.sign({ aud: 'kong', state, code: 'c4', iat: now() - 900, exp: now() - 600 }) },
    { name: 'no signature (alg none)', forge: async (state) => bad.unsigned({ aud: 'kong', state, code: 'c5' }) },
  ];
  for (const c of cases) {
    it(`${c.name}: 401, no code exchange, nothing upstream`, async () => {
      const steps = await callbackWith(c.forge);
      const last = steps.at(-1)!;
      assert.ok(last.url.startsWith(`${s.harness.url}/jarm-bad?response=`), steps.map((x) => `${x.status} ${x.url}`).join(' → '));
      assert.equal(last.status, 401);
      assert.match(last.body, /401 Unauthorized/);
      assert.doesNotMatch(last.body, /"url"/, 'not the echo upstream');
      assert.equal(bad.counts().token ?? 0, 0, 'the code was not exchanged');
    });
  }

  it('control: a well-formed response from the IdP gets to the code exchange', async () => {
    await callbackWith((state) => bad.sign({ aud: 'kong', state, code: 'good' }));
    assert.equal(bad.counts().token, 1);
    const sent = bad.requests().filter((r) => r.endpoint === 'token').at(-1)!;
    assert.equal(new URLSearchParams(sent.body).get('code'), 'good');
  });
});

// Under CI the browser is part of the machine: missing, the test fails.
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
describe('PAR + JAR + JARM in a real browser (Chromium) through the gateway', { skip: existsSync(chromiumPath) || process.env.CI === 'true' ? false : `no Chromium at ${chromiumPath}` }, () => {
  let browser: Browser;
  let idp: DemoIdp;
  let echoServer: EchoServer;
  let gw: TestGateway;
  let key: { jwk: JWK; jwks: JSONWebKeySet };
  const pushed: Record<string, unknown>[] = [];

  before(async () => {
    key = await clientKey();
    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    // The IdP requires all three: PAR, signed request objects, and accepts JWT responses.
    idp = await startIdp({ privateKeyJwtJwks: key.jwks, par: { required: true }, requestObjects: { requireSigned: true }, jarm: true });
    idp.provider.on('pushed_authorization_request.success', (ctx: KoaContextWithOIDC) => void pushed.push({ ...(ctx.oidc?.body ?? {}) }));
    echoServer = await startEcho();
    gw = await startGateway({
      config: {
        services: [{
          name: 'app', url: `http://127.0.0.1:${echoServer.port}/anything`,
          routes: [{ name: 'app', paths: ['/app'] }],
          plugins: [{
            name: 'openid-connect',
            config: {
              issuer: idp.issuer,
              client_id: ['kong-private-key-jwt'],
              client_auth: ['private_key_jwt'],
              client_jwk: [key.jwk],
              auth_methods: ['authorization_code', 'session'],
              scopes: ['openid', 'profile'],
              session_secret: 'jar-jarm-chromium-session-secret-0123456789',
              require_pushed_authorization_requests: true,
              require_signed_request_object: true,
              response_mode: 'form_post.jwt',
              login_action: 'redirect',
              login_tokens: null,
            },
          }],
        }],
      },
    });
  });
  after(async () => {
    await browser?.close();
    await gw?.close();
    await idp?.close();
    await echoServer?.close();
  });

  it('signs in: the request object is pushed, the JWT response is posted back and verified, the upstream gets the token', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const posted: string[] = [];
      page.on('request', (r) => {
        if (r.method() === 'POST' && r.url().startsWith(`${gw.proxyUrl}/app`)) posted.push(r.postData() ?? '');
      });
      await page.goto(`${gw.proxyUrl}/app/home`);
      assert.ok(page.url().startsWith(idp.issuer), `on the IdP: ${page.url()}`);
      await page.fill('input[name="login"]', 'alex');
      await page.fill('input[name="password"]', 'doe');
      await Promise.all([page.waitForURL(`${gw.proxyUrl}/app/home`), page.click('[type="submit"]')]);
      const echoed = JSON.parse((await page.textContent('body')) ?? '{}') as { path: string; headers: Record<string, string> };
      assert.equal(echoed.path, '/anything/home');
      const token = (echoed.headers.authorization ?? '').replace(/^Bearer /, '');
      assert.equal(decodeJwt(token).sub, 'alex');
      assert.equal(decodeJwt(token).iss, idp.issuer);
      // PAR carried a request object signed with client_jwk; the callback was a form post of one JWT.
      assert.equal(pushed.length, 1);
      await jwtVerify(pushed[0].request as string, createLocalJWKSet(key.jwks), { issuer: 'kong-private-key-jwt', audience: idp.issuer });
      assert.equal(posted.length, 1);
      const form = new URLSearchParams(posted[0]);
      assert.deepEqual([...form.keys()], ['response']);
      assert.equal(decodeJwt(form.get('response')!).aud, 'kong-private-key-jwt');
      // A reload is served from the session: no new sign-in.
      const before = idp.counts().par;
      await page.reload();
      assert.equal(page.url(), `${gw.proxyUrl}/app/home`);
      assert.equal(idp.counts().par, before);
    } finally {
      await context.close();
    }
  });
});
