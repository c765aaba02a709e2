/**
 * openid-connect against the demo IdP: introspection (opaque tokens, cached), user info,
 * refresh token grant, claim headers and consumer mapping, anonymous fallback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from './helpers/gateway.ts';
import { startIdp } from '../demo/idp.ts';
import { oidcDeck } from './helpers/oidc-deck.ts';

import { idpEchoSuite } from './helpers/idp.ts';

const env = idpEchoSuite(startIdp);

function deck(pluginConfig: string, extra = ''): string {
  return oidcDeck(env.echo.url, env.idp.issuer, `${pluginConfig}\n${extra}`);
}

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
type Echo = { headers: Record<string, string> };
const h = (e: Echo, name: string) => e.headers[name] ?? e.headers[name.toLowerCase()] ?? Object.entries(e.headers).find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];

/** Password grant straight at the IdP, as a client of the demo IdP would do. */
async function passwordGrant(clientId: string, secret: string, scope = 'openid'): Promise<Record<string, string>> {
  const r = await fetch(`${env.idp.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(clientId, secret) },
    body: new URLSearchParams({ grant_type: 'password', username: 'alex', password: 'doe', scope }),
  });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()) as Record<string, string>;
}

test('introspection: opaque token → 200, cached; inactive → 401; upstream gets the introspection header', async () => {
  const gw = await startGateway({
    config: deck(`      client_id: [introspector]
      client_secret: [introspector-secret]
      auth_methods: [introspection]
      upstream_introspection_header: x-introspection
      upstream_headers_claims: [sub]
      upstream_headers_names: [x-user]`),
  });
  try {
    const { access_token } = await passwordGrant('kong-basic', 'kong-basic-secret');
    env.idp.resetCounts();
    for (let i = 0; i < 5; i++) {
      const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${access_token}`, 'x-user': 'spoofed' } });
      assert.equal(r.status, 200);
      const e = (await r.json()) as Echo;
      const intro = JSON.parse(Buffer.from(h(e, 'x-introspection')!, 'base64').toString()) as { active: boolean; sub: string };
      assert.equal(intro.active, true);
      assert.equal(h(e, 'x-user'), intro.sub);
      assert.notEqual(h(e, 'x-user'), 'spoofed');
    }
    assert.equal(env.idp.counts().introspection, 1);
    const bad = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: 'Bearer not-a-real-token' } });
    assert.equal(bad.status, 401);
  } finally {
    await gw.close();
  }
});

test('userinfo: a token the user info endpoint accepts authenticates', async () => {
  const gw = await startGateway({
    config: deck(`      client_id: [kong-basic]
      client_secret: [kong-basic-secret]
      auth_methods: [userinfo]
      upstream_user_info_header: x-userinfo`),
  });
  try {
    const { access_token } = await passwordGrant('kong-basic', 'kong-basic-secret', 'openid profile');
    const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: `Bearer ${access_token}` } });
    assert.equal(r.status, 200, await r.clone().text());
    const info = JSON.parse(Buffer.from(h((await r.json()) as Echo, 'x-userinfo')!, 'base64').toString()) as { sub: string };
    assert.ok(info.sub);
    const bad = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: 'Bearer nope' } });
    assert.equal(bad.status, 401);
  } finally {
    await gw.close();
  }
});

test('refresh_token: Refresh-Token header → refresh grant; the new refresh token goes upstream', async () => {
  const gw = await startGateway({
    config: deck(`      client_id: [kong]
      client_secret: [kong-secret]
      client_auth: [client_secret_post]
      auth_methods: [refresh_token]
      refresh_token_param_name: refresh_token
      refresh_token_param_type: [header]
      upstream_refresh_token_header: refresh_token`),
  });
  try {
    const { refresh_token } = await passwordGrant('kong', 'kong-secret', 'openid offline_access');
    assert.ok(refresh_token);
    const r = await fetch(`${gw.proxyUrl}/api`, { headers: { 'refresh-token': refresh_token } });
    assert.equal(r.status, 200, await r.clone().text());
    const e = (await r.json()) as Echo;
    assert.match(h(e, 'authorization') ?? '', /^Bearer /);
    assert.ok(h(e, 'refresh_token') ?? h(e, 'refresh-token'));
    const bad = await fetch(`${gw.proxyUrl}/api`, { headers: { 'refresh-token': 'garbage' } });
    assert.equal(bad.status, 401);
  } finally {
    await gw.close();
  }
});

test('consumer mapping from a claim, 403 when unmapped, anonymous fallback on 401', async () => {
  const gw = await startGateway({
    config: deck(`      client_id: [kong]
      client_secret: [kong-secret]
      client_auth: [client_secret_post]
      auth_methods: [password]
      consumer_claims: [[sub]]
      consumer_by: [custom_id, username]
      authenticated_groups_claim: [scope]
      anonymous: guest`, `consumers:
  - username: guest
  - username: alex-consumer
    custom_id: alex
`),
  });
  try {
    const r = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: basic('alex', 'doe') } });
    assert.equal(r.status, 200, await r.clone().text());
    const mapped = (await r.json()) as Echo;
    assert.equal(h(mapped, 'x-consumer-username'), 'alex-consumer');
    assert.match(h(mapped, 'x-authenticated-groups') ?? '', /openid/);
    // jane has no consumer: 403, and 403 does not fall back to anonymous.
    const unmapped = await fetch(`${gw.proxyUrl}/api`, { headers: { authorization: basic('jane', 'doe2') } });
    assert.equal(unmapped.status, 403);
    assert.deepEqual(await unmapped.json(), { message: 'Forbidden' });
    const anon = await fetch(`${gw.proxyUrl}/api`);
    assert.equal(anon.status, 200);
    const e = (await anon.json()) as Echo;
    assert.equal(h(e, 'x-anonymous-consumer'), 'true');
    assert.equal(h(e, 'x-consumer-username'), 'guest');
  } finally {
    await gw.close();
  }
});
