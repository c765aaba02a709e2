/**
 * certificates / snis / ca_certificates end to end: decK files and the Admin API, the certificate
 * served at the handshake by SNI (exact, prefix wildcard, suffix wildcard, default), a certificate
 * replaced through the Admin API, Kong's errors for bad input, upstream TLS with CA certificate
 * entities and client_certificate (mTLS), a route matched on `snis`.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { issueCert, type IssuedCert } from './helpers/certs.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { redactedKey, runConfigDump } from '../src/cli/config-sync.ts';
import { waitFor } from './helpers/process.ts';

function servedCn(port: number, servername: string | null): Promise<{ cn: string; socket: tls.TLSSocket }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...(servername ? { servername } : {}) }, () => {
      resolve({ cn: /CN=([^\n,]+)/.exec(s.getPeerX509Certificate()!.subject)![1], socket: s });
    });
    s.on('error', reject);
  });
}

async function cnOf(port: number, servername: string | null): Promise<string> {
  const r = await servedCn(port, servername);
  r.socket.destroy();
  return r.cn;
}

const eventually = (check: () => Promise<boolean>, what: string): Promise<void> => waitFor(check, 10_000, what);

async function admin(gw: TestGateway, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${gw.adminUrl}${path}`, { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
  const text = await r.text();
  return { status: r.status, body: text === '' ? {} : JSON.parse(text) as Record<string, unknown> };
}

const certs: Record<string, IssuedCert> = {};
before(async () => {
  for (const [k, cn, type] of [['exact', 'exact', 'rsa'], ['prefix', 'prefix', 'rsa'], ['suffix', 'suffix', 'ec'], ['v2', 'v2', 'rsa'], ['other', 'other', 'rsa']] as const) {
    certs[k] = await issueCert({ cn, type });
  }
});

describe('certificates and SNIs from a decK file', () => {
  let gw: TestGateway;
  let echo: EchoServer;
  before(async () => {
    echo = await startEcho();
    gw = await startGateway({
      proxyListen: '127.0.0.1:0 ssl',
      config: {
        certificates: [
          { cert: certs.exact.cert, key: certs.exact.key, snis: [{ name: 'api.example.com' }] },
          { cert: certs.prefix.cert, key: certs.prefix.key, snis: [{ name: '*.example.com' }] },
          { cert: certs.suffix.cert, key: certs.suffix.key, snis: [{ name: 'shop.example.*' }] },
        ],
        services: [{
          name: 'e', url: echo.url, routes: [
            { name: 'by-sni', paths: ['/sni'], snis: ['api.example.com'], protocols: ['https'] },
            { name: 'any', paths: ['/'] },
          ],
        }],
      },
    });
  });
  after(async () => {
    await gw.close();
    await echo.close();
  });

  it('serves the exact name, then *.example.com, then shop.example.*, then the default', async () => {
    const port = gw.node.proxyPorts()[0];
    assert.equal(await cnOf(port, 'api.example.com'), 'exact');
    assert.equal(await cnOf(port, 'www.example.com'), 'prefix');
    assert.equal(await cnOf(port, 'shop.example.org'), 'suffix');
    assert.equal(await cnOf(port, 'unknown.test'), 'localhost');
    assert.equal(await cnOf(port, null), 'localhost');
  });

  it('a route with snis matches only handshakes with that name', async () => {
    const port = gw.node.proxyPorts()[0];
    const get = (servername: string) => new Promise<number>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port, path: '/sni', servername, rejectUnauthorized: false, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      }).on('error', reject);
    });
    assert.equal(await get('api.example.com'), 200);
    assert.equal(await get('other.example.com'), 200);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(gw.logs.filter((l) => l.type === 'access' && l.path === '/sni').map((l) => l.route), ['by-sni', 'any']);
  });

  it('config dump leaves private keys out unless --with-keys', async () => {
    const lines: string[] = [];
    const io = { stdout: (l: string) => lines.push(l), stderr: (l: string) => lines.push(l) };
    assert.equal(await runConfigDump(gw.adminUrl, undefined, io), 0);
    const plain = lines.join('\n');
    assert.doesNotMatch(plain, /PRIVATE KEY/);
    assert.match(plain, /BEGIN CERTIFICATE/);
    assert.ok(plain.includes(redactedKey));
    lines.length = 0;
    assert.equal(await runConfigDump(gw.adminUrl, undefined, io, true), 0);
    assert.match(lines.join('\n'), /BEGIN PRIVATE KEY/);
  });

  it('a decK file with bad certificates is refused with each path named', async () => {
    const ok = await gw.reload({
      certificates: [
        { cert: certs.exact.cert, key: certs.other.key, snis: [{ name: 'a.test' }] },
        { cert: 'not a certificate', key: certs.other.key },
        { cert: certs.other.cert, key: certs.other.key, snis: [{ name: 'a.*.test' }, { name: '10.0.0.1' }, { name: 'a.test' }] },
      ],
    });
    assert.equal(ok, false);
    const text = gw.logText();
    assert.match(text, /certificates\[0\]: certificate does not match key/);
    assert.match(text, /certificates\[1\]\.cert: invalid certificate/);
    assert.match(text, /certificates\[2\]\.snis\[0\]\.name: wildcard must be leftmost or rightmost character/);
    assert.match(text, /certificates\[2\]\.snis\[1\]\.name: must not be an IP/);
    assert.doesNotMatch(text, /PRIVATE KEY/);
    // The running config still serves.
    assert.equal(await cnOf(gw.node.proxyPorts()[0], 'api.example.com'), 'exact');
  });
});

describe('certificates, SNIs and CA certificates through the Admin API', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ proxyListen: '127.0.0.1:0 ssl', database: 'sqlite' });
  });
  after(async () => {
    await gw.close();
  });

  it('POST /certificates and /certificates/{id}/snis; a PATCH is served on the next handshake, open connections untouched', async () => {
    const port = gw.node.proxyPorts()[0];
    const c = await admin(gw, 'POST', '/certificates', { cert: certs.exact.cert, key: certs.exact.key, tags: ['t'] });
    assert.equal(c.status, 201, JSON.stringify(c.body));
    const id = c.body.id as string;
    const sni = await admin(gw, 'POST', `/certificates/${id}/snis`, { name: 'live.example.com' });
    assert.equal(sni.status, 201, JSON.stringify(sni.body));
    assert.deepEqual(sni.body.certificate, { id });
    assert.equal((await admin(gw, 'GET', '/snis/live.example.com')).body.id, sni.body.id);
    assert.equal((await admin(gw, 'GET', '/snis')).body.data instanceof Array, true);
    await eventually(async () => (await cnOf(port, 'live.example.com')) === 'exact', 'the new certificate');
    const open = await servedCn(port, 'live.example.com');
    const patched = await admin(gw, 'PATCH', `/certificates/${id}`, { cert: certs.v2.cert, key: certs.v2.key });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    await eventually(async () => (await cnOf(port, 'live.example.com')) === 'v2', 'the replaced certificate');
    assert.equal(open.socket.destroyed, false, 'the open connection is untouched');
    open.socket.destroy();
    // Deleting the certificate deletes its SNIs (Kong's cascade).
    assert.equal((await admin(gw, 'DELETE', `/certificates/${id}`)).status, 204);
    assert.equal((await admin(gw, 'GET', '/snis/live.example.com')).status, 404);
    await eventually(async () => (await cnOf(port, 'live.example.com')) === 'localhost', 'the default certificate again');
  });

  it('bad input: mismatched key under @entity, invalid PEM, bad or duplicate SNI names; nothing stored', async () => {
    const mismatch = await admin(gw, 'POST', '/certificates', { cert: certs.exact.cert, key: certs.other.key });
    assert.equal(mismatch.status, 400);
    assert.deepEqual((mismatch.body.fields as Record<string, unknown>)['@entity'], ['certificate does not match key']);
    const invalid = await admin(gw, 'POST', '/certificates', { cert: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', key: 'nope' });
    assert.equal(invalid.status, 400);
    assert.match(String((invalid.body.fields as Record<string, unknown>).cert), /^invalid certificate/);
    assert.match(String((invalid.body.fields as Record<string, unknown>).key), /^invalid key/);
    const altSame = await admin(gw, 'POST', '/certificates', { cert: certs.exact.cert, key: certs.exact.key, cert_alt: certs.other.cert, key_alt: certs.other.key });
    assert.equal(altSame.status, 400);
    assert.match(JSON.stringify(altSame.body.fields), /need to have different type/);
    const altHalf = await admin(gw, 'POST', '/certificates', { cert: certs.exact.cert, key: certs.exact.key, cert_alt: certs.suffix.cert });
    assert.equal(altHalf.status, 400);
    assert.equal(((await admin(gw, 'GET', '/certificates')).body.data as unknown[]).length, 0, 'nothing stored');

    const c = await admin(gw, 'POST', '/certificates', { cert: certs.other.cert, key: certs.other.key });
    const id = c.body.id as string;
    // Kong: an SNI's name is a wildcard_host, with that typedef's wording (not a route host's).
    for (const [name, message] of [
      ['a.*.example.com', 'wildcard must be leftmost or rightmost character'],
      ['*.*.example.com', 'only one wildcard must be specified'],
      ['192.0.2.1', 'must not be an IP'],
      ['a.example.com:8443', 'must not have a port'],
      ['bad_name!.example.com', 'invalid value: bad_name!.example.com'],
    ]) {
      const r = await admin(gw, 'POST', '/snis', { name, certificate: { id } });
      assert.equal(r.status, 400, name);
      assert.equal((r.body.fields as Record<string, unknown>).name, message, name);
    }
    // Kong: the wildcard need only be the first or last character.
    assert.equal((await admin(gw, 'POST', '/snis', { name: '*api.example.com', certificate: { id } })).status, 201);
    assert.equal((await admin(gw, 'POST', '/snis', { name: 'dup.example.com', certificate: { id } })).status, 201);
    assert.equal((await admin(gw, 'POST', '/snis', { name: 'dup.example.com', certificate: { id } })).status, 409);
    assert.equal((await admin(gw, 'DELETE', `/certificates/${id}`)).status, 204);
  });

  it('ca_certificates: cert_digest computed; non-CA and expired refused; a CA still used by a service cannot be deleted', async () => {
    const ca = await issueCert({ cn: 'Upstream CA', isCa: true });
    const leaf = await issueCert({ cn: 'not-a-ca' });
    const expired = await issueCert({ cn: 'Old CA', isCa: true, startDays: -10, endDays: -1 });
    const created = await admin(gw, 'POST', '/ca_certificates', { cert: ca.cert });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.match(String(created.body.cert_digest), /^[0-9a-f]{64}$/);
    // Kong's custom_entity_check: these answer under @entity (an unreadable PEM under `cert`).
    const notCa = await admin(gw, 'POST', '/ca_certificates', { cert: leaf.cert });
    assert.equal(notCa.status, 400);
    assert.deepEqual(notCa.body.fields, { '@entity': ['certificate does not appear to be a CA because it is missing the "CA" basic constraint'] });
    assert.equal(notCa.body.message, 'schema violation (certificate does not appear to be a CA because it is missing the "CA" basic constraint)');
    const old = await admin(gw, 'POST', '/ca_certificates', { cert: expired.cert });
    assert.equal(old.status, 400);
    assert.deepEqual(old.body.fields, { '@entity': ['certificate expired, "Not After" time is in the past'] });
    const two = await admin(gw, 'POST', '/ca_certificates', { cert: ca.cert + leaf.cert });
    assert.deepEqual(two.body.fields, { '@entity': ['please submit only one certificate at a time'] });
    const garbage = await admin(gw, 'POST', '/ca_certificates', { cert: 'not a certificate' });
    assert.match(String((garbage.body.fields as Record<string, unknown>).cert), /^invalid certificate/);
    assert.equal((await admin(gw, 'POST', '/ca_certificates', { cert: ca.cert })).status, 409, 'same digest');
    // Kong computes cert_digest on write: a stale one sent along (a decK file) is replaced, not refused.
    const other = await issueCert({ cn: 'Other CA', isCa: true });
    const stale = await admin(gw, 'POST', '/ca_certificates', { cert: other.cert, cert_digest: created.body.cert_digest });
    assert.equal(stale.status, 201, JSON.stringify(stale.body));
    assert.notEqual(stale.body.cert_digest, created.body.cert_digest);
    assert.equal((await admin(gw, 'DELETE', `/ca_certificates/${stale.body.id}`)).status, 204);

    const svc = await admin(gw, 'POST', '/services', { name: 'tls-up', url: 'https://127.0.0.1:1', tls_verify: true, ca_certificates: [created.body.id] });
    assert.equal(svc.status, 201, JSON.stringify(svc.body));
    const unknown = await admin(gw, 'POST', '/services', { name: 'tls-up2', url: 'https://127.0.0.1:1', ca_certificates: ['6a1e7d5e-54f0-4c36-a0e7-52d5b6e1b5c0'] });
    assert.equal(unknown.status, 400);
    const del = await admin(gw, 'DELETE', `/ca_certificates/${created.body.id}`);
    assert.equal(del.status, 400);
    assert.equal(del.body.message, `ca certificate ${created.body.id} is still referenced by services (id = ${svc.body.id})`);
    assert.equal((await admin(gw, 'DELETE', '/services/tls-up')).status, 204);
    assert.equal((await admin(gw, 'DELETE', `/ca_certificates/${created.body.id}`)).status, 204);
  });
});

describe('upstream TLS from entities: tls_verify with a CA certificate entity, client_certificate for mTLS', () => {
  let ca: IssuedCert;
  let serverCert: IssuedCert;
  let client: IssuedCert;
  let upstream: https.Server;
  let port = 0;
  before(async () => {
    ca = await issueCert({ cn: 'Test Root', isCa: true });
    serverCert = await issueCert({ cn: 'localhost', dns: ['localhost'], ca });
    client = await issueCert({ cn: 'gateway-client', ca });
    upstream = https.createServer({ cert: serverCert.cert, key: serverCert.key, ca: ca.cert, requestCert: true, rejectUnauthorized: false }, (req, res) => {
      const peer = (req.socket as tls.TLSSocket).getPeerX509Certificate();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ client: peer ? /CN=([^\n,]+)/.exec(peer.subject)![1] : null, authorized: (req.socket as tls.TLSSocket).authorized }));
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    port = (upstream.address() as AddressInfo).port;
  });
  after(() => {
    upstream.closeAllConnections();
    upstream.close();
  });

  it('verifies the upstream with the CA entity and presents the client certificate', async () => {
    const caId = '0b7f5b56-8c1c-4bb4-9a51-3a0f1a6d2b11';
    const certId = '3c1d6e2a-9f7b-4d8e-b1a2-5e6f7a8b9c0d';
    const gw = await startGateway({
      config: {
        ca_certificates: [{ id: caId, cert: ca.cert }],
        certificates: [{ id: certId, cert: client.cert, key: client.key }],
        services: [
          { name: 'mtls', url: `https://localhost:${port}`, tls_verify: true, ca_certificates: [caId], client_certificate: { id: certId }, routes: [{ name: 'm', paths: ['/m'] }] },
          { name: 'no-ca', url: `https://localhost:${port}`, tls_verify: true, routes: [{ name: 'n', paths: ['/n'] }] },
          { name: 'depth', url: `https://localhost:${port}`, tls_verify: true, tls_verify_depth: 0, ca_certificates: [caId], routes: [{ name: 'd', paths: ['/d'] }] },
        ],
      },
    });
    try {
      const m = await fetch(`${gw.proxyUrl}/m`);
      assert.equal(m.status, 200);
      assert.deepEqual(await m.json(), { client: 'gateway-client', authorized: true });
      // Without the CA entity the upstream's certificate is not trusted.
      assert.equal((await fetch(`${gw.proxyUrl}/n`)).status, 502);
      // tls_verify_depth 0: the leaf's issuer is one level too deep.
      assert.equal((await fetch(`${gw.proxyUrl}/d`)).status, 502);
    } finally {
      await gw.close();
    }
  });
});
