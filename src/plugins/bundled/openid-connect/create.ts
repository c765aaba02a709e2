/**
 * `create(config, deps)`: builds one plugin instance (issuer cache, clients, caches) and returns
 * its access handler. Nothing here calls the IdP: discovery happens on the first request, so an
 * IdP that is down does not stop the gateway from starting or reloading.
 *
 * Order of work in `access` (docs leave it open; recorded here): pre-flight and anonymous
 * short-cuts → credential search (pipeline.ts) → claims authorization → consumer mapping →
 * headers → hide_credentials.
 *
 * The steady states (a bearer JWT whose verification is cached, a session cookie opened before)
 * take a synchronous fast path (fast-path.ts) that makes the same changes without a Promise; the
 * full, async path below handles everything else.
 */
import { randomBytes } from 'node:crypto';
import type { JWK } from 'jose';
import type { PluginDeps, PluginHandlers, Reply, RequestContext, ResponseContext } from '../../sdk.ts';
import { isGatewayError } from '../../../errors.ts';
import type { OidcConfig } from './schema.ts';
import { SingleFlight, TtlCache } from './caches.ts';
import { IdpHttp } from './http.ts';
import { IssuerCache } from './issuer.ts';
import { issuerPurgedAt, publishIssuer, recordedIssuer } from './admin-issuers.ts';
import { Clients, perClient, selectClient } from './clients.ts';
import { authError, describe, toReply } from './errors.ts';
import type { RequestState, Runtime } from './runtime.ts';
import { authenticate } from './pipeline.ts';
import { BodyFields, findBearerToken } from './steps/find-credential.ts';
import type { FoundToken } from './steps/find-credential.ts';
import { authorizeClaims, mapConsumer } from './steps/authorize.ts';
import { configuredNames, headerPlan, headersFromPlan, hideCredentials, writesAny } from './steps/headers.ts';
import { searchUserInfo } from './steps/verify-token.ts';
import type { SessionData } from './browser/index.ts';
import { browserSlots, buildBrowser, saveSessionAfter, selectClientIndex, sessionKey } from './browser-slots.ts';
import { sessionHeaderName } from './browser/session-headers.ts';
import { buildFastPath, consumerHeaderNames, consumerHeaders, maxAgeProblem, STATE_KEY, type OidcRequestState } from './fast-path.ts';

const CACHE_ENTRIES = 10_000;

export type { OidcRequestState };

export function createOidc(cfg: OidcConfig, deps: PluginDeps): PluginHandlers {
  // Which discovery cache record (Admin API) this instance writes: instances that trust other keys keep their own.
  const cacheSource = { issuer: cfg.issuer, jwksEndpoint: cfg.jwks_endpoint, extraJwksUris: cfg.extra_jwks_uris ?? [] };
  const http = new IdpHttp({ timeoutMs: cfg.timeout, sslVerify: cfg.ssl_verify });
  const issuer = new IssuerCache({
    issuer: cfg.issuer,
    usingPseudoIssuer: cfg.using_pseudo_issuer,
    overrides: {
      authorization_endpoint: cfg.authorization_endpoint ?? undefined,
      token_endpoint: cfg.token_endpoint ?? undefined,
      introspection_endpoint: cfg.introspection_endpoint ?? undefined,
      revocation_endpoint: cfg.revocation_endpoint ?? undefined,
      userinfo_endpoint: cfg.userinfo_endpoint ?? undefined,
      end_session_endpoint: cfg.end_session_endpoint ?? undefined,
      pushed_authorization_request_endpoint: cfg.pushed_authorization_request_endpoint ?? undefined,
    },
    jwksEndpoint: cfg.jwks_endpoint,
    extraJwksUris: cfg.extra_jwks_uris ?? [],
    discoveryHeaders: Object.fromEntries((cfg.discovery_headers_names ?? []).map((n, i) => [n, cfg.discovery_headers_values?.[i] ?? ''])),
    cacheTtlSec: cfg.cache_ttl,
    rediscoveryLifetimeSec: cfg.rediscovery_lifetime,
    http,
    log: deps.log,
    now: deps.now,
    onDiscovered: (update) => publishIssuer(deps.sharedKv, cacheSource, update, deps.now()),
    purgedAt: () => issuerPurgedAt(deps.sharedKv, cacheSource),
    recorded: async () => {
      const rec = await recordedIssuer(deps.sharedKv, cacheSource);
      return rec ? { configuration: rec.configuration, keys: rec.keys as JWK[] } : null;
    },
  });
  const clients = new Clients({ cfg, http, sharedKv: deps.sharedKv, insecure: issuer.insecure });
  const now = deps.now;
  const rt: Runtime = {
    cfg,
    issuer,
    clients,
    http,
    log: deps.log,
    sharedKv: deps.sharedKv,
    // Auto-generated when absent (Kong); per instance, so such caches are not shared.
    salt: cfg.cache_tokens_salt ?? randomBytes(16).toString('base64url'),
    enabled: new Set(cfg.auth_methods),
    caches: {
      verified: new TtlCache({ maxEntries: CACHE_ENTRIES, now }),
      introspection: new TtlCache({ maxEntries: CACHE_ENTRIES, now }),
      userinfo: new TtlCache({ maxEntries: CACHE_ENTRIES, now }),
      tokens: new TtlCache({ maxEntries: CACHE_ENTRIES, now }),
    },
    flights: { introspection: new SingleFlight(), userinfo: new SingleFlight(), tokens: new SingleFlight() },
    now,
  };
  // Session facts (Session-Id, ...) are plugin-written headers too: client-sent copies go.
  const upstreamNames = [
    ...configuredNames(cfg, 'upstream'),
    ...(cfg.session_request_headers ?? []).map(sessionHeaderName),
    ...(cfg.upstream_session_id_header ? [cfg.upstream_session_id_header] : []),
  ];
  const upstreamHeaders = headerPlan(cfg, 'upstream');
  const downstreamHeaders = headerPlan(cfg, 'downstream');
  // The browser flows exist only when a browser method is enabled; they own sessions and logout.
  const browser = rt.enabled.has('session') || rt.enabled.has('authorization_code') ? buildBrowser(cfg, deps, issuer, clients) : null;
  const slots = browser ? browserSlots(browser) : {};
  const fastPath = buildFastPath({ cfg, rt, browser, upstreamPlan: upstreamHeaders, downstreamPlan: downstreamHeaders, upstreamNames });

  const replyFor = (ctx: RequestContext, err: unknown, clientIndex: number) => {
    const r = toReply(err, {
      unauthorizedMessage: cfg.unauthorized_error_message,
      forbiddenMessage: cfg.forbidden_error_message,
      exposeErrorCode: cfg.expose_error_code,
      displayErrors: cfg.display_errors,
      realm: ctx.request.host || 'portcullis',
    });
    if (r.status >= 500) ctx.log.error({ code: isGatewayError(err) ? err.code : 'GW_INTERNAL', err: isGatewayError(err) ? err.detail : describe(err) }, 'openid-connect: request failed');
    else ctx.log.info({ status: r.status, reason: isGatewayError(err) ? err.detail : describe(err) }, 'openid-connect: request refused');
    const redirect = r.status === 401 ? cfg.unauthorized_redirect_uri : r.status === 403 ? cfg.forbidden_redirect_uri : r.status >= 500 ? cfg.unexpected_redirect_uri : null;
    const target = perClient(redirect, clientIndex);
    if (target) return ctx.reply(302, undefined, { location: target, 'cache-control': 'no-store' });
    return ctx.reply(r.status, r.body, r.headers);
  };

  const anonymousFallback = (ctx: RequestContext): Reply | undefined => {
    const anon = ctx.entities.consumerById(cfg.anonymous!) ?? ctx.entities.consumerByUsername(cfg.anonymous!);
    if (!anon) {
      ctx.log.error('openid-connect: the anonymous consumer does not exist');
      return ctx.reply(500, { message: 'An unexpected error occurred' });
    }
    ctx.authenticate({ consumer: anon, credential: null });
    browser?.stripCookies(ctx);
    for (const n of upstreamNames) ctx.upstream.removeHeader(n);
    setConsumerHeaders(ctx, anon, null);
    ctx.upstream.setHeader('x-anonymous-consumer', 'true');
  };

  /** The full path: every method, IdP calls, session writes, logout, errors. */
  const fullAccess = async (ctx: RequestContext): Promise<Reply | undefined> => {
    const body = new BodyFields(ctx.request);
    let bearer: Promise<FoundToken | null> | null = null;
    const rs: RequestState = {
      ctx,
      body,
      client: null,
      bearer: () => (bearer ??= findBearerToken(cfg, ctx.request, body)),
      bearerHandled: false,
    };
    let session: SessionData | null = null;
    try {
      if (browser) {
        const bcl = await browser.backchannelLogout(ctx);
        if (bcl) return bcl;
        // The callback of a sign-in pending in this browser starts a new session; an old one is
        // not consulted. A stale callback URL (reloaded, bookmarked) is served by a valid session.
        const callback = rt.enabled.has('authorization_code') && (await browser.isCallback(ctx));
        if (rt.enabled.has('session') && !callback) {
          session = await browser.loadSession(ctx);
          ctx.state.set(sessionKey, session);
        }
        const out = await browser.logout(ctx, session);
        if (out) return out;
      }
      rs.client = await selectClient(cfg, ctx.request);
      const result = await authenticate(rt, rs, slots);
      if (result && 'reply' in result) return result.reply;
      let outcome = result;
      if (!outcome) {
        // A token no enabled method could take (e.g. opaque with only `bearer`) is invalid, not absent.
        if (await rs.bearer()) throw authError('invalid_token', 'token not accepted by any enabled method');
        throw authError('no_credentials', 'no credentials found');
      }
      const tooOld = maxAgeProblem(cfg, outcome, ctx.now());
      if (tooOld !== null) throw authError('invalid_token', tooOld);
      if (cfg.search_user_info && !outcome.userinfo) outcome = { ...outcome, userinfo: await searchUserInfo(rt, rs, outcome) };
      authorizeClaims(cfg, outcome.introspection ?? outcome.accessClaims);
      const mapped = outcome.identity ?? mapConsumer(cfg, [outcome.accessClaims, outcome.idClaims, outcome.introspection, outcome.userinfo], ctx.entities);
      ctx.authenticate({ consumer: mapped.consumer, credential: mapped.credential, groups: mapped.groups, consumerGroups: mapped.consumerGroups });
      // Client-sent copies of the headers we write are removed first (anti-spoofing).
      for (const n of upstreamNames) ctx.upstream.removeHeader(n);
      if (cfg.hide_credentials) await hideCredentials(ctx, outcome.used);
      // Session and authorization cookies are the gateway's own business: never sent upstream.
      browser?.stripCookies(ctx);
      for (const h of headersFromPlan(upstreamHeaders, outcome)) ctx.upstream.setHeader(h.name, h.value);
      setConsumerHeaders(ctx, mapped.consumer, mapped.groups, mapped.credential);
      const downstream = headersFromPlan(downstreamHeaders, outcome);
      if (browser) {
        await saveSessionAfter(cfg, browser, ctx, outcome, rs.client?.index ?? selectClientIndex(cfg, ctx));
        // After the save: a renewal (Redis) gives the session a new id, and that is the one to tell.
        for (const h of browser.sessionHeaders(ctx, cfg.session_request_headers ?? [])) ctx.upstream.setHeader(h.name, h.value);
        downstream.push(...browser.sessionHeaders(ctx, cfg.session_response_headers ?? []));
        const sid = browser.sessionId(ctx);
        if (sid && cfg.upstream_session_id_header) ctx.upstream.setHeader(cfg.upstream_session_id_header, sid);
        if (sid && cfg.downstream_session_id_header) downstream.push({ name: cfg.downstream_session_id_header, value: sid });
      }
      const state: OidcRequestState = { method: outcome.method, accessToken: outcome.tokens.access_token ?? null, downstream };
      ctx.state.set(STATE_KEY, state);
    } catch (err) {
      const status = isGatewayError(err) ? err.status : 500;
      // The session loaded for this request, or the one the callback just made.
      const active = browser !== null && (session !== null || browser.sessionId(ctx) !== null);
      if (active && ((status === 401 && cfg.unauthorized_destroy_session) || (status === 403 && cfg.forbidden_destroy_session))) {
        await browser!.destroySession(ctx).catch((e: unknown) => ctx.log.warn({ err: describe(e) }, 'openid-connect: could not destroy the session'));
      }
      if (cfg.anonymous && (status === 401 || status === 400)) return anonymousFallback(ctx);
      return replyFor(ctx, err, rs.client?.index ?? 0);
    }
  };

  // Without any downstream header to write, no response handler at all (nothing to do per request).
  const downstreamPossible = writesAny(downstreamHeaders) || (browser !== null && ((cfg.session_response_headers ?? []).length > 0 || !!cfg.downstream_session_id_header));
  const response = (ctx: ResponseContext): void => {
    const state = ctx.state.get(STATE_KEY) as OidcRequestState | undefined;
    if (!state) return;
    for (const h of state.downstream) ctx.response.setHeader(h.name, h.value);
  };

  return {
    ...(downstreamPossible ? { response } : {}),

    access(ctx) {
      if (!cfg.run_on_preflight && ctx.request.method === 'OPTIONS') return;
      // Logical OR with other auth plugins: with `anonymous`, an authenticated request passes.
      if (cfg.anonymous && ctx.consumer && ctx.credential) return;
      // Steady states (cached bearer JWT, remembered session) are answered without a Promise.
      if (fastPath !== null && fastPath(ctx)) return;
      return fullAccess(ctx);
    },

    async close() {
      await browser?.close();
      await http.close();
    },
  };
}

/** Kong's consumer headers for the upstream (X-Consumer-*, X-Authenticated-Groups). */
function setConsumerHeaders(
  ctx: RequestContext,
  consumer: { id: string; username: string | null; custom_id: string | null } | null,
  groups: readonly string[] | null,
  credential: { identifier?: string | null } | null = null,
): void {
  for (const n of consumerHeaderNames) ctx.upstream.removeHeader(n);
  for (const h of consumerHeaders(consumer, groups, credential)) ctx.upstream.setHeader(h.name, h.value);
}
