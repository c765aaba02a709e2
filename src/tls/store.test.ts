import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { issueCert, type IssuedCert } from '../../test/helpers/certs.ts';
import { installPreamble } from '../kernel/preamble.ts';
import { CertificateStore, type TlsMaterial } from './store.ts';

/** Handshakes with `servername` (none when null) and returns the served certificate's CN. */
function served(port: number, servername: string | null, extra: tls.ConnectionOptions = {}): Promise<{ cn: string; type: string; socket: tls.TLSSocket }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...(servername === null ? {} : { servername }), ...extra }, () => {
      const cert = socket.getPeerX509Certificate()!;
      resolve({ cn: /CN=([^\n,]+)/.exec(cert.subject)![1], type: cert.publicKey.asymmetricKeyType!, socket });
    });
    socket.on('error', reject);
  });
}

describe('CertificateStore: certificate chosen at the handshake by SNI', () => {
  let server: tls.Server;
  let port = 0;
  let store: CertificateStore;
  const c: Record<string, IssuedCert> = {};
  let material: TlsMaterial;

  before(async () => {
    for (const [id, cn, type] of [['fallback', 'fallback', 'rsa'], ['exact', 'api.example.com', 'rsa'], ['prefix', 'wild-prefix', 'rsa'], ['suffix', 'wild-suffix', 'rsa'], ['star', 'star', 'rsa'], ['dual', 'dual-rsa', 'rsa'], ['dualEc', 'dual-ec', 'ec'], ['replaced', 'replaced', 'ec']] as const) {
      c[id] = await issueCert({ cn, type });
    }
    store = new CertificateStore({ cert: c.fallback.cert, key: c.fallback.key }, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', clientCert: 'off' });
    material = {
      certificates: [
        { id: 'exact', cert: c.exact.cert, key: c.exact.key },
        { id: 'prefix', cert: c.prefix.cert, key: c.prefix.key },
        { id: 'suffix', cert: c.suffix.cert, key: c.suffix.key },
        { id: 'dual', cert: c.dual.cert, key: c.dual.key, cert_alt: c.dualEc.cert, key_alt: c.dualEc.key },
      ],
      snis: [
        { name: 'api.example.com', certificate: { id: 'exact' } },
        { name: '*.example.com', certificate: { id: 'prefix' } },
        { name: 'shop.example.*', certificate: { id: 'suffix' } },
        { name: 'dual.test', certificate: { id: 'dual' } },
      ],
      caCertificates: [],
    };
    store.update(material);
    server = tls.createServer(store.serverOptions(), (s) => s.pipe(s));
    server.on('tlsClientError', (_e, s) => s.destroy());
    // As a proxy listener: the ClientHello is read first when an RSA + ECDSA pair is served by SNI.
    installPreamble(server, { tls: true, proxyProtocol: false, sniffHello: () => store.needsHello(), tls13: true, timeoutMs: 10_000 });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('serves the exact name, then the prefix wildcard, then the suffix wildcard, then the default', async () => {
    const cases: Array<[string | null, string]> = [
      ['api.example.com', 'api.example.com'],
      ['API.Example.com', 'api.example.com'],
      ['www.example.com', 'wild-prefix'],
      ['shop.example.net', 'wild-suffix'],
      // A prefix wildcard covers exactly one label.
      ['a.b.example.com', 'fallback'],
      ['unknown.test', 'fallback'],
      [null, 'fallback'],
    ];
    for (const [name, cn] of cases) {
      const r = await served(port, name);
      r.socket.destroy();
      assert.equal(r.cn, cn, `SNI ${name}`);
    }
  });

  it('serves the RSA or the ECDSA certificate of an SNI-matched pair by what the client supports', async () => {
    const ec = await served(port, 'dual.test', { sigalgs: 'ecdsa_secp256r1_sha256' });
    ec.socket.destroy();
    assert.deepEqual([ec.cn, ec.type], ['dual-ec', 'ec']);
    const rsa = await served(port, 'dual.test', { sigalgs: 'rsa_pss_rsae_sha256:rsa_pkcs1_sha256' });
    rsa.socket.destroy();
    assert.deepEqual([rsa.cn, rsa.type], ['dual-rsa', 'rsa']);
    // TLS 1.2: the cipher suites offered name the certificate type.
    const tls12ec = await served(port, 'dual.test', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    tls12ec.socket.destroy();
    assert.equal(tls12ec.cn, 'dual-ec');
    const tls12rsa = await served(port, 'dual.test', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' });
    tls12rsa.socket.destroy();
    assert.equal(tls12rsa.cn, 'dual-rsa');
    // A client that accepts both gets the type it lists first, as OpenSSL chooses.
    const both = await served(port, 'dual.test', { sigalgs: 'rsa_pss_rsae_sha256:ecdsa_secp256r1_sha256' });
    both.socket.destroy();
    assert.equal(both.cn, 'dual-rsa');
    const bothEc = await served(port, 'dual.test', {});
    bothEc.socket.destroy();
    assert.equal(bothEc.cn, 'dual-ec', "Node's default list starts with ECDSA");
    // Names of single-pair certificates are unaffected by the ClientHello reading.
    const single = await served(port, 'api.example.com', { sigalgs: 'ecdsa_secp256r1_sha256:rsa_pss_rsae_sha256' });
    single.socket.destroy();
    assert.equal(single.cn, 'api.example.com');
  });

  it('an update is served on the next handshake while an open connection keeps working', async () => {
    const open = await served(port, 'api.example.com');
    assert.equal(open.cn, 'api.example.com');
    store.update({
      ...material,
      certificates: [...material.certificates.filter((x) => x.id !== 'exact'), { id: 'exact', cert: c.replaced.cert, key: c.replaced.key }, { id: 'star', cert: c.star.cert, key: c.star.key }],
      snis: [...material.snis, { name: '*', certificate: { id: 'star' } }],
    });
    const next = await served(port, 'api.example.com');
    next.socket.destroy();
    assert.equal(next.cn, 'replaced');
    // `*` is the dynamic default for names nothing else matches; no SNI still gets the file certificate.
    const other = await served(port, 'unknown.test');
    other.socket.destroy();
    assert.equal(other.cn, 'star');
    const none = await served(port, null);
    none.socket.destroy();
    assert.equal(none.cn, 'fallback');
    const echoed = await new Promise<string>((resolve) => {
      open.socket.once('data', (d) => resolve(d.toString()));
      open.socket.write('still here');
    });
    assert.equal(echoed, 'still here');
    open.socket.destroy();
    store.update(material);
  });

  it('garbage bytes and handshakes that fail do not stop the server', async () => {
    await new Promise<void>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\x16\x03')));
      s.on('close', () => resolve());
      s.on('error', () => {});
    });
    await assert.rejects(served(port, 'api.example.com', { maxVersion: 'TLSv1.2', ciphers: 'NULL-SHA' }));
    const r = await served(port, 'api.example.com');
    r.socket.destroy();
    assert.equal(r.cn, 'api.example.com');
  });

  it('refuses TLS versions below the policy minimum', async () => {
    await assert.rejects(served(port, 'api.example.com', { minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }));
  });
});
