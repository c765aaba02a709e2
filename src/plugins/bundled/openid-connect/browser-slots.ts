/**
 * Glue between the access pipeline (access.ts) and the browser flows (./browser): the `session`
 * and `authorization_code` credential methods, the session saved after other methods, and the
 * clients and client selection the browser flows need. The browser flows are built only when
 * `session` or `authorization_code` is among `auth_methods`.
 */
import { decodeJwt } from 'jose';
import type { PluginDeps, Reply, RequestContext } from '../../sdk.ts';
import { createBrowserFlows } from './browser/index.ts';
import type { BrowserFlows, SessionData } from './browser/index.ts';
import type { OidcConfig } from './schema.ts';
import type { IssuerCache } from './issuer.ts';
import type { Clients, OidcClient } from './clients.ts';
import { configuredClients, perClient, selectClient } from './clients.ts';
import type { Claims, HeaderWrite, Outcome, RequestState, Runtime, Sync } from './runtime.ts';
import { looksLikeJwt, userInfoFor, verifyAccessJwt } from './steps/verify-token.ts';
import { replayHook, tokenPostArgs, tokenRequestHeaders } from './steps/token-request.ts';
import { BodyFields } from './body-fields.ts';
import { isGatewayError } from '../../../errors.ts';
import { TailMemo } from './caches.ts';

/**
 * The browser flows of one plugin instance. `runtime` answers the instance's Runtime (made after
 * the browser flows, which it holds): the code flow's user info goes through its caches.
 */
export function buildBrowser(cfg: OidcConfig, deps: PluginDeps, issuer: IssuerCache, clients: Clients, runtime: () => Runtime): BrowserFlows {
  const list = configuredClients(cfg);
  return createBrowserFlows(cfg, {
    async getClient(index, purpose = 'token') {
      const meta = await issuer.metadata();
      // Revocation (RFC 7009): its own client authentication method and token parameter name.
      if (purpose === 'revocation') return clients.configuration(meta, browserClient(cfg, index), 'revocation', { tokenParam: cfg.revocation_token_param_name });
      return clients.configuration(meta, browserClient(cfg, index), purpose);
    },
    // The code exchange and a session's refresh take the token request options as the API grants do (steps/token-request.ts).
    async tokenCall(ctx, index, grant) {
      const meta = await issuer.metadata();
      const replay: HeaderWrite[] = [];
      const params = await tokenPostArgs(cfg, ctx.request, new BodyFields(ctx.request));
      const client = await clients.configuration(meta, browserClient(cfg, index), 'token', { headers: tokenRequestHeaders(cfg, ctx.request), onResponse: replayHook(cfg, grant, replay) });
      return { client, params, replay };
    },
    userinfo: (ctx, index, token) => userInfoFor(runtime(), ctx, browserClient(cfg, index), token),
    requestObjectKey: (index) => clients.signingKey(browserClient(cfg, index)),
    // The browser flows never read the body for it.
    selectClient: (ctx) => (selectClient(cfg, list, ctx.request, false) as OidcClient | null)?.index ?? 0,
    sharedKv: deps.sharedKv,
    workers: deps.workers,
    database: deps.database,
    instanceId: deps.entity.id,
    log: deps.log,
    metrics: deps.metrics?.oidc,
    now: deps.now,
  });
}

/** The configured client at `index` (the first one when there is no such entry). */
function browserClient(cfg: OidcConfig, index: number): OidcClient {
  const ids = cfg.client_id ?? [];
  const i = ids[index] !== undefined ? index : 0;
  return { index: i, id: ids[i] ?? 'portcullis', secret: perClient(cfg.client_secret, i) };
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
function sessionOutcome(method: Outcome['method'], session: SessionData, decode: (token: string) => Claims | null = decodeAccessClaims): Outcome {
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
    ...(session.claims.userinfo_jwt ? { userinfoJwt: session.claims.userinfo_jwt } : {}),
  };
}

// A session brings the same access token on every request: decoding it each time (base64 and
// JSON of a JWT) was a large share of a session request's cost (bench/RESULTS.md). The claims
// object is shared between requests, as the bearer step's verified-token cache already does.
// Keyed by the token's tail and compared in full: a Map key of the whole token is hashed in full.
const decoded = new TailMemo<Claims | null>(decodedEntries);
function decode(token: string): Claims | null {
  let claims = decoded.get(token);
  if (claims === undefined) {
    claims = decodeAccessClaims(token);
    decoded.set(token, claims);
  }
  return claims;
}

/** The Outcome of an opened session (frozen, shared by its requests), made once. */
const sessionOutcomes = new WeakMap<SessionData, Outcome>();

/** `session`: the session the pipeline loaded for this request (steady state: no Promise). */
export function sessionStep(rt: Runtime, rs: RequestState): Sync<Outcome | null> {
  const session = rs.session;
  if (session === null) return null;
  if (rt.cfg.reverify) return reverified(rt, rs, session);
  return outcomeOf(session);
}

function outcomeOf(session: SessionData): Outcome {
  let o = sessionOutcomes.get(session);
  if (o === undefined) {
    o = sessionOutcome('session', session, decode);
    if (Object.isFrozen(session)) sessionOutcomes.set(session, o);
  }
  return o;
}

/**
 * `reverify`: the tokens in the session are verified again on every request instead of being
 * trusted because the session opened: a JWT access token as a bearer token (signature, issuer,
 * expiry; `verifyAccessJwt`), the ID token's signature and issuer (its expiry is not checked: a
 * session outlives its ID token, as without `reverify`). Tokens that fail end the session
 * (destroyed, cookies expired) and the search goes on as without one; an IdP that cannot be
 * reached for its keys is an error, not a reason to end the session.
 */
async function reverified(rt: Runtime, rs: RequestState, session: SessionData): Promise<Outcome | null> {
  try {
    const at = session.tokens.access_token;
    if (at && looksLikeJwt(at)) await verifyAccessJwt(rt, rs, at);
    const idt = session.tokens.id_token;
    if (idt) await rt.issuer.verifyJwt(idt, { issuers: rt.cfg.issuers_allowed, leewaySec: rt.cfg.leeway, verifyClaims: false });
  } catch (err) {
    if (!(isGatewayError(err) && err.status === 401)) throw err;
    rs.ctx.log.info({ reason: err.message }, 'openid-connect: session tokens failed reverification (reverify); session ended');
    await rt.browser!.destroySession(rs.ctx, session);
    rs.session = null;
    return null;
  }
  return outcomeOf(session);
}

/** `authorization_code`: finish a callback (a new session), or start a sign-in (a reply). */
export async function authorizationCodeStep(rt: Runtime, rs: RequestState): Promise<Outcome | { reply: Reply }> {
  const result = await rt.browser!.authorizationCode(rs.ctx);
  if (result.kind === 'reply') return { reply: result.reply };
  rs.session = result.session;
  return sessionOutcome('authorization_code', result.session, decode);
}

/**
 * After another method succeeded: start a session (unless `disable_session` lists the method).
 * The session saved, or null (at once) when none is to be saved.
 */
export function saveSessionAfter(cfg: OidcConfig, browser: BrowserFlows, ctx: RequestContext, outcome: Outcome, clientIndex: number): Sync<SessionData | null> {
  if (outcome.method === 'session' || outcome.method === 'authorization_code') return null;
  if (!cfg.auth_methods.includes('session')) return null;
  if ((cfg.disable_session ?? []).includes(outcome.method)) return null;
  if (!outcome.tokens.access_token) return null;
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
  return browser.saveSession(ctx, session);
}
