/**
 * proxy_listen flags on real sockets: `ssl` with the generated default certificate, `http2` on
 * TLS (ALPN) and plain (h2c prior knowledge) listeners next to HTTP/1.1, route `snis`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import http2 from 'node:http2';
import https from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { parseListen, readSettings } from '../src/kernel/settings.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';

type Echoed = { method: string; path: string; url: string; data?: string; headers: Record<string, string> };

function h2Request(url: string, path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}, opts: http2.SecureClientSessionOptions = {}): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string; alpn: string | false | undefined }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url, { rejectUnauthorized: false, ...opts });
    session.on('error', reject);
    const req = session.request({ ':path': path, ':method': init.method ?? 'GET', ...init.headers });
    let status = 0;
    let headers: http2.IncomingHttpHeaders = {};
    let body = '';
    req.on('response', (h) => {
      headers = h;
      status = Number(h[':status']);
    });
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const alpn = (session.socket as tls.TLSSocket).alpnProtocol ?? undefined;
      session.close();
      resolve({ status, headers, body, alpn });
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

function h1Get(port: number, path: string, servername = 'localhost'): Promise<{ status: number; body: string; version: string; cert: X509Certificate }> {
  return new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path, servername, rejectUnauthorized: false, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body, version: res.httpVersion, cert: (res.socket as tls.TLSSocket).getPeerX509Certificate()! }));
    }).on('error', reject);
  });
}

describe('proxy_listen flags', () => {
  it('parses ssl, http2, reuseport and backlog=N; refuses flags it does not implement, by name', () => {
    assert.deepEqual(parseListen('0.0.0.0:8000 reuseport backlog=16384, 0.0.0.0:8443 http2 ssl reuseport backlog=16384', 'proxy_listen'), [
      { host: '0.0.0.0', port: 8000, ssl: false, http2: false, reuseport: true, backlog: 16384, proxyProtocol: false, sslVerifyClient: null },
      { host: '0.0.0.0', port: 8443, ssl: true, http2: true, reuseport: true, backlog: 16384, proxyProtocol: false, sslVerifyClient: null },
    ]);
    assert.deepEqual(parseListen('0.0.0.0:8443 ssl proxy_protocol ssl_verify_client=optional', 'proxy_listen').map((l) => [l.proxyProtocol, l.sslVerifyClient]), [[true, 'optional']]);
    assert.throws(() => parseListen('0.0.0.0:8000 ssl_verify_client=on', 'proxy_listen'), /ssl_verify_client of '0.0.0.0:8000 ssl_verify_client=on' needs the 'ssl' flag/);
    assert.throws(() => parseListen('0.0.0.0:8443 ssl ssl_verify_client=maybe', 'proxy_listen'), /must be ssl_verify_client=off, optional or on/);
    assert.throws(() => readSettings({ adminListen: '127.0.0.1:8001 proxy_protocol' }, {}), /admin_listen: the 'proxy_protocol' flag .* is not supported here/);
    assert.throws(() => parseListen('0.0.0.0:8000 deferred', 'proxy_listen'), /'deferred'/);
    assert.throws(() => parseListen('0.0.0.0:8000 backlog=x', 'proxy_listen'), /backlog/);
    assert.throws(() => readSettings({ adminListen: '127.0.0.1:8444 http2 ssl' }, {}), /admin_listen: the 'http2' flag/);
    assert.throws(() => readSettings({}, { PORTCULLIS_SSL_PROTOCOLS: 'TLSv1.1 TLSv1.2' }), /PORTCULLIS_SSL_PROTOCOLS: 'TLSv1.1' is not supported/);
  });
});

describe('TLS and HTTP/2 listeners', () => {
  let echo: EchoServer;
  let gw: TestGateway;
  let tlsPort = 0;
  let h2cPort = 0;
  let plainPort = 0;
  before(async () => {
    echo = await startEcho();
    gw = await startGateway({
      proxyListen: '127.0.0.1:0 ssl http2, 127.0.0.1:0 http2 reuseport backlog=64, 127.0.0.1:0',
      config: {
        services: [{
          name: 'e', url: echo.url, routes: [
            { name: 'any', paths: ['/'] },
          ],
        }],
      },
    });
    [tlsPort, h2cPort, plainPort] = gw.node.proxyPorts();
  });
  after(async () => {
    await gw.close();
    await echo.close();
  });

  it('h2 and HTTP/1.1 on one TLS port, chosen by ALPN, through the same phases', async () => {
    const r2 = await h2Request(`https://localhost:${tlsPort}`, '/hello?x=1');
    assert.equal(r2.status, 200);
    assert.equal(r2.alpn, 'h2');
    const e2 = JSON.parse(r2.body) as Echoed;
    assert.equal(e2.url, '/hello?x=1');
    assert.equal(e2.headers['x-forwarded-proto'], 'https');
    assert.equal(e2.headers['x-forwarded-host'], 'localhost');
    assert.ok(e2.headers['x-request-id']);
    // No pseudo-header leaks upstream, and the upstream got a Host.
    assert.ok(!Object.keys(e2.headers).some((k) => k.startsWith(':')));
    assert.ok(e2.headers.host);
    assert.equal(r2.headers['x-request-id'], e2.headers['x-request-id']);
    const r1 = await h1Get(tlsPort, '/hello');
    assert.equal(r1.status, 200);
    assert.equal(r1.version, '1.1');
  });

  it('an h2 request body without content-length is proxied to the HTTP/1.1 upstream', async () => {
    const r = await h2Request(`https://localhost:${tlsPort}`, '/post', { method: 'POST', body: 'hello over h2', headers: { 'content-type': 'text/plain' } });
    assert.equal(r.status, 200);
    const e = JSON.parse(r.body) as Echoed;
    assert.equal(e.method, 'POST');
    assert.equal(e.data, 'hello over h2');
  });

  it('a plain http2 listener serves h2c with prior knowledge and HTTP/1.1', async () => {
    const r2 = await h2Request(`http://127.0.0.1:${h2cPort}`, '/h2c');
    assert.equal(r2.status, 200);
    assert.equal((JSON.parse(r2.body) as Echoed).headers['x-forwarded-proto'], 'http');
    const r1 = await fetch(`http://127.0.0.1:${h2cPort}/h1`, { method: 'POST', body: 'x'.repeat(5000) });
    assert.equal(r1.status, 200);
    assert.equal(((await r1.json()) as Echoed).data?.length, 5000);
  });

  it('a plain listener without http2 answers an h2 preface as HTTP/1.1 would (not h2)', async () => {
    await assert.rejects(h2Request(`http://127.0.0.1:${plainPort}`, '/'));
    assert.equal((await fetch(`http://127.0.0.1:${plainPort}/still`)).status, 200);
  });

  it('a handshake without SNI gets the default certificate', async () => {
    const r = await h1Get(tlsPort, '/x', '');
    assert.equal(r.status, 200);
    assert.match(r.cert.subject, /CN=localhost/);
    assert.match(r.cert.subject, /O=Portcullis/);
  });

  it('curl --http2 negotiates h2', { skip: !existsSync('/usr/bin/curl') }, async () => {
    const out = await new Promise<string>((resolve, reject) => {
      execFile('curl', ['-sk', '--http2', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `https://localhost:${tlsPort}/curl`], (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
    assert.equal(out, '2 200');
    const h2c = await new Promise<string>((resolve, reject) => {
      execFile('curl', ['-s', '--http2-prior-knowledge', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `http://127.0.0.1:${h2cPort}/curl`], (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
    assert.equal(h2c, '2 200');
  });
});

describe('default certificate', () => {
  it('is generated at first start in <prefix>/ssl and reused by the next start', async () => {
    const prefix = mkdtempSync(join(tmpdir(), 'portcullis-prefix-'));
    try {
      const fingerprints: string[] = [];
      for (let i = 0; i < 2; i++) {
        const gw = await startGateway({ proxyListen: '127.0.0.1:0 ssl', env: { PORTCULLIS_PREFIX: prefix } });
        try {
          assert.ok(existsSync(join(prefix, 'ssl', 'kong-default.crt')));
          assert.ok(existsSync(join(prefix, 'ssl', 'kong-default-ecdsa.key')));
          const served = await h1Get(gw.node.proxyPorts()[0], '/', '');
          assert.equal(served.cert.fingerprint256, new X509Certificate(readFileSync(join(prefix, 'ssl', 'kong-default-ecdsa.crt'))).fingerprint256);
          fingerprints.push(served.cert.fingerprint256);
        } finally {
          await gw.close();
        }
      }
      assert.equal(fingerprints[0], fingerprints[1]);
    } finally {
      rmSync(prefix, { recursive: true, force: true });
    }
  });

  it('an ECDSA-only client gets the generated ECDSA certificate, an RSA-only one the RSA one, with or without an unknown SNI', async () => {
    const gw = await startGateway({ proxyListen: '127.0.0.1:0 ssl' });
    const typeOf = (sigalgs: string, servername?: string) => new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: gw.node.proxyPorts()[0], rejectUnauthorized: false, sigalgs, ...(servername ? { servername } : {}) }, () => {
        resolve(s.getPeerX509Certificate()!.publicKey.asymmetricKeyType!);
        s.destroy();
      });
      s.on('error', reject);
    });
    try {
      assert.equal(await typeOf('ecdsa_secp256r1_sha256'), 'ec');
      assert.equal(await typeOf('rsa_pss_rsae_sha256'), 'rsa');
      // A name no SNI entity matches keeps the server's own context, which holds both pairs.
      assert.equal(await typeOf('ecdsa_secp256r1_sha256', 'unknown.test'), 'ec');
      assert.equal(await typeOf('rsa_pss_rsae_sha256', 'unknown.test'), 'rsa');
    } finally {
      await gw.close();
    }
  });
});
