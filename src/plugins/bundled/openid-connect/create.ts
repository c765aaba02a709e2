/**
 * `create(config, deps)`: builds one plugin instance (issuer cache, clients, caches, browser
 * flows) and returns its handlers. Nothing here calls the IdP: discovery happens on the first
 * request, so an IdP that is down does not stop the gateway from starting or reloading.
 *
 * `access`: the pre-flight and anonymous short-cuts, then the step table of access.ts (one
 * pipeline, synchronous on the steady states); failures become Kong's error replies here.
 */
import { randomBytes } from 'node:crypto';
import type { JWK } from 'jose';
import type { PluginDeps, PluginHandlers, Reply, RequestContext, ResponseContext } from '../../sdk.ts';
import { isGatewayError } from '../../../errors.ts';
import type { OidcConfig } from './schema.ts';
import { SingleFlight, TtlCache } from './caches.ts';
import { IdpHttp } from './http.ts';
import { ClusterCache } from './cluster-cache.ts';
import { IssuerCache } from './issuer.ts';
import { issuerPurgedAt, publishIssuer, recordedIssuer } from './admin-issuers.ts';
import { Clients, configuredClients, perClient } from './clients.ts';
import { describe, toReply } from './errors.ts';
import { STATE_KEY, type OidcRequestState, type Runtime } from './runtime.ts';
import { accessSteps, destroyOnFailure, enabledMethods, Flow, runSteps, type Instance } from './access.ts';
import { configuredNames, consumerHeaderNames, consumerHeaders, headerPlan, writesAny } from './steps/headers.ts';
import { buildBrowser } from './browser-slots.ts';
import { mtlsPop } from './steps/mtls-pop.ts';
import { RevocationChecker } from './revocation.ts';
import { DpopState } from './dpop-state.ts';
import { dpopAlgsText } from './steps/dpop.ts';
import { sessionHeaderName } from './browser/session-headers.ts';

const CACHE_ENTRIES = 10_000;

export type { OidcRequestState };

export function createOidc(cfg: OidcConfig, deps: PluginDeps): PluginHandlers {
  // Which discovery cache record (Admin API) this instance writes: instances that trust other keys keep their own.
  const cacheSource = { issuer: cfg.issuer, jwksEndpoint: cfg.jwks_endpoint, extraJwksUris: cfg.extra_jwks_uris ?? [] };
  const http = new IdpHttp({
    timeoutMs: cfg.timeout,
    sslVerify: cfg.ssl_verify,
    keepalive: cfg.keepalive,
    httpProxy: cfg.http_proxy,
    httpProxyAuthorization: cfg.http_proxy_authorization,
    httpsProxy: cfg.https_proxy,
    httpsProxyAuthorization: cfg.https_proxy_authorization,
    noProxy: cfg.no_proxy,
    metrics: deps.metrics?.oidc,
    log: deps.log,
  });
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
  const enabled = new Set(cfg.auth_methods);
  // The browser flows exist only when a browser method is enabled; they own sessions and logout.
  const browser = enabled.has('session') || enabled.has('authorization_code') ? buildBrowser(cfg, deps, issuer, clients, () => rt) : null;
  // Auto-generated when absent (Kong); per instance, so such caches are not shared.
  const salt = cfg.cache_tokens_salt ?? randomBytes(16).toString('base64url');
  const dpopMode = cfg.proof_of_possession_dpop;
  // The jti replay cache and the nonce key: in the plugin's Redis when configured (every node), else the node's store.
  const dpop = dpopMode === 'off' ? null : new DpopState({
    lifetimeSec: cfg.dpop_proof_lifetime,
    leewaySec: cfg.leeway,
    // (A list of session secrets is a rotation: its first is the current one.)
    sessionSecret: (Array.isArray(cfg.session_secret) ? cfg.session_secret[0] : cfg.session_secret) ?? null,
    redis: cfg.redis,
    sharedKv: deps.sharedKv,
    instanceId: deps.entity.id,
    workers: deps.workers,
    database: deps.database ?? 'off',
    now,
  });
  // Revocation checks of header certificates (OCSP/CRL), unless SKIP or mTLS PoP is off.
  const header = cfg.proof_of_possession_mtls_from_header;
  const revocation = header && header.revocation_check_mode !== 'SKIP' && cfg.proof_of_possession_mtls !== 'off' ? new RevocationChecker(header, now) : null;
  const rt: Runtime = {
    cfg,
    issuer,
    clients,
    http,
    log: deps.log,
    sharedKv: deps.sharedKv,
    salt,
    enabled,
    browser,
    dpop,
    caches: {
      verified: new TtlCache({ maxEntries: CACHE_ENTRIES, now }),
      introspection: new TtlCache({ maxEntries: CACHE_ENTRIES, now }),
      userinfo: new TtlCache({ maxEntries: CACHE_ENTRIES, now }),
      tokens: new TtlCache({ maxEntries: CACHE_ENTRIES, now }),
    },
    cluster: ClusterCache.for(cfg, salt, deps.log),
    flights: { introspection: new SingleFlight(), userinfo: new SingleFlight(), tokens: new SingleFlight() },
    now,
  };
  // Session facts (Session-Id, ...) are plugin-written headers too: client-sent copies go.
  const upstreamNames = [
    ...configuredNames(cfg, 'upstream'),
    ...(cfg.session_request_headers ?? []).map(sessionHeaderName),
    ...(cfg.upstream_session_id_header ? [cfg.upstream_session_id_header] : []),
  ];
  const lower = (names: readonly string[]) => names.map((n) => n.toLowerCase());
  // All removals first (anti-spoofing): they commute with one another. Consumer headers the
  // token headers may set (a config naming one) are removed again after those are set.
  const written = new Set(lower(configuredNames(cfg, 'upstream')));
  const inst: Instance = {
    rt,
    cfg,
    browser,
    clients: configuredClients(cfg),
    methods: enabledMethods(cfg, browser !== null),
    upstreamPlan: headerPlan(cfg, 'upstream'),
    downstreamPlan: headerPlan(cfg, 'downstream'),
    removeFirst: [...new Set([...lower(upstreamNames), ...consumerHeaderNames])],
    removeAgain: consumerHeaderNames.filter((n) => written.has(n)),
    perRequestDownstream: browser !== null && ((cfg.session_response_headers ?? []).length > 0 || !!cfg.downstream_session_id_header),
    counters: { sessionSaveFailures: 0 },
    mtlsPop: mtlsPop(cfg, now, revocation),
  };
  const steps = accessSteps(cfg, browser !== null);

  const replyFor = (ctx: RequestContext, err: unknown, clientIndex: number) => {
    const r = toReply(err, {
      unauthorizedMessage: cfg.unauthorized_error_message,
      forbiddenMessage: cfg.forbidden_error_message,
      exposeErrorCode: cfg.expose_error_code,
      displayErrors: cfg.display_errors,
      realm: ctx.request.host || 'portcullis',
      dpop: dpopMode === 'off' ? null : { mode: dpopMode, algs: dpopAlgsText },
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

  /**
   * A failed request: the session may end (`*_destroy_session`), `anonymous` may step in, else
   * Kong's error reply. Always in a Promise: only the steady states are answered synchronously.
   */
  const fail = async (f: Flow, err: unknown): Promise<Reply | undefined> => {
    const status = isGatewayError(err) ? err.status : 500;
    await destroyOnFailure(inst, f, status);
    if (cfg.anonymous && (status === 401 || status === 400)) return anonymousFallback(f.ctx);
    return replyFor(f.ctx, err, f.client?.index ?? 0);
  };

  // Without any downstream header to write, no response handler at all (nothing to do per request).
  const downstreamPossible = writesAny(inst.downstreamPlan) || inst.perRequestDownstream;
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
      // The client certificate for tls_client_auth is looked up in the request's entities.
      if (cfg.tls_client_auth_cert_id !== null) clients.mtls.use(ctx.entities);
      // Synchronous on the steady states (cached bearer JWT, remembered session).
      return runSteps(inst, steps, new Flow(inst, ctx), 0, fail);
    },

    async close() {
      await browser?.close();
      await rt.cluster?.close();
      await dpop?.close();
      await revocation?.close();
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
