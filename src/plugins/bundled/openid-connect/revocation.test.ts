/**
 * The revocation checker of openid-connect's header certificates (revocation.ts) against real
 * HTTP servers (test/helpers/revocation-servers.ts): the OCSP nonce, answers without nextUpdate,
 * CRLs in PEM, stale or from another CA, and the answer cache with a controlled clock (cert_cache_ttl,
 * a good answer no longer than its nextUpdate, synchronous when remembered). The gateway-level
 * behaviour is in test/oidc-mtls-revocation.test.ts.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { issueCert, type IssuedCert } from '../../../../test/helpers/certs.ts';
import { startCrlServer, startOcspResponder, type CrlServer, type OcspResponder } from '../../../../test/helpers/revocation-servers.ts';
import { RevocationChecker, type RevocationSettings } from './revocation.ts';

const settings = (o: Partial<RevocationSettings> = {}): RevocationSettings => ({
  revocation_check_mode: 'STRICT', cert_cache_ttl: 60000, http_timeout: 2000,
  http_proxy_host: null, http_proxy_port: null, https_proxy_host: null, https_proxy_port: null, ssl_verify: true, ...o,
});
const quiet = { warn: () => undefined };

describe('openid-connect revocation checker (OCSP, CRL)', () => {
  let ca: IssuedCert;
  let other: IssuedCert;
  let ocsp: OcspResponder;
  let crl: CrlServer;
  const checked = (leaf: IssuedCert) => ({ leaf: new X509Certificate(leaf.cert), issuer: new X509Certificate(ca.cert), caPems: [] });

  before(async () => {
    ca = await issueCert({ cn: 'Checker CA', isCa: true });
    other = await issueCert({ cn: 'Checker Other CA', isCa: true });
    ocsp = await startOcspResponder({ ca });
    crl = await startCrlServer({ ca, other });
  });

  after(async () => {
    await ocsp?.close();
    await crl?.close();
  });

  it('OCSP nonce: sent with every request; a responder that leaves it out is accepted, one that answers another nonce is not', async () => {
    const c = new RevocationChecker(settings(), Date.now);
    try {
      const leaf = await issueCert({ cn: 'n', ca, ocspUrl: `${ocsp.url}/ok` });
      ocsp.lastNonce = false;
      assert.equal((await c.answer(checked(leaf))).kind, 'good');
      assert.equal(ocsp.lastNonce, true);
      assert.equal((await c.answer(checked(await issueCert({ cn: 'n2', ca, ocspUrl: `${ocsp.url}/no-nonce` })))).kind, 'good');
      assert.deepEqual(await c.answer(checked(await issueCert({ cn: 'n3', ca, ocspUrl: `${ocsp.url}/wrong-nonce` }))), { kind: 'invalid', why: 'OCSP response: the nonce does not match the request' });
      // No nextUpdate: good, and remembered for cert_cache_ttl only.
      assert.deepEqual(await c.answer(checked(await issueCert({ cn: 'n4', ca, ocspUrl: `${ocsp.url}/no-next-update` }))), { kind: 'good', source: 'ocsp', nextUpdate: null });
    } finally {
      await c.close();
    }
  });

  it('CRL: PEM as well as DER; past its nextUpdate is unavailable; signed by another CA is refused', async () => {
    const c = new RevocationChecker(settings(), Date.now);
    try {
      const pem = await issueCert({ cn: 'p', ca, crlUrl: `${crl.url}/pem.crl` });
      assert.equal((await c.answer(checked(pem))).kind, 'good');
      crl.revoked.add(pem.serial);
      assert.deepEqual(await c.answer(checked(pem)), { kind: 'revoked', source: 'crl' });
      const stale = await c.answer(checked(await issueCert({ cn: 's', ca, crlUrl: `${crl.url}/stale.crl` })));
      assert.equal(stale.kind, 'unavailable');
      assert.match((stale as { why: string }).why, /past its nextUpdate/);
      const foreign = await c.answer(checked(await issueCert({ cn: 'o', ca, crlUrl: `${crl.url}/other.crl` })));
      assert.deepEqual(foreign, { kind: 'invalid', why: `CRL ${crl.url}/other.crl: issued by another CA` });
    } finally {
      await c.close();
    }
  });

  it('the cache: remembered for cert_cache_ttl (answered synchronously), a good answer no longer than its nextUpdate, and nothing with cert_cache_ttl 0', async () => {
    let now = Date.now();
    const c = new RevocationChecker(settings({ cert_cache_ttl: 60_000 }), () => now);
    const long = new RevocationChecker(settings({ cert_cache_ttl: 10 * 3600_000 }), () => now);
    const none = new RevocationChecker(settings({ cert_cache_ttl: 0 }), () => now);
    try {
      const leaf = await issueCert({ cn: 'cache', ca, ocspUrl: `${ocsp.url}/cache-unit` });
      const hits = () => ocsp.hits.get('/cache-unit') ?? 0;
      const first = c.check(checked(leaf), quiet);
      assert.ok(first instanceof Promise);
      assert.equal(await first, null);
      assert.equal(hits(), 1);
      now += 59_000;
      const again = c.check(checked(leaf), quiet);
      assert.equal(again, null, 'remembered: a synchronous answer');
      assert.equal(hits(), 1);
      now += 2_000;
      assert.equal(await c.check(checked(leaf), quiet), null);
      assert.equal(hits(), 2, 'asked again after cert_cache_ttl');

      // The responder's nextUpdate is an hour away: a ten-hour cert_cache_ttl keeps it for an hour only.
      now = Date.now();
      assert.equal(await long.check(checked(leaf), quiet), null);
      assert.equal(hits(), 3);
      now += 3500_000;
      assert.equal(long.check(checked(leaf), quiet), null);
      assert.equal(hits(), 3);
      now += 200_000;
      assert.equal(await long.check(checked(leaf), quiet), null);
      assert.equal(hits(), 4, 'asked again after the answer\'s nextUpdate');

      now = Date.now();
      await none.check(checked(leaf), quiet);
      await none.check(checked(leaf), quiet);
      assert.equal(hits(), 6, 'cert_cache_ttl 0: every request asks');
    } finally {
      await c.close();
      await long.close();
      await none.close();
    }
  });

  it('IGNORE_CA_ERROR and STRICT verdicts: unavailable is forgiven (logged once per check) or refused; revoked and invalid are refused in both', async () => {
    const warnings: object[] = [];
    const log = { warn: (o: object) => warnings.push(o) };
    const ignore = new RevocationChecker(settings({ revocation_check_mode: 'IGNORE_CA_ERROR' }), Date.now);
    const strict = new RevocationChecker(settings(), Date.now);
    try {
      const down = await issueCert({ cn: 'd', ca, ocspUrl: `${ocsp.url}/500` });
      assert.equal(await ignore.check(checked(down), log), null);
      assert.equal(ignore.check(checked(down), log), null);
      assert.equal(warnings.length, 1);
      assert.match(JSON.stringify(warnings[0]), /HTTP 500/);
      assert.match(String(await strict.check(checked(down), log)), /^the revocation status is unavailable: OCSP responder .*\/500: HTTP 500$/);
      const revoked = await issueCert({ cn: 'r', ca, ocspUrl: `${ocsp.url}/ok` });
      ocsp.status.set(revoked.serial, 'revoked');
      assert.equal(await ignore.check(checked(revoked), log), 'the certificate is revoked (OCSP)');
      const forged = await issueCert({ cn: 'f', ca, ocspUrl: `${ocsp.url}/bad-signature` });
      assert.equal(await ignore.check(checked(forged), log), 'the revocation check failed: OCSP response: the signature does not verify');
    } finally {
      await ignore.close();
      await strict.close();
    }
  });
});
