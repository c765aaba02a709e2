/**
 * Mutual TLS in openid-connect (RFC 8705), against the demo OpenID Provider over HTTPS with
 * oidc-provider's mTLS features (demo/idp-mtls.ts):
 *
 * - certificate-bound tokens (`proof_of_possession_mtls` strict/optional) over a gateway TLS
 *   listener that asks for client certificates (PORTCULLIS_SSL_VERIFY_CLIENT=optional), with the
 *   token's `cnf.x5t#S256` from the JWT or from introspection;
 * - the certificate from a header (`proof_of_possession_mtls_from_header`), only from trusted_ips;
 * - `tls_client_auth` / `self_signed_tls_client_auth` from the gateway to the IdP with the
 *   certificate entity `tls_client_auth_cert_id`, to the mTLS endpoints (`mtls_*_endpoint`,
 *   discovery's `mtls_endpoint_aliases`), `tls_client_auth_ssl_verify`.
 */
import assert from 'node:assert/strict';
import { X509Certificate, createPublicKey, hash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, exportJWK } from 'jose';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { demoAudience, startIdp, type DemoIdp } from './helpers/idp.ts';
import { issueCert, type IssuedCert } from './helpers/certs.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { request, type Answer } from './helpers/cert-request.ts';

const thumbprint = (c: IssuedCert) => hash('sha256', new X509Certificate(c.cert).raw, 'base64url');
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

describe('openid-connect: mutual TLS (RFC 8705)', () => {
  let clientCa: IssuedCert;
  let strangerCa: IssuedCert;
  let alice: IssuedCert;
  let mallory: IssuedCert;
  let stranger: IssuedCert;
  let gatewayClient: IssuedCert;
  let selfSigned: IssuedCert;
  let rootCa: IssuedCert;
  let intermediateCa: IssuedCert;
  let carol: IssuedCert;
  let expired: IssuedCert;
  let idp: DemoIdp;
  let aliasIdp: DemoIdp;
  let echo: EchoServer;
  let gw: TestGateway;
  let tlsUrl: string;
  let plainUrl: string;
  let gatewayConfig: { certificates: Array<{ id: string; cert: string; key: string }> } & Record<string, unknown>;

  /** A token for the `bound` client, bound to `cert` (RFC 8705 §3), as a JWT. */
  async function boundToken(cert: IssuedCert): Promise<string> {
    const r = await request(`${idp.mtlsUrl}/token`, {
      method: 'POST',
      cert,
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('bound', 'bound-secret') },
      body: new URLSearchParams({ grant_type: 'client_credentials', audience: demoAudience, scope: 'openid' }).toString(),
    });
    assert.equal(r.status, 200, r.body);
    const token = JSON.parse(r.body).access_token as string;
    assert.equal((decodeJwt(token).cnf as Record<string, string>)['x5t#S256'], thumbprint(cert));
    return token;
  }

  before(async () => {
    clientCa = await issueCert({ cn: 'Client CA', isCa: true });
    strangerCa = await issueCert({ cn: 'Stranger CA', isCa: true });
    alice = await issueCert({ cn: 'alice', ca: clientCa });
    mallory = await issueCert({ cn: 'mallory', ca: clientCa });
    stranger = await issueCert({ cn: 'stranger', ca: strangerCa });
    gatewayClient = await issueCert({ cn: 'gateway-client', ca: clientCa });
    selfSigned = await issueCert({ cn: 'gateway-self-signed' });
    rootCa = await issueCert({ cn: 'Root CA', isCa: true });
    intermediateCa = await issueCert({ cn: 'Intermediate CA', isCa: true, ca: rootCa });
    carol = await issueCert({ cn: 'carol', ca: intermediateCa });
    expired = await issueCert({ cn: 'expired', ca: clientCa, startDays: -10, endDays: -1 });
    const idpCert = await issueCert({ cn: 'localhost', dns: ['localhost', '127.0.0.1'] });
    const selfJwk = { ...(await exportJWK(createPublicKey(selfSigned.cert))), x5c: [new X509Certificate(selfSigned.cert).raw.toString('base64')] };
    const web = { redirect_uris: ['http://127.0.0.1/callback'], response_types: ['code'] };
    const extraClients = [
      { client_id: 'bound', client_secret: 'bound-secret', token_endpoint_auth_method: 'client_secret_basic', grant_types: ['client_credentials'], redirect_uris: [], response_types: [], tls_client_certificate_bound_access_tokens: true },
      { client_id: 'gw-tls', ...web, grant_types: ['authorization_code', 'password', 'refresh_token'], token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: 'CN=gateway-client', tls_client_certificate_bound_access_tokens: true },
      { client_id: 'gw-self', ...web, grant_types: ['authorization_code', 'password'], token_endpoint_auth_method: 'self_signed_tls_client_auth', jwks: { keys: [selfJwk] }, tls_client_certificate_bound_access_tokens: true },
    ];
    // The main IdP publishes no mtls_endpoint_aliases: the gateway is told them (mtls_*_endpoint).
    idp = await startIdp({ mtls: { cert: idpCert.cert, key: idpCert.key, ca: [clientCa.cert], aliases: false }, extraClients: extraClients as never });
    aliasIdp = await startIdp({ mtls: { cert: idpCert.cert, key: idpCert.key, ca: [clientCa.cert] }, extraClients: extraClients as never });
    echo = await startEcho();
    const common = { issuer: idp.issuer, ssl_verify: false };
    const tlsAuth = {
      ...common,
      client_id: ['gw-tls'],
      client_auth: ['tls_client_auth'],
      tls_client_auth_cert_id: 'c0000000-0000-4000-8000-000000000001',
      tls_client_auth_ssl_verify: false,
      mtls_token_endpoint: `${idp.mtlsUrl}/token`,
      mtls_introspection_endpoint: `${idp.mtlsUrl}/token/introspection`,
      token_post_args_names: ['audience'],
      token_post_args_values: [demoAudience],
    };
    const route = (name: string, config: Record<string, unknown>) => ({
      name,
      paths: [`/${name}`],
      plugins: [{ name: 'openid-connect', config }],
    });
    const header = { certificate_header_name: 'x-client-cert', ca_certificates: ['ca000000-0000-4000-8000-000000000001'], revocation_check_mode: 'SKIP' };
    gatewayConfig = {
      ca_certificates: [
        { id: 'ca000000-0000-4000-8000-000000000001', cert: clientCa.cert },
        { id: 'ca000000-0000-4000-8000-000000000002', cert: rootCa.cert },
        { id: 'ca000000-0000-4000-8000-000000000003', cert: intermediateCa.cert },
      ],
      certificates: [
        { id: 'c0000000-0000-4000-8000-000000000001', cert: gatewayClient.cert, key: gatewayClient.key },
        { id: 'c0000000-0000-4000-8000-000000000002', cert: selfSigned.cert, key: selfSigned.key },
      ],
      services: [{
        name: 'echo',
        url: echo.url,
        routes: [
          route('pop-strict', { ...common, auth_methods: ['bearer'], proof_of_possession_mtls: 'strict' }),
          route('pop-optional', { ...common, auth_methods: ['bearer'], proof_of_possession_mtls: 'optional' }),
          route('pop-introspection', { ...tlsAuth, client_auth: null, introspection_endpoint_auth_method: 'tls_client_auth', auth_methods: ['introspection'], proof_of_possession_mtls: 'strict' }),
          route('pop-header', { ...common, auth_methods: ['bearer'], proof_of_possession_mtls: 'strict', proof_of_possession_mtls_from_header: header }),
          route('pop-header-b64', { ...common, auth_methods: ['bearer'], proof_of_possession_mtls: 'strict', proof_of_possession_mtls_from_header: { ...header, certificate_header_format: 'base64_encoded' } }),
          route('pop-header-open', { ...common, auth_methods: ['bearer'], proof_of_possession_mtls: 'strict', proof_of_possession_mtls_from_header: { ...header, secure_source: false } }),
          route('pop-header-root', { ...common, auth_methods: ['bearer'], proof_of_possession_mtls: 'strict', proof_of_possession_mtls_from_header: { ...header, ca_certificates: ['ca000000-0000-4000-8000-000000000002'] } }),
          route('pop-header-intermediate', { ...common, auth_methods: ['bearer'], proof_of_possession_mtls: 'strict', proof_of_possession_mtls_from_header: { ...header, ca_certificates: ['ca000000-0000-4000-8000-000000000003'] } }),
          route('pop-header-partial', { ...common, auth_methods: ['bearer'], proof_of_possession_mtls: 'strict', proof_of_possession_mtls_from_header: { ...header, ca_certificates: ['ca000000-0000-4000-8000-000000000003'], allow_partial_chain: true } }),
          route('pop-unvalidated', { ...common, client_id: ['kong'], client_secret: ['kong-secret'], auth_methods: ['bearer', 'password'], proof_of_possession_mtls: 'strict', proof_of_possession_auth_methods_validation: false }),
          route('pop-session', { ...common, auth_methods: ['bearer', 'session'], proof_of_possession_mtls: 'strict', session_secret: 'mtls-session-secret-0123456789' }),
          route('tls-password', { ...tlsAuth, client_auth: null, token_endpoint_auth_method: 'tls_client_auth', auth_methods: ['password'] }),
          route('tls-client-credentials', { ...tlsAuth, client_auth: null, token_endpoint_auth_method: 'tls_client_auth', auth_methods: ['client_credentials'] }),
          route('tls-code', { ...tlsAuth, auth_methods: ['authorization_code', 'session'], session_secret: 'mtls-session-secret-0123456789' }),
          route('tls-logout', {
            ...tlsAuth, auth_methods: ['password', 'session'], session_secret: 'mtls-session-secret-0123456789', upstream_refresh_token_header: 'x-refresh-token',
            logout_uri_suffix: '/logout', logout_methods: ['POST'], logout_revoke: true, mtls_revocation_endpoint: `${idp.mtlsUrl}/token/revocation`,
          }),
          route('tls-no-alias', { ...tlsAuth, mtls_token_endpoint: null, auth_methods: ['password'] }),
          route('tls-verify', { ...tlsAuth, tls_client_auth_ssl_verify: true, auth_methods: ['password'] }),
          route('tls-discovered-alias', { ...tlsAuth, issuer: aliasIdp.issuer, mtls_token_endpoint: null, mtls_introspection_endpoint: null, auth_methods: ['password'] }),
          route('self-signed', {
            ...tlsAuth, client_id: ['gw-self'], client_auth: ['self_signed_tls_client_auth'], tls_client_auth_cert_id: 'c0000000-0000-4000-8000-000000000002', auth_methods: ['password'],
          }),
        ],
      }],
    };
    gw = await startGateway({
      proxyListen: '127.0.0.1:0 ssl, 127.0.0.1:0',
      env: { PORTCULLIS_SSL_VERIFY_CLIENT: 'optional', PORTCULLIS_TRUSTED_IPS: '127.0.0.2' },
      config: gatewayConfig,
    });
    const [tlsPort, plainPort] = gw.node.proxyPorts();
    tlsUrl = `https://127.0.0.1:${tlsPort}`;
    plainUrl = `http://127.0.0.1:${plainPort}`;
  });

  after(async () => {
    await gw?.close();
    await echo?.close();
    await idp?.close();
    await aliasIdp?.close();
  });

  /** Calls the gateway and tells whether the echo upstream saw the request. */
  async function through(url: string, o: Parameters<typeof request>[1] = {}): Promise<Answer & { upstream: boolean }> {
    const before = echo.received.length;
    const r = await request(url, o);
    return { ...r, upstream: echo.received.length > before };
  }

  it('strict: the certificate the token is bound to passes; no certificate, another one or an unbound token is a 401 invalid_token', async () => {
    const token = await boundToken(alice);
    const auth = { authorization: `Bearer ${token}` };
    const ok = await through(`${tlsUrl}/pop-strict`, { cert: alice, headers: auth });
    assert.equal(ok.status, 200, ok.body);
    assert.equal(JSON.parse(ok.body).headers.authorization, `Bearer ${token}`);

    for (const cert of [undefined, mallory]) {
      const r = await through(`${tlsUrl}/pop-strict`, { cert, headers: auth });
      assert.equal(r.status, 401, `${cert ? 'other' : 'no'} certificate: ${r.body}`);
      assert.equal(r.upstream, false);
      assert.match(String(r.headers['www-authenticate']), /^Bearer realm="[^"]+", error="invalid_token"$/);
      assert.deepEqual(JSON.parse(r.body), { message: 'Unauthorized' });
    }
    // A certificate from a CA the listener does not trust is not a verified certificate at all.
    const untrusted = await through(`${tlsUrl}/pop-strict`, { cert: stranger, headers: auth });
    assert.equal(untrusted.status, 401);
    assert.equal(untrusted.upstream, false);

    // A token without cnf (the password grant of a client that does not bind tokens).
    const plain = await request(`${idp.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'password', username: 'alex', password: 'doe', client_id: 'kong', client_secret: 'kong-secret', scope: 'openid' }).toString(),
    });
    const unbound = JSON.parse(plain.body).access_token as string;
    assert.equal(decodeJwt(unbound).cnf, undefined);
    const r = await through(`${tlsUrl}/pop-strict`, { cert: alice, headers: { authorization: `Bearer ${unbound}` } });
    assert.equal(r.status, 401);
    assert.equal(r.upstream, false);

    // optional: an unbound token passes; a bound one still needs its certificate.
    assert.equal((await through(`${tlsUrl}/pop-optional`, { cert: alice, headers: { authorization: `Bearer ${unbound}` } })).status, 200);
    assert.equal((await through(`${tlsUrl}/pop-optional`, { headers: { authorization: `Bearer ${unbound}` } })).status, 200);
    assert.equal((await through(`${tlsUrl}/pop-optional`, { cert: alice, headers: auth })).status, 200);
    const wrong = await through(`${tlsUrl}/pop-optional`, { cert: mallory, headers: auth });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.upstream, false);
    // The cached verification (synchronous path) still checks the certificate of each connection.
    assert.equal((await through(`${tlsUrl}/pop-strict`, { cert: mallory, headers: auth })).status, 401);
    assert.equal((await through(`${tlsUrl}/pop-strict`, { cert: alice, headers: auth })).status, 200);
  });

  it('introspection: cnf from the introspection answer (RFC 8705 §3.2), the gateway introspecting with tls_client_auth', async () => {
    // An opaque token of the gw-tls client, bound to the gateway's certificate.
    const r = await request(`${idp.mtlsUrl}/token`, {
      method: 'POST',
      cert: gatewayClient,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'password', username: 'alex', password: 'doe', client_id: 'gw-tls' }).toString(),
    });
    assert.equal(r.status, 200, r.body);
    const token = JSON.parse(r.body).access_token as string;
    assert.equal(token.split('.').length, 1, 'opaque');
    idp.resetCounts();
    const ok = await through(`${tlsUrl}/pop-introspection`, { cert: gatewayClient, headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200, ok.body);
    assert.equal(idp.counts().introspection, 1);
    const wrong = await through(`${tlsUrl}/pop-introspection`, { cert: alice, headers: { authorization: `Bearer ${token}` } });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.upstream, false);
  });

  it('from a header: accepted from a trusted_ips peer only, verified against ca_certificates', async () => {
    const token = await boundToken(alice);
    const auth = { authorization: `Bearer ${token}` };
    const header = (c: IssuedCert) => encodeURIComponent(c.cert);
    const trusted = await through(`${plainUrl}/pop-header`, { localAddress: '127.0.0.2', headers: { ...auth, 'x-client-cert': header(alice) } });
    assert.equal(trusted.status, 200, trusted.body);
    const b64 = Buffer.from(new X509Certificate(alice.cert).raw).toString('base64');
    assert.equal((await through(`${plainUrl}/pop-header-b64`, { localAddress: '127.0.0.2', headers: { ...auth, 'x-client-cert': b64 } })).status, 200);

    const refusals: Array<[string, Parameters<typeof request>[1]]> = [
      ['untrusted peer', { localAddress: '127.0.0.1', headers: { ...auth, 'x-client-cert': header(alice) } }],
      ['no header', { localAddress: '127.0.0.2', headers: auth }],
      ['another certificate', { localAddress: '127.0.0.2', headers: { ...auth, 'x-client-cert': header(mallory) } }],
      ['a certificate of an untrusted CA', { localAddress: '127.0.0.2', headers: { ...auth, 'x-client-cert': header(stranger) } }],
      ['garbage', { localAddress: '127.0.0.2', headers: { ...auth, 'x-client-cert': 'not%20a%20certificate' } }],
    ];
    for (const [what, o] of refusals) {
      const r = await through(`${plainUrl}/pop-header`, o);
      assert.equal(r.status, 401, `${what}: ${r.body}`);
      assert.equal(r.upstream, false, what);
      assert.match(String(r.headers['www-authenticate']), /error="invalid_token"/, what);
    }
  });

  it('from a header: secure_source off takes it from anyone; the chain must reach a self-signed CA unless allow_partial_chain', async () => {
    const auth = { authorization: `Bearer ${await boundToken(alice)}` };
    const open = await through(`${plainUrl}/pop-header-open`, { localAddress: '127.0.0.1', headers: { ...auth, 'x-client-cert': encodeURIComponent(alice.cert) } });
    assert.equal(open.status, 200, open.body);

    const carolAuth = { authorization: `Bearer ${await boundToken(carol)}` };
    const leaf = encodeURIComponent(carol.cert);
    const withChain = encodeURIComponent(carol.cert + intermediateCa.cert);
    const cases: Array<[string, string, number]> = [
      ['pop-header-root', withChain, 200],
      ['pop-header-root', leaf, 401],
      ['pop-header-intermediate', leaf, 401],
      ['pop-header-partial', leaf, 200],
    ];
    for (const [path, value, status] of cases) {
      const r = await through(`${plainUrl}/${path}`, { localAddress: '127.0.0.2', headers: { ...carolAuth, 'x-client-cert': value } });
      assert.equal(r.status, status, `${path} ${value === leaf ? 'leaf' : 'leaf+intermediate'}: ${r.body}`);
      assert.equal(r.upstream, status === 200);
    }
    // An expired certificate does not verify, even with a token bound to it.
    const old = await through(`${plainUrl}/pop-header`, { localAddress: '127.0.0.2', headers: { authorization: `Bearer ${await boundToken(expired)}`, 'x-client-cert': encodeURIComponent(expired.cert) } });
    assert.equal(old.status, 401);
    assert.equal(old.upstream, false);
  });

  it('proof_of_possession_auth_methods_validation off: methods that cannot prove possession go unchecked', async () => {
    const pw = await through(`${tlsUrl}/pop-unvalidated`, { headers: { authorization: basic('alex', 'doe') } });
    assert.equal(pw.status, 200, pw.body);
    const bearer = await through(`${tlsUrl}/pop-unvalidated`, { cert: mallory, headers: { authorization: `Bearer ${await boundToken(alice)}` } });
    assert.equal(bearer.status, 401);
    assert.equal(bearer.upstream, false);
  });

  it('a session made by a bound bearer token is checked against the certificate too', async () => {
    const first = await through(`${tlsUrl}/pop-session`, { cert: alice, headers: { authorization: `Bearer ${await boundToken(alice)}` } });
    assert.equal(first.status, 200, first.body);
    const cookies = ([] as string[]).concat(first.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]).join('; ');
    assert.ok(cookies.includes('session='), cookies);
    assert.equal((await through(`${tlsUrl}/pop-session`, { cert: alice, headers: { cookie: cookies } })).status, 200);
    const other = await through(`${tlsUrl}/pop-session`, { cert: mallory, headers: { cookie: cookies } });
    assert.equal(other.status, 401);
    assert.equal(other.upstream, false);
  });

  it('logout revokes at mtls_revocation_endpoint with tls_client_auth', async () => {
    const login = await through(`${tlsUrl}/tls-logout`, { headers: { authorization: basic('alex', 'doe') } });
    assert.equal(login.status, 200, login.body);
    const refresh = JSON.parse(login.body).headers['x-refresh-token'] as string;
    assert.ok(refresh);
    const cookies = ([] as string[]).concat(login.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]).join('; ');
    const out = await request(`${tlsUrl}/tls-logout/logout`, { method: 'POST', headers: { cookie: cookies } });
    assert.ok(out.status < 400, `${out.status} ${out.body}`);
    // The refresh token was revoked: the IdP no longer takes it (from the client it belongs to).
    const r = await request(`${idp.mtlsUrl}/token`, {
      method: 'POST',
      cert: gatewayClient,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refresh, client_id: 'gw-tls' }).toString(),
    });
    assert.equal(r.status, 400, r.body);
    assert.equal(JSON.parse(r.body).error, 'invalid_grant');
  });

  it('tls_client_auth: the authorization code flow redeems the code at the mTLS token endpoint', async () => {
    // A small browser: one cookie jar per origin, redirects followed by hand.
    const jars = new Map<string, Map<string, string>>();
    const go = async (url: string, o: { method?: string; body?: string } = {}): Promise<Answer> => {
      const origin = new URL(url).origin;
      const jar = jars.get(origin) ?? new Map<string, string>();
      jars.set(origin, jar);
      const headers: Record<string, string> = { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') };
      if (o.body) headers['content-type'] = 'application/x-www-form-urlencoded';
      const r = await request(url, { method: o.method, headers, body: o.body });
      for (const c of ([] as string[]).concat(r.headers['set-cookie'] ?? [])) {
        const [pair] = c.split(';');
        const i = pair.indexOf('=');
        jar.set(pair.slice(0, i), pair.slice(i + 1));
      }
      return r;
    };
    let r = await go(`${tlsUrl}/tls-code`);
    assert.equal(r.status, 302, r.body);
    let location = String(r.headers.location);
    assert.ok(location.startsWith(`${idp.issuer}/auth`), location);
    for (let hops = 0; hops < 8 && !location.startsWith(tlsUrl); hops++) {
      r = await go(new URL(location, idp.issuer).href);
      if (r.status === 200 && r.body.includes('name="login"')) {
        r = await go(new URL(`${new URL(location, idp.issuer).pathname}/login`, idp.issuer).href, { method: 'POST', body: new URLSearchParams({ login: 'alex', password: 'doe' }).toString() });
      }
      location = String(r.headers.location);
    }
    idp.resetCounts();
    r = await go(location);
    assert.equal(idp.counts()['token:authorization_code'], 1);
    for (let hops = 0; hops < 3 && r.status === 302; hops++) r = await go(new URL(String(r.headers.location), tlsUrl).href);
    assert.equal(r.status, 200, r.body);
    const token = JSON.parse(r.body).headers.authorization.slice('Bearer '.length);
    // The token the code was redeemed for is bound to the gateway's certificate.
    const info = await request(`${idp.mtlsUrl}/token/introspection`, {
      method: 'POST',
      cert: gatewayClient,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, client_id: 'gw-tls' }).toString(),
    });
    const claims = JSON.parse(info.body);
    assert.equal(claims.active, true, info.body);
    assert.equal(claims.cnf['x5t#S256'], thumbprint(gatewayClient));
  });

  it('tls_client_auth: password and client credentials grants at the mTLS token endpoint; the bound token is forwarded', async () => {
    const gatewayThumbprint = thumbprint(gatewayClient);
    idp.resetCounts();
    const pw = await through(`${tlsUrl}/tls-password`, { headers: { authorization: basic('alex', 'doe') } });
    assert.equal(pw.status, 200, pw.body);
    const forwarded = JSON.parse(pw.body).headers.authorization.slice('Bearer '.length);
    assert.equal((decodeJwt(forwarded).cnf as Record<string, string>)['x5t#S256'], gatewayThumbprint);
    assert.equal(idp.counts()['token:password'], 1);

    const cc = await through(`${tlsUrl}/tls-client-credentials`, { headers: { authorization: basic('bound', 'bound-secret') } });
    assert.equal(cc.status, 200, cc.body);
    const ccToken = JSON.parse(cc.body).headers.authorization.slice('Bearer '.length);
    assert.equal(decodeJwt(ccToken).client_id, 'bound');
    assert.equal((decodeJwt(ccToken).cnf as Record<string, string>)['x5t#S256'], gatewayThumbprint);

    // Without the mTLS alias the regular endpoint gets no certificate: the IdP refuses the client.
    const noAlias = await through(`${tlsUrl}/tls-no-alias`, { headers: { authorization: basic('alex', 'doe') } });
    assert.equal(noAlias.status, 401);
    assert.equal(noAlias.upstream, false);
    // tls_client_auth_ssl_verify: the IdP's self-signed certificate is not trusted.
    const verify = await through(`${tlsUrl}/tls-verify`, { headers: { authorization: basic('jane', 'doe2') } });
    assert.equal(verify.status, 500);
    assert.equal(verify.upstream, false);
  });

  it('mtls_endpoint_aliases from discovery, and self_signed_tls_client_auth', async () => {
    const viaAlias = await through(`${tlsUrl}/tls-discovered-alias`, { headers: { authorization: basic('alex', 'doe') } });
    assert.equal(viaAlias.status, 200, viaAlias.body);
    const token = JSON.parse(viaAlias.body).headers.authorization.slice('Bearer '.length);
    assert.equal(decodeJwt(token).iss, aliasIdp.issuer);
    assert.equal((decodeJwt(token).cnf as Record<string, string>)['x5t#S256'], thumbprint(gatewayClient));

    const self = await through(`${tlsUrl}/self-signed`, { headers: { authorization: basic('alex', 'doe') } });
    assert.equal(self.status, 200, self.body);
    const selfToken = JSON.parse(self.body).headers.authorization.slice('Bearer '.length);
    assert.equal(decodeJwt(selfToken).client_id, 'gw-self');
    assert.equal((decodeJwt(selfToken).cnf as Record<string, string>)['x5t#S256'], thumbprint(selfSigned));
  });

  it('tls_client_auth_cert_id is read from the current entities: a replaced certificate is presented from the next call', async () => {
    const replaced = {
      ...gatewayConfig,
      certificates: gatewayConfig.certificates.map((c) => (c.id === 'c0000000-0000-4000-8000-000000000001' ? { ...c, cert: mallory.cert, key: mallory.key } : c)),
    };
    assert.equal(await gw.reload(replaced), true);
    // The IdP knows gw-tls by the subject CN=gateway-client: mallory's certificate is refused.
    const r = await through(`${tlsUrl}/tls-password`, { headers: { authorization: basic('jane', 'doe2') } });
    assert.equal(r.status, 401, r.body);
    assert.equal(r.upstream, false);
    assert.equal(await gw.reload(gatewayConfig), true);
    const back = await through(`${tlsUrl}/tls-password`, { headers: { authorization: basic('jane', 'doe2') } });
    assert.equal(back.status, 200, back.body);
  });

  it('no certificate, token or key appears in the logs', () => {
    const text = gw.logText();
    for (const c of [gatewayClient, selfSigned]) {
      assert.ok(!text.includes(c.key.split('\n')[1]), 'private key');
    }
    assert.ok(!text.includes(alice.cert.split('\n')[1]), 'client certificate');
  });
});
