/**
 * Browser-flow options each checked where a user meets them, against the demo IdP and the
 * plugin's whole access pipeline: the attributes of the session and authorization cookies
 * (`session_cookie_path/domain/secure`, `authorization_cookie_path/domain/secure`), the remember
 * cookie (`session_remember_cookie_name`, `session_remember_rolling_timeout`,
 * `session_remember_absolute_timeout`), `verify_nonce`, `authorization_query_args_client`,
 * `logout_revoke_access_token` / `logout_revoke_refresh_token`, `unauthorized_destroy_session`.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { CookieJar, navigate, send } from './helpers/fake-ctx.ts';
import { baseConfig, setup, type Setup } from './helpers/oidc-browser-setup.ts';

const alex = { login: 'alex', password: 'doe' };
const basic = { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}` };
const api = { accept: 'application/json' };
const nav = { accept: 'text/html', 'sec-fetch-mode': 'navigate' };

function attrs(setCookie: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of setCookie.split(';').slice(1)) {
    const [k, ...v] = part.trim().split('=');
    m.set(k.toLowerCase(), v.join('='));
  }
  return m;
}

async function withSetup(config: Record<string, unknown>, fn: (s: Setup) => Promise<void>, opts: Parameters<typeof setup>[1] = {}): Promise<void> {
  const s = await setup({ ...baseConfig, ...config }, opts);
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

describe('cookie attributes', () => {
  it('session_cookie_path, session_cookie_domain, session_cookie_secure', async () => {
    await withSetup({ session_cookie_path: '/app', session_cookie_domain: 'gw.example', session_cookie_secure: true }, async (s) => {
      const r = await send(new CookieJar(), `${s.harness.url}/app`, { headers: basic });
      const c = r.setCookies.find((x) => x.startsWith('session='))!;
      const a = attrs(c);
      assert.equal(a.get('path'), '/app');
      assert.equal(a.get('domain'), 'gw.example');
      assert.ok(a.has('secure'), 'Secure even over http when configured');
    });
    // Defaults: Path=/, no Domain, Secure follows the request scheme (http here).
    await withSetup({}, async (s) => {
      const r = await send(new CookieJar(), `${s.harness.url}/app`, { headers: basic });
      const a = attrs(r.setCookies.find((x) => x.startsWith('session='))!);
      assert.equal(a.get('path'), '/');
      assert.ok(!a.has('domain'));
      assert.ok(!a.has('secure'));
    });
  });

  it('authorization_cookie_path, authorization_cookie_domain, authorization_cookie_secure', async () => {
    await withSetup({ authorization_cookie_path: '/cb', authorization_cookie_domain: 'gw.example', authorization_cookie_secure: true }, async (s) => {
      const r = await send(new CookieJar(), `${s.harness.url}/app`, { headers: nav });
      assert.equal(r.status, 302);
      const c = r.setCookies.find((x) => x.startsWith('authorization'))!;
      assert.ok(c, r.setCookies.join(' | '));
      const a = attrs(c);
      assert.equal(a.get('path'), '/cb');
      assert.equal(a.get('domain'), 'gw.example');
      assert.ok(a.has('secure'));
    });
  });
});

describe('remember cookie', () => {
  it('session_remember_cookie_name and session_remember_rolling_timeout name and time the cookie; it restores an idle session', async () => {
    await withSetup({ session_remember: true, session_remember_cookie_name: 'keep-me', session_remember_rolling_timeout: 5000, session_idling_timeout: 60 }, async (s) => {
      const jar = new CookieJar();
      const r = await send(jar, `${s.harness.url}/login`, { headers: basic });
      const keep = r.setCookies.find((c) => c.startsWith('keep-me='));
      assert.ok(keep, r.setCookies.join(' | '));
      assert.equal(attrs(keep).get('max-age'), '5000');
      assert.ok(!r.setCookies.some((c) => c.startsWith('remember=')));
      s.clock.offsetMs = 120_000;
      assert.equal((await send(jar, `${s.harness.url}/x`, { headers: api })).status, 200, 'restored from keep-me');
      // past the remember rolling timeout nothing restores it
      // the cookie was renewed at 120 s: its rolling timeout ends at 5120 s
      s.clock.offsetMs = 5_300_000;
      const late = new CookieJar();
      late.store(s.harness.url, [`keep-me=${jar.get(s.harness.url, 'keep-me')}`]);
      assert.equal((await send(late, `${s.harness.url}/x`, { headers: api })).status, 401);
    });
  });

  it('session_remember_absolute_timeout ends a remembered session however often it is renewed', async () => {
    await withSetup({ session_remember: true, session_idling_timeout: 60, session_absolute_timeout: 100, session_remember_absolute_timeout: 300 }, async (s) => {
      const jar = new CookieJar();
      await send(jar, `${s.harness.url}/login`, { headers: basic });
      for (const t of [120, 240]) {
        s.clock.offsetMs = t * 1000;
        assert.equal((await send(jar, `${s.harness.url}/x`, { headers: api })).status, 200, `restored at ${t}s`);
      }
      s.clock.offsetMs = 310_000;
      assert.equal((await send(jar, `${s.harness.url}/x`, { headers: api })).status, 401, 'past the remember absolute timeout');
    });
  });
});

describe('authorization request', () => {
  it('verify_nonce: sent and checked by default; with false no nonce is sent and the sign-in still completes', async () => {
    await withSetup({}, async (s) => {
      const r = await send(new CookieJar(), `${s.harness.url}/app`, { headers: nav });
      assert.ok(new URL(r.location!).searchParams.get('nonce'));
    });
    await withSetup({ verify_nonce: false }, async (s) => {
      const r = await send(new CookieJar(), `${s.harness.url}/app`, { headers: nav });
      assert.equal(new URL(r.location!).searchParams.get('nonce'), null);
      const jar = new CookieJar();
      const steps = await navigate(jar, `${s.harness.url}/app`, { credentials: alex });
      assert.equal(steps.at(-1)!.status, 200);
      assert.ok(jar.get(s.harness.url, 'session'));
    });
  });

  it('authorization_query_args_client: named arguments of the request go to the authorization endpoint', async () => {
    await withSetup({ authorization_query_args_client: ['login_hint', 'ui_locales'] }, async (s) => {
      const r = await send(new CookieJar(), `${s.harness.url}/app?login_hint=alex&ui_locales=fr&other=1`, { headers: nav });
      const q = new URL(r.location!).searchParams;
      assert.equal(q.get('login_hint'), 'alex');
      assert.equal(q.get('ui_locales'), 'fr');
      assert.equal(q.get('other'), null);
    });
  });
});

describe('logout revocation', () => {
  for (const [which, config] of [
    ['access token only', { logout_revoke_refresh_token: false }],
    ['refresh token only', { logout_revoke_access_token: false }],
  ] as const) {
    it(`logout_revoke with ${which}`, async () => {
      await withSetup({ logout_uri_suffix: '/logout', logout_revoke: true, ...config }, async (s) => {
        const jar = new CookieJar();
        const login = await send(jar, `${s.harness.url}/login`, { headers: basic });
        const refresh = (JSON.parse(login.body) as { extra: { refresh_token: string } }).extra.refresh_token;
        assert.ok(refresh);
        s.idp.resetCounts();
        const out = await send(jar, `${s.harness.url}/logout`, { method: 'POST', headers: api });
        assert.ok(out.status < 400);
        assert.equal(s.idp.counts().revocation, 1);
        // The refresh token still works unless it was the one revoked.
        const client = await s.client();
        const refreshed = await oidc.refreshTokenGrant(client, refresh).then(() => true, () => false);
        assert.equal(refreshed, which === 'access token only');
      });
    });
  }
});

describe('unauthorized_destroy_session', () => {
  // max_age turns an opened session into a 401 once its authentication is too old.
  for (const destroy of [true, false]) {
    it(`${destroy}: a session refused with 401 is ${destroy ? 'ended' : 'kept'}`, async () => {
      await withSetup({ max_age: 60, unauthorized_destroy_session: destroy }, async (s) => {
        // The code flow (max_age is sent, so the ID token carries auth_time).
        const jar = new CookieJar();
        const steps = await navigate(jar, `${s.harness.url}/app`, { credentials: alex });
        assert.equal(steps.at(-1)!.status, 200);
        assert.equal((await send(jar, `${s.harness.url}/x`, { headers: api })).status, 200);
        s.clock.offsetMs = 120_000;
        const r = await send(jar, `${s.harness.url}/x`, { headers: api });
        assert.equal(r.status, 401);
        const cleared = r.setCookies.some((c) => c.startsWith('session=;') && c.includes('Max-Age=0'));
        assert.equal(cleared, destroy);
      });
    });
  }
});
