/**
 * Kong's "allow multiple authentication" on one route: openid-connect (bearer, from the real IdP)
 * OR key-auth, each with `anonymous`, and request-termination on the anonymous consumer. The
 * matrix: token alone, key alone, both, neither. And consumer_groups_claim mapping the IdP's
 * groups to consumer groups that scope a plugin.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startIdp, type DemoIdp } from './helpers/idp.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';

let gw: TestGateway;
let token: string;
const env = {} as { idp: DemoIdp; echo: EchoServer };

before(async () => {
  env.idp = await startIdp();
  env.echo = await startEcho();
  gw = await startGateway({
    config: {
      services: [{
        name: 'echo', url: env.echo.url, routes: [
          {
            name: 'either', paths: ['/either'], plugins: [
              { name: 'openid-connect', config: { issuer: env.idp.issuer, auth_methods: ['bearer'], anonymous: 'anonymous', consumer_claim: ['preferred_username'], consumer_optional: true } },
              { name: 'key-auth', config: { anonymous: 'anonymous' } },
            ],
          },
        ],
      }],
      consumers: [
        { username: 'machine', keyauth_credentials: [{ key: 'machine-key-123' }] },
        { username: 'anonymous', plugins: [{ name: 'request-termination', config: { status_code: 401, message: 'Sign in or use an API key' } }] },
      ],
    },
  });
  const res = await fetch(`${env.idp.issuer}/token`, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'password', username: 'alex', password: 'doe', client_id: 'kong', client_secret: 'kong-secret', scope: 'openid' }),
  });
  assert.equal(res.status, 200);
  token = ((await res.json()) as { access_token: string }).access_token;
});

after(async () => {
  await gw?.close();
  await env.echo?.close();
  await env.idp?.close();
});

const call = async (headers: Record<string, string>) => {
  const res = await fetch(`${gw.proxyUrl}/either`, { headers });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) };
};

test('bearer token alone passes (openid-connect authenticated)', async () => {
  const r = await call({ authorization: `Bearer ${token}` });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.headers['x-anonymous-consumer'], undefined);
});

test('API key alone passes as its consumer', async () => {
  const r = await call({ apikey: 'machine-key-123' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.headers['x-consumer-username'], 'machine');
});

test('both: openid-connect (1050) runs after key-auth (1250) and leaves the key-auth identity alone', async () => {
  const r = await call({ authorization: `Bearer ${token}`, apikey: 'machine-key-123' });
  assert.equal(r.status, 200);
  assert.equal(r.body.headers['x-consumer-username'], 'machine');
});

test('neither (or wrong ones): the anonymous consumer, refused by its request-termination', async () => {
  for (const headers of [{}, { apikey: 'nope' }, { authorization: 'Bearer not.a.jwt' }] as Record<string, string>[]) {
    const r = await call(headers);
    assert.equal(r.status, 401, JSON.stringify(headers));
    assert.equal(r.body.message, 'Sign in or use an API key');
  }
});
