/**
 * `token_exchange` (RFC 8693, Kong 3.14+) through a real gateway to the echo upstream, against
 * two demo IdPs: `foreign` issues the subject tokens, `target` (the plugin's `issuer`) exchanges
 * them with its token-exchange grant. The misbehaving IdP forges subject tokens for the error
 * cases. IdP calls are counted at the IdPs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { testClient, type TestClient } from './helpers/http.ts';
import { demoAudience, startBadIdp, startIdp, type BadIdp, type DemoIdp } from './helpers/idp.ts';
import { relay } from './helpers/tcp-relay.ts';
import { oidcConfigSchema } from '../src/plugins/bundled/openid-connect/schema.ts';

const exchangeGrant = 'token:urn:ietf:params:oauth:grant-type:token-exchange';
const upstreamAudience = 'https://upstream.example';

/** An access token from `idp`'s password grant for the demo client `kong`. */
async function passwordToken(idp: DemoIdp, extra: Record<string, string> = {}): Promise<string> {
  const res = await fetch(`${idp.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username: 'alex', password: 'doe', client_id: 'kong', client_secret: 'kong-secret', scope: 'openid', ...extra }),
  });
  const body = (await res.json()) as { access_token?: string };
  assert.ok(body.access_token, JSON.stringify(body));
  return body.access_token;
}

describe('token_exchange', () => {
  let foreign: DemoIdp;
  let target: DemoIdp;
  let bad: BadIdp;
  let echo: EchoServer;
  let gw: TestGateway;
  let client: TestClient;
  let endpointRelay: ReturnType<typeof relay>;

  before(async () => {
    foreign = await startIdp();
    bad = await startBadIdp();
    target = await startIdp({ tokenExchange: { trusted: { [foreign.issuer]: foreign.jwks, [bad.issuer]: { keys: bad.jwks().keys } } } });
    echo = await startEcho();
    endpointRelay = relay(target.port);
    const relayPort = await endpointRelay.start();
    const base = { issuer: target.issuer, client_id: ['kong'], client_secret: ['kong-secret'], client_auth: ['client_secret_post'], auth_methods: ['bearer'] };
    const route = (name: string, config: Record<string, unknown>) => ({ name, paths: [`/${name}`], plugins: [{ name: 'openid-connect', config: { ...base, ...config } }] });
    gw = await startGateway({
      config: {
        services: [{
          name: 'echo', url: `http://127.0.0.1:${echo.port}`,
          routes: [
            route('foreign', { token_exchange: { subject_token_issuers: [{ issuer: foreign.issuer }], request: { audience: [upstreamAudience] } } }),
            route('nocache', { token_exchange: { subject_token_issuers: [{ issuer: foreign.issuer }], cache: { enabled: false } } }),
            route('nocache-legacy', { cache_token_exchange: false, token_exchange: { subject_token_issuers: [{ issuer: foreign.issuer }] } }),
            route('scopes', { token_exchange: { subject_token_issuers: [{ issuer: foreign.issuer }], request: { scopes: ['openid', 'email'] } } }),
            route('empty', { scopes: ['openid', 'email'], audience: [upstreamAudience], token_exchange: { subject_token_issuers: [{ issuer: foreign.issuer }], request: { empty_scopes: true, empty_audience: true } } }),
            route('own', {
              token_exchange: { subject_token_issuers: [{ issuer: target.issuer, conditions: { has_audience: [demoAudience], missing_scopes: ['email'] } }], request: { audience: [upstreamAudience] } },
            }),
            route('own2', {
              token_exchange: { subject_token_issuers: [{ issuer: target.issuer, conditions: { has_scopes: ['email'], missing_audience: ['https://elsewhere.example'] } }], request: { audience: [upstreamAudience] } },
            }),
            route('verified', { token_exchange: { subject_token_issuers: [{ issuer: bad.issuer, verify_signature: true }, { issuer: foreign.issuer, verify_signature: true }] } }),
            route('verified-jwks', { token_exchange: { subject_token_issuers: [{ issuer: bad.issuer, verify_signature: true, jwks_uri: `${bad.issuer}/jwks` }] } }),
            route('ttl0', { token_exchange: { subject_token_issuers: [{ issuer: foreign.issuer }], cache: { ttl: 0 } } }),
            route('unverified', { token_exchange: { subject_token_issuers: [{ issuer: bad.issuer }] } }),
            route('endpoint', { token_exchange_endpoint: `http://127.0.0.1:${relayPort}/token`, token_exchange: { subject_token_issuers: [{ issuer: foreign.issuer }] } }),
          ],
        }],
      },
    });
    client = testClient(() => gw.proxyUrl);
  });
  after(async () => {
    await client.close();
    await gw.close();
    await endpointRelay.stop();
    await echo.close();
    await target.close();
    await foreign.close();
    await bad.close();
  });

  const call = (path: string, token: string) => client.call(path, { headers: { authorization: `Bearer ${token}` } });
  const upstreamToken = (body: { headers: Record<string, string> }) => body.headers.authorization.replace(/^Bearer /, '');
  const exchanges = () => target.counts()[exchangeGrant] ?? 0;

  it('exchanges a token of another issuer; the upstream sees the exchanged token; the second request is a cache hit', async () => {
    const subject = await passwordToken(foreign);
    target.resetCounts();
    const first = await call('/foreign', subject);
    assert.equal(first.status, 200, first.text);
    const sent = upstreamToken(first.body);
    assert.notEqual(sent, subject);
    const claims = decodeJwt(sent);
    assert.equal(claims.iss, target.issuer);
    assert.equal(claims.aud, upstreamAudience);
    assert.equal(claims.sub, 'alex');
    assert.equal(exchanges(), 1);
    const counts = target.counts();
    const second = await call('/foreign', subject);
    assert.equal(second.status, 200);
    assert.equal(upstreamToken(second.body), sent);
    assert.deepEqual(target.counts(), counts, 'no IdP call at all for the second request');
  });

  it('token_exchange.cache.enabled=false and cache_token_exchange=false exchange on every request', async () => {
    const subject = await passwordToken(foreign);
    for (const path of ['/nocache', '/nocache-legacy']) {
      target.resetCounts();
      assert.equal((await call(path, subject)).status, 200);
      assert.equal((await call(path, subject)).status, 200);
      assert.equal(exchanges(), 2, path);
    }
  });

  it('request.scopes and request.audience are what is asked for; empty_scopes / empty_audience ask for none', async () => {
    const subject = await passwordToken(foreign);
    const scoped = decodeJwt(upstreamToken((await call('/scopes', subject)).body));
    assert.deepEqual(String(scoped.scope).split(' ').sort(), ['email', 'openid']);
    const empty = decodeJwt(upstreamToken((await call('/empty', subject)).body));
    // No audience asked for: the IdP's default resource; no scope asked for: none granted.
    assert.equal(empty.aud, demoAudience);
    assert.ok(!empty.scope, `no scope: ${String(empty.scope)}`);
  });

  it('tokens of the configured issuer are exchanged only when its conditions match', async () => {
    const matching = await passwordToken(target);
    const withEmail = await passwordToken(target, { scope: 'openid email' });
    const otherAudience = await passwordToken(target, { audience: 'https://elsewhere.example' });
    target.resetCounts();
    const r1 = await call('/own', matching);
    assert.equal(r1.status, 200);
    assert.equal(decodeJwt(upstreamToken(r1.body)).aud, upstreamAudience, 'exchanged');
    assert.equal(exchanges(), 1);
    for (const token of [withEmail, otherAudience]) {
      const r = await call('/own', token);
      assert.equal(r.status, 200);
      assert.equal(upstreamToken(r.body), token, 'not exchanged: the token itself goes upstream');
    }
    assert.equal(exchanges(), 1);
    // has_scopes / missing_audience
    const emailElsewhere = await passwordToken(target, { scope: 'openid email', audience: 'https://elsewhere.example' });
    target.resetCounts();
    assert.equal(decodeJwt(upstreamToken((await call('/own2', withEmail)).body)).aud, upstreamAudience, 'exchanged');
    for (const token of [matching, emailElsewhere]) assert.equal(upstreamToken((await call('/own2', token)).body), token);
    assert.equal(exchanges(), 1);
    // A foreign token on a route that does not list its issuer is not exchanged: it does not verify.
    const foreignToken = await passwordToken(foreign);
    assert.equal((await call('/own', foreignToken)).status, 401);
    assert.equal(exchanges(), 1);
  });

  it('verify_signature: a subject token signed by a key its issuer never published is refused, nothing is exchanged', async () => {
    target.resetCounts();
    const forged = await bad.sign({ sub: 'alex', aud: 'x' }, { key: 'other' });
    const r = await call('/verified', forged);
    assert.equal(r.status, 401);
    assert.match(String(r.headers['www-authenticate']), /error="invalid_token"/);
    assert.equal(exchanges(), 0);
    assert.equal(echo.received.filter((x) => x.headers.authorization === `Bearer ${forged}`).length, 0);
    // A good signature from the same issuer goes through (discovery + JWKS of that issuer).
    const good = await bad.sign({ sub: 'alex', aud: 'x' });
    assert.equal((await call('/verified', good)).status, 200);
    assert.equal(exchanges(), 1);
    assert.equal((await call('/verified', await passwordToken(foreign))).status, 200);
    // jwks_uri: the keys come from there (the bad IdP's discovery document is not asked).
    bad.resetCounts();
    assert.equal((await call('/verified-jwks', forged)).status, 401);
    assert.equal((await call('/verified-jwks', await bad.sign({ sub: 'alex', aud: 'y' }))).status, 200);
    assert.equal(bad.counts().discovery ?? 0, 0);
    assert.ok((bad.counts().jwks ?? 0) >= 1);
  });

  it('token_exchange.cache.ttl bounds the cache lifetime (0: nothing is kept)', async () => {
    const subject = await passwordToken(foreign);
    target.resetCounts();
    assert.equal((await call('/ttl0', subject)).status, 200);
    assert.equal((await call('/ttl0', subject)).status, 200);
    assert.equal(exchanges(), 2);
  });

  it('an expired subject token is refused without an exchange', async () => {
    target.resetCounts();
    const now = Math.floor(Date.now() / 1000);
    const expired = await bad.sign({ sub: 'alex', iat: now - 600, exp: now - 300 });
    const r = await call('/unverified', expired);
    assert.equal(r.status, 401);
    assert.equal(exchanges(), 0);
  });

  it('a refusal by the IdP is a 401; an IdP that cannot be reached is a 500', async () => {
    // Forged with a key the target IdP does not trust either: the IdP refuses the exchange.
    const forged = await bad.sign({ sub: 'alex' }, { key: 'other' });
    target.resetCounts();
    const refused = await call('/unverified', forged);
    assert.equal(refused.status, 401);
    assert.equal(exchanges(), 1);
    await endpointRelay.stop();
    try {
      const down = await call('/endpoint', await passwordToken(foreign));
      assert.equal(down.status, 500);
      assert.deepEqual(down.body, { message: 'An unexpected error occurred' });
    } finally {
      await endpointRelay.start();
    }
  });

  it('token_exchange_endpoint is where the exchange goes', async () => {
    const subject = await passwordToken(foreign);
    target.resetCounts();
    const r = await call('/endpoint', subject);
    assert.equal(r.status, 200, r.text);
    assert.equal(decodeJwt(upstreamToken(r.body)).iss, target.issuer);
    assert.equal(exchanges(), 1);
    assert.ok(endpointRelay.connections() > 0, 'the exchange went through the configured endpoint');
  });
});

describe('token_exchange configuration errors name the field', () => {
  const issues = (config: Record<string, unknown>) => {
    const r = oidcConfigSchema.safeParse({ issuer: 'https://idp.example', client_id: ['c'], ...config });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  it('refuses what would be ignored', () => {
    assert.deepEqual(issues({ token_exchange: { subject_token_issuers: [{ issuer: 'https://other.example' }] } }), []);
    assert.match(issues({ token_exchange_endpoint: 'https://idp.example/x' })[0], /^token_exchange_endpoint: .*set token_exchange/);
    assert.match(issues({ auth_methods: ['session'], token_exchange: { subject_token_issuers: [{ issuer: 'https://o' }] } })[0], /^token_exchange: .*bearer/);
    assert.match(issues({ client_id: null, token_exchange: { subject_token_issuers: [{ issuer: 'https://o' }] } })[0], /^token_exchange: needs client_id/);
    assert.match(issues({ token_exchange: { subject_token_issuers: [{ issuer: 'https://idp.example/' }] } })[0], /^token_exchange\.subject_token_issuers\.0\.conditions: required/);
    assert.match(issues({ token_exchange: { subject_token_issuers: [{ issuer: 'https://o', conditions: { has_scopes: ['a'] } }] } })[0], /^token_exchange\.subject_token_issuers\.0\.conditions: only for the configured issuer/);
    assert.match(issues({ token_exchange: { subject_token_issuers: [{ issuer: 'https://o', jwks_uri: 'https://o/jwks' }] } })[0], /jwks_uri: .*verify_signature/);
  });
});
