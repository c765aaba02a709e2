import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { issueCert, type IssuedCert } from '../../test/helpers/certs.ts';
import { clientCertificateOf } from './client-cert.ts';
import { CertificateStore, type ClientCertMode } from './store.ts';

describe('client certificates requested at the handshake', () => {
  let ca: IssuedCert;
  let otherCa: IssuedCert;
  let client: IssuedCert;
  let stranger: IssuedCert;
  let serverCert: IssuedCert;
  const servers: tls.Server[] = [];

  before(async () => {
    ca = await issueCert({ cn: 'Client CA', isCa: true });
    otherCa = await issueCert({ cn: 'Other CA', isCa: true });
    client = await issueCert({ cn: 'client-1', ca });
    stranger = await issueCert({ cn: 'stranger', ca: otherCa });
    serverCert = await issueCert({ cn: 'localhost' });
  });
  after(() => {
    for (const s of servers) s.close();
  });

  /** A TLS server following a store in `mode`; each connection answers with what it saw. */
  async function serve(mode: ClientCertMode): Promise<number> {
    const store = new CertificateStore({ cert: serverCert.cert, key: serverCert.key }, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', clientCert: mode });
    const server = tls.createServer(store.serverOptions(), (socket) => {
      const cc = clientCertificateOf(socket);
      socket.end(JSON.stringify(cc === null ? null : { thumbprint: cc.thumbprint, chain: cc.chain.length, pem: cc.pem.startsWith('-----BEGIN CERTIFICATE-----') }));
    });
    server.on('tlsClientError', (_e, s) => s.destroy());
    store.attach(server);
    // The CA bundle arrives with the config (ca_certificates entities), after the server exists.
    store.update({ certificates: [], snis: [], caCertificates: [ca.cert] });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return (server.address() as AddressInfo).port;
  }

  function call(port: number, cert?: IssuedCert): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'localhost', ...(cert ? { cert: cert.cert, key: cert.key } : {}) });
      let text = '';
      s.on('data', (d) => (text += d));
      s.on('end', () => resolve(text === '' ? undefined : JSON.parse(text)));
      s.on('error', (err) => (text === '' ? resolve(err) : reject(err)));
    });
  }

  /** The server closed the connection without answering (TLS 1.3 reports the refusal after the client's Finished). */
  const refused = (r: unknown) => r === undefined || r instanceof Error;

  it('optional: a certificate from a trusted CA is verified and its x5t#S256 thumbprint given', async () => {
    const port = await serve('optional');
    const der = new (await import('node:crypto')).X509Certificate(client.cert).raw;
    assert.deepEqual(await call(port, client), { thumbprint: createHash('sha256').update(der).digest('base64url'), chain: 2, pem: true });
    // No certificate, or one from an untrusted CA: the connection goes on without one.
    assert.equal(await call(port), null);
    assert.equal(await call(port, stranger), null);
  });

  it('on: the handshake fails without a trusted certificate', async () => {
    const port = await serve('on');
    assert.ok(((await call(port, client)) as { thumbprint: string }).thumbprint);
    assert.ok(refused(await call(port)));
    assert.ok(refused(await call(port, stranger)));
  });

  it('off: no certificate is asked for', async () => {
    const port = await serve('off');
    assert.equal(await call(port, client), null);
  });
});
