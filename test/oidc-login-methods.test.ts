/**
 * `login_methods` other than the code flow: `login_action` (response, redirect, upstream) with
 * `login_tokens`, `login_redirect_uri` (per client) and `login_redirect_mode`, applied after a
 * password-grant login, against the demo IdP and the plugin's whole access pipeline.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { CookieJar, send } from './helpers/fake-ctx.ts';
import { baseConfig, setup, type Setup } from './helpers/oidc-browser-setup.ts';

const basic = { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}` };
const api = { accept: 'application/json' };

describe('login_action: response for the password grant', () => {
  let s: Setup;
  before(async () => {
    s = await setup({ ...baseConfig, login_methods: ['password'], login_action: 'response', login_tokens: ['access_token', 'tokens'] });
  });
  after(() => s.close());

  it('answers with the login tokens instead of proxying; the session is started', async () => {
    const jar = new CookieJar();
    const r = await send(jar, `${s.harness.url}/app`, { headers: basic });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    const body = JSON.parse(r.body) as Record<string, unknown>;
    assert.equal(body.upstream, undefined, 'not proxied');
    assert.equal(decodeJwt(body.access_token as string).sub, 'alex');
    const tokens = body.tokens as Record<string, unknown>;
    assert.equal(tokens.access_token, body.access_token);
    assert.equal(String(tokens.token_type).toLowerCase(), 'bearer');
    assert.ok(jar.get(s.harness.url, 'session'), 'session cookie');
    // The session itself is not in login_methods: it goes upstream.
    const next = await send(jar, `${s.harness.url}/app`, { headers: api });
    assert.equal(next.status, 200);
    assert.equal((JSON.parse(next.body) as { upstream: boolean }).upstream, true);
  });
});

describe('login_action: redirect', () => {
  it('to login_redirect_uri, tokens in the query (login_redirect_mode: query)', async () => {
    const s = await setup({ ...baseConfig, login_methods: ['password'], login_action: 'redirect', login_tokens: ['access_token'], login_redirect_uri: ['https://app.example/done?x=1'], login_redirect_mode: 'query' });
    try {
      const r = await send(new CookieJar(), `${s.harness.url}/app`, { headers: basic });
      assert.equal(r.status, 302);
      const to = new URL(r.location!);
      assert.equal(`${to.origin}${to.pathname}`, 'https://app.example/done');
      assert.equal(to.searchParams.get('x'), '1');
      assert.equal(decodeJwt(to.searchParams.get('access_token')!).sub, 'alex');
      assert.equal(to.hash, '');
    } finally {
      await s.close();
    }
  });

  it('by default to the path asked for, tokens in the fragment (with preserve_query_args, the query kept)', async () => {
    const s = await setup({ ...baseConfig, login_methods: ['password'], login_action: 'redirect', login_tokens: ['access_token'], preserve_query_args: true });
    try {
      const r = await send(new CookieJar(), `${s.harness.url}/app/page?a=1`, { headers: basic });
      assert.equal(r.status, 302);
      const to = new URL(r.location!);
      assert.equal(to.pathname, '/app/page');
      assert.equal(to.search, '?a=1');
      const frag = new URLSearchParams(to.hash.slice(1));
      assert.equal(decodeJwt(frag.get('access_token')!).sub, 'alex');
    } finally {
      await s.close();
    }
  });
});

describe('methods not in login_methods', () => {
  it('go upstream whatever login_action says', async () => {
    const s = await setup({ ...baseConfig, login_methods: ['bearer', 'authorization_code'], login_action: 'response' });
    try {
      const r = await send(new CookieJar(), `${s.harness.url}/app`, { headers: basic });
      assert.equal(r.status, 200);
      assert.equal((JSON.parse(r.body) as { upstream: boolean }).upstream, true);
    } finally {
      await s.close();
    }
  });
});
