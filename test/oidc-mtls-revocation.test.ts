/**
 * openid-connect `proof_of_possession_mtls_from_header`: revocation checks of the header's client
 * certificate (`revocation_check_mode` SKIP / IGNORE_CA_ERROR / STRICT) through the real gateway,
 * with certificate-bound tokens (RFC 8705) from the demo OpenID Provider.
 *
 * A test CA issues client certificates that name an OCSP responder (Authority Information
 * Access) or a CRL (CRL Distribution Points), or neither. The responders are real HTTP servers:
 * an in-test OCSP responder (test/helpers/revocation-servers.ts: good / revoked / unknown, a
 * broken signature, a signer the CA did not authorize, a delegated signer, stale answers,
 * tryLater, HTTP 500, garbage, a hang), `openssl ocsp` (OpenSSL's own responder), and CRL servers
 * over http and https. Fetches go through a real forward proxy with the proxy fields.
 *
 * What IGNORE_CA_ERROR forgives (documented in src/plugins/bundled/openid-connect/README.md): an
 * unreachable, failing or unparseable responder/CRL, an `unknown` status, a stale answer. What it
 * does not: a revoked certificate, and an answer that cannot be trusted (a signature that does
 * not verify, a signer the CA did not authorize).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, hash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { demoAudience, startIdp, type DemoIdp } from './helpers/idp.ts';
import { issueCert, type IssuedCert, type IssueOptions } from './helpers/certs.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { startForwardProxy, type ForwardProxy } from './helpers/forward-proxy.ts';
import { closedPort, startCrlServer, startOcspResponder, type CrlServer, type OcspResponder } from './helpers/revocation-servers.ts';
import { request, type Answer } from './helpers/cert-request.ts';

const thumbprint = (c: IssuedCert) => hash('sha256', new X509Certificate(c.cert).raw, 'base64url');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const CLIENT_CA = 'ca000000-0000-4000-8000-0000000000a1';
const TLS_CA = 'ca000000-0000-4000-8000-0000000000a2';

describe('openid-connect: revocation checks of header client certificates (OCSP, CRL)', () => {
  let clientCa: IssuedCert;
  let tlsCa: IssuedCert;
  let strangerCa: IssuedCert;
  let idp: DemoIdp;
  let echo: EchoServer;
  let gw: TestGateway;
  let ocsp: OcspResponder;
  let crl: CrlServer;
  let httpsCrl: CrlServer;
  let proxy: ForwardProxy;
  let opensslOcsp: ChildProcess;
  let deadPort: number;
  let opensslPort: number;
  let gatewayUrl: string;
  const certs = new Map<string, IssuedCert>();
  const tokens = new Map<string, string>();

  /** A client certificate of the test CA, and a token bound to it (RFC 8705 §3). */
  async function client(name: string, o: Omit<IssueOptions, 'cn' | 'ca'> = {}): Promise<IssuedCert> {
    const cert = await issueCert({ cn: name, ca: clientCa, ...o });
    certs.set(name, cert);
    const r = await request(`${idp.mtlsUrl}/token`, {
      method: 'POST',
      cert,
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('bound:bound-secret').toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', audience: demoAudience, scope: 'openid' }).toString(),
    });
    assert.equal(r.status, 200, r.body);
    const token = JSON.parse(r.body).access_token as string;
    assert.equal((decodeJwt(token).cnf as Record<string, string>)['x5t#S256'], thumbprint(cert));
    tokens.set(name, token);
    return cert;
  }

  /** The gateway's answer for `route` with the certificate `name` in the header and its bound token; whether the upstream saw it. */
  async function call(route: string, name: string, tokenOf = name): Promise<Answer & { upstream: boolean; ms: number }> {
    const before = echo.received.length;
    const started = Date.now();
    const r = await request(`${gatewayUrl}/${route}`, { headers: { authorization: `Bearer ${tokens.get(tokenOf)!}`, 'x-client-cert': encodeURIComponent(certs.get(name)!.cert) } });
    return { ...r, upstream: echo.received.length > before, ms: Date.now() - started };
  }

  function assertRefused(r: Answer & { upstream: boolean }, what: string): void {
    assert.equal(r.status, 401, `${what}: ${r.status} ${r.body}`);
    assert.match(String(r.headers['www-authenticate']), /^Bearer realm="[^"]+", error="invalid_token"$/, what);
    assert.equal(r.upstream, false, `${what}: the upstream saw the request`);
  }

  function assertPassed(r: Answer & { upstream: boolean }, what: string): void {
    assert.equal(r.status, 200, `${what}: ${r.status} ${r.body}`);
    assert.equal(r.upstream, true, what);
  }

  before(async () => {
    clientCa = await issueCert({ cn: 'Revocation Test CA', isCa: true });
    tlsCa = await issueCert({ cn: 'CRL Server TLS CA', isCa: true });
    strangerCa = await issueCert({ cn: 'Stranger CA', isCa: true });
    const delegate = await issueCert({ cn: 'Revocation Test OCSP Signer', ca: clientCa, ocspSigning: true });
    const crlTls = await issueCert({ cn: 'crl.test', dns: ['127.0.0.1', 'localhost'], ca: tlsCa });
    ocsp = await startOcspResponder({ ca: clientCa, delegate, stranger: strangerCa });
    crl = await startCrlServer({ ca: clientCa });
    httpsCrl = await startCrlServer({ ca: clientCa, tls: crlTls });
    proxy = await startForwardProxy();
    deadPort = await closedPort();
    opensslPort = await closedPort();
    const idpCert = await issueCert({ cn: 'localhost', dns: ['localhost', '127.0.0.1'] });
    const bound = { client_id: 'bound', client_secret: 'bound-secret', token_endpoint_auth_method: 'client_secret_basic', grant_types: ['client_credentials'], redirect_uris: [], response_types: [], tls_client_certificate_bound_access_tokens: true };
    idp = await startIdp({ mtls: { cert: idpCert.cert, key: idpCert.key, ca: [clientCa.cert], aliases: false }, extraClients: [bound] as never });
    echo = await startEcho();

    await client('good', { ocspUrl: `${ocsp.url}/ok` });
    await client('revoked', { ocspUrl: `${ocsp.url}/ok` });
    ocsp.status.set(certs.get('revoked')!.serial, 'revoked');
    await client('unknown', { ocspUrl: `${ocsp.url}/ok` });
    ocsp.status.set(certs.get('unknown')!.serial, 'unknown');
    await client('delegated', { ocspUrl: `${ocsp.url}/delegated` });
    await client('bad-signature', { ocspUrl: `${ocsp.url}/bad-signature` });
    await client('other-signer', { ocspUrl: `${ocsp.url}/other-signer` });
    await client('stale', { ocspUrl: `${ocsp.url}/stale` });
    await client('try-later', { ocspUrl: `${ocsp.url}/try-later` });
    await client('http-500', { ocspUrl: `${ocsp.url}/500` });
    await client('garbage', { ocspUrl: `${ocsp.url}/garbage` });
    await client('down', { ocspUrl: `http://127.0.0.1:${deadPort}/ocsp` });
    await client('hang', { ocspUrl: `${ocsp.url}/hang` });
    await client('crl-good', { crlUrl: `${crl.url}/ca.crl` });
    await client('crl-revoked', { crlUrl: `${crl.url}/ca.crl` });
    crl.revoked.add(certs.get('crl-revoked')!.serial);
    await client('crl-down', { crlUrl: `http://127.0.0.1:${deadPort}/ca.crl` });
    // OCSP first; when the responder gives no usable answer, the CRL decides.
    await client('ocsp-down-crl-revoked', { ocspUrl: `${ocsp.url}/500`, crlUrl: `${crl.url}/ca.crl` });
    crl.revoked.add(certs.get('ocsp-down-crl-revoked')!.serial);
    await client('neither');
    await client('cached', { ocspUrl: `${ocsp.url}/cache` });
    await client('concurrent', { ocspUrl: `${ocsp.url}/concurrent` });
    await client('other-binding', { ocspUrl: `${ocsp.url}/other-binding` });
    await client('skip-revoked', { ocspUrl: `${ocsp.url}/skip`, crlUrl: `${crl.url}/skip.crl` });
    ocsp.status.set(certs.get('skip-revoked')!.serial, 'revoked');
    await client('proxied-ocsp', { ocspUrl: `${ocsp.url}/proxied` });
    await client('proxied-revoked', { ocspUrl: `${ocsp.url}/proxied` });
    ocsp.status.set(certs.get('proxied-revoked')!.serial, 'revoked');
    await client('https-crl', { crlUrl: `${httpsCrl.url}/ca.crl` });
    await client('https-crl-revoked', { crlUrl: `${httpsCrl.url}/ca.crl` });
    httpsCrl.revoked.add(certs.get('https-crl-revoked')!.serial);
    await client('openssl-good', { ocspUrl: `http://127.0.0.1:${opensslPort}` });
    await client('openssl-revoked', { ocspUrl: `http://127.0.0.1:${opensslPort}` });

    // OpenSSL's OCSP responder, with an index of the two certificates it answers for.
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-ocsp-'));
    const until = '301231235959Z';
    const line = (state: string, c: IssuedCert, revokedAt: string) => `${state}\t${until}\t${revokedAt}\t${c.serial.toUpperCase()}\tunknown\t/CN=${new X509Certificate(c.cert).subject.replace(/^CN=/, '')}\n`;
    writeFileSync(join(dir, 'index.txt'), line('V', certs.get('openssl-good')!, '') + line('R', certs.get('openssl-revoked')!, '250101000000Z'));
    opensslOcsp = spawn('openssl', ['ocsp', '-index', join(dir, 'index.txt'), '-CA', clientCa.certFile, '-rsigner', clientCa.certFile, '-rkey', clientCa.keyFile, '-port', String(opensslPort), '-nmin', '5'], { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      let text = '';
      opensslOcsp.stderr!.on('data', (c: Buffer) => {
        text += c.toString();
        if (text.includes('waiting for OCSP client connections')) resolve();
      });
      opensslOcsp.on('exit', (code) => reject(new Error(`openssl ocsp exited with ${code}: ${text}`)));
    });

    const [proxyHost, proxyPort] = proxy.url.replace('http://', '').split(':');
    const header = { certificate_header_name: 'x-client-cert', ca_certificates: [CLIENT_CA], http_timeout: 500 };
    const route = (name: string, rec: Record<string, unknown>) => ({
      name,
      paths: [`/${name}`],
      plugins: [{
        name: 'openid-connect',
        config: { issuer: idp.issuer, ssl_verify: false, auth_methods: ['bearer'], proof_of_possession_mtls: 'strict', proof_of_possession_mtls_from_header: { ...header, ...rec } },
      }],
    });
    gw = await startGateway({
      env: { PORTCULLIS_TRUSTED_IPS: '127.0.0.1' },
      config: {
        ca_certificates: [{ id: CLIENT_CA, cert: clientCa.cert }, { id: TLS_CA, cert: tlsCa.cert }],
        services: [{
          name: 'echo',
          url: echo.url,
          routes: [
            // revocation_check_mode left at Kong's default: IGNORE_CA_ERROR.
            route('ignore', {}),
            route('strict', { revocation_check_mode: 'STRICT' }),
            route('skip', { revocation_check_mode: 'SKIP' }),
            route('cache', { revocation_check_mode: 'STRICT', cert_cache_ttl: 1500 }),
            route('slow', { revocation_check_mode: 'STRICT', http_timeout: 1500 }),
            route('proxied', {
              revocation_check_mode: 'STRICT', ca_certificates: [CLIENT_CA, TLS_CA], ssl_verify: true,
              http_proxy_host: proxyHost, http_proxy_port: Number(proxyPort), https_proxy_host: proxyHost, https_proxy_port: Number(proxyPort),
            }),
            route('verify', { revocation_check_mode: 'STRICT', ssl_verify: true }),
            route('verify-trusted', { revocation_check_mode: 'STRICT', ssl_verify: true, ca_certificates: [CLIENT_CA, TLS_CA] }),
            route('no-verify', { revocation_check_mode: 'STRICT', ssl_verify: false }),
          ],
        }],
      },
    });
    gatewayUrl = `http://127.0.0.1:${gw.node.proxyPorts()[0]}`;
  });

  after(async () => {
    opensslOcsp?.kill();
    await gw?.close();
    await echo?.close();
    await idp?.close();
    await ocsp?.close();
    await crl?.close();
    await httpsCrl?.close();
    await proxy?.close();
  });

  it('OCSP: a good certificate passes, a revoked one is a 401 invalid_token in both modes and never reaches the upstream', async () => {
    for (const route of ['ignore', 'strict']) {
      assertPassed(await call(route, 'good'), `${route} good`);
      assertPassed(await call(route, 'delegated'), `${route} good, signed by a delegated responder certificate`);
      assertRefused(await call(route, 'revoked'), `${route} revoked`);
    }
    assert.ok((ocsp.hits.get('/ok') ?? 0) >= 4, 'the responder was asked');
    assert.equal(ocsp.lastNonce, true, 'the request carries a nonce');
  });

  it('OCSP against OpenSSL\'s responder (openssl ocsp): good passes, revoked is refused', async () => {
    assertPassed(await call('strict', 'openssl-good'), 'openssl good');
    assertRefused(await call('strict', 'openssl-revoked'), 'openssl revoked');
    assertRefused(await call('ignore', 'openssl-revoked'), 'openssl revoked (IGNORE_CA_ERROR)');
  });

  it('CRL (no OCSP responder named): listed serial refused, others pass; OCSP without an answer falls back to the CRL', async () => {
    const before = crl.hits.count;
    for (const route of ['ignore', 'strict']) {
      assertPassed(await call(route, 'crl-good'), `${route} crl good`);
      assertRefused(await call(route, 'crl-revoked'), `${route} crl revoked`);
      assertRefused(await call(route, 'ocsp-down-crl-revoked'), `${route} OCSP 500, CRL lists it`);
    }
    assert.ok(crl.hits.count >= before + 6, 'the CRL was fetched');
  });

  it('responder or CRL unreachable, failing, unparseable, stale, or status unknown: passes with IGNORE_CA_ERROR, refused with STRICT', async () => {
    for (const name of ['down', 'crl-down', 'http-500', 'garbage', 'try-later', 'stale', 'unknown']) {
      assertPassed(await call('ignore', name), `ignore ${name}`);
      assertRefused(await call('strict', name), `strict ${name}`);
    }
    const log = gw.logText();
    assert.match(log, /revocation status unavailable/, 'the ignored failure is logged');
    assert.match(log, /the revocation status is unavailable: OCSP responder http:\/\/127\.0\.0\.1:\d+\/ocsp: ECONNREFUSED/);
  });

  it('a certificate naming neither an OCSP responder nor a CRL: passes with IGNORE_CA_ERROR, refused with STRICT', async () => {
    assertPassed(await call('ignore', 'neither'), 'ignore neither');
    assertRefused(await call('strict', 'neither'), 'strict neither');
  });

  it('an answer that cannot be trusted (broken signature, signer the CA did not authorize) is refused in both modes', async () => {
    for (const route of ['ignore', 'strict']) {
      assertRefused(await call(route, 'bad-signature'), `${route} bad signature`);
      assertRefused(await call(route, 'other-signer'), `${route} other signer`);
    }
    assert.ok((ocsp.hits.get('/bad-signature') ?? 0) >= 2);
  });

  it('http_timeout bounds the fetch: a hanging responder is given up after it (STRICT refuses, IGNORE_CA_ERROR goes on)', async () => {
    const strict = await call('strict', 'hang');
    assertRefused(strict, 'strict hang');
    assert.ok(strict.ms >= 450 && strict.ms < 1400, `given up after http_timeout 500 ms (${strict.ms} ms)`);
    const slow = await call('slow', 'hang');
    assertRefused(slow, 'slow hang');
    assert.ok(slow.ms >= 1450, `http_timeout 1500 waits longer (${slow.ms} ms)`);
    const ignore = await call('ignore', 'hang');
    assertPassed(ignore, 'ignore hang');
    assert.ok(ignore.ms < 1400, `${ignore.ms} ms`);
    assert.match(gw.logText(), /timed out \(http_timeout\)/);
  });

  it('cert_cache_ttl: within it the answer is remembered (no second request to the responder), after it the responder is asked again', async () => {
    const hits = () => ocsp.hits.get('/cache') ?? 0;
    assertPassed(await call('cache', 'cached'), 'first');
    assert.equal(hits(), 1);
    assertPassed(await call('cache', 'cached'), 'second');
    assertPassed(await call('cache', 'cached'), 'third');
    assert.equal(hits(), 1, 'remembered within cert_cache_ttl');
    // The responder now says revoked: the remembered good answer holds until it expires.
    ocsp.status.set(certs.get('cached')!.serial, 'revoked');
    assertPassed(await call('cache', 'cached'), 'still remembered');
    await sleep(1600);
    assertRefused(await call('cache', 'cached'), 'after cert_cache_ttl');
    assert.equal(hits(), 2, 'asked again after cert_cache_ttl');
    // Another plugin instance has its own cache.
    assertRefused(await call('ignore', 'cached'), 'another plugin instance');
    assert.equal(hits(), 3);
    // Concurrent requests with one certificate share one check.
    const all = await Promise.all([call('cache', 'concurrent'), call('cache', 'concurrent'), call('cache', 'concurrent')]);
    for (const r of all) assertPassed(r, 'concurrent');
    assert.equal(ocsp.hits.get('/concurrent'), 1);
  });

  it('a header certificate the token is not bound to is refused without a revocation fetch', async () => {
    const r = await call('strict', 'other-binding', 'good');
    assertRefused(r, 'token bound to another certificate');
    assert.equal(ocsp.hits.get('/other-binding') ?? 0, 0);
    assert.match(gw.logText(), /the client certificate does not match the token binding/);
    assertPassed(await call('strict', 'other-binding'), 'its own token');
    assert.equal(ocsp.hits.get('/other-binding'), 1);
  });

  it('SKIP: no revocation check at all (the responder and the CRL are never contacted; a revoked certificate passes)', async () => {
    assertPassed(await call('skip', 'skip-revoked'), 'skip');
    assertPassed(await call('skip', 'revoked'), 'skip revoked');
    assert.equal(ocsp.hits.get('/skip') ?? 0, 0);
    assertRefused(await call('strict', 'skip-revoked'), 'the same certificate is refused where checked');
    assert.equal(ocsp.hits.get('/skip'), 1);
  });

  it('http_proxy_host/port and https_proxy_host/port: OCSP (http) as absolute-form requests and CRL (https) through a CONNECT tunnel of the proxy', async () => {
    proxy.reset();
    const before = ocsp.hits.get('/proxied') ?? 0;
    assertPassed(await call('proxied', 'proxied-ocsp'), 'proxied good');
    assertRefused(await call('proxied', 'proxied-revoked'), 'proxied revoked');
    assert.equal((ocsp.hits.get('/proxied') ?? 0) - before, 2);
    assert.deepEqual(proxy.requests.filter((r) => r.includes('/proxied')), [`POST ${ocsp.url}/proxied`, `POST ${ocsp.url}/proxied`]);
    // https CRL through the tunnel, its server certificate verified (ssl_verify) against ca_certificates.
    const crlHits = httpsCrl.hits.count;
    assertPassed(await call('proxied', 'https-crl'), 'proxied https CRL good');
    assertRefused(await call('proxied', 'https-crl-revoked'), 'proxied https CRL revoked');
    assert.equal(httpsCrl.hits.count - crlHits, 2);
    // One tunnel (kept alive) carried both fetches.
    const port = new URL(httpsCrl.url).port;
    assert.deepEqual(proxy.requests.filter((r) => r.startsWith('CONNECT')), [`CONNECT 127.0.0.1:${port}`]);
    // Routes without the proxy fields fetch directly.
    proxy.reset();
    assertPassed(await call('strict', 'proxied-ocsp'), 'direct');
    assert.deepEqual(proxy.requests, []);
  });

  it('ssl_verify: an https CRL server whose certificate no trusted CA issued is refused (STRICT); trusted through ca_certificates, or not verified, it passes', async () => {
    const r = await call('verify', 'https-crl');
    assertRefused(r, 'untrusted CRL server');
    assert.match(gw.logText(), /the revocation status is unavailable: CRL https:\/\/127\.0\.0\.1:\d+\/ca\.crl: /);
    assertPassed(await call('verify-trusted', 'https-crl'), 'CRL server trusted through ca_certificates');
    assertRefused(await call('verify-trusted', 'https-crl-revoked'), 'trusted, revoked');
    assertPassed(await call('no-verify', 'https-crl'), 'ssl_verify false');
    assertRefused(await call('no-verify', 'https-crl-revoked'), 'ssl_verify false, revoked');
  });
});
