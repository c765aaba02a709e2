/**
 * OAuth 2.0 Token Exchange (RFC 8693) for the demo IdP: `grant_type=
 * urn:ietf:params:oauth:grant-type:token-exchange` with an access token as the subject token.
 * The subject token must be a JWT signed by this IdP or by one of the trusted issuers, unexpired;
 * the answer is a new JWT access token of this IdP for the requested audience (RFC 8693 §2.2.1).
 * Registered only when startIdp gets `tokenExchange`.
 */
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { errors } from 'oidc-provider';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import type { JSONWebKeySet } from 'jose';

export const tokenExchangeGrant = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const accessTokenType = 'urn:ietf:params:oauth:token-type:access_token';

export interface TokenExchangeDeps {
  /** Issuer → its public keys: whose access tokens may be exchanged (this IdP's own always may). */
  trusted: ReadonlyMap<string, JSONWebKeySet>;
  scopes: ReadonlySet<string>;
  /** Resource indicator for an `audience` value (or the default when none is asked for). */
  resourceFor(audience: string | undefined): string;
  resourceServerInfo(resource: string): Record<string, unknown>;
}

export function tokenExchangeHandler(provider: Provider, deps: TokenExchangeDeps) {
  const keySets = new Map([...deps.trusted].map(([iss, jwks]) => [iss, createLocalJWKSet(jwks)] as const));
  return async function tokenExchange(ctx: KoaContextWithOIDC): Promise<void> {
    const { client, params } = ctx.oidc;
    const subjectToken = params.subject_token;
    if (typeof subjectToken !== 'string' || !subjectToken) throw new errors.InvalidRequest('subject_token is required');
    if (params.subject_token_type !== accessTokenType) throw new errors.InvalidRequest('unsupported subject_token_type');
    let iss: unknown;
    try {
      iss = decodeJwt(subjectToken).iss;
    } catch {
      throw new errors.InvalidGrant('subject_token is not a JWT');
    }
    const keys = typeof iss === 'string' ? keySets.get(iss) : undefined;
    if (!keys) throw new errors.InvalidGrant('subject_token issuer not trusted');
    let sub: string;
    try {
      const { payload } = await jwtVerify(subjectToken, keys, { issuer: iss as string });
      if (typeof payload.sub !== 'string') throw new Error('no sub');
      sub = payload.sub;
    } catch {
      throw new errors.InvalidGrant('subject_token invalid or expired');
    }
    const requested = typeof params.scope === 'string' && params.scope ? params.scope.split(' ') : [];
    const scope = requested.filter((s: string) => deps.scopes.has(s)).join(' ');
    const audience = typeof params.audience === 'string' && params.audience ? params.audience : undefined;
    const resource = deps.resourceFor(audience);

    const at = new provider.AccessToken({ accountId: sub, client, gty: 'token-exchange', scope });
    at.resourceServer = new provider.ResourceServer(resource, deps.resourceServerInfo(resource));
    ctx.oidc.entity('AccessToken', at);
    const accessToken: string = await at.save();
    ctx.body = {
      access_token: accessToken,
      issued_token_type: accessTokenType,
      token_type: 'Bearer',
      expires_in: at.expiration,
      ...(scope ? { scope } : {}),
    };
  };
}
