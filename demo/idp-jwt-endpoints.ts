/**
 * Userinfo and introspection for the demo IdP's own JWT access tokens.
 *
 * oidc-provider deliberately refuses structured (JWT) access tokens at userinfo (they carry an
 * audience other than the OP) and at introspection/revocation (unsupported_token_type). Kong's
 * plugin can still send them there (userinfo lookups, `introspect_jwt_tokens`), so the demo
 * answers for JWTs it signed itself. Revocation of JWTs stays refused (RFC 7009 §2.2.1 allows it).
 */
import { jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { findUser, scopeClaims } from './idp-accounts.ts';

export interface JwtEndpointDeps {
  issuer: string;
  jwks: JWTVerifyGetKey;
  /** RFC 7662 §4: may this client learn about a token issued to `tokenClientId`? */
  mayIntrospect(clientId: string, tokenClientId: unknown): boolean;
}

const jwtShape = /^[\w-]+\.[\w-]+\.[\w-]+$/;

async function verifyAccessToken(deps: JwtEndpointDeps, token: string): Promise<JWTPayload> {
  const { payload } = await jwtVerify(token, deps.jwks, { issuer: deps.issuer, typ: 'at+jwt' });
  return payload;
}

/**
 * Userinfo (OIDC Core §5.3) for a Bearer JWT access token: the claims of the token's scopes.
 * Returns false when the request is not for a JWT, leaving it to oidc-provider.
 */
export async function jwtUserinfo(deps: JwtEndpointDeps, ctx: KoaContextWithOIDC): Promise<boolean> {
  const match = /^Bearer (\S+)$/i.exec(ctx.get('authorization') ?? '');
  if (!match || !jwtShape.test(match[1]) || (ctx.method !== 'GET' && ctx.method !== 'POST')) return false;
  ctx.set('cache-control', 'no-store');
  try {
    const payload = await verifyAccessToken(deps, match[1]);
    const user = typeof payload.sub === 'string' ? findUser(payload.sub) : undefined;
    if (!user) throw new Error('no such user');
    const scopes = new Set(String(payload.scope ?? '').split(' '));
    const body: Record<string, unknown> = { sub: user.sub };
    for (const [scope, claims] of Object.entries(scopeClaims)) {
      if (!scopes.has(scope)) continue;
      for (const claim of claims) {
        if (user.claims[claim] !== undefined) body[claim] = user.claims[claim];
      }
    }
    ctx.status = 200;
    ctx.body = body;
  } catch {
    ctx.status = 401;
    ctx.set('www-authenticate', 'Bearer realm="demo", error="invalid_token"');
    ctx.body = { error: 'invalid_token', error_description: 'invalid access token' };
  }
  return true;
}

/**
 * Called after oidc-provider answered an introspection request. When it refused the token only
 * because it is a JWT (the caller is already authenticated by then), answer RFC 7662 §2.2 style.
 */
export async function jwtIntrospection(deps: JwtEndpointDeps, ctx: KoaContextWithOIDC): Promise<void> {
  const token = ctx.oidc?.params?.token;
  const clientId = ctx.oidc?.client?.clientId;
  if (ctx.status !== 400 || ctx.body?.error !== 'unsupported_token_type') return;
  if (typeof token !== 'string' || !jwtShape.test(token) || typeof clientId !== 'string') return;
  ctx.status = 200;
  ctx.set('cache-control', 'no-store');
  try {
    const payload = await verifyAccessToken(deps, token);
    ctx.body = deps.mayIntrospect(clientId, payload.client_id)
      ? { ...payload, active: true, token_type: 'Bearer' }
      : { active: false };
  } catch {
    ctx.body = { active: false };
  }
}
