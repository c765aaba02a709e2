/**
 * Config schema of the `openid-connect` plugin: every `config` field of Kong Gateway 3.15, with
 * Kong's wire names and defaults (array defaults in the order of Kong's hand-written docs).
 *
 * Fields whose feature is not built yet are accepted only at their default value; any other value
 * is a config error naming the field ("not supported yet"), so a config never silently loses
 * meaning. The browser-flow fields (authorization code, session, login, logout) are accepted as
 * they are: the browser part of the plugin owns them.
 */
import { z } from 'zod';
import { between } from '../../sdk.ts';
import {
  arr,
  clientJwk,
  clusterRedisRecord,
  def,
  headerMapping,
  issuerId,
  mtlsFromHeaderRecord,
  opt,
  optArr,
  principalsRecord,
  redisRecord,
  tokenExchangeRecord,
} from './schema-parts.ts';
import { mtlsIssues } from './mtls-config.ts';

export const authMethods = ['session', 'bearer', 'kong_oauth2', 'introspection', 'userinfo', 'refresh_token', 'password', 'client_credentials', 'authorization_code'] as const;
/** A credential kind (`auth_methods` value). The tuple above is Kong's hard-coded search order. */
export type AuthMethod = (typeof authMethods)[number];
/** The methods proof of possession (DPoP, mTLS) applies to (Kong: bearer, introspection, session). */
export const popCompatibleMethods: ReadonlySet<AuthMethod> = new Set<AuthMethod>(['bearer', 'introspection', 'session']);

export const clientAuthMethods = ['client_secret_basic', 'client_secret_jwt', 'client_secret_post', 'none', 'private_key_jwt', 'self_signed_tls_client_auth', 'tls_client_auth'] as const;
export type ClientAuthMethod = (typeof clientAuthMethods)[number];

/** Kong's `typedefs.url`: IdP endpoints the gateway calls are absolute http(s) URLs. */
const httpUrl = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}, 'must be an absolute http(s) URL');
/** Where a browser is sent: any absolute URL. */
const absoluteUrl = z.string().refine((v) => URL.canParse(v), 'must be an absolute URL');

const fields = {
  issuer: z.string().min(1),
  using_pseudo_issuer: def(z.boolean(), false),
  rediscovery_lifetime: def(z.number(), 30),
  discovery_headers_names: optArr(z.string()),
  discovery_headers_values: optArr(z.string()),
  extra_jwks_uris: optArr(httpUrl),
  jwks_endpoint: opt(httpUrl),
  verify_parameters: def(z.boolean(), false),
  authorization_endpoint: opt(httpUrl),
  token_endpoint: opt(httpUrl),
  introspection_endpoint: opt(httpUrl),
  revocation_endpoint: opt(httpUrl),
  userinfo_endpoint: opt(httpUrl),
  end_session_endpoint: opt(httpUrl),
  pushed_authorization_request_endpoint: opt(httpUrl),
  mtls_token_endpoint: opt(httpUrl),
  mtls_introspection_endpoint: opt(httpUrl),
  mtls_revocation_endpoint: opt(httpUrl),
  token_exchange_endpoint: opt(httpUrl),
  client_id: optArr(z.string()),
  client_secret: optArr(z.string()),
  client_auth: optArr(z.enum(['client_secret_basic', 'client_secret_jwt', 'client_secret_post', 'none', 'private_key_jwt', 'self_signed_tls_client_auth', 'tls_client_auth'])),
  client_alg: optArr(z.enum(['ES256', 'ES384', 'ES512', 'EdDSA', 'HS256', 'HS384', 'HS512', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512'])),
  client_jwk: z.array(clientJwk).nullable().default(null),
  client_arg: def(z.string(), 'client_id'),
  redirect_uri: optArr(absoluteUrl),
  token_endpoint_auth_method: opt(z.enum(['client_secret_basic', 'client_secret_jwt', 'client_secret_post', 'none', 'private_key_jwt', 'self_signed_tls_client_auth', 'tls_client_auth'])),
  introspection_endpoint_auth_method: opt(z.enum(['client_secret_basic', 'client_secret_jwt', 'client_secret_post', 'none', 'private_key_jwt', 'self_signed_tls_client_auth', 'tls_client_auth'])),
  revocation_endpoint_auth_method: opt(z.enum(['client_secret_basic', 'client_secret_jwt', 'client_secret_post', 'none', 'private_key_jwt', 'self_signed_tls_client_auth', 'tls_client_auth'])),
  pushed_authorization_request_endpoint_auth_method: opt(z.enum(['client_secret_basic', 'client_secret_jwt', 'client_secret_post', 'none', 'private_key_jwt', 'self_signed_tls_client_auth', 'tls_client_auth'])),
  tls_client_auth_cert_id: opt(z.string()),
  tls_client_auth_ssl_verify: def(z.boolean(), true),
  auth_methods: arr(z.enum(['authorization_code', 'bearer', 'client_credentials', 'introspection', 'kong_oauth2', 'password', 'refresh_token', 'session', 'userinfo']), ['password', 'client_credentials', 'authorization_code', 'bearer', 'introspection', 'userinfo', 'kong_oauth2', 'refresh_token', 'session']),
  bearer_token_param_type: arr(z.enum(['body', 'cookie', 'header', 'query']), ['header', 'query', 'body']),
  bearer_token_cookie_name: opt(z.string()),
  bearer_token_header_name: opt(z.string().min(1)),
  client_credentials_param_type: arr(z.enum(['body', 'header', 'query']), ['header', 'query', 'body']),
  password_param_type: arr(z.enum(['body', 'header', 'query']), ['header', 'query', 'body']),
  refresh_token_param_name: opt(z.string()),
  refresh_token_param_type: arr(z.enum(['body', 'header', 'query']), ['header', 'query', 'body']),
  id_token_param_name: opt(z.string()),
  id_token_param_type: arr(z.enum(['body', 'header', 'query']), ['header', 'query', 'body']),
  hide_credentials: def(z.boolean(), true),
  run_on_preflight: def(z.boolean(), true),
  anonymous: opt(z.string()),
  response_type: arr(z.string(), ['code']),
  // Kong's values; the fragment modes hand the answer to browser script, which the gateway never sees.
  response_mode: def(z.enum(['query', 'form_post', 'fragment', 'query.jwt', 'form_post.jwt', 'fragment.jwt', 'jwt']), 'query'),
  scopes: arr(z.string(), ['openid']),
  audience: optArr(z.string()),
  authorization_query_args_names: optArr(z.string()),
  authorization_query_args_values: optArr(z.string()),
  authorization_query_args_client: optArr(z.string()),
  preserve_query_args: def(z.boolean(), false),
  verify_nonce: def(z.boolean(), true),
  require_proof_key_for_code_exchange: opt(z.boolean()),
  require_pushed_authorization_requests: opt(z.boolean()),
  require_signed_request_object: opt(z.boolean()),
  authorization_cookie_name: def(z.string(), 'authorization'),
  authorization_rolling_timeout: def(z.number(), 600),
  authorization_cookie_path: def(z.string(), '/'),
  authorization_cookie_domain: opt(z.string()),
  authorization_cookie_same_site: def(z.enum(['Default', 'Lax', 'None', 'Strict']), 'Default'),
  authorization_cookie_http_only: def(z.boolean(), true),
  authorization_cookie_secure: opt(z.boolean()),
  login_action: def(z.enum(['redirect', 'response', 'upstream']), 'upstream'),
  login_methods: arr(z.enum(['authorization_code', 'bearer', 'client_credentials', 'introspection', 'kong_oauth2', 'password', 'refresh_token', 'session', 'userinfo']), ['authorization_code']),
  // `null` is meaningful here ('no tokens in the login response'), so it is kept, not defaulted.
  login_tokens: z.array(z.enum(['access_token', 'id_token', 'introspection', 'refresh_token', 'tokens'])).nullable().default(['id_token']),
  login_redirect_mode: def(z.enum(['fragment', 'query']), 'fragment'),
  login_redirect_uri: optArr(absoluteUrl),
  logout_methods: arr(z.enum(['DELETE', 'GET', 'POST']), ['DELETE', 'POST']),
  logout_query_arg: opt(z.string()),
  logout_post_arg: opt(z.string()),
  logout_uri_suffix: opt(z.string()),
  /**
   * Beyond Kong: request path suffix where the IdP posts OpenID Connect Back-Channel Logout 1.0
   * logout tokens (register `<route URL><suffix>` as the client's backchannel_logout_uri).
   */
  backchannel_logout_uri_suffix: opt(z.string().min(1)),
  logout_redirect_uri: optArr(absoluteUrl),
  logout_revoke: def(z.boolean(), false),
  logout_revoke_access_token: def(z.boolean(), true),
  logout_revoke_refresh_token: def(z.boolean(), true),
  revocation_token_param_name: def(z.string(), 'token'),
  display_errors: def(z.boolean(), false),
  expose_error_code: def(z.boolean(), true),
  unauthorized_error_message: def(z.string(), 'Unauthorized'),
  forbidden_error_message: def(z.string(), 'Forbidden'),
  unauthorized_redirect_uri: optArr(absoluteUrl),
  forbidden_redirect_uri: optArr(absoluteUrl),
  unexpected_redirect_uri: optArr(absoluteUrl),
  unauthorized_destroy_session: def(z.boolean(), true),
  forbidden_destroy_session: def(z.boolean(), true),
  /** A string as in Kong; a list (beyond Kong) rotates secrets: the first seals, all open. */
  session_secret: opt(z.union([z.string().min(1), z.array(z.string().min(1)).min(1)])),
  session_storage: def(z.enum(['cookie', 'memcache', 'memcached', 'redis']), 'cookie'),
  session_cookie_name: def(z.string(), 'session'),
  session_cookie_path: def(z.string(), '/'),
  session_cookie_domain: opt(z.string()),
  session_cookie_same_site: def(z.enum(['Default', 'Lax', 'None', 'Strict']), 'Lax'),
  session_cookie_http_only: def(z.boolean(), true),
  session_cookie_secure: opt(z.boolean()),
  session_rolling_timeout: def(z.number(), 3600),
  session_idling_timeout: def(z.number(), 900),
  session_absolute_timeout: def(z.number(), 86400),
  session_remember: def(z.boolean(), false),
  session_remember_cookie_name: def(z.string(), 'remember'),
  session_remember_rolling_timeout: def(z.number(), 604800),
  session_remember_absolute_timeout: def(z.number(), 2592000),
  session_audience: def(z.string(), 'default'),
  session_store_metadata: def(z.boolean(), false),
  session_enforce_same_subject: def(z.boolean(), false),
  session_hash_subject: def(z.boolean(), false),
  session_hash_storage_key: def(z.boolean(), false),
  session_request_headers: optArr(z.enum(['absolute-timeout', 'audience', 'id', 'idling-timeout', 'rolling-timeout', 'subject', 'timeout'])),
  session_response_headers: optArr(z.enum(['absolute-timeout', 'audience', 'id', 'idling-timeout', 'rolling-timeout', 'subject', 'timeout'])),
  session_bind: optArr(z.enum(['ip', 'scheme', 'user-agent'])),
  session_memcached_prefix: opt(z.string()),
  session_memcached_socket: opt(z.string()),
  session_memcached_host: def(z.string(), '127.0.0.1'),
  session_memcached_port: def(between(z.number().int(), 0, 65535), 11211),
  session_memcached_ssl: opt(z.boolean()),
  session_memcached_ssl_verify: def(z.boolean(), true),
  redis: redisRecord.nullable().default(null),
  disable_session: optArr(z.enum(['authorization_code', 'bearer', 'client_credentials', 'introspection', 'kong_oauth2', 'password', 'refresh_token', 'session', 'userinfo'])),
  reverify: def(z.boolean(), false),
  jwt_session_cookie: opt(z.string()),
  jwt_session_claim: def(z.string(), 'sid'),
  verify_signature: def(z.boolean(), true),
  verify_claims: def(z.boolean(), true),
  enable_hs_signatures: def(z.boolean(), false),
  ignore_signature: arr(z.enum(['authorization_code', 'client_credentials', 'introspection', 'password', 'refresh_token', 'session', 'userinfo']), []),
  leeway: def(z.number(), 0),
  issuers_allowed: optArr(z.string()),
  max_age: opt(z.number()),
  domains: optArr(z.string()),
  resolve_distributed_claims: def(z.boolean(), false),
  token_post_args_names: optArr(z.string()),
  token_post_args_values: optArr(z.string()),
  token_post_args_client: optArr(z.string()),
  token_headers_names: optArr(z.string()),
  token_headers_values: optArr(z.string()),
  token_headers_client: optArr(z.string()),
  token_headers_replay: optArr(z.string()),
  token_headers_prefix: opt(z.string()),
  token_headers_grants: optArr(z.enum(['authorization_code', 'client_credentials', 'password', 'refresh_token'])),
  refresh_tokens: def(z.boolean(), true),
  token_cache_key_include_scope: def(z.boolean(), false),
  introspect_jwt_tokens: def(z.boolean(), false),
  introspection_check_active: def(z.boolean(), true),
  introspection_hint: def(z.string(), 'access_token'),
  introspection_accept: def(z.enum(['application/json', 'application/jwt', 'application/token-introspection+jwt']), 'application/json'),
  introspection_token_param_name: def(z.string(), 'token'),
  introspection_headers_names: optArr(z.string()),
  introspection_headers_values: optArr(z.string()),
  introspection_headers_client: optArr(z.string()),
  introspection_post_args_names: optArr(z.string()),
  introspection_post_args_values: optArr(z.string()),
  introspection_post_args_client: optArr(z.string()),
  introspection_post_args_client_headers: optArr(z.string()),
  userinfo_accept: def(z.enum(['application/json', 'application/jwt']), 'application/json'),
  userinfo_headers_names: optArr(z.string()),
  userinfo_headers_values: optArr(z.string()),
  userinfo_headers_client: optArr(z.string()),
  userinfo_query_args_names: optArr(z.string()),
  userinfo_query_args_values: optArr(z.string()),
  userinfo_query_args_client: optArr(z.string()),
  search_user_info: def(z.boolean(), false),
  cache_ttl: def(z.number(), 3600),
  cache_ttl_max: opt(z.number()),
  cache_ttl_min: opt(z.number()),
  cache_ttl_neg: opt(z.number()),
  cache_ttl_resurrect: opt(z.number()),
  cache_tokens: def(z.boolean(), true),
  cache_tokens_salt: opt(z.string()),
  cache_introspection: def(z.boolean(), true),
  cache_user_info: def(z.boolean(), true),
  cache_token_exchange: def(z.boolean(), true),
  cluster_cache_strategy: def(z.enum(['off', 'redis']), 'off'),
  cluster_cache_redis: clusterRedisRecord.nullable().default(null),
  cluster_cache_items: arr(z.enum(['introspection', 'tokens']), ['introspection']),
  scopes_required: optArr(z.string()),
  scopes_claim: arr(z.string(), ['scope']),
  audience_required: optArr(z.string()),
  audience_claim: arr(z.string(), ['aud']),
  groups_required: optArr(z.string()),
  groups_claim: arr(z.string(), ['groups']),
  roles_required: optArr(z.string()),
  roles_claim: arr(z.string(), ['roles']),
  claims_forbidden: optArr(z.string()),
  /** Pre-3.14 shorthand for one `consumer_claims` path; still accepted (changelog 3.14.0.0). */
  consumer_claim: optArr(z.string()),
  consumer_claims: z.array(z.array(z.string()).min(1)).nullable().default(null),
  consumer_by: arr(z.enum(['custom_id', 'id', 'username']), ['username', 'custom_id']),
  by_username_ignore_case: def(z.boolean(), false),
  consumer_optional: def(z.boolean(), false),
  credential_claim: arr(z.string(), ['sub']),
  authenticated_groups_claim: optArr(z.string()),
  consumer_groups_claim: optArr(z.string()),
  consumer_groups_optional: def(z.boolean(), false),
  principals: principalsRecord.nullable().default(null),
  // `null` unsets it: no token is sent upstream (Kong's Curity example), so null is kept.
  upstream_access_token_header: z.string().nullable().default('authorization:bearer'),
  upstream_access_token_jwk_header: opt(z.string()),
  upstream_id_token_header: opt(z.string()),
  upstream_id_token_jwk_header: opt(z.string()),
  upstream_refresh_token_header: opt(z.string()),
  upstream_introspection_header: opt(z.string()),
  upstream_introspection_jwt_header: opt(z.string()),
  upstream_user_info_header: opt(z.string()),
  upstream_user_info_jwt_header: opt(z.string()),
  upstream_session_id_header: opt(z.string()),
  upstream_headers_claims: optArr(z.string()),
  upstream_headers_names: optArr(z.string()),
  upstream_headers: z.array(headerMapping).nullable().default(null),
  downstream_access_token_header: opt(z.string()),
  downstream_access_token_jwk_header: opt(z.string()),
  downstream_id_token_header: opt(z.string()),
  downstream_id_token_jwk_header: opt(z.string()),
  downstream_refresh_token_header: opt(z.string()),
  downstream_introspection_header: opt(z.string()),
  downstream_introspection_jwt_header: opt(z.string()),
  downstream_user_info_header: opt(z.string()),
  downstream_user_info_jwt_header: opt(z.string()),
  downstream_session_id_header: opt(z.string()),
  downstream_headers_claims: optArr(z.string()),
  downstream_headers_names: optArr(z.string()),
  downstream_headers: z.array(headerMapping).nullable().default(null),
  proof_of_possession_mtls: def(z.enum(['off', 'optional', 'strict']), 'off'),
  proof_of_possession_auth_methods_validation: def(z.boolean(), true),
  proof_of_possession_dpop: def(z.enum(['off', 'optional', 'strict']), 'off'),
  dpop_use_nonce: def(z.boolean(), false),
  dpop_proof_lifetime: def(z.number(), 300),
  proof_of_possession_mtls_from_header: mtlsFromHeaderRecord.nullable().default(null),
  token_exchange: tokenExchangeRecord.nullable().default(null),
  ssl_verify: def(z.boolean(), true),
  timeout: def(z.number(), 10000),
  keepalive: def(z.boolean(), true),
  http_version: def(z.number(), 1.1),
  // Proxy URLs: the proxy itself is reached over plain HTTP (http://host:port), as in Kong.
  http_proxy: opt(httpUrl),
  http_proxy_authorization: opt(z.string()),
  https_proxy: opt(httpUrl),
  https_proxy_authorization: opt(z.string()),
  no_proxy: opt(z.string()),
};

/**
 * `redis` fields the session storage's Redis client cannot apply: only the default (the value
 * here) is accepted; any other value is refused with the reason given.
 */
export const redisNotSupportedYet: Readonly<Record<string, unknown>> = {
  cloud_authentication: null,
  keepalive_pool_size: 256,
  keepalive_backlog: null,
};
const redisRefusals: Readonly<Record<string, string>> = {
  cloud_authentication: 'not supported: cloud (AWS/Azure/GCP) authentication to Redis; use username/password',
  keepalive_pool_size: 'not supported: sessions use one multiplexed Redis connection per worker (ioredis), not a connection pool; only 256 (the default) is accepted',
  keepalive_backlog: 'not supported: sessions use one multiplexed Redis connection per worker (ioredis), no pool backlog; only null is accepted',
};

/** `*_names` / `*_values` style pairs that are matched by index and must have equal lengths. */
const pairedArrays: ReadonlyArray<readonly [string, string]> = [
  ['discovery_headers_names', 'discovery_headers_values'],
  ['authorization_query_args_names', 'authorization_query_args_values'],
  ['token_post_args_names', 'token_post_args_values'],
  ['token_headers_names', 'token_headers_values'],
  ['introspection_headers_names', 'introspection_headers_values'],
  ['introspection_post_args_names', 'introspection_post_args_values'],
  ['userinfo_headers_names', 'userinfo_headers_values'],
  ['userinfo_query_args_names', 'userinfo_query_args_values'],
  ['upstream_headers_claims', 'upstream_headers_names'],
  ['downstream_headers_claims', 'downstream_headers_names'],
];


const sameValue = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export const oidcConfigSchema = z
  .object(fields)
  .strict()
  .superRefine((cfg, ctx) => {
    const record = cfg as unknown as Record<string, unknown>;
    // Kong: 1.0 or 1.1. undici (the IdP client) speaks HTTP/1.1 only, so 1.0 is refused, not faked.
    if (cfg.http_version !== 1.1) ctx.addIssue({ code: 'custom', path: ['http_version'], message: cfg.http_version === 1 ? 'HTTP/1.0 is not supported (the IdP client speaks HTTP/1.1); use 1.1' : 'must be 1.1 (Kong allows 1.0 and 1.1; 1.0 is not supported)' });
    if (cfg.http_proxy_authorization && !cfg.http_proxy) ctx.addIssue({ code: 'custom', path: ['http_proxy_authorization'], message: 'needs http_proxy' });
    if (cfg.https_proxy_authorization && !cfg.https_proxy) ctx.addIssue({ code: 'custom', path: ['https_proxy_authorization'], message: 'needs https_proxy' });
    if (cfg.response_mode === 'fragment' || cfg.response_mode === 'fragment.jwt') {
      // A browser keeps the fragment to itself: the response would never reach the gateway.
      ctx.addIssue({ code: 'custom', path: ['response_mode'], message: `${cfg.response_mode}: not supported yet (the gateway never sees a fragment; use query, form_post, query.jwt, form_post.jwt or jwt)` });
    }
    if (cfg.redis) {
      const redis = cfg.redis as unknown as Record<string, unknown>;
      for (const [field, dflt] of Object.entries(redisNotSupportedYet)) {
        if (!sameValue(redis[field], dflt)) ctx.addIssue({ code: 'custom', path: ['redis', field], message: redisRefusals[field] ?? `not supported yet (only ${JSON.stringify(dflt)} is accepted)` });
      }
      // Through a proxy (Envoy, twemproxy) host/port name the proxy: one endpoint, database 0.
      if (redis.connection_is_proxied === true) {
        if (redis.database !== 0) ctx.addIssue({ code: 'custom', path: ['redis', 'database'], message: 'must be 0 with connection_is_proxied (Redis proxies do not support SELECT)' });
        if (redis.cluster_nodes || redis.sentinel_nodes || redis.sentinel_master) ctx.addIssue({ code: 'custom', path: ['redis', 'connection_is_proxied'], message: 'host/port (or socket) name the proxy: not with cluster_nodes or sentinel' });
      }
    }
    // The cluster cache's Redis client is built like the session storage's (src/storage/redis.ts).
    if (cfg.cluster_cache_redis) {
      const redis = cfg.cluster_cache_redis as unknown as Record<string, unknown>;
      for (const [field, dflt] of Object.entries(redisNotSupportedYet)) {
        if (!sameValue(redis[field], dflt)) ctx.addIssue({ code: 'custom', path: ['cluster_cache_redis', field], message: `not supported yet (only ${JSON.stringify(dflt)} is accepted)` });
      }
    }
    if (cfg.principals && cfg.principals.enabled) ctx.addIssue({ code: 'custom', path: ['principals', 'enabled'], message: 'not supported yet (only false is accepted)' });
    for (const [a, b] of pairedArrays) {
      const left = record[a] as unknown[] | null;
      const right = record[b] as unknown[] | null;
      if ((left?.length ?? 0) !== (right?.length ?? 0)) ctx.addIssue({ code: 'custom', path: [b], message: `must have as many entries as ${a}` });
    }
    // Mutual TLS (RFC 8705): client certificate, compatible methods, header certificates (mtls-config.ts).
    for (const issue of mtlsIssues(cfg)) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
    tokenExchangeIssues(cfg, ctx);
    // Multi-prime RSA keys (RFC 7518 §6.3.2.7) cannot be imported by WebCrypto.
    (cfg.client_jwk ?? []).forEach((k, i) => {
      if (k.oth !== null && k.oth !== undefined) ctx.addIssue({ code: 'custom', path: ['client_jwk', i, 'oth'], message: 'multi-prime RSA keys are not supported' });
    });
    // proof_of_possession_auth_methods_validation: with PoP on, only PoP-compatible methods.
    if (cfg.proof_of_possession_dpop !== 'off' && cfg.proof_of_possession_auth_methods_validation) {
      cfg.auth_methods.forEach((m, i) => {
        if (!popCompatibleMethods.has(m)) ctx.addIssue({ code: 'custom', path: ['auth_methods', i], message: `${m} cannot be used with proof_of_possession_dpop (only bearer, introspection and session can; or set proof_of_possession_auth_methods_validation to false)` });
      });
    }
    if (cfg.consumer_claim && cfg.consumer_claims) ctx.addIssue({ code: 'custom', path: ['consumer_claim'], message: 'set consumer_claims or consumer_claim, not both' });
    try {
      new URL(cfg.issuer);
    } catch {
      ctx.addIssue({ code: 'custom', path: ['issuer'], message: 'must be an absolute URL' });
    }
  });

/**
 * `token_exchange` (steps/token-exchange.ts) works on bearer tokens with the plugin's client;
 * `conditions` choose which tokens of `issuer` itself are exchanged (every token of another
 * issuer is), so they are required for that issuer and meaningless for the others.
 */
function tokenExchangeIssues(cfg: { issuer: string; auth_methods: readonly string[]; client_id: readonly string[] | null; token_exchange: z.output<typeof tokenExchangeRecord> | null; token_exchange_endpoint: string | null }, ctx: z.RefinementCtx): void {
  const te = cfg.token_exchange;
  if (!te) {
    if (cfg.token_exchange_endpoint) ctx.addIssue({ code: 'custom', path: ['token_exchange_endpoint'], message: 'is where token_exchange sends its requests: set token_exchange too' });
    return;
  }
  if (!cfg.auth_methods.includes('bearer')) ctx.addIssue({ code: 'custom', path: ['token_exchange'], message: "exchanges bearer tokens: needs 'bearer' in auth_methods" });
  if (!cfg.client_id || cfg.client_id.length === 0) ctx.addIssue({ code: 'custom', path: ['token_exchange'], message: 'needs client_id (the gateway exchanges tokens as its own client)' });
  te.subject_token_issuers.forEach((entry, i) => {
    const own = issuerId(entry.issuer) === issuerId(cfg.issuer);
    if (own && !entry.conditions) ctx.addIssue({ code: 'custom', path: ['token_exchange', 'subject_token_issuers', i, 'conditions'], message: 'required for the configured issuer itself (which of its tokens to exchange)' });
    if (!own && entry.conditions) ctx.addIssue({ code: 'custom', path: ['token_exchange', 'subject_token_issuers', i, 'conditions'], message: 'only for the configured issuer itself: every token of another issuer is exchanged' });
    if (entry.jwks_uri && !entry.verify_signature) ctx.addIssue({ code: 'custom', path: ['token_exchange', 'subject_token_issuers', i, 'jwks_uri'], message: 'is used to verify signatures: set verify_signature' });
  });
}

/** The validated, defaulted config of one openid-connect plugin instance. */
export type OidcConfig = z.output<typeof oidcConfigSchema>;

/** Renamed in Kong 3.2 (lua-resty-session 4): old name → current name (reference §2.20). */
const renamedFields: Readonly<Record<string, string>> = {
  authorization_cookie_lifetime: 'authorization_rolling_timeout',
  authorization_cookie_samesite: 'authorization_cookie_same_site',
  authorization_cookie_httponly: 'authorization_cookie_http_only',
  session_cookie_lifetime: 'session_rolling_timeout',
  session_cookie_idletime: 'session_idling_timeout',
  session_cookie_samesite: 'session_cookie_same_site',
  session_cookie_httponly: 'session_cookie_http_only',
  session_memcache_prefix: 'session_memcached_prefix',
  session_memcache_socket: 'session_memcached_socket',
  session_memcache_host: 'session_memcached_host',
  session_memcache_port: 'session_memcached_port',
};
/** The flat `session_redis_*` fields (3.4–3.7) → fields of the `redis` record (3.8). */
const redisShorthands: Readonly<Record<string, string>> = {
  session_redis_prefix: 'prefix', session_redis_socket: 'socket', session_redis_host: 'host', session_redis_port: 'port',
  session_redis_username: 'username', session_redis_password: 'password', session_redis_auth: 'password',
  session_redis_connect_timeout: 'connect_timeout', session_redis_read_timeout: 'read_timeout', session_redis_send_timeout: 'send_timeout',
  session_redis_ssl: 'ssl', session_redis_ssl_verify: 'ssl_verify', session_redis_server_name: 'server_name',
  session_redis_cluster_nodes: 'cluster_nodes', session_redis_cluster_max_redirections: 'cluster_max_redirections',
  session_redis_cluster_maxredirections: 'cluster_max_redirections',
};
/** Removed in 3.2: lua-resty-session 4 renews, chunks and compresses by itself. Dropped. */
const removedFields = ['session_cookie_renew', 'session_cookie_maxsize', 'session_strategy', 'session_compressor'];

/**
 * Kong's shorthand fields: an old configuration (pre-3.2 cookie names, the flat pre-3.8
 * `session_redis_*` fields) loads with its values moved to the current fields. As Kong's
 * shorthands, the old name overrides the current field (so an Admin API PATCH with an old name
 * changes a stored config). SameSite `off` (old: "do not set the flag") becomes `Default`.
 */
export function oidcShorthands(config: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  for (const [old, current] of Object.entries(renamedFields)) {
    if (!(old in out)) continue;
    let value = out[old];
    delete out[old];
    if (value === null || value === undefined) continue;
    if (old.endsWith('_samesite') && value === 'off') value = 'Default';
    out[current] = value;
  }
  for (const [old, field] of Object.entries(redisShorthands)) {
    if (!(old in out)) continue;
    const value = out[old];
    delete out[old];
    if (value === null || value === undefined) continue;
    const redis = typeof out.redis === 'object' && out.redis !== null && !Array.isArray(out.redis) ? { ...(out.redis as Record<string, unknown>) } : {};
    redis[field] = value;
    out.redis = redis;
  }
  for (const f of removedFields) delete out[f];
  return out;
}
