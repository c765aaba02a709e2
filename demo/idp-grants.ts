/**
 * The resource-owner password grant (RFC 6749 §4.3) for the demo IdP. oidc-provider does not
 * ship it (OAuth 2.1 drops it) but Kong's plugin supports it, so the demo registers it with
 * `provider.registerGrantType('password', ...)`.
 */
import type { X509Certificate } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { errors } from 'oidc-provider';
import { authenticate, toAccount } from './idp-accounts.ts';

export interface PasswordGrantDeps {
  /** Supported scopes; anything else requested is dropped (RFC 6749 §3.3 lets the AS narrow). */
  scopes: ReadonlySet<string>;
  /** Resource indicator for this request, or undefined for an opaque, resource-less token. */
  resourceFor(ctx: KoaContextWithOIDC): Promise<string | undefined>;
  /** Resource server description for a resource indicator (as features.resourceIndicators). */
  resourceServerInfo(resource: string): Record<string, unknown>;
  /** With mTLS (demo/idp-mtls.ts): the request's client certificate, to bind tokens to (RFC 8705 §3). */
  clientCertificate?(ctx: KoaContextWithOIDC): X509Certificate | undefined;
}

/**
 * Builds the token-endpoint handler. It issues an access token (JWT when a resource applies),
 * a refresh token when the client may refresh, and an ID token when `openid` was asked for.
 */
export function passwordGrantHandler(provider: Provider, deps: PasswordGrantDeps) {
  return async function passwordGrant(ctx: KoaContextWithOIDC): Promise<void> {
    const { client, params } = ctx.oidc;
    if (!params.username || !params.password) {
      throw new errors.InvalidRequest('username and password are required');
    }
    const user = authenticate(params.username, params.password);
    if (!user) throw new errors.InvalidGrant('invalid resource owner credentials');
    const account = toAccount(user);

    const requested = typeof params.scope === 'string' && params.scope ? params.scope.split(' ') : ['openid'];
    const scope = requested.filter((s: string) => deps.scopes.has(s)).join(' ');

    const grant = new provider.Grant({ accountId: account.accountId, clientId: client.clientId });
    grant.addOIDCScope(scope);
    const resource = await deps.resourceFor(ctx);
    if (resource) grant.addResourceScope(resource, scope);
    const grantId = await grant.save();

    ctx.oidc.entity('Account', account);
    ctx.oidc.entity('Grant', grant);

    const at = new provider.AccessToken({
      accountId: account.accountId, client, grantId, gty: 'password', scope,
    });
    if (resource) at.resourceServer = new provider.ResourceServer(resource, deps.resourceServerInfo(resource));
    if (client.tlsClientCertificateBoundAccessTokens && deps.clientCertificate) {
      const cert = deps.clientCertificate(ctx);
      if (!cert) throw new errors.InvalidGrant('mutual TLS client certificate not provided');
      at.setThumbprint('x5t', cert);
    }
    ctx.oidc.entity('AccessToken', at);
    const accessToken: string = await at.save();

    let refreshToken: string | undefined;
    if (client.grantTypeAllowed('refresh_token')) {
      const rt = new provider.RefreshToken({
        accountId: account.accountId, client, grantId, gty: 'password', scope, rotations: 0,
        resource, authTime: Math.floor(Date.now() / 1000), amr: ['pwd'],
      });
      ctx.oidc.entity('RefreshToken', rt);
      refreshToken = await rt.save();
    }

    let idToken: string | undefined;
    if (scope.split(' ').includes('openid')) {
      const token = new provider.IdToken(
        { ...await account.claims(), auth_time: Math.floor(Date.now() / 1000), amr: ['pwd'] },
        { ctx },
      );
      token.scope = scope;
      token.set('at_hash', accessToken);
      idToken = await token.issue({ use: 'idtoken' });
    }

    ctx.body = {
      access_token: accessToken,
      token_type: at.tokenType ?? 'Bearer',
      expires_in: at.expiration,
      ...(refreshToken ? { refresh_token: refreshToken } : {}),
      ...(idToken ? { id_token: idToken } : {}),
      scope: at.scope ?? scope,
    };
  };
}
