/**
 * `reverify` (the tokens of a session verified again on every request) and `jwt_session_cookie`
 * with `jwt_session_claim` (a JWT bearer token accepted only alongside the cookie whose value is
 * its claim), against demo IdPs and the plugin's whole access pipeline.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { CookieJar, send } from './helpers/fake-ctx.ts';
import { baseConfig, setup, type Setup } from './helpers/oidc-browser-setup.ts';

const basic = { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}` };
const api = { accept: 'application/json' };

describe('reverify', () => {
  // Two gateways sharing a session secret (and so able to open each other's cookies), each with
  // its own IdP: a session made with IdP 1 carries tokens IdP 2 never signed.
  let one: Setup;
  let trusting: Setup;
  let reverifying: Setup;
  before(async () => {
    one = await setup({ ...baseConfig });
    trusting = await setup({ ...baseConfig });
    reverifying = await setup({ ...baseConfig, reverify: true });
  });
  after(async () => {
    await one.close();
    await trusting.close();
    await reverifying.close();
  });

  async function sessionOfOne(): Promise<string> {
    const jar = new CookieJar();
    assert.equal((await send(jar, `${one.harness.url}/login`, { headers: basic })).status, 200);
    return jar.get(one.harness.url, 'session')!;
  }

  it('without reverify an opened session is trusted as it is', async () => {
    const jar = new CookieJar();
    jar.store(trusting.harness.url, [`session=${await sessionOfOne()}`]);
    assert.equal((await send(jar, `${trusting.harness.url}/x`, { headers: api })).status, 200);
  });

  it('with reverify, tokens that do not verify end the session: 401 and the cookie removed', async () => {
    const jar = new CookieJar();
    jar.store(reverifying.harness.url, [`session=${await sessionOfOne()}`]);
    const r = await send(jar, `${reverifying.harness.url}/x`, { headers: api });
    assert.equal(r.status, 401);
    assert.ok(r.setCookies.some((c) => c.startsWith('session=;') && c.includes('Max-Age=0')));
  });

  it("with reverify, a session of the gateway's own IdP keeps working, request after request", async () => {
    const jar = new CookieJar();
    assert.equal((await send(jar, `${reverifying.harness.url}/login`, { headers: basic })).status, 200);
    reverifying.idp.resetCounts();
    for (let i = 0; i < 3; i++) assert.equal((await send(jar, `${reverifying.harness.url}/x`, { headers: api })).status, 200);
    assert.equal(reverifying.idp.counts()['token:password'] ?? 0, 0, 'served by the session');
  });
});

describe('jwt_session_cookie / jwt_session_claim', () => {
  let s: Setup;
  let token = '';
  before(async () => {
    s = await setup({ ...baseConfig, auth_methods: ['password', 'bearer'], jwt_session_cookie: 'idp_session', jwt_session_claim: 'jti' });
  });
  after(() => s.close());

  const bearer = (cookie?: string) => ({ ...api, authorization: `Bearer ${token}`, ...(cookie !== undefined ? { cookie } : {}) });

  it("needs the cookie, with the token's claim as its value", async () => {
    // With `password` enabled too, a Basic login gets a token of this gateway's IdP.
    const own = await send(new CookieJar(), `${s.harness.url}/login`, { headers: basic });
    token = (JSON.parse(own.body) as { extra: { access_token: string } }).extra.access_token;
    const jti = String(decodeJwt(token).jti);
    assert.equal((await send(new CookieJar(), `${s.harness.url}/x`, { headers: bearer() })).status, 401, 'no cookie');
    const wrong = await send(new CookieJar(), `${s.harness.url}/x`, { headers: bearer('idp_session=another') });
    assert.equal(wrong.status, 401, 'another value');
    assert.match(wrong.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    assert.equal((await send(new CookieJar(), `${s.harness.url}/x`, { headers: bearer(`idp_session=${jti}`) })).status, 200, 'matching cookie');
    // the verified token is cached: the rule still applies to the cached path
    assert.equal((await send(new CookieJar(), `${s.harness.url}/x`, { headers: bearer('idp_session=x') })).status, 401);
  });

  it('jwt_session_claim defaults to sid: a token without that claim is refused', async () => {
    const d = await setup({ ...baseConfig, auth_methods: ['password', 'bearer'], jwt_session_cookie: 'idp_session' });
    try {
      const own = await send(new CookieJar(), `${d.harness.url}/login`, { headers: basic });
      const t = (JSON.parse(own.body) as { extra: { access_token: string } }).extra.access_token;
      assert.equal(decodeJwt(t).sid, undefined);
      const r = await send(new CookieJar(), `${d.harness.url}/x`, { headers: { ...api, authorization: `Bearer ${t}`, cookie: 'idp_session=anything' } });
      assert.equal(r.status, 401);
    } finally {
      await d.close();
    }
  });
});
