/**
 * The discovery cache as the Admin API shows it (`/openid-connect/issuers`, reference §7.3) when
 * several plugin instances use the same issuer with different key sources (`extra_jwks_uris`,
 * `jwks_endpoint`) or endpoint overrides: each distinct cache keeps its own record, and clearing
 * an issuer clears every record of it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from './helpers/gateway.ts';
import type { TestGateway } from './helpers/gateway.ts';
import { startBadIdp } from './helpers/bad-idp.ts';
import type { BadIdp } from './helpers/bad-idp.ts';
import { startEcho } from '../demo/echo.ts';
import type { EchoServer } from '../demo/echo.ts';

let idp: BadIdp;
let other: BadIdp;
let echo: EchoServer;
let gw: TestGateway;

type IssuerRecord = { id: string; issuer: string; created_at: number; configuration: Record<string, unknown> | null; keys: Array<{ kid?: string }> };

before(async () => {
  idp = await startBadIdp();
  other = await startBadIdp();
  echo = await startEcho();
  const service = (name: string, config: string) => `  - name: ${name}
    url: ${echo.url}/anything
    routes:
      - name: ${name}
        paths: [/${name}]
    plugins:
      - name: openid-connect
        config:
          issuer: ${idp.issuer}
          auth_methods: [bearer]
${config}`;
  gw = await startGateway({
    config: `_format_version: "3.0"
services:
${service('plain', '')}
${service('multi', `          extra_jwks_uris: [${other.issuer}/jwks]
          issuers_allowed: [${idp.issuer}, ${other.issuer}]
`)}
${service('override', `          token_endpoint: ${idp.issuer}/somewhere-else
`)}
`,
  });
});
after(async () => {
  await gw.close();
  await echo.close();
  await other.close();
  await idp.close();
});

async function admin(method: string, path: string): Promise<{ status: number; body: unknown }> {
  const r = await fetch(`${gw.adminUrl}${path}`, { method });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as unknown) : null };
}

async function call(path: string, token: string): Promise<number> {
  const r = await fetch(`${gw.proxyUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
  await r.body?.cancel();
  return r.status;
}

const kids = (rec: IssuerRecord) => rec.keys.map((k) => k.kid).sort();
const settle = () => new Promise((r) => setTimeout(r, 100));

test('same issuer, different extra_jwks_uris or endpoint overrides: the records do not overwrite each other', async () => {
  const token = await idp.sign({ sub: 'alex' });
  // One instance after the other, so that no two publish at the same moment.
  for (const path of ['/plain', '/multi', '/override', '/plain']) {
    assert.equal(await call(path, token), 200, path);
    await settle();
  }
  assert.equal(await call('/multi', await other.sign({ sub: 'x' })), 200, 'the extra keys are trusted by /multi');
  assert.equal(await call('/plain', await other.sign({ sub: 'x' })), 401, 'but not by /plain');

  const list = (await admin('GET', '/openid-connect/issuers')).body as { data: IssuerRecord[]; next: null };
  const own = idp.jwks().keys.map((k) => k.kid).sort();
  const withExtra = [...own, ...other.jwks().keys.map((k) => k.kid)].sort();
  const plain = list.data.filter((r) => r.issuer === idp.issuer && kids(r).join() === own.join());
  const multi = list.data.filter((r) => r.issuer === idp.issuer && kids(r).join() === withExtra.join());
  assert.equal(plain.length, 1, `one record with the issuer's own keys: ${JSON.stringify(list.data.map(kids))}`);
  assert.equal(multi.length, 1, `one record with the issuer's and the extra keys: ${JSON.stringify(list.data.map(kids))}`);
  assert.notEqual(plain[0].id, multi[0].id);
  assert.equal(list.data.length, 2, 'instances with the same issuer and key sources share one record');
  for (const rec of list.data) {
    // The discovery document as the IdP published it: an instance's endpoint override is not part of it.
    assert.equal(rec.configuration?.token_endpoint, `${idp.issuer}/token`, 'the discovered document, not one instance’s overrides');
    assert.deepEqual((await admin('GET', `/openid-connect/issuers/${rec.id}`)).body, rec);
  }
  // By issuer URL: the record of the issuer's own keys.
  assert.deepEqual((await admin('GET', `/openid-connect/issuers/${encodeURIComponent(idp.issuer)}`)).body, plain[0]);

  // Clearing the issuer clears every record of it, and every instance of it rediscovers.
  assert.equal((await admin('DELETE', `/openid-connect/issuers/${encodeURIComponent(idp.issuer)}`)).status, 204);
  assert.deepEqual((await admin('GET', '/openid-connect/issuers')).body, { data: [], next: null });
  assert.equal((await admin('GET', `/openid-connect/issuers/${multi[0].id}`)).status, 404);
  await new Promise((r) => setTimeout(r, 2100));
  other.resetCounts();
  for (const path of ['/plain', '/multi']) {
    // New tokens: a verified token is remembered and needs no keys at all.
    for (let i = 0; i < 2; i++) {
      assert.equal(await call(path, await idp.sign({ sub: `alex-${i}` })), 200, path);
      await settle();
    }
  }
  assert.ok((other.counts().jwks ?? 0) >= 1, `/multi refetched its extra keys: ${JSON.stringify(other.counts())}`);
  const again = (await admin('GET', '/openid-connect/issuers')).body as { data: IssuerRecord[] };
  assert.deepEqual(again.data.map((r) => r.id).sort(), [plain[0].id, multi[0].id].sort(), 'both recorded again, with the same ids');
});
