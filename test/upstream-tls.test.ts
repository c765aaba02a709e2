/**
 * Upstream TLS on load-balanced services (issue 14 with issue 15's certificates): an upstream's
 * `client_certificate` is presented to its targets when the service has none (the service's own
 * wins, as Kong), validated as a foreign key; HTTPS active health checks use `https_sni`,
 * `https_verify_certificate` and the upstream's client certificate, against a real TLS target
 * that requires a client certificate.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { issueCert, type IssuedCert } from './helpers/certs.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { waitFor } from './helpers/process.ts';

type Body = Record<string, any>;

async function admin(gw: TestGateway, method: string, path: string, body?: unknown): Promise<{ status: number; body: Body }> {
  const r = await fetch(`${gw.adminUrl}${path}`, { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
  const text = await r.text();
  return { status: r.status, body: text === '' ? {} : JSON.parse(text) as Body };
}

describe('upstream client_certificate and HTTPS health checks', () => {
  let targetCa: IssuedCert;
  let clientCa: IssuedCert;
  let targetCert: IssuedCert;
  let upstreamClient: IssuedCert;
  let serviceClient: IssuedCert;
  let target: https.Server;
  let targetPort = 0;
  /** What each handshake to the target showed: SNI and client certificate CN, by path. */
  const seen: Array<{ path: string; sni: string | false | null; cn: string | null }> = [];
  let gw: TestGateway;

  before(async () => {
    targetCa = await issueCert({ cn: 'Target CA', isCa: true });
    clientCa = await issueCert({ cn: 'Client CA', isCa: true });
    targetCert = await issueCert({ cn: 'target.test', ca: targetCa });
    upstreamClient = await issueCert({ cn: 'upstream-client', ca: clientCa });
    serviceClient = await issueCert({ cn: 'service-client', ca: clientCa });
    // The target requires a client certificate from the client CA.
    target = https.createServer({ cert: targetCert.cert, key: targetCert.key, ca: clientCa.cert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      const s = req.socket as TLSSocket;
      const cn = s.getPeerX509Certificate()?.subject.match(/CN=([^\n,]+)/)?.[1] ?? null;
      seen.push({ path: req.url ?? '', sni: s.servername, cn });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ cn }));
    });
    target.on('tlsClientError', () => {});
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    targetPort = (target.address() as AddressInfo).port;
    gw = await startGateway({ database: 'sqlite', env: { PORTCULLIS_UPSTREAM_CA_FILE: targetCa.certFile } });
  });
  after(async () => {
    await gw.close();
    await new Promise<void>((r) => target.close(() => r()));
  });

  it('the upstream\'s certificate is presented to every target; a service\'s own client_certificate wins', async () => {
    const up = await admin(gw, 'POST', '/certificates', { cert: upstreamClient.cert, key: upstreamClient.key });
    const sv = await admin(gw, 'POST', '/certificates', { cert: serviceClient.cert, key: serviceClient.key });
    const u = await admin(gw, 'POST', '/upstreams', { name: 'mtls.upstream', client_certificate: { id: up.body.id } });
    assert.equal(u.status, 201, JSON.stringify(u.body));
    assert.deepEqual(u.body.client_certificate, { id: up.body.id });
    assert.equal((await admin(gw, 'POST', '/upstreams/mtls.upstream/targets', { target: `127.0.0.1:${targetPort}` })).status, 201);
    const a = await admin(gw, 'POST', '/services', { name: 'by-upstream', protocol: 'https', host: 'mtls.upstream', tls_verify: false });
    assert.equal(a.status, 201, JSON.stringify(a.body));
    await admin(gw, 'POST', '/services/by-upstream/routes', { paths: ['/u'] });
    const b = await admin(gw, 'POST', '/services', { name: 'own-cert', protocol: 'https', host: 'mtls.upstream', tls_verify: false, client_certificate: { id: sv.body.id } });
    assert.equal(b.status, 201, JSON.stringify(b.body));
    await admin(gw, 'POST', '/services/own-cert/routes', { paths: ['/s'] });
    let viaUpstream: Body = {};
    await waitFor(async () => {
      const r = await fetch(`${gw.proxyUrl}/u`);
      viaUpstream = r.status === 200 ? await r.json() as Body : {};
      return r.status === 200;
    }, 10_000, 'the balanced service answering');
    assert.equal(viaUpstream.cn, 'upstream-client');
    const own = await fetch(`${gw.proxyUrl}/s`);
    assert.equal(own.status, 200);
    assert.equal(((await own.json()) as Body).cn, 'service-client');
    // Without any client certificate the target refuses the handshake: the gateway answers 502.
    await admin(gw, 'PATCH', '/upstreams/mtls.upstream', { client_certificate: null });
    await waitFor(async () => (await fetch(`${gw.proxyUrl}/u`)).status === 502, 10_000, 'no client certificate any more');
    await admin(gw, 'PATCH', '/upstreams/mtls.upstream', { client_certificate: { id: up.body.id } });
    await waitFor(async () => (await fetch(`${gw.proxyUrl}/u`)).status === 200, 10_000, 'the certificate again');
  });

  it('client_certificate is a foreign key: unknown ids refused, a certificate in use cannot be deleted', async () => {
    const missing = await admin(gw, 'POST', '/upstreams', { name: 'x.upstream', client_certificate: { id: '00000000-0000-4000-8000-000000000001' } });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.name, 'foreign key violation');
    assert.ok('client_certificate' in missing.body.fields);
    const cert = (await admin(gw, 'GET', '/upstreams/mtls.upstream')).body.client_certificate.id as string;
    const del = await admin(gw, 'DELETE', `/certificates/${cert}`);
    assert.equal(del.status, 400);
    assert.deepEqual(del.body.fields, { '@referenced_by': 'upstreams' });
    assert.equal((await admin(gw, 'GET', `/upstreams/mtls.upstream/client_certificate`)).body.id, cert);
  });

  it('HTTPS probes send https_sni, present the client certificate and verify the target when asked', async () => {
    const cert = (await admin(gw, 'GET', '/upstreams/mtls.upstream')).body.client_certificate.id as string;
    const active = (extra: Body) => ({ type: 'https', http_path: '/health', healthy: { interval: 1, successes: 1 }, unhealthy: { interval: 1, tcp_failures: 1, http_failures: 1, timeouts: 1 }, ...extra });
    const make = async (name: string, extra: Body, withCert = true) => {
      const r = await admin(gw, 'POST', '/upstreams', { name, ...(withCert ? { client_certificate: { id: cert } } : {}), healthchecks: { active: active(extra) } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal((await admin(gw, 'POST', `/upstreams/${name}/targets`, { target: `127.0.0.1:${targetPort}` })).status, 201);
    };
    // Verified against PORTCULLIS_UPSTREAM_CA_FILE with the right name: stays healthy.
    await make('good.upstream', { https_sni: 'target.test', https_verify_certificate: true, http_path: '/health-good' });
    // The wrong name fails verification...
    await make('wrongname.upstream', { https_sni: 'other.test', https_verify_certificate: true, http_path: '/health-wrong' });
    // ...unless verification is off.
    await make('noverify.upstream', { https_sni: 'other.test', https_verify_certificate: false, http_path: '/health-noverify' });
    // No client certificate: the target refuses the handshake.
    await make('nocert.upstream', { https_sni: 'target.test', https_verify_certificate: true, http_path: '/health-nocert' }, false);
    const health = async (name: string) => ((await admin(gw, 'GET', `/upstreams/${name}/health`)).body.data as Body[])[0].health as string;
    await waitFor(async () => (await health('wrongname.upstream')) === 'UNHEALTHY' && (await health('nocert.upstream')) === 'UNHEALTHY', 15_000, 'failing probes mark the targets unhealthy');
    await waitFor(async () => seen.some((s) => s.path === '/health-good') && seen.some((s) => s.path === '/health-noverify'), 15_000, 'probes reached the target');
    assert.equal(await health('good.upstream'), 'HEALTHY');
    assert.equal(await health('noverify.upstream'), 'HEALTHY');
    const good = seen.find((s) => s.path === '/health-good')!;
    assert.deepEqual([good.sni, good.cn], ['target.test', 'upstream-client']);
    assert.equal(seen.find((s) => s.path === '/health-noverify')!.sni, 'other.test');
    // The refused and unverified probes never got a request through.
    assert.ok(!seen.some((s) => s.path === '/health-wrong' || s.path === '/health-nocert'));
  });
});
