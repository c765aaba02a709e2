/**
 * Issue "Authorization": claims-based authorization, consumer mapping and the ACL plugin, against
 * the demo IdP's real tokens, through a real gateway (embedded SQLite store + Admin API).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startIdp, type DemoIdp } from '../demo/idp.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';

interface Echoed {
  headers: Record<string, string>;
}

async function passwordToken(idp: DemoIdp, username: string, password: string): Promise<string> {
  const r = await fetch(`${idp.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username, password, scope: 'openid', client_id: 'kong', client_secret: 'kong-secret' }),
  });
  assert.equal(r.status, 200, await r.clone().text());
  return ((await r.json()) as { access_token: string }).access_token;
}

async function admin(gw: TestGateway, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const r = await fetch(`${gw.adminUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : null };
}

describe('authorization against the demo IdP', () => {
  let echo: EchoServer;
  let idp: DemoIdp;
  let gw: TestGateway;
  let alexToken: string;
  let janeToken: string;
  let nogroupsToken: string;

  const oidc = (issuer: string, extra: Record<string, unknown>) => ({
    issuer,
    client_id: ['kong'],
    client_secret: ['kong-secret'],
    client_auth: ['client_secret_post'],
    auth_methods: ['bearer'],
    ...extra,
  });

  before(async () => {
    echo = await startEcho();
    idp = await startIdp();
    gw = await startGateway({ database: 'sqlite' });
    const service = await admin(gw, 'POST', '/services', { name: 'example-service', url: `${echo.url}/anything` });
    assert.equal(service.status, 201);
    const routes: Array<[string, Record<string, unknown>]> = [
      ['groups', { groups_claim: ['groups'], groups_required: ['admins'] }],
      ['groups-and', { groups_claim: ['groups'], groups_required: ['admins users'] }],
      ['groups-or', { groups_claim: ['groups'], groups_required: ['nobody', 'users'] }],
      ['roles', { roles_claim: ['realm_access', 'roles'], roles_required: ['admin'] }],
      ['wrong-type', { roles_claim: ['realm_access'], roles_required: ['admin'] }],
      ['forbidden-claim', { claims_forbidden: ['realm_access'] }],
      ['consumers', { consumer_claim: ['preferred_username'], consumer_by: ['username'] }],
      ['consumers-ci', { consumer_claim: ['preferred_username'], consumer_by: ['username'], by_username_ignore_case: true }],
      ['consumers-ci-client', { consumer_claim: ['client_id'], consumer_by: ['username'], by_username_ignore_case: true }],
      ['consumer-optional', { consumer_claim: ['preferred_username'], consumer_by: ['username'], consumer_optional: true }],
      ['credential', { consumer_claim: ['preferred_username'], consumer_by: ['username'], credential_claim: ['preferred_username'] }],
      ['session-ok', { auth_methods: ['password', 'session'], session_secret: 'authz-test-session-secret-0123456789' }],
      ['session-forbidden', { auth_methods: ['session'], session_secret: 'authz-test-session-secret-0123456789', groups_claim: ['groups'], groups_required: ['nobody'] }],
      ['session-forbidden-keep', { auth_methods: ['session'], session_secret: 'authz-test-session-secret-0123456789', groups_claim: ['groups'], groups_required: ['nobody'], forbidden_destroy_session: false }],
      ['acl-allow', { authenticated_groups_claim: ['groups'] }],
      ['acl-deny', { authenticated_groups_claim: ['groups'] }],
    ];
    for (const [name, extra] of routes) {
      const r = await admin(gw, 'POST', '/services/example-service/routes', { name, paths: [`/${name}`] });
      assert.equal(r.status, 201, JSON.stringify(r.json));
      const p = await admin(gw, 'POST', `/routes/${name}/plugins`, { name: 'openid-connect', config: oidc(idp.issuer, extra) });
      assert.equal(p.status, 201, JSON.stringify(p.json));
    }
    assert.equal((await admin(gw, 'POST', '/routes/acl-allow/plugins', { name: 'acl', config: { allow: ['admins'] } })).status, 201);
    assert.equal((await admin(gw, 'POST', '/routes/acl-deny/plugins', { name: 'acl', config: { deny: ['admins'] } })).status, 201);
    alexToken = await passwordToken(idp, 'alex', 'doe');
    janeToken = await passwordToken(idp, 'jane', 'doe2');
    nogroupsToken = await passwordToken(idp, 'nogroups', 'nogroups-pass');
    // Changes reach the proxy through the store's change notification.
    await waitUntil(async () => (await call('/groups', alexToken)).status === 200);
  });
  after(async () => {
    await gw.close();
    await idp.close();
    await echo.close();
  });

  async function waitUntil(check: () => Promise<boolean>, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > end) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  function call(path: string, token: string, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(`${gw.proxyUrl}${path}`, { headers: { authorization: `Bearer ${token}`, ...headers } });
  }

  test('groups_required: alex (admins) allowed, jane (users) denied with 403 insufficient_scope', async () => {
    assert.equal((await call('/groups', alexToken)).status, 200);
    const denied = await call('/groups', janeToken);
    assert.equal(denied.status, 403, await denied.clone().text() + ' ' + denied.headers.get('www-authenticate'));
    assert.deepEqual(await denied.json(), { message: 'Forbidden' });
    assert.match(denied.headers.get('www-authenticate') ?? '', /^Bearer .*error="insufficient_scope"/);
  });

  test('space-separated values are all required (AND); entries are alternatives (OR)', async () => {
    assert.equal((await call('/groups-and', alexToken)).status, 200);
    assert.equal((await call('/groups-and', janeToken)).status, 403);
    assert.equal((await call('/groups-or', janeToken)).status, 200);
    assert.equal((await call('/groups-or', nogroupsToken)).status, 403);
  });

  test('roles from a nested claim path (realm_access.roles)', async () => {
    assert.equal((await call('/roles', alexToken)).status, 200);
    assert.equal((await call('/roles', janeToken)).status, 403);
  });

  test('a claim of the wrong type (object where a list is expected) never grants access', async () => {
    const r = await call('/wrong-type', alexToken);
    assert.equal(r.status, 403);
  });

  test('claims_forbidden: a token carrying the claim is refused', async () => {
    assert.equal((await call('/forbidden-claim', alexToken)).status, 403);
    assert.equal((await call('/forbidden-claim', nogroupsToken)).status, 200);
  });

  test('consumer mapping: 403 before consumer alex exists, 200 after it is created through the Admin API', async () => {
    const before = await call('/consumers', alexToken);
    assert.equal(before.status, 403);
    const created = await admin(gw, 'POST', '/consumers', { username: 'alex', custom_id: 'alex-42' });
    assert.equal(created.status, 201);
    await waitUntil(async () => (await call('/consumers', alexToken)).status === 200);
    const r = await call('/consumers', alexToken, { 'x-consumer-id': 'spoofed', 'x-consumer-username': 'admin', 'x-anonymous-consumer': 'true', 'x-authenticated-groups': 'admins' });
    const body = (await r.json()) as Echoed;
    assert.equal(body.headers['x-consumer-id'], created.json.id);
    assert.equal(body.headers['x-consumer-username'], 'alex');
    assert.equal(body.headers['x-consumer-custom-id'], 'alex-42');
    assert.equal(body.headers['x-anonymous-consumer'], undefined);
    assert.equal(body.headers['x-authenticated-groups'], undefined);
  });

  test('consumer names: case and look-alike letters do not match unless asked', async () => {
    // A consumer whose name differs from the token's preferred_username only by case: no match
    // by default, a match with by_username_ignore_case.
    const jane = await admin(gw, 'POST', '/consumers', { username: 'JANE' });
    assert.equal(jane.status, 201);
    // A look-alike: Cyrillic "а" instead of Latin "a" in "jаne" must never match "jane".
    assert.equal((await admin(gw, 'POST', '/consumers', { username: 'j\u0430ne' })).status, 201);
    await waitUntil(async () => (await call('/consumers-ci', janeToken)).status === 200);
    assert.equal((await call('/consumers', janeToken)).status, 403);
    const ci = (await (await call('/consumers-ci', janeToken)).json()) as Echoed;
    assert.equal(ci.headers['x-consumer-username'], 'JANE');
  });

  test('a consumer-scoped plugin applies only to that consumer', async () => {
    const alex = await admin(gw, 'GET', '/consumers/alex');
    assert.equal(alex.status, 200);
    const p = await admin(gw, 'POST', '/consumers/alex/plugins', { name: 'request-termination', config: { status_code: 429, message: 'alex is rate limited' } });
    assert.equal(p.status, 201, JSON.stringify(p.json));
    await waitUntil(async () => (await call('/consumers', alexToken)).status === 429);
    const blocked = await call('/consumers', alexToken);
    assert.deepEqual(await blocked.json(), { message: 'alex is rate limited' });
    // jane maps to consumer JANE on /consumers-ci: not affected.
    assert.equal((await call('/consumers-ci', janeToken)).status, 200);
    assert.equal((await admin(gw, 'DELETE', `/plugins/${p.json.id}`)).status, 204);
    await waitUntil(async () => (await call('/consumers', alexToken)).status === 200);
  });

  test('ACL with authenticated_groups_claim: allow list and deny list', async () => {
    const allowed = await call('/acl-allow', alexToken, { 'x-authenticated-groups': 'spoofed' });
    assert.equal(allowed.status, 200);
    const body = (await allowed.json()) as Echoed;
    assert.equal(body.headers['x-authenticated-groups'], 'admins, users');
    const denied = await call('/acl-allow', janeToken, { 'x-authenticated-groups': 'admins' });
    assert.equal(denied.status, 403, await denied.clone().text() + ' ' + denied.headers.get('www-authenticate'));
    assert.deepEqual(await denied.json(), { message: 'You cannot consume this service' });
    assert.equal((await call('/acl-deny', alexToken)).status, 403);
    assert.equal((await call('/acl-deny', janeToken)).status, 200);
  });

  test('consumer_optional: no matching consumer still passes, without consumer headers', async () => {
    const r = await call('/consumer-optional', nogroupsToken, { 'x-consumer-id': 'spoofed' });
    assert.equal(r.status, 200);
    const body = (await r.json()) as Echoed;
    assert.equal(body.headers['x-consumer-id'], undefined);
    assert.equal(body.headers['x-consumer-username'], undefined);
  });

  test('credential_claim: X-Credential-Identifier upstream (default claim sub, or the configured one)', async () => {
    await waitUntil(async () => (await call('/credential', alexToken)).status === 200);
    const viaConfigured = (await (await call('/credential', alexToken, { 'x-credential-identifier': 'spoofed' })).json()) as Echoed;
    assert.equal(viaConfigured.headers['x-credential-identifier'], 'alex');
    const viaDefault = (await (await call('/consumers', alexToken)).json()) as Echoed;
    const sub = JSON.parse(Buffer.from(alexToken.split('.')[1], 'base64url').toString()).sub as string;
    assert.equal(viaDefault.headers['x-credential-identifier'], sub);
  });

  test('consumer names and custom ids beyond Latin-1 reach the upstream as UTF-8 (no 502)', async () => {
    const c = await admin(gw, 'POST', '/consumers', { username: 'nogroups', custom_id: 'Łukasz 张伟 é' });
    assert.equal(c.status, 201, JSON.stringify(c.json));
    await waitUntil(async () => (await call('/consumers', nogroupsToken)).status !== 403);
    const r = await call('/consumers', nogroupsToken);
    assert.equal(r.status, 200, await r.clone().text());
    const body = (await r.json()) as Echoed;
    assert.equal(Buffer.from(body.headers['x-consumer-custom-id'], 'latin1').toString('utf8'), 'Łukasz 张伟 é');
    assert.equal((await admin(gw, 'DELETE', '/consumers/nogroups')).status, 204);
  });

  test('by_username_ignore_case folds case only: the Kelvin sign (K, lower-cases to "k") is no "k"', async () => {
    // The access token's client_id is "kong"; a consumer named "\u212Aong" must not match it.
    const kelvin = await admin(gw, 'POST', '/consumers', { username: '\u212Aong' });
    assert.equal(kelvin.status, 201, JSON.stringify(kelvin.json));
    // Created after it, so once this one maps the proxy also knows the look-alike.
    const nogroups = await admin(gw, 'POST', '/consumers', { username: 'nogroups' });
    assert.equal(nogroups.status, 201);
    await waitUntil(async () => (await call('/consumers', nogroupsToken)).status === 200);
    const r = await call('/consumers-ci-client', alexToken);
    assert.equal(r.status, 403, await r.text());
    assert.equal((await admin(gw, 'DELETE', '/consumers/nogroups')).status, 204);
    assert.equal((await admin(gw, 'DELETE', `/consumers/${kelvin.json.id}`)).status, 204);
  });

  test('forbidden_destroy_session: a session refused with 403 is kept when off, ended by default', async () => {
    const login = await fetch(`${gw.proxyUrl}/session-ok`, { headers: { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}` } });
    assert.equal(login.status, 200);
    const cookie = (login.headers.getSetCookie().find((c) => c.startsWith('session=')) ?? '').split(';')[0];
    assert.ok(cookie.length > 'session='.length, 'a session cookie was issued');
    assert.equal((await fetch(`${gw.proxyUrl}/session-ok`, { headers: { cookie } })).status, 200);

    const kept = await fetch(`${gw.proxyUrl}/session-forbidden-keep`, { headers: { cookie } });
    assert.equal(kept.status, 403);
    assert.equal(kept.headers.getSetCookie().find((c) => c.startsWith('session=')), undefined, 'session kept');

    const denied = await fetch(`${gw.proxyUrl}/session-forbidden`, { headers: { cookie } });
    assert.equal(denied.status, 403);
    const cleared = denied.headers.getSetCookie().find((c) => c.startsWith('session='));
    assert.ok(cleared, 'session cookie removed');
    assert.match(cleared, /Max-Age=0|Expires=Thu, 01 Jan 1970/i);
    // Ended for good: the same cookie no longer authenticates anywhere.
    assert.equal((await fetch(`${gw.proxyUrl}/session-ok`, { headers: { cookie } })).status, 401);
  });
});
