/**
 * The demo OpenID Provider (demo/idp.ts), exercised over real sockets the way the gateway uses it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { demoAudience, demoClients, startIdp } from '../demo/idp.ts';
import type { DemoIdp } from '../demo/idp.ts';

interface Discovery {
  issuer: string;
  token_endpoint: string;
  jwks_uri: string;
  introspection_endpoint: string;
  revocation_endpoint: string;
  userinfo_endpoint: string;
  authorization_endpoint: string;
  end_session_endpoint: string;
  [k: string]: unknown;
}

const form = (fields: Record<string, string>) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(fields),
});
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
const signal = () => AbortSignal.timeout(10_000);

async function postForm(url: string, fields: Record<string, string>, auth?: string) {
  const init = form(fields);
  const res = await fetch(url, {
    ...init, headers: { ...init.headers, ...(auth ? { authorization: auth } : {}) }, signal: signal(),
  });
  return { status: res.status, body: await res.json() as Record<string, any> };
}

describe('demo IdP', () => {
  let idp: DemoIdp;
  let meta: Discovery;
  let jwks: ReturnType<typeof createRemoteJWKSet>;
  const kong = demoClients.kong;
  const kongBasic = demoClients.kongBasic;
  const password = (client: { client_id: string; client_secret: string }, extra: Record<string, string> = {}) =>
    postForm(meta.token_endpoint, {
      grant_type: 'password', username: 'alex', password: 'doe',
      scope: 'openid profile email groups roles', ...client, ...extra,
    });

  before(async () => {
    idp = await startIdp();
    const res = await fetch(`${idp.issuer}/.well-known/openid-configuration`, { signal: signal() });
    assert.equal(res.status, 200);
    meta = await res.json() as Discovery;
    jwks = createRemoteJWKSet(new URL(meta.jwks_uri), { timeoutDuration: 5000 });
  });
  after(() => idp.close());

  it('serves a discovery document for its own issuer', () => {
    assert.equal(meta.issuer, idp.issuer);
    assert.match(idp.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    for (const key of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'userinfo_endpoint',
      'introspection_endpoint', 'revocation_endpoint', 'end_session_endpoint']) {
      assert.ok(String(meta[key]).startsWith(idp.issuer), key);
    }
    assert.ok((meta.grant_types_supported as string[]).includes('password'));
    assert.ok((meta.grant_types_supported as string[]).includes('client_credentials'));
    assert.equal(meta.backchannel_logout_supported, true);
    assert.ok(idp.counts().discovery >= 1);
  });

  it('password grant issues an RS256 JWT access token with groups and roles, and an ID token', async () => {
    const { status, body } = await password(kong);
    assert.equal(status, 200);
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.expires_in, 300);
    assert.ok(body.refresh_token);
    const header = decodeProtectedHeader(body.access_token);
    assert.equal(header.alg, 'RS256');
    assert.equal(header.typ, 'at+jwt');
    assert.ok(header.kid);
    const { payload } = await jwtVerify(body.access_token, jwks, { issuer: idp.issuer, audience: demoAudience });
    assert.equal(payload.sub, 'alex');
    assert.equal(payload.client_id, 'kong');
    assert.equal(payload.preferred_username, 'alex');
    assert.deepEqual(payload.groups, ['admins', 'users']);
    assert.deepEqual(payload.realm_access, { roles: ['admin', 'reader'] });
    assert.equal(payload.scope, 'openid profile email groups roles');

    const id = await jwtVerify(body.id_token, jwks, { issuer: idp.issuer, audience: 'kong' });
    assert.equal(id.payload.email, 'alex@example.com');
    assert.equal(id.payload.name, 'Alex Doe');
  });

  it('password grant rejects a wrong password', async () => {
    const { status, body } = await password(kong, { password: 'wrong' });
    assert.equal(status, 400);
    assert.equal(body.error, 'invalid_grant');
  });

  it('third user has no groups or roles', async () => {
    const { status, body } = await password(kong, { username: 'nogroups', password: 'nogroups-pass' });
    assert.equal(status, 200);
    const { payload } = await jwtVerify(body.access_token, jwks, { issuer: idp.issuer });
    assert.equal(payload.sub, 'nogroups');
    assert.equal(payload.groups, undefined);
    assert.equal(payload.realm_access, undefined);
  });

  it('client_credentials puts the requested audience into aud (basic and post auth)', async () => {
    const svc = demoClients.service;
    const viaBasic = await postForm(meta.token_endpoint, { grant_type: 'client_credentials', audience: 'orders-api' },
      basic(svc.client_id, svc.client_secret));
    assert.equal(viaBasic.status, 200);
    const a = await jwtVerify(viaBasic.body.access_token, jwks, { issuer: idp.issuer, audience: 'orders-api' });
    assert.equal(a.payload.client_id, 'service-client');
    assert.equal(a.payload.sub, 'service-client');

    const viaPost = await postForm(meta.token_endpoint, {
      grant_type: 'client_credentials', audience: 'https://billing.example', ...svc,
    });
    assert.equal(viaPost.status, 200);
    const b = await jwtVerify(viaPost.body.access_token, jwks, { issuer: idp.issuer });
    assert.equal(b.payload.aud, 'https://billing.example');

    const noAudience = await postForm(meta.token_endpoint, { grant_type: 'client_credentials', ...svc });
    const c = await jwtVerify(noAudience.body.access_token, jwks, { issuer: idp.issuer });
    assert.equal(c.payload.aud, demoAudience);
  });

  it('refresh_token rotates and refuses the used refresh token', async () => {
    const first = await password(kong);
    const refreshed = await postForm(meta.token_endpoint, {
      grant_type: 'refresh_token', refresh_token: first.body.refresh_token, ...kong,
    });
    assert.equal(refreshed.status, 200);
    assert.notEqual(refreshed.body.refresh_token, first.body.refresh_token);
    assert.notEqual(refreshed.body.access_token, first.body.access_token);
    const { payload } = await jwtVerify(refreshed.body.access_token, jwks, { issuer: idp.issuer, audience: demoAudience });
    assert.deepEqual(payload.groups, ['admins', 'users']);

    const reused = await postForm(meta.token_endpoint, {
      grant_type: 'refresh_token', refresh_token: first.body.refresh_token, ...kong,
    });
    assert.equal(reused.status, 400);
    assert.equal(reused.body.error, 'invalid_grant');
  });

  it('kong-basic gets opaque tokens; introspection, revocation and userinfo work on them', async () => {
    const tokens = await postForm(meta.token_endpoint, {
      grant_type: 'password', username: 'jane', password: 'doe2', scope: 'openid profile groups',
    }, basic(kongBasic.client_id, kongBasic.client_secret));
    assert.equal(tokens.status, 200);
    const at = tokens.body.access_token as string;
    assert.equal(at.split('.').length, 1, 'opaque, not a JWT');

    const own = await postForm(meta.introspection_endpoint, { token: at }, basic(kongBasic.client_id, kongBasic.client_secret));
    assert.equal(own.status, 200);
    assert.equal(own.body.active, true);
    assert.equal(own.body.sub, 'jane');
    assert.equal(own.body.client_id, 'kong-basic');
    assert.deepEqual(own.body.groups, ['users']);

    const intro = demoClients.introspector;
    const byIntrospector = await postForm(meta.introspection_endpoint, { token: at }, basic(intro.client_id, intro.client_secret));
    assert.equal(byIntrospector.body.active, true);
    const byStranger = await postForm(meta.introspection_endpoint, { token: at, ...kong });
    assert.equal(byStranger.body.active, false);

    const ui = await fetch(meta.userinfo_endpoint, { headers: { authorization: `Bearer ${at}` }, signal: signal() });
    assert.equal(ui.status, 200);
    const claims = await ui.json() as Record<string, unknown>;
    assert.equal(claims.sub, 'jane');
    assert.equal(claims.preferred_username, 'jane');
    assert.deepEqual(claims.groups, ['users']);
    assert.equal(claims.email, undefined, 'email scope not granted');

    const revoked = await fetch(meta.revocation_endpoint, {
      ...form({ token: at, token_type_hint: 'access_token' }),
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(kongBasic.client_id, kongBasic.client_secret) },
      signal: signal(),
    });
    assert.equal(revoked.status, 200);
    const after = await postForm(meta.introspection_endpoint, { token: at }, basic(kongBasic.client_id, kongBasic.client_secret));
    assert.deepEqual(after.body, { active: false });
  });

  it('introspects JWT access tokens too (own client and introspector)', async () => {
    const { body } = await password(kong);
    const own = await postForm(meta.introspection_endpoint, { token: body.access_token, ...kong });
    assert.equal(own.body.active, true);
    assert.equal(own.body.aud, demoAudience);
    assert.deepEqual(own.body.realm_access, { roles: ['admin', 'reader'] });
    const intro = demoClients.introspector;
    const rt = await postForm(meta.introspection_endpoint, { token: body.refresh_token, token_type_hint: 'refresh_token' },
      basic(intro.client_id, intro.client_secret));
    assert.equal(rt.body.active, true);
    assert.equal(rt.body.client_id, 'kong');
    const viaIntrospector = await postForm(meta.introspection_endpoint, { token: body.access_token },
      basic(intro.client_id, intro.client_secret));
    assert.equal(viaIntrospector.body.active, true);
    assert.equal(viaIntrospector.body.sub, 'alex');
    const kb = demoClients.kongBasic;
    const stranger = await postForm(meta.introspection_endpoint, { token: body.access_token }, basic(kb.client_id, kb.client_secret));
    assert.deepEqual(stranger.body, { active: false });
    const [h, p] = (body.access_token as string).split('.');
    const forged = await postForm(meta.introspection_endpoint, { token: `${h}.${p}.AAAA`, ...kong });
    assert.deepEqual(forged.body, { active: false });
    const noAuth = await postForm(meta.introspection_endpoint, { token: body.access_token, client_id: 'kong', client_secret: 'wrong' });
    assert.equal(noAuth.status, 401);
  });

  it('userinfo accepts its own JWT access tokens and rejects forged ones', async () => {
    const { body } = await password(kong);
    const ok = await fetch(meta.userinfo_endpoint, { headers: { authorization: `Bearer ${body.access_token}` }, signal: signal() });
    assert.equal(ok.status, 200);
    const claims = await ok.json() as Record<string, unknown>;
    assert.equal(claims.sub, 'alex');
    assert.equal(claims.email, 'alex@example.com');
    assert.deepEqual(claims.realm_access, { roles: ['admin', 'reader'] });

    const [h, p, s] = (body.access_token as string).split('.');
    const tampered = `${h}.${p}.${s.slice(0, -4)}AAAA`;
    const bad = await fetch(meta.userinfo_endpoint, { headers: { authorization: `Bearer ${tampered}` }, signal: signal() });
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get('www-authenticate') ?? '', /invalid_token/);
  });

  it('counts requests per endpoint and per grant type, and resets', async () => {
    idp.resetCounts();
    assert.deepEqual(idp.counts(), {});
    await password(kong);
    await password(kong);
    await postForm(meta.token_endpoint, { grant_type: 'client_credentials', ...demoClients.service });
    await fetch(meta.jwks_uri, { signal: signal() }).then((r) => r.arrayBuffer());
    const counts = idp.counts();
    assert.equal(counts.token, 3);
    assert.equal(counts['token:password'], 2);
    assert.equal(counts['token:client_credentials'], 1);
    assert.equal(counts.jwks, 1);
  });
});

/** A minimal cookie jar for following the browser flow with fetch. */
class Jar {
  readonly #cookies = new Map<string, string>();
  take(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const i = pair.indexOf('=');
      this.#cookies.set(pair.slice(0, i).trim(), pair.slice(i + 1));
    }
  }
  header(): string {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

describe('demo IdP browser flow (authorization code + PKCE, logout)', () => {
  let idp: DemoIdp;
  let rp: http.Server;
  const logoutTokens: string[] = [];
  let rpBase = '';

  before(async () => {
    // Stands in for the gateway: a loopback server on a random port receiving back-channel logouts.
    rp = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => { body += c; });
      req.on('end', () => {
        const token = new URLSearchParams(body).get('logout_token');
        if (token) logoutTokens.push(token);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => rp.listen(0, '127.0.0.1', resolve));
    rpBase = `http://127.0.0.1:${(rp.address() as AddressInfo).port}`;
    idp = await startIdp({ backchannelLogoutUris: { kong: `${rpBase}/backchannel` } });
  });
  after(async () => {
    await idp.close();
    await new Promise<void>((resolve) => { rp.close(() => resolve()); rp.closeAllConnections(); });
  });

  it('signs alex in through the login form, exchanges the code, logs out, sends back-channel logout', async () => {
    const jar = new Jar();
    const go = async (url: string, init: RequestInit = {}) => {
      const res = await fetch(new URL(url, idp.issuer), {
        ...init, redirect: 'manual', signal: signal(),
        headers: { ...(init.headers as Record<string, string> ?? {}), cookie: jar.header() },
      });
      jar.take(res);
      return res;
    };
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const redirectUri = `${rpBase}/cb`; // a random port: allowed for loopback in the demo IdP
    const auth = new URL(`${idp.issuer}/auth`);
    auth.search = new URLSearchParams({
      client_id: 'kong', response_type: 'code', scope: 'openid profile email groups offline_access',
      redirect_uri: redirectUri, state: 'st-1', nonce: 'n-1', code_challenge: challenge,
      code_challenge_method: 'S256', prompt: 'consent',
    }).toString();

    let res = await go(auth.href);
    assert.equal(res.status, 303);
    const interaction = res.headers.get('location') ?? '';
    assert.match(interaction, /^\/interaction\//);
    res = await go(interaction);
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /name="login"/);
    assert.match(html, /name="password"/);
    assert.match(html, /type="submit"/);

    const wrong = await go(`${interaction}/login`, form({ login: 'alex', password: 'nope' }));
    assert.equal(wrong.status, 401);
    await wrong.text();

    res = await go(`${interaction}/login`, form({ login: 'alex', password: 'doe' }));
    // login → back to /auth → consent interaction (auto-granted) → back to /auth → redirect_uri
    let location = res.headers.get('location') ?? '';
    for (let hops = 0; hops < 6 && !location.startsWith(redirectUri); hops += 1) {
      res = await go(location);
      location = res.headers.get('location') ?? '';
    }
    const callback = new URL(location);
    assert.equal(callback.origin + callback.pathname, redirectUri);
    assert.equal(callback.searchParams.get('state'), 'st-1');
    assert.equal(callback.searchParams.get('iss'), idp.issuer);
    const code = callback.searchParams.get('code');
    assert.ok(code);

    const tokens = await postForm(`${idp.issuer}/token`, {
      grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier, ...demoClients.kong,
    });
    assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
    const jwks = createRemoteJWKSet(new URL(`${idp.issuer}/jwks`));
    const at = await jwtVerify(tokens.body.access_token, jwks, { issuer: idp.issuer, audience: demoAudience });
    assert.deepEqual(at.payload.groups, ['admins', 'users']);
    const id = await jwtVerify(tokens.body.id_token, jwks, { issuer: idp.issuer, audience: 'kong' });
    assert.equal(id.payload.nonce, 'n-1');
    assert.ok(id.payload.sid);
    assert.ok(tokens.body.refresh_token);
    assert.equal(idp.counts()['token:authorization_code'], 1);

    // Back-channel logout (OIDC Back-Channel Logout 1.0 §2.4) for the session just created.
    assert.equal(await idp.logoutUser('alex'), 1);
    assert.equal(logoutTokens.length, 1);
    const logout = await jwtVerify(logoutTokens[0], jwks, { issuer: idp.issuer, audience: 'kong', typ: 'logout+jwt' });
    assert.equal(logout.payload.sub, 'alex');
    assert.equal(logout.payload.sid, id.payload.sid);
    assert.ok((logout.payload.events as Record<string, unknown>)['http://schemas.openid.net/event/backchannel-logout']);
    const afterLogout = await postForm(`${idp.issuer}/token`, {
      grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token, ...demoClients.kong,
    });
    assert.equal(afterLogout.body.error, 'invalid_grant', 'the session\'s grant was revoked');

    // RP-initiated logout with a post_logout_redirect_uri on a random loopback port.
    const end = new URL(`${idp.issuer}/session/end`);
    end.search = new URLSearchParams({
      id_token_hint: tokens.body.id_token, post_logout_redirect_uri: `${rpBase}/bye`, state: 'bye-1',
    }).toString();
    res = await go(end.href);
    assert.equal(res.status, 200);
    const page = await res.text();
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(page)?.[1];
    assert.ok(xsrf, 'logout confirmation form carries its CSRF token');
    res = await go('/session/end/confirm', form({ xsrf, logout: 'yes' }));
    assert.equal(res.status, 303);
    const bye = new URL(res.headers.get('location') ?? '');
    assert.equal(bye.origin + bye.pathname, `${rpBase}/bye`);
    assert.equal(bye.searchParams.get('state'), 'bye-1');
  });
});

describe('demo IdP JWT client authentication (RFC 7523 §2.2)', () => {
  it('accepts client_secret_jwt and private_key_jwt (keys fetched from a loopback jwks_uri)', async () => {
    const { generateKeyPair, exportJWK } = await import('jose');
    const oidc = await import('openid-client');
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const publicJwks = { keys: [{ ...await exportJWK(publicKey), kid: 'rp-1', alg: 'ES256', use: 'sig' }] };
    let jwksHits = 0;
    const keys = http.createServer((_req, res) => {
      jwksHits += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(publicJwks));
    });
    await new Promise<void>((resolve) => keys.listen(0, '127.0.0.1', resolve));
    const jwksUri = `http://127.0.0.1:${(keys.address() as AddressInfo).port}/jwks`;
    const idp = await startIdp({ privateKeyJwtJwksUri: jwksUri });
    try {
      const options = { execute: [oidc.allowInsecureRequests], timeout: 5 };
      const secretJwt = await oidc.discovery(new URL(idp.issuer), demoClients.secretJwt.client_id, undefined,
        oidc.ClientSecretJwt(demoClients.secretJwt.client_secret), options);
      const a = await oidc.clientCredentialsGrant(secretJwt);
      assert.equal(decodeProtectedHeader(a.access_token).typ, 'at+jwt');

      const pkJwt = await oidc.discovery(new URL(idp.issuer), demoClients.privateKeyJwt.client_id, undefined,
        oidc.PrivateKeyJwt({ key: privateKey, kid: 'rp-1' }), options);
      const b = await oidc.genericGrantRequest(pkJwt, 'password', {
        username: 'alex', password: 'doe', scope: 'openid groups',
      });
      const jwks = createRemoteJWKSet(new URL(`${idp.issuer}/jwks`));
      const { payload } = await jwtVerify(b.access_token, jwks, { issuer: idp.issuer, audience: demoAudience });
      assert.equal(payload.client_id, demoClients.privateKeyJwt.client_id);
      assert.deepEqual(payload.groups, ['admins', 'users']);
      assert.ok(jwksHits >= 1, 'the IdP fetched the client keys');

      const wrongKey = (await generateKeyPair('ES256')).privateKey;
      const forged = await oidc.discovery(new URL(idp.issuer), demoClients.privateKeyJwt.client_id, undefined,
        oidc.PrivateKeyJwt({ key: wrongKey, kid: 'rp-1' }), options);
      await assert.rejects(oidc.clientCredentialsGrant(forged), (err: unknown) =>
        err instanceof oidc.ResponseBodyError && err.error === 'invalid_client');
    } finally {
      await idp.close();
      await new Promise<void>((resolve) => { keys.close(() => resolve()); keys.closeAllConnections(); });
    }
  });
});
