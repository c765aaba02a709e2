import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { describe, it } from 'node:test';
import { readClientHello, readHelloServerName } from './client-hello.ts';

/** The first bytes a node:tls client sends with `options` (its ClientHello), captured by a raw server. */
async function helloOf(options: tls.ConnectionOptions): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const got = new Promise<Buffer>((resolve) => {
    server.once('connection', (s) => {
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        const r = readClientHello(buf, true);
        if (r !== 'more') {
          s.destroy();
          resolve(buf);
        }
      });
    });
  });
  const client = tls.connect({ host: '127.0.0.1', port, servername: 'x.test', rejectUnauthorized: false, ...options });
  client.on('error', () => {});
  const hello = await got;
  client.destroy();
  server.close();
  return hello;
}

describe('ClientHello: which certificate type the client can verify', () => {
  it('follows the signature algorithms and, for TLS 1.2, the cipher suites offered', async () => {
    assert.deepEqual(readClientHello(await helloOf({}), true), { prefer: 'ec' });
    assert.deepEqual(readClientHello(await helloOf({ sigalgs: 'rsa_pss_rsae_sha256:rsa_pkcs1_sha256' }), true), { prefer: 'rsa' });
    assert.deepEqual(readClientHello(await helloOf({ sigalgs: 'rsa_pss_rsae_sha256:ecdsa_secp256r1_sha256' }), true), { prefer: 'rsa' });
    assert.deepEqual(readClientHello(await helloOf({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' }), true), { prefer: 'rsa' });
    assert.deepEqual(readClientHello(await helloOf({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }), true), { prefer: 'ec' });
    // A TLS 1.3 client with RSA-only TLS 1.2 suites, against a server capped at TLS 1.2: RSA.
    assert.deepEqual(readClientHello(await helloOf({ ciphers: 'TLS_AES_128_GCM_SHA256:ECDHE-RSA-AES128-GCM-SHA256' }), false), { prefer: 'rsa' });
  });

  it('asks for more bytes until the hello is whole, reassembles one split over two records, refuses what is not TLS', async () => {
    const hello = await helloOf({});
    assert.equal(readClientHello(hello.subarray(0, 3), true), 'more');
    assert.equal(readClientHello(hello.subarray(0, hello.length - 1), true), 'more');
    // The same handshake message in two records.
    const body = hello.subarray(5);
    const cut = 40;
    const record = (part: Buffer): Buffer => Buffer.concat([Buffer.from([0x16, 0x03, 0x01, part.length >> 8, part.length & 0xff]), part]);
    const split = Buffer.concat([record(body.subarray(0, cut)), record(body.subarray(cut))]);
    assert.equal(readClientHello(split.subarray(0, 5 + cut + 3), true), 'more');
    assert.deepEqual(readClientHello(split, true), { prefer: 'ec' });
    assert.equal(readClientHello(Buffer.from('GET / HTTP/1.1\r\n\r\n'), true), null);
    assert.equal(readClientHello(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00]), true), null, 'a handshake that is not a ClientHello');
  });
});

describe('readHelloServerName (the stream proxy routes TLS by it)', () => {
  it('returns the SNI host name, lower-cased; null without one; more while incomplete; null for non-TLS bytes', async () => {
    const hello = await helloOf({ servername: 'Stream.Example.TEST' });
    assert.deepEqual(readHelloServerName(hello), { sni: 'stream.example.test' });
    assert.equal(readHelloServerName(hello.subarray(0, 20)), 'more');
    // node:tls sends no server_name for an IP address.
    assert.deepEqual(readHelloServerName(await helloOf({ servername: '' })), { sni: null });
    assert.equal(readHelloServerName(Buffer.from('GET / HTTP/1.1\r\n\r\n')), null);
  });
});
