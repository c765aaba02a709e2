/**
 * The demo / test OpenID Provider: a real OP built on oidc-provider 9, with fixed demo users and
 * clients, JWT (RS256) or opaque access tokens, the password grant, introspection, revocation,
 * userinfo, RP-initiated and back-channel logout, PAR, and a minimal sign-in page; on request
 * (StartIdpOptions) signed request objects (JAR), JWT responses (JARM) and token exchange.
 *
 * DEV/TEST ONLY: plain http (or, with the `mtls` option, HTTPS with oidc-provider's mutual-TLS
 * features and a second server for the mTLS endpoint aliases: demo/idp-mtls.ts), permissive
 * redirect URIs on loopback, published secrets.
 *
 * Run directly: `npm run idp` (IDP_PORT, default 9080; IDP_HOST, default 127.0.0.1;
 * IDP_PRIVATE_KEY_JWT_JWKS_URI registers the private_key_jwt client).
 *
 * Endpoints: /auth, /token, /token/introspection, /token/revocation, /me (userinfo), /jwks, /request (PAR),
 * /session/end (RP-initiated logout), /interaction/:uid (sign-in page).
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import Provider from 'oidc-provider';
import type { ClientMetadata, KoaContextWithOIDC } from 'oidc-provider';
import { exportJWK, generateKeyPair, createLocalJWKSet } from 'jose';
import type { JSONWebKeySet } from 'jose';
import { accessTokenUserClaims, findUser, scopeClaims, toAccount } from './idp-accounts.ts';
import { adapterFor, DemoStore } from './idp-adapter.ts';
import { passwordGrantHandler } from './idp-grants.ts';
import { tokenExchangeGrant, tokenExchangeHandler } from './idp-token-exchange.ts';
import { handleInteraction } from './idp-interactions.ts';
import { jwtIntrospection, jwtUserinfo } from './idp-jwt-endpoints.ts';
import { errorPage, loggedOutPage, logoutPage } from './idp-pages.ts';
import { mtlsProviderOptions, mtlsServers, peerCertificate, type IdpMtlsOptions } from './idp-mtls.ts';

export { demoUsers } from './idp-accounts.ts';
export type { ClientMetadata } from 'oidc-provider';

/** Audience of JWT access tokens when the request names none (an RFC 8707 resource indicator). */
export const demoAudience = 'https://api.portcullis.test';

/** Fixed ids and secrets of the demo clients. */
export const demoClients = {
  /** confidential, client_secret_post (basic also accepted), JWT access tokens */
  kong: { client_id: 'kong', client_secret: 'kong-secret' },
  /** confidential, client_secret_basic (post also accepted), opaque access tokens */
  kongBasic: { client_id: 'kong-basic', client_secret: 'kong-basic-secret' },
  /** client_credentials only, JWT access tokens */
  service: { client_id: 'service-client', client_secret: 'service-secret' },
  /** may introspect and revoke tokens issued to any client */
  introspector: { client_id: 'introspector', client_secret: 'introspector-secret' },
  /** client_secret_jwt (HS256 client assertion), JWT access tokens */
  secretJwt: { client_id: 'kong-secret-jwt', client_secret: 'kong-secret-jwt-secret-0123456789abcdef' },
  /** private_key_jwt; only registered when startIdp gets privateKeyJwtJwksUri or privateKeyJwtJwks */
  privateKeyJwt: { client_id: 'kong-private-key-jwt' },
} as const;

export interface StartIdpOptions {
  port?: number;
  /** default 127.0.0.1 */
  host?: string;
  /** seconds, default 300 */
  accessTokenTtl?: number;
  /** seconds, default 300 */
  idTokenTtl?: number;
  /** seconds, default 86400 */
  refreshTokenTtl?: number;
  extraClients?: ClientMetadata[];
  /** client_id → back-channel logout URI (OIDC Back-Channel Logout 1.0 §2.2) */
  backchannelLogoutUris?: Record<string, string>;
  /** JWKS location for the private_key_jwt demo client */
  privateKeyJwtJwksUri?: string;
  /** inline JWKS (public keys) for the private_key_jwt demo client */
  privateKeyJwtJwks?: JSONWebKeySet;
  /** Serve over HTTPS with mutual-TLS features and an mTLS alias server (demo/idp-mtls.ts). */
  mtls?: IdpMtlsOptions;
  /** Pushed authorization requests (RFC 9126, on by default): `required` makes them mandatory. */
  par?: { required?: boolean };
  /** Request objects (JAR, RFC 9101): accepted; `requireSigned` refuses unsigned authorization requests. */
  requestObjects?: { requireSigned?: boolean };
  /** JWT Secured Authorization Response Mode (JARM): `query.jwt`, `form_post.jwt`, `jwt`. */
  jarm?: boolean;
  /**
   * Token exchange (RFC 8693) at the token endpoint for the web demo clients: access tokens of
   * this IdP and of the issuers listed here (issuer → public JWKS) are exchanged.
   */
  tokenExchange?: { trusted?: Record<string, JSONWebKeySet> };
  /**
   * DPoP (RFC 9449, oidc-provider `features.dPoP`, on by default): a token request with a `DPoP`
   * proof gets a DPoP-bound access token (`cnf.jkt`). `requireNonce`: the token endpoint also
   * demands a server nonce (`use_dpop_nonce`). `enabled: false` switches DPoP off.
   */
  dpop?: { enabled?: boolean; requireNonce?: boolean };
}

export interface DemoIdp {
  /** e.g. http://127.0.0.1:PORT, no trailing slash */
  issuer: string;
  port: number;
  /** Requests per endpoint (see {@link endpointName}) plus `token:<grant_type>`. */
  counts(): Record<string, number>;
  resetCounts(): void;
  clients: typeof demoClients;
  /** The public JWKS the IdP signs with (RS256 key first, then ES256). */
  jwks: JSONWebKeySet;
  /**
   * Ends every IdP session of a user and sends back-channel logout tokens to the clients of
   * those sessions that registered a backchannel_logout_uri. Resolves to the number of sessions.
   */
  logoutUser(sub: string): Promise<number>;
  close(): Promise<void>;
  /** the oidc-provider instance, for advanced tests */
  provider: Provider;
  /** With `mtls`: the origin of the server that asks for client certificates (the mTLS aliases). */
  mtlsUrl?: string;
}

const supportedScopes = ['openid', 'offline_access', ...Object.keys(scopeClaims).filter((s) => s !== 'openid')];
const jwtClientIds = new Set(['kong', 'service-client', 'kong-secret-jwt', 'kong-private-key-jwt']);
const loopbackHosts = new Set(['localhost', '127.0.0.1', '[::1]']);
const urnPrefix = 'urn:portcullis-demo:audience:';

/** Stable counter names, by request path. */
export function endpointName(pathname: string): string {
  if (pathname === '/.well-known/openid-configuration') return 'discovery';
  if (pathname === '/jwks') return 'jwks';
  if (pathname === '/token') return 'token';
  if (pathname === '/token/introspection') return 'introspection';
  if (pathname === '/token/revocation') return 'revocation';
  if (pathname === '/request') return 'par';
  if (pathname === '/me') return 'userinfo';
  if (pathname === '/auth' || pathname.startsWith('/auth/')) return 'authorization';
  if (pathname === '/session/end') return 'end_session';
  if (pathname.startsWith('/session/end/')) return `end_session_${pathname.slice('/session/end/'.length)}`;
  if (pathname.startsWith('/interaction/')) return 'interaction';
  if (pathname === '/reg' || pathname.startsWith('/reg/')) return 'registration';
  return 'other';
}

/**
 * `audience` (Kong / Auth0 style) is not an RFC 8707 resource indicator, which must be an
 * absolute URI. Non-URI audiences are carried through oidc-provider inside a URN and restored
 * when the token is minted, so `aud` is exactly what the client asked for.
 */
function audienceToResource(audience: string): string {
  const url = URL.parse(audience);
  return url && !url.href.includes('#') ? audience : urnPrefix + encodeURIComponent(audience);
}
function resourceToAudience(resource: string): string {
  return resource.startsWith(urnPrefix) ? decodeURIComponent(resource.slice(urnPrefix.length)) : resource;
}

/** Dev-only: any http(s) URI on a loopback host is an allowed redirect / post-logout URI. */
function isLoopbackUri(value: string): boolean {
  const url = URL.parse(value);
  return !!url && (url.protocol === 'http:' || url.protocol === 'https:') && loopbackHosts.has(url.hostname);
}

function buildClients(opts: StartIdpOptions): ClientMetadata[] {
  const web = {
    redirect_uris: ['http://127.0.0.1/callback', 'http://localhost/callback'],
    post_logout_redirect_uris: ['http://127.0.0.1/', 'http://localhost/'],
    response_types: ['code'],
    grant_types: ['authorization_code', 'refresh_token', 'password', 'client_credentials', ...(opts.tokenExchange ? [tokenExchangeGrant] : [])],
  };
  const bcl = (id: string) => (opts.backchannelLogoutUris?.[id]
    ? { backchannel_logout_uri: opts.backchannelLogoutUris[id], backchannel_logout_session_required: true }
    : {});
  const clients: ClientMetadata[] = [
    { ...demoClients.kong, ...web, token_endpoint_auth_method: 'client_secret_post', ...bcl('kong') },
    { ...demoClients.kongBasic, ...web, token_endpoint_auth_method: 'client_secret_basic', ...bcl('kong-basic') },
    {
      ...demoClients.service, redirect_uris: [], response_types: [], grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      ...demoClients.introspector, redirect_uris: [], response_types: [], grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      ...demoClients.secretJwt, ...web, token_endpoint_auth_method: 'client_secret_jwt',
      token_endpoint_auth_signing_alg: 'HS256', ...bcl('kong-secret-jwt'),
    },
  ];
  if (opts.privateKeyJwtJwksUri || opts.privateKeyJwtJwks) {
    clients.push({
      ...demoClients.privateKeyJwt, ...web, token_endpoint_auth_method: 'private_key_jwt',
      ...(opts.privateKeyJwtJwksUri ? { jwks_uri: opts.privateKeyJwtJwksUri } : { jwks: opts.privateKeyJwtJwks }),
      ...bcl('kong-private-key-jwt'),
    });
  }
  return [...clients, ...(opts.extraClients ?? [])];
}

async function generateSigningKeys() {
  const rsa = await generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
  const ec = await generateKeyPair('ES256', { extractable: true });
  const stamp = Date.now().toString(36);
  const rsaJwk = { ...await exportJWK(rsa.privateKey), kid: `rsa-${stamp}`, alg: 'RS256', use: 'sig' };
  const ecJwk = { ...await exportJWK(ec.privateKey), kid: `ec-${stamp}`, alg: 'ES256', use: 'sig' };
  const publicJwks: JSONWebKeySet = {
    keys: [
      { ...await exportJWK(rsa.publicKey), kid: rsaJwk.kid, alg: 'RS256', use: 'sig' },
      { ...await exportJWK(ec.publicKey), kid: ecJwk.kid, alg: 'ES256', use: 'sig' },
    ],
  };
  return { privateJwks: { keys: [rsaJwk, ecJwk] }, publicJwks };
}

/**
 * Starts the demo OP on a real socket (port 0 by default) and resolves once it is listening.
 * Discovery is at `issuer + '/.well-known/openid-configuration'` (OIDC Discovery 1.0 §4).
 */
export async function startIdp(opts: StartIdpOptions = {}): Promise<DemoIdp> {
  const host = opts.host ?? '127.0.0.1';
  const accessTokenTtl = opts.accessTokenTtl ?? 300;
  const counters = new Map<string, number>();
  const bump = (name: string) => counters.set(name, (counters.get(name) ?? 0) + 1);

  // The request handler is attached before the socket listens: a request arriving while the
  // provider is still being set up waits for it instead of hanging unanswered.
  let handle: http.RequestListener | null = null;
  const early: [http.IncomingMessage, http.ServerResponse][] = [];
  const listener: http.RequestListener = (req, res) => {
    if (handle !== null) handle(req, res);
    else early.push([req, res]);
  };
  const tlsServers = opts.mtls ? mtlsServers(opts.mtls, listener) : null;
  const server: http.Server = tlsServers?.main ?? http.createServer(listener);
  const listen = (s: http.Server, p: number) => new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(p, host, () => { s.off('error', reject); resolve(); });
  });
  await listen(server, opts.port ?? 0);
  if (tlsServers) await listen(tlsServers.mtls, 0);
  const { port } = server.address() as AddressInfo;
  const origin = (p: number) => `${tlsServers ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${p}`;
  const issuer = origin(port);
  const mtlsUrl = tlsServers ? origin((tlsServers.mtls.address() as AddressInfo).port) : undefined;
  const mtlsOptions = opts.mtls && mtlsUrl ? mtlsProviderOptions(opts.mtls, mtlsUrl) : null;

  const { privateJwks, publicJwks } = await generateSigningKeys();
  const localJwks = createLocalJWKSet(publicJwks);
  const store = new DemoStore();
  const allScopes = supportedScopes.join(' ');

  const resourceServerInfo = (resource: string) => ({
    scope: allScopes,
    audience: resourceToAudience(resource),
    accessTokenTTL: accessTokenTtl,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  });

  /** Resource for a request: explicit `audience`, else the client's default (JWT clients only). */
  const resourceFor = async (ctx: KoaContextWithOIDC, clientId: string): Promise<string | undefined> => {
    const audience = ctx.oidc?.params?.audience ?? ctx.oidc?.body?.audience;
    if (typeof audience === 'string' && audience) return audienceToResource(audience);
    return jwtClientIds.has(clientId) ? demoAudience : undefined;
  };

  // RFC 7662 §4 / RFC 7009 §2.1: a client may introspect or revoke only its own tokens; the
  // dedicated introspector client may handle anyone's.
  const mayUse = (clientId: string, tokenClientId: unknown) =>
    clientId === demoClients.introspector.client_id || tokenClientId === clientId;

  const provider = new Provider(issuer, {
    adapter: adapterFor(store),
    clients: buildClients(opts),
    jwks: privateJwks,
    cookies: { keys: [randomBytes(32).toString('base64url'), randomBytes(32).toString('base64url')] },
    findAccount: async (_ctx: unknown, sub: string) => {
      const user = findUser(sub);
      return user ? toAccount(user) : undefined;
    },
    claims: scopeClaims,
    scopes: supportedScopes,
    extraParams: ['audience'],
    ...mtlsOptions?.top,
    conformIdTokenClaims: false, // release scope claims in the ID token too, as Kong-era IdPs do
    rotateRefreshToken: true,
    issueRefreshToken: async (_ctx: unknown, client: any) => client.grantTypeAllowed('refresh_token'),
    pkce: { required: () => false },
    // Dev-only: oidc-provider's outbound fetch (back-channel logout, client jwks_uri) refuses
    // loopback addresses as an SSRF guard, but every demo RP lives on 127.0.0.1. Dropping its
    // guarded dispatcher keeps the provider's own 2.5 s timeout signal.
    fetch: (url: string, { dispatcher: _guarded, ...init }: RequestInit & { dispatcher?: unknown }) =>
      globalThis.fetch(url, init),
    clientBasedCORS: () => true,
    ttl: {
      AccessToken: accessTokenTtl,
      ClientCredentials: accessTokenTtl,
      IdToken: opts.idTokenTtl ?? 300,
      RefreshToken: opts.refreshTokenTtl ?? 86400,
      AuthorizationCode: 60,
      Interaction: 600,
      Session: 86400,
      Grant: 86400,
    },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    extraTokenClaims: async (_ctx: unknown, token: { accountId?: string }) => {
      const user = token.accountId ? findUser(token.accountId) : undefined;
      if (!user) return undefined;
      const extra: Record<string, unknown> = {};
      for (const claim of accessTokenUserClaims) {
        if (user.claims[claim] !== undefined) extra[claim] = structuredClone(user.claims[claim]);
      }
      return extra;
    },
    features: {
      devInteractions: { enabled: false },
      ...(mtlsOptions ? { mTLS: mtlsOptions.mTLS } : {}),
      dPoP: {
        enabled: opts.dpop?.enabled ?? true,
        ...(opts.dpop?.requireNonce ? { nonceSecret: randomBytes(32), requireNonce: () => true } : {}),
      },
      clientCredentials: { enabled: true },
      userinfo: { enabled: true },
      // Signed answers for clients registered with userinfo_signed_response_alg /
      // introspection_signed_response_alg (OIDC Core §5.3.2, RFC 9701).
      jwtUserinfo: { enabled: true },
      jwtIntrospection: { enabled: true },
      introspection: {
        enabled: true,
        // RFC 7662 §4: only the token's own client, or the dedicated introspector, learns about it.
        allowedPolicy: async (_ctx: unknown, client: any, token: any) => mayUse(client.clientId, token.clientId),
      },
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx: unknown, client: any, token: any) => mayUse(client.clientId, token.clientId),
      },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx: KoaContextWithOIDC, form: string) => { ctx.body = logoutPage(form); },
        postLogoutSuccessSource: async (ctx: KoaContextWithOIDC) => {
          ctx.body = loggedOutPage(ctx.oidc.client?.clientId);
        },
      },
      backchannelLogout: { enabled: true },
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: opts.par?.required ?? false },
      ...(opts.requestObjects ? { requestObjects: { enabled: true, requireSignedRequestObject: opts.requestObjects.requireSigned ?? false } } : {}),
      ...(opts.jarm ? { jwtResponseModes: { enabled: true } } : {}),
      resourceIndicators: {
        enabled: true,
        defaultResource: async (ctx: KoaContextWithOIDC, client: any, oneOf?: string[]) => {
          if (oneOf?.length) return oneOf[0];
          return resourceFor(ctx, client.clientId);
        },
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx: unknown, resource: string) => resourceServerInfo(resource),
      },
    },
    renderError: async (ctx: KoaContextWithOIDC, out: { error: string; error_description?: string }) => {
      ctx.type = 'html';
      ctx.body = errorPage(out.error, out.error_description);
    },
  });
  provider.proxy = false;

  // Dev-only: tests run RPs on random loopback ports, so any loopback URI is accepted as a
  // redirect or post-logout redirect URI. A real OP must compare against registered URIs exactly.
  const clientProto = provider.Client.prototype;
  const exactRedirect = clientProto.redirectUriAllowed;
  const exactPostLogout = clientProto.postLogoutRedirectUriAllowed;
  clientProto.redirectUriAllowed = function (this: unknown, value: string) {
    return isLoopbackUri(value) || exactRedirect.call(this, value);
  };
  clientProto.postLogoutRedirectUriAllowed = function (this: unknown, value: string) {
    return isLoopbackUri(value) || exactPostLogout.call(this, value);
  };

  provider.registerGrantType('password', passwordGrantHandler(provider, {
    scopes: new Set(supportedScopes),
    resourceFor: (ctx) => resourceFor(ctx, ctx.oidc.client.clientId),
    resourceServerInfo,
    ...(mtlsOptions ? { clientCertificate: peerCertificate } : {}),
  }), ['username', 'password', 'scope', 'audience']);

  if (opts.tokenExchange) {
    provider.registerGrantType(tokenExchangeGrant, tokenExchangeHandler(provider, {
      trusted: new Map([[issuer, publicJwks], ...Object.entries(opts.tokenExchange.trusted ?? {})]),
      scopes: new Set(supportedScopes),
      resourceFor: (audience) => (audience ? audienceToResource(audience) : demoAudience),
      resourceServerInfo,
    }), ['subject_token', 'subject_token_type', 'requested_token_type', 'actor_token', 'actor_token_type', 'scope', 'audience', 'resource']);
  }

  const jwtDeps = { issuer, jwks: localJwks, mayIntrospect: mayUse };

  provider.use(async (ctx: KoaContextWithOIDC, next: () => Promise<void>) => {
    if (ctx.path === '/me' && (await jwtUserinfo(jwtDeps, ctx))) return;
    try {
      await next();
      if (ctx.path === '/token/introspection') await jwtIntrospection(jwtDeps, ctx);
    } finally {
      if (ctx.path === '/token') {
        const grantType = ctx.oidc?.params?.grant_type ?? ctx.oidc?.body?.grant_type;
        if (typeof grantType === 'string') bump(`token:${grantType}`);
      }
    }
  });

  const callback = provider.callback();
  handle = (req, res) => {
    const pathname = URL.parse(req.url ?? '/', issuer)?.pathname ?? '/';
    bump(endpointName(pathname));
    if (pathname.startsWith('/interaction/')) {
      handleInteraction(provider, req, res, pathname).catch((err: unknown) => {
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'text/html; charset=utf-8' });
          res.end(errorPage('server_error', err instanceof Error ? err.message : undefined));
        } else {
          res.destroy();
        }
      });
      return;
    }
    callback(req, res);
  };
  for (const [req, res] of early.splice(0)) handle(req, res);

  async function logoutUser(sub: string): Promise<number> {
    let ended = 0;
    for (const [id, session] of [...store.values('Session')]) {
      if (session.accountId !== sub) continue;
      ended += 1;
      const authorizations = (session.authorizations ?? {}) as Record<string, { sid?: string; grantId?: string }>;
      for (const [clientId, auth] of Object.entries(authorizations)) {
        const client = await provider.Client.find(clientId);
        if (auth.grantId) {
          store.revokeGrant(auth.grantId);
          store.delete(`Grant:${auth.grantId}`);
        }
        if (client?.backchannelLogoutUri) {
          await client.backchannelLogout(sub, auth.sid).catch(() => undefined); // best effort, as at the IdP's own logout
        }
      }
      store.delete(`Session:${id}`);
    }
    return ended;
  }

  return {
    issuer,
    port,
    counts: () => Object.fromEntries(counters),
    resetCounts: () => counters.clear(),
    clients: demoClients,
    jwks: publicJwks,
    logoutUser,
    provider,
    ...(mtlsUrl ? { mtlsUrl } : {}),
    close: () => new Promise<void>((resolve) => {
      store.clear();
      if (tlsServers) {
        tlsServers.mtls.close();
        tlsServers.mtls.closeAllConnections();
      }
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const idp = await startIdp({
    port: Number(process.env.IDP_PORT ?? 9080),
    host: process.env.IDP_HOST,
    privateKeyJwtJwksUri: process.env.IDP_PRIVATE_KEY_JWT_JWKS_URI,
  });
  console.log(`Demo OpenID Provider: ${idp.issuer}`);
  console.log(`Discovery: ${idp.issuer}/.well-known/openid-configuration`);
  console.log('Clients (id / secret):');
  for (const c of Object.values(idp.clients)) {
    const secret = 'client_secret' in c ? c.client_secret
      : process.env.IDP_PRIVATE_KEY_JWT_JWKS_URI ? '(private_key_jwt)' : '(not registered: set IDP_PRIVATE_KEY_JWT_JWKS_URI)';
    console.log(`  ${c.client_id} / ${secret}`);
  }
  console.log('Users (username / password): alex / doe, jane / doe2, nogroups / nogroups-pass');
  const stop = () => { idp.close().then(() => process.exit(0), () => process.exit(1)); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
