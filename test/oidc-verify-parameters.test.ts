/**
 * openid-connect `verify_parameters: true` against a real OpenID Provider (demo/idp.ts,
 * oidc-provider): a default configuration fits its discovery document; a scope or a
 * response type it does not offer is a 500 on every request.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from './helpers/gateway.ts';
import { idpEchoSuite, startIdp } from './helpers/idp.ts';
import { oidcDeck } from './helpers/oidc-deck.ts';

const env = idpEchoSuite(() => startIdp());
const alex = { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}` };

async function statusWith(extra: string): Promise<number> {
  const gw = await startGateway({ config: oidcDeck(env.echo.url, env.idp.issuer, `      client_id: [kong]\n      client_secret: [kong-secret]\n      verify_parameters: true\n${extra}`) });
  try {
    const r = await fetch(`${gw.proxyUrl}/api`, { headers: alex });
    await r.body?.cancel();
    return r.status;
  } finally {
    await gw.close();
  }
}

test('verify_parameters: the defaults fit oidc-provider; what it does not offer is refused', async () => {
  assert.equal(await statusWith(''), 200);
  assert.equal(await statusWith('      scopes: [openid, email]\n      response_mode: form_post\n      client_auth: [client_secret_post]\n'), 200);
  assert.equal(await statusWith('      scopes: [openid, payments]\n'), 500);
  assert.equal(await statusWith('      response_type: [code, token]\n'), 500);
});
