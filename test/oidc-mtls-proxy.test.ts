/**
 * openid-connect's client-certificate calls to the IdP (`tls_client_auth` with
 * `tls_client_auth_cert_id`, at the `mtls_token_endpoint` alias) honour the proxy settings as
 * every other IdP call does: `https_proxy` (a CONNECT tunnel, the certificate presented inside it
 * to the IdP), `https_proxy_authorization`, `no_proxy`, `keepalive`, with
 * `tls_client_auth_ssl_verify` applied to the TLS inside the tunnel. A real forward proxy
 * (test/helpers/forward-proxy.ts) in front of the demo OpenID Provider over HTTPS with
 * oidc-provider's mTLS features (demo/idp-mtls.ts), and a real gateway node.
 */
import assert from 'node:assert/strict';
import { X509Certificate, hash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { demoAudience, startIdp, type DemoIdp } from './helpers/idp.ts';
import { issueCert, type IssuedCert } from './helpers/certs.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { startForwardProxy, type ForwardProxy } from './helpers/forward-proxy.ts';

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
const proxyAuth = basic('gw', 'proxy-secret');
const thumbprint = (c: IssuedCert) => hash('sha256', new X509Certificate(c.cert).raw, 'base64url');
const certId = 'c0000000-0000-4000-8000-000000000001';

describe('openid-connect: tls_client_auth calls through the forward proxy', () => {
  let clientCa: IssuedCert;
  let gatewayClient: IssuedCert;
  let mallory: IssuedCert;
  let idp: DemoIdp;
  let echo: EchoServer;
  let proxy: ForwardProxy;
  let gw: TestGateway;
  let gatewayConfig: { certificates: Array<{ id: string; cert: string; key: string }> } & Record<string, unknown>;
  /** host:port of the IdP's issuer server and of its mTLS server, as a CONNECT names them. */
  let issuerHost = '';
  let mtlsHost = '';

  before(async () => {
    clientCa = await issueCert({ cn: 'Client CA', isCa: true });
    gatewayClient = await issueCert({ cn: 'gateway-client', ca: clientCa });
    mallory = await issueCert({ cn: 'mallory', ca: clientCa });
    const idpCert = await issueCert({ cn: 'localhost', dns: ['localhost', '127.0.0.1'] });
    const gwTls = {
      client_id: 'gw-tls', redirect_uris: ['http://127.0.0.1/callback'], response_types: ['code'], grant_types: ['password'],
      token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: 'CN=gateway-client', tls_client_certificate_bound_access_tokens: true,
    };
    const bound = {
      client_id: 'bound', client_secret: 'bound-secret', token_endpoint_auth_method: 'client_secret_basic', grant_types: ['client_credentials'],
      redirect_uris: [], response_types: [], tls_client_certificate_bound_access_tokens: true,
    };
    // No mtls_endpoint_aliases in discovery: the gateway is told the alias (mtls_token_endpoint).
    idp = await startIdp({ mtls: { cert: idpCert.cert, key: idpCert.key, ca: [clientCa.cert], aliases: false }, extraClients: [gwTls, bound] as never });
    echo = await startEcho();
    proxy = await startForwardProxy({ authorization: proxyAuth });
    issuerHost = new URL(idp.issuer).host;
    mtlsHost = new URL(idp.mtlsUrl!).host;
    assert.notEqual(issuerHost, mtlsHost);

    const tlsAuth = {
      issuer: idp.issuer,
      ssl_verify: false,
      client_id: ['gw-tls'],
      token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_cert_id: certId,
      tls_client_auth_ssl_verify: false,
      mtls_token_endpoint: `${idp.mtlsUrl}/token`,
      token_post_args_names: ['audience'],
      token_post_args_values: [demoAudience],
      auth_methods: ['password'],
      // every login calls the token endpoint
      cache_tokens: false,
      https_proxy: proxy.url,
      https_proxy_authorization: proxyAuth,
    };
    // Only the mTLS server through the proxy: discovery and JWKS (the issuer's server) go direct.
    const onlyMtls = { no_proxy: `127.0.0.1:${new URL(idp.issuer).port}` };
    const route = (name: string, config: Record<string, unknown>) => ({ name, paths: [`/${name}`], plugins: [{ name: 'openid-connect', config }] });
    gatewayConfig = {
      certificates: [{ id: certId, cert: gatewayClient.cert, key: gatewayClient.key }],
      services: [{
        name: 'echo',
        url: echo.url,
        routes: [
          route('proxied', tlsAuth),
          route('proxied-cc', { ...tlsAuth, auth_methods: ['client_credentials'] }),
          route('wrong-authorization', { ...tlsAuth, ...onlyMtls, https_proxy_authorization: basic('gw', 'wrong') }),
          route('no-proxy-idp', { ...tlsAuth, no_proxy: 'example.org, 127.0.0.1' }),
          route('no-proxy-issuer', { ...tlsAuth, ...onlyMtls }),
          route('verify', { ...tlsAuth, ...onlyMtls, tls_client_auth_ssl_verify: true }),
          route('keepalive-on', { ...tlsAuth, ...onlyMtls }),
          route('keepalive-off', { ...tlsAuth, ...onlyMtls, keepalive: false }),
        ],
      }],
    };
    gw = await startGateway({ config: gatewayConfig });
  });

  after(async () => {
    await gw?.close();
    await proxy?.close();
    await echo?.close();
    await idp?.close();
  });

  /** A call to the gateway: its status, the echoed upstream request (when it got there). */
  async function login(path: string, authorization = basic('alex', 'doe')): Promise<{ status: number; body: string; token: string | null }> {
    const before = echo.received.length;
    const res = await fetch(`${gw.proxyUrl}/${path}`, { headers: { authorization } });
    const body = await res.text();
    const upstream = echo.received.length > before;
    const token = upstream ? (JSON.parse(body).headers.authorization as string).slice('Bearer '.length) : null;
    return { status: res.status, body, token };
  }

  it('the token call goes through the CONNECT tunnel of https_proxy, with Proxy-Authorization, the certificate presented inside it', async () => {
    proxy.reset();
    idp.resetCounts();
    const r = await login('proxied');
    assert.equal(r.status, 200, r.body);
    assert.equal(idp.counts()['token:password'], 1);
    // The IdP bound the token to the certificate it saw: the gateway's, through the tunnel.
    assert.equal((decodeJwt(r.token!).cnf as Record<string, string>)['x5t#S256'], thumbprint(gatewayClient));
    assert.ok(proxy.requests.includes(`CONNECT ${mtlsHost}`), proxy.requests.join(', '));
    assert.ok(proxy.requests.includes(`CONNECT ${issuerHost}`), proxy.requests.join(', '));
    // The proxy asks for an authorization: none refused, so it was sent on every CONNECT.
    assert.equal(proxy.refused, 0);
    assert.deepEqual(proxy.requests.filter((x) => !x.startsWith('CONNECT ')), []);

    // client_credentials: the caller's own secret, the gateway's certificate presented too.
    proxy.reset();
    const cc = await login('proxied-cc', basic('bound', 'bound-secret'));
    assert.equal(cc.status, 200, cc.body);
    assert.equal(decodeJwt(cc.token!).client_id, 'bound');
    assert.equal((decodeJwt(cc.token!).cnf as Record<string, string>)['x5t#S256'], thumbprint(gatewayClient));
    assert.ok(proxy.requests.includes(`CONNECT ${mtlsHost}`), proxy.requests.join(', '));
  });

  it('https_proxy_authorization is what the tunnel sends: a wrong one is refused by the proxy (407) and the login fails', async () => {
    proxy.reset();
    idp.resetCounts();
    const r = await login('wrong-authorization');
    assert.equal(r.status, 500, r.body);
    assert.equal(r.token, null);
    assert.ok(proxy.refused > 0);
    assert.deepEqual(proxy.requests, []);
    assert.equal(idp.counts()['token:password'] ?? 0, 0);
  });

  it('no_proxy: naming the IdP host, the mTLS call goes direct (the proxy sees nothing); naming only the issuer server, only the mTLS call is tunnelled', async () => {
    proxy.reset();
    const direct = await login('no-proxy-idp');
    assert.equal(direct.status, 200, direct.body);
    assert.equal((decodeJwt(direct.token!).cnf as Record<string, string>)['x5t#S256'], thumbprint(gatewayClient));
    assert.deepEqual(proxy.requests, []);
    assert.equal(proxy.connections, 0);

    proxy.reset();
    const tunnelled = await login('no-proxy-issuer');
    assert.equal(tunnelled.status, 200, tunnelled.body);
    assert.equal((decodeJwt(tunnelled.token!).cnf as Record<string, string>)['x5t#S256'], thumbprint(gatewayClient));
    assert.ok(proxy.requests.length > 0);
    assert.deepEqual(proxy.requests.filter((x) => x !== `CONNECT ${mtlsHost}`), []);
  });

  it('tls_client_auth_ssl_verify applies inside the tunnel: the IdP self-signed certificate is refused', async () => {
    proxy.reset();
    idp.resetCounts();
    const r = await login('verify', basic('jane', 'doe2'));
    assert.equal(r.status, 500, r.body);
    assert.equal(r.token, null);
    assert.deepEqual(proxy.requests, [`CONNECT ${mtlsHost}`]);
    assert.equal(idp.counts()['token:password'] ?? 0, 0);
  });

  it('keepalive: the tunnel is reused by the next call; keepalive: false opens one per call', async () => {
    proxy.reset();
    for (const user of [basic('alex', 'doe'), basic('jane', 'doe2')]) assert.equal((await login('keepalive-on', user)).status, 200);
    assert.deepEqual(proxy.requests, [`CONNECT ${mtlsHost}`]);
    assert.equal(proxy.connections, 1);

    proxy.reset();
    for (const user of [basic('alex', 'doe'), basic('jane', 'doe2')]) assert.equal((await login('keepalive-off', user)).status, 200);
    assert.deepEqual(proxy.requests, [`CONNECT ${mtlsHost}`, `CONNECT ${mtlsHost}`]);
    assert.equal(proxy.connections, 2);
  });

  it('a replaced certificate entity is presented through the proxy from the next call', async () => {
    const replaced = { ...gatewayConfig, certificates: [{ id: certId, cert: mallory.cert, key: mallory.key }] };
    assert.equal(await gw.reload(replaced), true);
    proxy.reset();
    // The IdP knows gw-tls by the subject CN=gateway-client: mallory's certificate is refused.
    const refused = await login('no-proxy-issuer', basic('jane', 'doe2'));
    assert.equal(refused.status, 401, refused.body);
    assert.equal(refused.token, null);
    assert.ok(proxy.requests.includes(`CONNECT ${mtlsHost}`), proxy.requests.join(', '));

    assert.equal(await gw.reload(gatewayConfig), true);
    proxy.reset();
    const back = await login('no-proxy-issuer', basic('jane', 'doe2'));
    assert.equal(back.status, 200, back.body);
    assert.equal((decodeJwt(back.token!).cnf as Record<string, string>)['x5t#S256'], thumbprint(gatewayClient));
    assert.ok(proxy.requests.includes(`CONNECT ${mtlsHost}`), proxy.requests.join(', '));

    // Neither the key of the certificate nor the proxy authorization is ever logged.
    const text = gw.logText();
    assert.ok(!text.includes(gatewayClient.key.split('\n')[1]), 'private key');
    assert.ok(!text.includes(proxyAuth.slice('Basic '.length)), 'proxy authorization');
  });
});
