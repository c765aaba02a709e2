/**
 * openid-connect options against the controllable in-test IdP: credential locations and
 * hide_credentials, error display options, redirects, issuer forms, multi-IdP keys,
 * introspect_jwt_tokens, HS256 with enable_hs_signatures, leeway, pre-flight, and config errors.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { withGateway } from './helpers/gateway.ts';
import { startBadIdp } from './helpers/bad-idp.ts';
import type { BadIdp } from './helpers/bad-idp.ts';
import { startEcho } from '../demo/echo.ts';
import type { EchoServer } from '../demo/echo.ts';
import { oidcDeck } from './helpers/oidc-deck.ts';

let idp: BadIdp;
let other: BadIdp;
let echo: EchoServer;

before(async () => {
  idp = await startBadIdp();
  other = await startBadIdp();
  echo = await startEcho();
});
after(async () => {
  await echo.close();
  await other.close();
  await idp.close();
});

function deck(pluginConfig: string, issuer = idp.issuer): string {
  return oidcDeck(echo.url, issuer, pluginConfig);
}

type Echo = { headers: Record<string, string>; args: Record<string, string>; data: string };

test('bearer locations: access-token / x-access-token headers, form body, cookie; hide_credentials removes each', async () => {
  const token = await idp.sign({ sub: 'alex' });
  await withGateway(
    deck(`      auth_methods: [bearer]
      bearer_token_param_type: [header, body, cookie]
      bearer_token_cookie_name: at
      upstream_access_token_header: x-upstream-token
`),
    async (gw) => {
      for (const name of ['access-token', 'x-access-token']) {
        const r = await fetch(`${gw.proxyUrl}/api`, { headers: { [name]: token } });
        assert.equal(r.status, 200, name);
        const e = (await r.json()) as Echo;
        assert.equal(e.headers[name], undefined, `${name} removed`);
        assert.equal(e.headers['x-upstream-token'], token);
      }
      const body = await fetch(`${gw.proxyUrl}/api`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `access_token=${token}&keep=1` });
      assert.equal(body.status, 200);
      const eb = (await body.json()) as Echo;
      assert.equal(eb.data, 'keep=1');
      const cookie = await fetch(`${gw.proxyUrl}/api`, { headers: { cookie: `at=${token}; other=1` } });
      assert.equal(cookie.status, 200);
      assert.equal(((await cookie.json()) as Echo).headers.cookie, 'other=1');
    },
  );
});

test('hide_credentials: false keeps the credential; bearer_token_header_name restricts to one header', async () => {
  const token = await idp.sign({ sub: 'alex' });
  await withGateway(
    deck(`      auth_methods: [bearer]
      hide_credentials: false
      bearer_token_header_name: x-my-token
      upstream_access_token_header: null
`),
    async (gw) => {
      const r = await fetch(`${gw.proxyUrl}/api`, { headers: { 'x-my-token': token } });
      assert.equal(r.status, 200);
      const e = (await r.json()) as Echo;
      assert.equal(e.headers['x-my-token'], token);
      assert.equal(e.headers.authorization, undefined, 'upstream_access_token_header unset → no token header');
      const viaAuth = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(viaAuth.status, 401);
      await viaAuth.body?.cancel();
    },
  );
});

test('error options: expose_error_code false, display_errors, custom message, unauthorized_redirect_uri', async () => {
  const expired = await idp.sign({ sub: 'alex', exp: Math.floor(Date.now() / 1000) - 100 });
  await withGateway(deck(`      auth_methods: [bearer]\n      expose_error_code: false\n      unauthorized_error_message: Go away\n`), async (gw) => {
    const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${expired}` } });
    assert.equal(r.status, 401);
    assert.doesNotMatch(r.headers.get('www-authenticate') ?? '', /error=/);
    assert.deepEqual(await r.json(), { message: 'Go away' });
  });
  await withGateway(deck(`      auth_methods: [bearer]\n      display_errors: true\n`), async (gw) => {
    const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${expired}` } });
    assert.equal(r.status, 401);
    const body = (await r.json()) as { message: string; error_description?: string };
    assert.equal(body.message, 'Unauthorized');
    assert.equal(body.error_description, 'token expired');
    assert.match(r.headers.get('www-authenticate') ?? '', /error_description="token expired"/);
  });
  await withGateway(deck(`      auth_methods: [bearer]\n      unauthorized_redirect_uri: [https://login.example/]\n`), async (gw) => {
    const r = await fetch(`${gw.proxyUrl}/api`, { redirect: 'manual' });
    assert.equal(r.status, 302);
    assert.equal(r.headers.get('location'), 'https://login.example/');
    assert.equal(r.headers.get('cache-control'), 'no-store', 'a failure redirect is not cached, as in the browser flows');
    await r.body?.cancel();
  });
});

test('issuer as a full .well-known URL; multi-IdP with extra_jwks_uris + issuers_allowed', async () => {
  await withGateway(
    deck(`      auth_methods: [bearer]
      extra_jwks_uris: [${other.issuer}/jwks]
      issuers_allowed: [${idp.issuer}, ${other.issuer}]
`, `${idp.issuer}/.well-known/openid-configuration`),
    async (gw) => {
      for (const op of [idp, other]) {
        const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${await op.sign({ sub: 'x' })}` } });
        assert.equal(r.status, 200, op.issuer);
        await r.body?.cancel();
      }
      const third = await startBadIdp();
      try {
        const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${await third.sign({ sub: 'x' })}` } });
        assert.equal(r.status, 401);
        await r.body?.cancel();
      } finally {
        await third.close();
      }
    },
  );
});

test('an extra_jwks_uris set that cannot be loaded does not block the issuer\'s own tokens', async () => {
  await withGateway(
    deck(`      auth_methods: [bearer]
      extra_jwks_uris: [http://127.0.0.1:9/jwks, ${other.issuer}/jwks]
      issuers_allowed: [${idp.issuer}, ${other.issuer}]
`),
    async (gw) => {
      for (const op of [idp, other]) {
        const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${await op.sign({ sub: 'x', n: 3 })}` } });
        assert.equal(r.status, 200, op.issuer);
        await r.body?.cancel();
      }
    },
  );
});

test('introspect_jwt_tokens: a valid JWT reported inactive is refused', async () => {
  const token = await idp.sign({ sub: 'alex' });
  await withGateway(deck(`      auth_methods: [bearer]\n      introspect_jwt_tokens: true\n      client_id: [c]\n      client_secret: [s]\n`), async (gw) => {
    const r1 = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r1.status, 401, 'unknown to introspection → inactive');
    await r1.body?.cancel();
    const token2 = await idp.sign({ sub: 'alex', n: 2 });
    idp.setIntrospection(token2, { active: true, sub: 'alex' });
    const r2 = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${token2}` } });
    assert.equal(r2.status, 200);
    await r2.body?.cancel();
  });
});

test('HS256 tokens only with enable_hs_signatures (client secret as key); leeway', async () => {
  const secret = 'a-client-secret-that-is-long-enough-0123456789';
  const now = Math.floor(Date.now() / 1000);
  const hs = await new SignJWT({ sub: 'alex' }).setProtectedHeader({ alg: 'HS256' }).setIssuer(idp.issuer).setIssuedAt().setExpirationTime(now + 60).sign(new TextEncoder().encode(secret));
  const slightlyExpired = await idp.sign({ sub: 'alex', exp: now - 5 });
  await withGateway(deck(`      auth_methods: [bearer]\n      client_id: [c]\n      client_secret: [${secret}]\n`), async (gw) => {
    const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${hs}` } });
    assert.equal(r.status, 401);
    await r.body?.cancel();
  });
  await withGateway(deck(`      auth_methods: [bearer]\n      client_id: [c]\n      client_secret: [${secret}]\n      enable_hs_signatures: true\n      leeway: 30\n`), async (gw) => {
    for (const t of [hs, slightlyExpired]) {
      const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${t}` } });
      assert.equal(r.status, 200);
      await r.body?.cancel();
    }
  });
});

test('enable_hs_signatures with several clients: a token signed with one client\'s secret is not accepted for another (not even once cached)', async () => {
  const secrets = ['first-client-secret-long-enough-0123456789', 'second-client-secret-long-enough-0123456789'];
  const now = Math.floor(Date.now() / 1000);
  const forSecond = await new SignJWT({ sub: 'alex' }).setProtectedHeader({ alg: 'HS256' }).setIssuer(idp.issuer).setIssuedAt().setExpirationTime(now + 60).sign(new TextEncoder().encode(secrets[1]));
  await withGateway(deck(`      auth_methods: [bearer]\n      client_id: [one, two]\n      client_secret: [${secrets[0]}, ${secrets[1]}]\n      enable_hs_signatures: true\n`), async (gw) => {
    const status = async (query: string) => {
      const r = await fetch(`${gw.proxyUrl}/api${query}`, { headers: { authorization: `Bearer ${forSecond}` } });
      await r.body?.cancel();
      return r.status;
    };
    assert.equal(await status('?client_id=two'), 200, 'verified with the selected client\'s secret');
    assert.equal(await status('?client_id=two'), 200);
    assert.equal(await status(''), 401, 'the first client (default) does not share that secret');
    assert.equal(await status('?client_id=one'), 401);
  });
});

test('run_on_preflight: false lets OPTIONS through unauthenticated', async () => {
  await withGateway(deck(`      auth_methods: [bearer]\n      run_on_preflight: false\n`), async (gw) => {
    const r = await fetch(`${gw.proxyUrl}/api`, { method: 'OPTIONS' });
    assert.equal(r.status, 200);
    await r.body?.cancel();
    const g = await fetch(`${gw.proxyUrl}/api`);
    assert.equal(g.status, 401);
    await g.body?.cancel();
  });
});

test('a config the plugin cannot serve (DPoP with a method proof of possession does not cover) is refused on reload, naming the field', async () => {
  await withGateway(deck(`      auth_methods: [bearer]\n`), async (gw) => {
    assert.equal(await gw.reload(deck(`      auth_methods: [bearer, password]\n      proof_of_possession_dpop: strict\n`)), false);
    assert.match(gw.logText(), /auth_methods\[1\]: password cannot be used with proof_of_possession_dpop/);
  });
});

test('downstream headers reach the client; upstream_headers maps nested claims; spoofed copies are removed', async () => {
  const token = await idp.sign({ sub: 'alex', user: { org: { id: 'org-7' } } });
  await withGateway(
    deck(`      auth_methods: [bearer]
      downstream_access_token_header: x-access-token-out
      downstream_headers_claims: [sub]
      downstream_headers_names: [x-user-out]
      upstream_headers:
        - header: x-org
          path: [user, org, id]
        - header: x-missing
          path: [nope]
`),
    async (gw) => {
      const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${token}`, 'x-org': 'spoofed', 'x-missing': 'spoofed' } });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-access-token-out'), token);
      assert.equal(r.headers.get('x-user-out'), 'alex');
      const e = (await r.json()) as Echo;
      assert.equal(e.headers['x-org'], 'org-7');
      assert.equal(e.headers['x-missing'], undefined, 'a missing claim means no header, even if the client sent one');
    },
  );
});

test('password credentials from the query or a JSON body (password_param_type); hidden from the upstream', async () => {
  const at = await idp.sign({ sub: 'alex' });
  idp.setTokenResponse((form) => (form.get('username') === 'alex' && form.get('password') === 'doe' ? { status: 200, body: { access_token: at, token_type: 'Bearer', expires_in: 60 } } : { status: 400, body: { error: 'invalid_grant' } }));
  await withGateway(deck(`      auth_methods: [password]\n      password_param_type: [query, body]\n      client_id: [c]\n      client_secret: [s]\n`), async (gw) => {
    const q = await fetch(`${gw.proxyUrl}/api?username=alex&password=doe&x=1`);
    assert.equal(q.status, 200);
    const eq = (await q.json()) as Echo;
    assert.deepEqual(eq.args, { x: '1' });
    const b = await fetch(`${gw.proxyUrl}/api`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alex', password: 'doe', keep: true }) });
    assert.equal(b.status, 200);
    const eb = (await b.json()) as Echo;
    assert.deepEqual(JSON.parse(eb.data), { keep: true });
    const basic = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}` } });
    assert.equal(basic.status, 401, 'header is not among password_param_type');
    await basic.body?.cancel();
  });
});

test('a minimal config (issuer only, every method enabled) loads and serves', async () => {
  await withGateway(deck(''), async (gw) => {
    const none = await fetch(`${gw.proxyUrl}/api`, { headers: { accept: 'application/json' } });
    assert.equal(none.status, 401);
    await none.body?.cancel();
    const ok = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${await idp.sign({ sub: 'a' })}` } });
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
  });
});

test('the realm in WWW-Authenticate comes from the Host header but cannot add challenge parameters', async () => {
  const { request } = await import('node:http');
  await withGateway(deck(`      auth_methods: [bearer]\n`), async (gw) => {
    const challenge = await new Promise<string>((resolve, reject) => {
      const req = request(`${gw.proxyUrl}/api`, { headers: { host: 'evil", error="spoofed', authorization: 'Bearer abc.def.ghi' } }, (res) => {
        res.resume();
        resolve(String(res.headers['www-authenticate']));
      });
      req.on('error', reject);
      req.end();
    });
    // One realm, one error: the client's quote is escaped inside the quoted-string (RFC 9110 §5.6.4).
    assert.equal(challenge, 'Bearer realm="evil\\", error=\\"spoofed", error="invalid_token"');
  });
});

test('claim values beyond ASCII go to the upstream and the client as UTF-8 bytes (no 502)', async () => {
  const name = 'Łukasz 张伟';
  const token = await idp.sign({ sub: 'alex', name, groups: ['Łódź', 'b'] });
  await withGateway(deck(`      auth_methods: [bearer]
      upstream_headers_claims: [name, groups]
      upstream_headers_names: [x-name, x-groups]
      downstream_headers_claims: [name]
      downstream_headers_names: [x-name]
`), async (gw) => {
    const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200);
    const seen = ((await r.json()) as { headers: Record<string, string> }).headers;
    // node:http hands header bytes over as latin1 text: decode them as UTF-8.
    const utf8 = (v: string | null | undefined) => Buffer.from(v ?? '', 'latin1').toString('utf8');
    assert.equal(utf8(seen['x-name']), name);
    assert.equal(utf8(seen['x-groups']), 'Łódź, b');
    assert.equal(utf8(r.headers.get('x-name')), name);
  });
});

test('issuer configured with a trailing slash the IdP does not write (or the other way round): the same issuer', async () => {
  const { createServer } = await import('node:http');
  const { exportJWK, generateKeyPair } = await import('jose');
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  let base = '';
  // A Keycloak-like provider: the issuer has a path, written without a trailing slash.
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const realm = `${base}/realms/demo`;
    const body = path === '/realms/demo/.well-known/openid-configuration'
      ? { issuer: realm, jwks_uri: `${realm}/certs`, token_endpoint: `${realm}/token`, authorization_endpoint: `${realm}/auth`, response_types_supported: ['code'] }
      : path === '/realms/demo/certs' ? { keys: [jwk] } : null;
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(body ?? {}));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    const token = await new SignJWT({ sub: 'alex' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(`${base}/realms/demo`).setIssuedAt().setExpirationTime('5m').sign(privateKey);
    for (const issuer of [`${base}/realms/demo/`, `${base}/realms/demo`]) {
      await withGateway(oidcDeck(echo.url, issuer, '      auth_methods: [bearer]\n'), async (gw) => {
        const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(r.status, 200, `${issuer}: ${await r.text()}`);
      });
    }
    // Any other difference is still a mismatch (500 "An unexpected error occurred").
    await withGateway(oidcDeck(echo.url, `${base}/realms/demo/x/../`, '      auth_methods: [bearer]\n'), async (gw) => {
      const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, 500);
      await r.body?.cancel();
    });
  } finally {
    server.close();
  }
});
