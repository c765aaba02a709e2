/**
 * Glue between the step table and the browser flows (./browser): fills the `session` and
 * `authorization_code` slots, saves a session after other methods, and gives the browser flows
 * the clients and client selection they need. Built only when `session` or `authorization_code`
 * is among `auth_methods`.
 */
import { decodeJwt } from 'jose';
import type { PluginDeps, RequestContext } from '../../sdk.ts';
import { createBrowserFlows } from './browser/index.ts';
import type { BrowserFlows, SessionData } from './browser/index.ts';
import type { OidcConfig } from './schema.ts';
import type { IssuerCache } from './issuer.ts';
import type { Clients } from './clients.ts';
import { perClient } from './clients.ts';
import type { Claims, Outcome, RequestState, Runtime } from './runtime.ts';
import type { BrowserSlots, StepResult } from './pipeline.ts';
import { looksLikeJwt } from './steps/verify-token.ts';
import { TailMemo } from './caches.ts';

/**
 * The client index named by `client_arg` in a header or the query (by id or 1-based index);
 * the first client otherwise. Synchronous: the browser flows never read the body for it.
 */
export function selectClientIndex(cfg: OidcConfig, ctx: RequestContext): number {
  const ids = cfg.client_id ?? [];
  if (ids.length <= 1) return 0;
  const wanted = ctx.request.header(cfg.client_arg) ?? ctx.request.query.get(cfg.client_arg);
  if (!wanted) return 0;
  const byId = ids.indexOf(wanted);
  if (byId >= 0) return byId;
  const n = Number(wanted);
  return Number.isInteger(n) && n >= 1 && n <= ids.length ? n - 1 : 0;
}

export function buildBrowser(cfg: OidcConfig, deps: PluginDeps, issuer: IssuerCache, clients: Clients): BrowserFlows {
  return createBrowserFlows(cfg, {
    async getClient(index) {
      const ids = cfg.client_id ?? [];
      const meta = await issuer.metadata();
      const i = ids[index] !== undefined ? index : 0;
      return clients.configuration(meta, { index: i, id: ids[i] ?? 'portcullis', secret: perClient(cfg.client_secret, i) }, 'token');
    },
    selectClient: (ctx) => selectClientIndex(cfg, ctx),
    sharedKv: deps.sharedKv,
    workers: deps.workers,
    database: deps.database,
    instanceId: deps.entity.id,
    log: deps.log,
    metrics: deps.metrics?.oidc,
    now: deps.now,
  });
}

/** The claims of a JWT access token, decoded without verification (null when not a JWT). */
function decodeAccessClaims(token: string): Claims | null {
  if (!looksLikeJwt(token)) return null;
  try {
    return decodeJwt(token) as Claims;
  } catch {
    return null;
  }
}

/** Decoded access-token claims remembered per plugin instance, bounded (LRU). */
const decodedEntries = 1000;

/**
 * An Outcome from a session: the tokens were verified when the session was made. `decode` turns
 * the access token into its claims (a memoized decoder on the hot path).
 */
export function sessionOutcome(method: Outcome['method'], session: SessionData, decode: (token: string) => Claims | null = decodeAccessClaims): Outcome {
  const at = session.tokens.access_token;
  const accessClaims = at ? decode(at) : null;
  return {
    method,
    tokens: { ...session.tokens },
    accessClaims,
    idClaims: (session.claims.id_token as Claims | undefined) ?? null,
    introspection: null,
    userinfo: (session.claims.userinfo as Claims | undefined) ?? null,
    used: [],
  };
}

/** Per-request memo of the loaded session (the logout check and the `session` slot share it). */
export const sessionKey = 'openid-connect:loaded-session';

export function browserSlots(browser: BrowserFlows): BrowserSlots {
  // A session brings the same access token on every request: decoding it each time (base64 and
  // JSON of a JWT) was a large share of a session request's cost (bench/RESULTS.md). The claims
  // object is shared between requests, as the bearer path's verified-token cache already does.
  // Keyed by the token's tail and compared in full: a Map key of the whole token is hashed in full.
  const decoded = new TailMemo<Claims | null>(decodedEntries);
  const decode = (token: string): Claims | null => {
    let claims = decoded.get(token);
    if (claims === undefined) {
      claims = decodeAccessClaims(token);
      decoded.set(token, claims);
    }
    return claims;
  };
  return {
    async session(_rt: Runtime, rs: RequestState): Promise<StepResult> {
      const session = rs.ctx.state.get(sessionKey) as SessionData | null | undefined;
      return session ? sessionOutcome('session', session, decode) : null;
    },
    async authorization_code(_rt: Runtime, rs: RequestState): Promise<StepResult> {
      const result = await browser.authorizationCode(rs.ctx);
      if (result.kind === 'reply') return { reply: result.reply };
      return sessionOutcome('authorization_code', result.session, decode);
    },
  };
}

/** After another method succeeded: start a session (unless `disable_session` lists the method). */
export async function saveSessionAfter(cfg: OidcConfig, browser: BrowserFlows, ctx: RequestContext, outcome: Outcome, clientIndex: number): Promise<void> {
  if (outcome.method === 'session' || outcome.method === 'authorization_code') return;
  if (!cfg.auth_methods.includes('session')) return;
  if ((cfg.disable_session ?? []).includes(outcome.method)) return;
  if (!outcome.tokens.access_token) return;
  const id = outcome.idClaims ?? outcome.accessClaims;
  const expiresIn = outcome.tokens.expires_in;
  const exp = typeof outcome.accessClaims?.exp === 'number' ? outcome.accessClaims.exp : typeof expiresIn === 'number' ? Math.floor(ctx.now() / 1000) + expiresIn : undefined;
  const session = browser.newSession({
    method: outcome.method,
    clientIndex,
    tokens: {
      access_token: outcome.tokens.access_token,
      ...(outcome.tokens.id_token ? { id_token: outcome.tokens.id_token } : {}),
      ...(outcome.tokens.refresh_token ? { refresh_token: outcome.tokens.refresh_token } : {}),
      ...(outcome.tokens.token_type ? { token_type: outcome.tokens.token_type } : {}),
      ...(exp !== undefined ? { expires_at: exp } : {}),
    },
    claims: outcome.idClaims ? { id_token: outcome.idClaims } : {},
    subject: typeof id?.sub === 'string' ? id.sub : null,
    issuer: typeof id?.iss === 'string' ? id.iss : null,
  });
  await browser.saveSession(ctx, session);
}
