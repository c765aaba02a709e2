/**
 * Logout (reference §2.6, §4.10): session destruction, optional token revocation (RFC 7009) and
 * RP-initiated logout at the IdP (OpenID Connect RP-Initiated Logout 1.0 §2); and, beyond Kong,
 * OpenID Connect Back-Channel Logout 1.0, where the IdP ends sessions server to server.
 */
import * as oidc from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import type { Reply, RequestContext } from '../../../sdk.ts';
import type { KeyValueStore } from '../../../../storage/ports.ts';
import { perClient, type ResolvedConfig } from './config.ts';
import { digest } from './seal.ts';
import type { SessionData, SessionStore } from './session.ts';
import type { OidcMetrics } from '../../../../observability/oidc-metrics.ts';

export interface LogoutDeps {
  cfg: ResolvedConfig;
  store: SessionStore;
  kv: KeyValueStore;
  getClient(index: number, purpose?: 'revocation'): Promise<oidc.Configuration>;
  selectClient(ctx: RequestContext): number;
  metrics?: OidcMetrics;
}

const backchannelEvent = 'http://schemas.openid.net/event/backchannel-logout';

export class Logout {
  readonly #d: LogoutDeps;
  /** Remote JWKS per jwks_uri; jose caches keys and refetches on an unknown kid (with a cooldown). */
  readonly #jwks = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

  constructor(deps: LogoutDeps) {
    this.#d = deps;
  }

  /** Whether this request asks for a logout (method in logout_methods and any configured trigger). */
  async matches(ctx: RequestContext): Promise<boolean> {
    const known = this.matchesWithoutBody(ctx);
    if (known !== undefined) return known;
    const form = await ctx.request.form();
    return form?.has(this.#d.cfg.logoutPostArg!) ?? false;
  }

  /** `matches` when the request body need not be read; undefined when only `logout_post_arg` in the body can tell. */
  matchesWithoutBody(ctx: RequestContext): boolean | undefined {
    const { cfg } = this.#d;
    if (!cfg.logoutMethods.includes(ctx.request.method.toUpperCase())) return false;
    if (cfg.logoutUriSuffix && normalizePath(ctx.request.path).endsWith(cfg.logoutUriSuffix)) return true;
    if (cfg.logoutQueryArg && ctx.request.query.has(cfg.logoutQueryArg)) return true;
    if (cfg.logoutPostArg && ctx.request.method !== 'GET') return undefined;
    return false;
  }

  /** Whether the request is for the back-channel logout endpoint (`backchannel` answers it). */
  isBackchannel(ctx: RequestContext): boolean {
    const suffix = this.#d.cfg.backchannelLogoutUriSuffix;
    return !!suffix && normalizePath(ctx.request.path).endsWith(suffix);
  }

  /** The logout reply, or null when the request asks for none (synchronous when the body need not be read). */
  logout(ctx: RequestContext, session: SessionData | null): Reply | null | Promise<Reply | null> {
    const known = this.matchesWithoutBody(ctx);
    if (known === false) return null;
    return this.#logout(ctx, session, known);
  }

  async #logout(ctx: RequestContext, session: SessionData | null, known: boolean | undefined): Promise<Reply | null> {
    if (known === undefined && !(await this.matches(ctx))) return null;
    const { cfg } = this.#d;
    const clientIndex = session?.clientIndex ?? this.#d.selectClient(ctx);
    await this.#d.store.destroy(ctx, session);
    const client = await this.#d.getClient(clientIndex);
    if (cfg.logoutRevoke && session) {
      // Revocation failures do not stop the logout: the local session is gone either way.
      const revoke = async (token: string | undefined, hint: string): Promise<void> => {
        if (!token) return;
        try {
          await oidc.tokenRevocation(await this.#d.getClient(clientIndex, 'revocation'), token, { token_type_hint: hint });
        } catch (err) {
          ctx.log.warn({ hint, err: err instanceof Error ? err.message : String(err) }, 'openid-connect: token revocation failed');
        }
      };
      if (cfg.logoutRevokeAccessToken) await revoke(session.tokens.access_token, 'access_token');
      if (cfg.logoutRevokeRefreshToken) await revoke(session.tokens.refresh_token, 'refresh_token');
    }
    const postLogout = perClient(cfg.logoutRedirectUri, clientIndex);
    const endSession = cfg.endSessionEndpoint ?? client.serverMetadata().end_session_endpoint;
    const headers = { 'cache-control': 'no-store' };
    this.#d.metrics?.logout(endSession ? 'rp_initiated' : 'local');
    if (endSession) {
      // client_id lets the IdP accept the logout even when our session was already gone (Kong 3.10 fix).
      const params: Record<string, string> = { client_id: client.clientMetadata().client_id };
      if (session?.tokens.id_token) params.id_token_hint = session.tokens.id_token;
      if (postLogout) params.post_logout_redirect_uri = postLogout;
      let url: URL;
      if (cfg.endSessionEndpoint) {
        url = new URL(cfg.endSessionEndpoint);
        for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
      } else {
        url = oidc.buildEndSessionUrl(client, params);
      }
      return ctx.reply(302, undefined, { ...headers, location: url.href });
    }
    if (postLogout) return ctx.reply(302, undefined, { ...headers, location: postLogout });
    return ctx.reply(204, undefined, headers);
  }

  /**
   * Back-Channel Logout endpoint (OpenID Connect Back-Channel Logout 1.0 §2.5–2.8): a POST with a
   * `logout_token` that is a JWT signed by the IdP. Ends every session of its `sid` (or `sub`).
   * Returns null when the request is not for this endpoint.
   */
  backchannel(ctx: RequestContext): Reply | null | Promise<Reply> {
    return this.isBackchannel(ctx) ? this.#backchannel(ctx) : null;
  }

  async #backchannel(ctx: RequestContext): Promise<Reply> {
    const { cfg } = this.#d;
    const headers = { 'cache-control': 'no-store' };
    const bad = (reason: string): Reply => {
      ctx.log.info({ reason }, 'openid-connect: back-channel logout rejected');
      return ctx.reply(400, { error: 'invalid_request', error_description: cfg.displayErrors ? reason : 'invalid logout token' }, headers);
    };
    if (ctx.request.method !== 'POST') return ctx.reply(405, { message: 'Method not allowed' }, { ...headers, allow: 'POST' });
    const form = await ctx.request.form();
    const token = form?.get('logout_token');
    if (!token) return bad('logout_token missing');
    // Several clients may be configured; the token's aud must name one of them.
    const client = await this.#d.getClient(0);
    const meta = client.serverMetadata();
    if (!meta.jwks_uri) return bad('the IdP publishes no jwks_uri');
    const audiences = cfg.clientIds.length > 0 ? [...cfg.clientIds] : [client.clientMetadata().client_id];
    let payload: Record<string, unknown>;
    try {
      const result = await jwtVerify(token, this.#keys(meta.jwks_uri), {
        issuer: meta.issuer,
        audience: audiences,
        requiredClaims: ['iat', 'jti'],
        maxTokenAge: '10m',
        clockTolerance: 60,
        algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'],
      });
      payload = result.payload as Record<string, unknown>;
      // §2.4: "logout+jwt" is recommended; when a typ is present it must be that one.
      const typ = result.protectedHeader.typ;
      if (typ !== undefined && typ.toLowerCase() !== 'logout+jwt' && typ.toLowerCase() !== 'application/logout+jwt') return bad(`unexpected typ ${typ}`);
    } catch (err) {
      return bad(`logout token verification failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    // §2.6 steps 4–7
    const events = payload.events;
    if (!events || typeof events !== 'object' || Array.isArray(events) || typeof (events as Record<string, unknown>)[backchannelEvent] !== 'object') {
      return bad('events claim lacks the back-channel logout event');
    }
    if ('nonce' in payload) return bad('nonce claim not allowed in a logout token');
    const sid = typeof payload.sid === 'string' ? payload.sid : null;
    const sub = typeof payload.sub === 'string' ? payload.sub : null;
    if (!sid && !sub) return bad('logout token has neither sid nor sub');
    // §2.6 step 8 (optional): reject a replayed jti
    if (!(await this.#d.kv.add(`oidc:bcl:jti:${digest(`${meta.issuer}\n${String(payload.jti)}`)}`, '1', 15 * 60_000))) {
      return bad('logout token already used');
    }
    // With a sid only that IdP session ends; a sub-only token ends all of the subject's sessions.
    await this.#d.store.markLoggedOut(meta.issuer, sid, sid ? null : sub);
    this.#d.metrics?.logout('back_channel');
    return ctx.reply(200, '', headers);
  }

  #keys(uri: string): ReturnType<typeof createRemoteJWKSet> {
    let set = this.#jwks.get(uri);
    if (!set) {
      set = createRemoteJWKSet(new URL(uri), { timeoutDuration: 5000, cooldownDuration: 30_000 });
      this.#jwks.set(uri, set);
    }
    return set;
  }
}

/** Collapse duplicate slashes and drop a trailing one, so `/app//logout/` still ends with `/logout`. */
function normalizePath(path: string): string {
  let p = path.replace(/\/{2,}/g, '/');
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  try {
    return decodeURI(p);
  } catch {
    return p;
  }
}
