/**
 * Client certificates per listener: `ssl_verify_client=optional|on|off` in a proxy_listen entry
 * overrides PORTCULLIS_SSL_VERIFY_CLIENT for that listener, so one port can ask for client
 * certificates (verified against the ca_certificates entities) while another does not.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { issueCert, type IssuedCert } from './helpers/certs.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';

type Echoed = { headers: Record<string, string> };

function get(port: number, cert?: IssuedCert): Promise<{ status: number; headers: Record<string, string> } | Error> {
  return new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/who', servername: 'localhost', rejectUnauthorized: false, agent: false, ...(cert ? { cert: cert.cert, key: cert.key } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: (JSON.parse(body) as Echoed).headers }));
      res.on('error', resolve);
    });
    req.on('error', resolve);
  });
}

describe('ssl_verify_client per proxy listener', () => {
  let echo: EchoServer;
  let gw: TestGateway;
  let ca: IssuedCert;
  let client: IssuedCert;
  let optionalPort = 0;
  let requiredPort = 0;
  let globalPort = 0;

  before(async () => {
    ca = await issueCert({ cn: 'Listener Client CA', isCa: true });
    client = await issueCert({ cn: 'client-a', ca });
    echo = await startEcho();
    gw = await startGateway({
      // The global setting is off; the first two listeners ask for certificates, the third follows the global one.
      proxyListen: '127.0.0.1:0 ssl ssl_verify_client=optional, 127.0.0.1:0 ssl http2 ssl_verify_client=on, 127.0.0.1:0 ssl',
      env: { PORTCULLIS_SSL_VERIFY_CLIENT: 'off', PORTCULLIS_CLIENT_CERT_HEADER: 'X-Client-Cert' },
      config: {
        ca_certificates: [{ cert: ca.cert }],
        services: [{ name: 'e', url: echo.url, routes: [{ name: 'all', paths: ['/'] }] }],
      },
    });
    [optionalPort, requiredPort, globalPort] = gw.node.proxyPorts();
  });
  after(async () => {
    await gw.close();
    await echo.close();
  });

  it('optional: a certificate from a ca_certificates CA is verified and forwarded; none is fine', async () => {
    const withCert = await get(optionalPort, client);
    assert.ok(!(withCert instanceof Error));
    assert.match(decodeURIComponent(withCert.headers['x-client-cert'] ?? ''), /-----BEGIN CERTIFICATE-----/);
    const without = await get(optionalPort);
    assert.ok(!(without instanceof Error));
    assert.equal(without.status, 200);
    assert.equal(without.headers['x-client-cert'], undefined);
  });

  it('on: the handshake needs a trusted certificate', async () => {
    const withCert = await get(requiredPort, client);
    assert.ok(!(withCert instanceof Error));
    assert.ok(withCert.headers['x-client-cert']);
    assert.ok(await get(requiredPort) instanceof Error);
  });

  it('a listener without the flag follows PORTCULLIS_SSL_VERIFY_CLIENT (off): no certificate is asked for', async () => {
    const r = await get(globalPort, client);
    assert.ok(!(r instanceof Error));
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-client-cert'], undefined);
  });
});
