/**
 * The token-side openid-connect fields against the in-test IdP (every answer under the test's
 * control, every request recorded): JWT-formatted introspection and user info responses
 * (`introspection_accept`, `userinfo_accept`) and their `*_jwt_header`s,
 * `introspection_token_param_name`, `userinfo_query_args_*`, the `*_jwk_header`s,
 * `id_token_param_name`, `verify_signature`, `verify_parameters`, `token_headers_replay` /
 * `token_headers_prefix` / `token_headers_grants`, `revocation_token_param_name` and
 * `revocation_endpoint_auth_method`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { withGateway } from './helpers/gateway.ts';
import type { TestGateway } from './helpers/gateway.ts';
import { startBadIdp } from './helpers/bad-idp.ts';
import { oidcDeck } from './helpers/oidc-deck.ts';
import { idpEchoSuite } from './helpers/idp.ts';
import { oidcConfigSchema } from '../src/plugins/bundled/openid-connect/schema.ts';

const env = idpEchoSuite(startBadIdp);

function deck(pluginConfig: string): string {
  return oidcDeck(env.echo.url, env.idp.issuer, `      client_id: [gw-client]\n      client_secret: [gw-secret]\n${pluginConfig}`);
}

type Echo = { headers: Record<string, string>; url: string };
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const last = (endpoint: string) => [...env.idp.requests()].reverse().find((r) => r.endpoint === endpoint)!;
const now = () => Math.floor(Date.now() / 1000);
const b64json = (v: string) => JSON.parse(Buffer.from(v, 'base64').toString('utf8')) as Record<string, unknown>;

async function get(gw: TestGateway, path: string, headers: Record<string, string>): Promise<{ status: number; headers: Headers; echo: Echo | null }> {
  const r = await fetch(`${gw.proxyUrl}${path}`, { headers });
  const text = await r.text();
  return { status: r.status, headers: r.headers, echo: r.status === 200 ? (JSON.parse(text) as Echo) : null };
}

test('introspection_accept application/token-introspection+jwt (RFC 9701) with introspection_token_param_name: verified, claims used, JWT in the *_introspection_jwt_header', async () => {
  let signer: 'current' | 'other' = 'current';
  // The responder is synchronous: the possible answers are signed ahead.
  const signed = new Map<string, string>();
  for (const key of ['current', 'other'] as const) {
    for (const active of [true, false]) {
      const body = { iss: env.idp.issuer, aud: 'gw-client', iat: now(), token_introspection: active ? { active: true, sub: 'alex', scope: 'read', exp: now() + 300 } : { active: false } };
      signed.set(`${active}${key}`, await env.idp.signRaw(body, { typ: 'token-introspection+jwt' }, key));
    }
  }
  env.idp.setResponder('introspection', (req) => {
    const form = new URLSearchParams(req.body);
    const active = form.get('tok') === 'opaque-jwt';
    return { status: 200, headers: { 'content-type': 'application/token-introspection+jwt' }, body: signed.get(`${active}${signer}`)! };
  });
  try {
    await withGateway(
      deck(`      auth_methods: [introspection]
      introspection_accept: application/token-introspection+jwt
      introspection_token_param_name: tok
      scopes_required: [read]
      upstream_introspection_jwt_header: x-introspection-jwt
      downstream_introspection_jwt_header: x-introspection-jwt-down
      cache_introspection: false
`),
      async (gw) => {
        const r = await get(gw, '/api', { authorization: 'Bearer opaque-jwt' });
        assert.equal(r.status, 200);
        const req = last('introspection');
        assert.equal(req.headers.accept, 'application/token-introspection+jwt');
        const form = new URLSearchParams(req.body);
        assert.equal(form.get('tok'), 'opaque-jwt');
        assert.equal(form.get('token'), null);
        const jwt = r.echo!.headers['x-introspection-jwt'];
        assert.deepEqual((decodeJwt(jwt).token_introspection as Record<string, unknown>).sub, 'alex');
        assert.equal(r.headers.get('x-introspection-jwt-down'), jwt);
        // The same answer signed with a key the IdP never published: refused, nothing upstream.
        signer = 'other';
        const bad = await get(gw, '/api', { authorization: 'Bearer opaque-jwt' });
        assert.equal(bad.status, 500);
        assert.equal(bad.echo, null);
      },
    );
  } finally {
    env.idp.setResponder('introspection', null);
  }
});

test('introspection_accept application/jwt (obsolete draft): top-level claims of a signed JWT', async () => {
  const body = { iss: env.idp.issuer, aud: 'gw-client', iat: now(), active: true, sub: 'alex', scope: 'write' };
  const jwt = await env.idp.signRaw(body);
  env.idp.setResponder('introspection', () => ({ status: 200, headers: { 'content-type': 'application/jwt' }, body: jwt }));
  try {
    await withGateway(
      deck(`      auth_methods: [introspection]
      introspection_accept: application/jwt
      scopes_required: [write]
      upstream_introspection_header: x-introspection
`),
      async (gw) => {
        const r = await get(gw, '/api', { authorization: 'Bearer any-opaque' });
        assert.equal(r.status, 200);
        assert.equal(last('introspection').headers.accept, 'application/jwt');
        assert.equal(b64json(r.echo!.headers['x-introspection']).sub, 'alex');
      },
    );
  } finally {
    env.idp.setResponder('introspection', null);
  }
});

test('userinfo_accept application/jwt with userinfo_query_args_*: signed user info verified, JWT forwarded; a forged one is 401', async () => {
  const good = await env.idp.signRaw({ iss: env.idp.issuer, aud: 'gw-client', sub: 'alex', email: 'alex@example.com' });
  const forged = await env.idp.signRaw({ iss: env.idp.issuer, aud: 'gw-client', sub: 'alex' }, {}, 'other');
  env.idp.setResponder('userinfo', (req) => {
    const token = String(req.headers.authorization).slice('Bearer '.length);
    return { status: 200, headers: { 'content-type': 'application/jwt' }, body: token === 'forged' ? forged : good };
  });
  try {
    await withGateway(
      deck(`      auth_methods: [userinfo]
      userinfo_accept: application/jwt
      userinfo_query_args_names: [schema]
      userinfo_query_args_values: [openid]
      userinfo_query_args_client: [lang]
      upstream_user_info_jwt_header: x-userinfo-jwt
      downstream_user_info_jwt_header: x-userinfo-jwt-down
      upstream_headers_claims: [email]
      upstream_headers_names: [x-email]
`),
      async (gw) => {
        const r = await get(gw, '/api?lang=fi&other=1', { authorization: 'Bearer opaque-ui' });
        assert.equal(r.status, 200);
        const req = last('userinfo');
        assert.equal(req.headers.accept, 'application/jwt');
        assert.equal(r.echo!.headers['x-userinfo-jwt'], good);
        assert.equal(r.headers.get('x-userinfo-jwt-down'), good);
        assert.equal(r.echo!.headers['x-email'], 'alex@example.com');
        const sent = env.idp.requests().filter((x) => x.endpoint === 'userinfo').at(-1)!;
        assert.ok(sent);
        const bad = await get(gw, '/api', { authorization: 'Bearer forged' });
        assert.equal(bad.status, 401);
      },
    );
  } finally {
    env.idp.setResponder('userinfo', null);
  }
});

test('userinfo_query_args_* reach the user info endpoint URL', async () => {
  let seen: URL | null = null;
  env.idp.setResponder('userinfo', (_req, url) => {
    seen = url;
    return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sub: 'alex' }) };
  });
  try {
    await withGateway(
      deck(`      auth_methods: [userinfo]
      userinfo_query_args_names: [schema]
      userinfo_query_args_values: [openid]
      userinfo_query_args_client: [lang]
`),
      async (gw) => {
        const r = await get(gw, '/api?lang=fi&other=1', { authorization: 'Bearer opaque-q' });
        assert.equal(r.status, 200);
        const url = seen as URL | null;
        assert.equal(url?.searchParams.get('schema'), 'openid');
        assert.equal(url?.searchParams.get('lang'), 'fi');
        assert.equal(url?.searchParams.get('other'), null);
      },
    );
  } finally {
    env.idp.setResponder('userinfo', null);
  }
});

test('*_access_token_jwk_header, id_token_param_name with id_token_param_type and *_id_token_jwk_header', async () => {
  const at = await env.idp.sign({ sub: 'alex' });
  const idt = await env.idp.sign({ sub: 'alex', aud: 'gw-client', name: 'Alex' }, { alg: 'ES256' });
  const otherAud = await env.idp.sign({ sub: 'alex', aud: 'someone-else' });
  await withGateway(
    deck(`      auth_methods: [bearer]
      id_token_param_name: id_token
      id_token_param_type: [header, query]
      upstream_access_token_jwk_header: x-at-jwk
      downstream_access_token_jwk_header: x-at-jwk-down
      upstream_id_token_header: x-id-token
      upstream_id_token_jwk_header: x-id-jwk
      downstream_id_token_jwk_header: x-id-jwk-down
      upstream_headers_claims: [name]
      upstream_headers_names: [x-name]
`),
    async (gw) => {
      const r = await get(gw, '/api', { authorization: `Bearer ${at}`, 'id-token': idt });
      assert.equal(r.status, 200);
      const atJwk = b64json(r.echo!.headers['x-at-jwk']);
      assert.equal(atJwk.kid, env.idp.currentKid());
      assert.equal(atJwk.kty, 'RSA');
      assert.equal(atJwk.d, undefined);
      assert.deepEqual(b64json(r.headers.get('x-at-jwk-down')!), atJwk);
      assert.equal(r.echo!.headers['x-id-token'], idt);
      assert.equal(b64json(r.echo!.headers['x-id-jwk']).kty, 'EC');
      assert.equal(b64json(r.headers.get('x-id-jwk-down')!).kty, 'EC');
      assert.equal(r.echo!.headers['x-name'], 'Alex');
      // hide_credentials: the ID token the client sent does not go upstream under its own name.
      assert.equal(r.echo!.headers['id-token'], undefined);
      // From the query string too; an ID token for another client is refused.
      const q = await get(gw, `/api?id_token=${idt}`, { authorization: `Bearer ${at}` });
      assert.equal(q.status, 200);
      assert.equal(q.echo!.headers['x-id-token'], idt);
      const wrong = await get(gw, '/api', { authorization: `Bearer ${at}`, 'id-token': otherAud });
      assert.equal(wrong.status, 401);
      const forged = await env.idp.sign({ sub: 'alex', aud: 'gw-client' }, { key: 'other' });
      assert.equal((await get(gw, '/api', { authorization: `Bearer ${at}`, 'id-token': forged })).status, 401);
      // Without an ID token the request goes on as before.
      const none = await get(gw, '/api', { authorization: `Bearer ${at}` });
      assert.equal(none.status, 200);
      assert.equal(none.echo!.headers['x-id-token'], undefined);
    },
  );
});

test('id_token_param_type limits where the ID token is read', async () => {
  const at = await env.idp.sign({ sub: 'alex' });
  const idt = await env.idp.sign({ sub: 'alex', aud: 'gw-client' });
  await withGateway(
    deck(`      auth_methods: [bearer]
      id_token_param_name: id_token
      id_token_param_type: [query]
      upstream_id_token_header: x-id-token
`),
    async (gw) => {
      const r = await get(gw, '/api', { authorization: `Bearer ${at}`, 'id-token': idt });
      assert.equal(r.status, 200);
      assert.equal(r.echo!.headers['x-id-token'], undefined);
    },
  );
});

test('verify_signature: false skips the signature, not the claims', async () => {
  const forged = await env.idp.sign({ sub: 'alex' }, { key: 'other' });
  const expired = await env.idp.sign({ sub: 'alex', exp: now() - 600 }, { key: 'other' });
  const foreign = await env.idp.sign({ sub: 'alex', iss: 'https://elsewhere.example' }, { key: 'other' });
  await withGateway(deck(`      auth_methods: [bearer]\n      verify_signature: false\n`), async (gw) => {
    assert.equal((await get(gw, '/api', { authorization: `Bearer ${forged}` })).status, 200);
    assert.equal((await get(gw, '/api', { authorization: `Bearer ${expired}` })).status, 401);
    assert.equal((await get(gw, '/api', { authorization: `Bearer ${foreign}` })).status, 401);
  });
  await withGateway(deck(`      auth_methods: [bearer]\n      verify_signature: true\n`), async (gw) => {
    assert.equal((await get(gw, '/api', { authorization: `Bearer ${forged}` })).status, 401);
  });
});

test('verify_parameters: the configuration is checked against the discovery document', async () => {
  const at = await env.idp.sign({ sub: 'alex' });
  await withGateway(deck(`      auth_methods: [bearer]\n      verify_parameters: true\n      scopes: [openid, not-offered]\n      display_errors: true\n`), async (gw) => {
    const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${at}` } });
    assert.equal(r.status, 500);
    await r.body?.cancel();
  });
  await withGateway(deck(`      auth_methods: [bearer]\n      verify_parameters: true\n      token_endpoint_auth_method: private_key_jwt\n`), async (gw) => {
    assert.equal((await get(gw, '/api', { authorization: `Bearer ${at}` })).status, 500);
  });
  await withGateway(deck(`      auth_methods: [bearer]\n      verify_parameters: true\n      scopes: [openid, email]\n`), async (gw) => {
    assert.equal((await get(gw, '/api', { authorization: `Bearer ${at}` })).status, 200);
  });
  await withGateway(deck(`      auth_methods: [bearer]\n      verify_parameters: false\n      scopes: [openid, not-offered]\n`), async (gw) => {
    assert.equal((await get(gw, '/api', { authorization: `Bearer ${at}` })).status, 200);
  });
});

test('token_headers_replay / token_headers_prefix / token_headers_grants: token endpoint response headers reach the client', async () => {
  const at = await env.idp.sign({ sub: 'alex' });
  env.idp.setResponder('token', () => ({
    status: 200,
    headers: { 'content-type': 'application/json', 'x-ratelimit-remaining': '41', 'x-other': 'no' },
    body: JSON.stringify({ access_token: at, token_type: 'Bearer', expires_in: 300 }),
  }));
  try {
    await withGateway(
      deck(`      auth_methods: [password, client_credentials]
      password_param_type: [query]
      token_headers_replay: [x-ratelimit-remaining]
      token_headers_prefix: x-idp-
      token_headers_grants: [password]
`),
      async (gw) => {
        const r = await get(gw, '/api?username=alex&password=doe', {});
        assert.equal(r.status, 200);
        assert.equal(r.headers.get('x-idp-x-ratelimit-remaining'), '41');
        assert.equal(r.headers.get('x-idp-x-other'), null);
        // Served from the token cache: the headers of the response it came from, again.
        const again = await get(gw, '/api?username=alex&password=doe', {});
        assert.equal(again.headers.get('x-idp-x-ratelimit-remaining'), '41');
        // A grant not in token_headers_grants: nothing replayed.
        const cc = await get(gw, '/api', { authorization: basic('svc', 'svc-secret') });
        assert.equal(cc.status, 200);
        assert.equal(cc.headers.get('x-idp-x-ratelimit-remaining'), null);
      },
    );
  } finally {
    env.idp.setResponder('token', null);
  }
});

test('token_headers_grants: authorization_code is accepted (the code exchange replays: test/oidc-browser-token-options.test.ts)', () => {
  const r = oidcConfigSchema.safeParse({ issuer: 'https://idp.example', token_headers_replay: ['x-a'], token_headers_grants: ['password', 'authorization_code'] });
  assert.equal(r.success, true, JSON.stringify(r.error?.issues));
  assert.deepEqual(r.data!.token_headers_grants, ['password', 'authorization_code']);
});

test('revocation_token_param_name and revocation_endpoint_auth_method on logout_revoke', async () => {
  const at = await env.idp.sign({ sub: 'alex' });
  env.idp.setTokenResponse({ access_token: at, refresh_token: 'rt-1', token_type: 'Bearer', expires_in: 300 });
  await withGateway(
    deck(`      auth_methods: [password, session]
      session_secret: a-test-secret-that-is-long-enough
      logout_uri_suffix: /logout
      logout_revoke: true
      revocation_token_param_name: token_value
      revocation_endpoint_auth_method: client_secret_post
`),
    async (gw) => {
      const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: basic('alex', 'doe') } });
      assert.equal(r.status, 200);
      await r.body?.cancel();
      const cookie = r.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
      assert.ok(cookie.startsWith('session='));
      const out = await fetch(`${gw.proxyUrl}/api/logout`, { method: 'POST', headers: { cookie }, redirect: 'manual' });
      await out.body?.cancel();
      assert.equal(out.status, 302);
      const revocations = env.idp.requests().filter((x) => x.endpoint === 'revocation').slice(-2).map((x) => ({ form: new URLSearchParams(x.body), auth: x.headers.authorization }));
      assert.equal(revocations.length, 2);
      assert.deepEqual(revocations.map((x) => x.form.get('token_value')).sort(), [at, 'rt-1'].sort());
      for (const x of revocations) {
        assert.equal(x.form.get('token'), null);
        // client_secret_post for revocation, although the token endpoint uses basic (the default).
        assert.equal(x.form.get('client_secret'), 'gw-secret');
        assert.equal(x.auth, undefined);
      }
    },
  );
});

test('revocation_endpoint overrides the discovered one for logout_revoke', async () => {
  const other = await startBadIdp();
  const at = await env.idp.sign({ sub: 'alex' });
  env.idp.setTokenResponse({ access_token: at, refresh_token: 'rt-2', token_type: 'Bearer', expires_in: 300 });
  try {
    await withGateway(
      deck(`      auth_methods: [password, session]
      session_secret: a-test-secret-that-is-long-enough
      logout_uri_suffix: /logout
      logout_revoke: true
      revocation_endpoint: ${other.issuer}/revoke
`),
      async (gw) => {
        const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: basic('alex', 'doe') } });
        assert.equal(r.status, 200);
        await r.body?.cancel();
        const cookie = r.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
        env.idp.resetCounts();
        const out = await fetch(`${gw.proxyUrl}/api/logout`, { method: 'POST', headers: { cookie }, redirect: 'manual' });
        await out.body?.cancel();
        assert.equal(out.status, 302);
        const revoked = other.requests().filter((x) => x.endpoint === 'revocation').map((x) => new URLSearchParams(x.body).get('token')).sort();
        assert.deepEqual(revoked, [at, 'rt-2'].sort(), 'both tokens revoked at the configured endpoint');
        assert.equal(env.idp.counts().revocation ?? 0, 0, 'not at the discovered one');
      },
    );
  } finally {
    await other.close();
  }
});

test('resolve_distributed_claims: claims from a _claim_sources endpoint, signed by a trusted key, join the token', async () => {
  const good = await env.idp.signRaw({ iss: env.idp.issuer, sub: 'alex', groups: ['admins'] });
  const forged = await env.idp.signRaw({ iss: env.idp.issuer, sub: 'alex', groups: ['admins'] }, {}, 'other');
  let seenAuth: string | undefined;
  env.idp.setResponder('other', (req, url) => {
    seenAuth = req.headers.authorization;
    return { status: 200, headers: { 'content-type': 'application/jwt' }, body: url.pathname === '/claims/forged' ? forged : good };
  });
  const token = (path: string) => env.idp.sign({
    sub: 'alex',
    _claim_names: { groups: 'src1' },
    _claim_sources: { src1: { endpoint: `${env.idp.issuer}${path}`, access_token: 'claims-provider-token' } },
  });
  const at = await token('/claims/good');
  const bad = await token('/claims/forged');
  try {
    const config = (on: boolean) => deck(`      auth_methods: [bearer]\n      resolve_distributed_claims: ${on}\n      groups_required: [admins]\n      upstream_headers_claims: [groups]\n      upstream_headers_names: [x-groups]\n`);
    await withGateway(config(true), async (gw) => {
      const r = await get(gw, '/api', { authorization: `Bearer ${at}` });
      assert.equal(r.status, 200);
      assert.equal(r.echo!.headers['x-groups'], 'admins');
      assert.equal(seenAuth, 'Bearer claims-provider-token');
      // An answer signed by a key the IdP never published adds nothing: the group check fails.
      assert.equal((await get(gw, '/api', { authorization: `Bearer ${bad}` })).status, 403);
    });
    await withGateway(config(false), async (gw) => {
      assert.equal((await get(gw, '/api', { authorization: `Bearer ${at}` })).status, 403);
    });
  } finally {
    env.idp.setResponder('other', null);
  }
});

test('ignore_signature [introspection] / [userinfo]: JWT answers read without their signature checked', async () => {
  const intro = await env.idp.signRaw({ iss: env.idp.issuer, aud: 'gw-client', iat: now(), active: true, sub: 'alex' }, {}, 'other');
  const info = await env.idp.signRaw({ iss: env.idp.issuer, sub: 'alex' }, {}, 'other');
  env.idp.setResponder('introspection', () => ({ status: 200, headers: { 'content-type': 'application/jwt' }, body: intro }));
  env.idp.setResponder('userinfo', () => ({ status: 200, headers: { 'content-type': 'application/jwt' }, body: info }));
  try {
    const config = (ignore: string) => deck(`      auth_methods: [introspection, userinfo]\n      introspection_accept: application/jwt\n      userinfo_accept: application/jwt\n      ignore_signature: [${ignore}]\n      cache_introspection: false\n      cache_user_info: false\n`);
    await withGateway(config('introspection'), async (gw) => {
      assert.equal((await get(gw, '/api', { authorization: 'Bearer opaque-ign' })).status, 200);
    });
    // Signed by a key the IdP never published, and checked: refused.
    await withGateway(config('password'), async (gw) => {
      assert.equal((await get(gw, '/api', { authorization: 'Bearer opaque-ign' })).status, 500);
    });
    // Introspection off: user info answers, and only ignore_signature [userinfo] lets it through.
    const userinfoOnly = (ignore: string) => deck(`      auth_methods: [userinfo]\n      userinfo_accept: application/jwt\n      ignore_signature: [${ignore}]\n`);
    await withGateway(userinfoOnly('userinfo'), async (gw) => {
      assert.equal((await get(gw, '/api', { authorization: 'Bearer opaque-ign2' })).status, 200);
    });
    await withGateway(userinfoOnly('introspection'), async (gw) => {
      assert.equal((await get(gw, '/api', { authorization: 'Bearer opaque-ign3' })).status, 401);
    });
  } finally {
    env.idp.setResponder('introspection', null);
    env.idp.setResponder('userinfo', null);
  }
});
