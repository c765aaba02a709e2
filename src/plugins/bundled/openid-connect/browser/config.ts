/**
 * The part of the `openid-connect` plugin config the browser flows read, with Kong's wire names.
 * Declared structurally here so this folder does not depend on the full zod schema in ../schema.ts;
 * any object carrying these fields (the parsed plugin config) fits.
 */
import type { ValidationIssue } from '../../../../errors.ts';
import type { RedisRecord } from '../../../../storage/redis.ts';

export const sameSiteValues = ['Default', 'Lax', 'None', 'Strict'] as const;
export type SameSite = (typeof sameSiteValues)[number];

export type { RedisNode, RedisRecord } from '../../../../storage/redis.ts';

export interface BrowserConfig {
  client_id?: readonly string[] | null;
  // authorization code request
  response_mode?: string | null;
  response_type?: readonly string[] | null;
  scopes?: readonly string[] | null;
  audience?: readonly string[] | null;
  redirect_uri?: readonly string[] | null;
  authorization_query_args_names?: readonly string[] | null;
  authorization_query_args_values?: readonly string[] | null;
  authorization_query_args_client?: readonly string[] | null;
  preserve_query_args?: boolean | null;
  verify_nonce?: boolean | null;
  require_proof_key_for_code_exchange?: boolean | null;
  require_pushed_authorization_requests?: boolean | null;
  require_signed_request_object?: boolean | null;
  max_age?: number | null;
  authorization_cookie_name?: string | null;
  authorization_rolling_timeout?: number | null;
  authorization_cookie_path?: string | null;
  authorization_cookie_domain?: string | null;
  authorization_cookie_same_site?: SameSite | null;
  authorization_cookie_http_only?: boolean | null;
  authorization_cookie_secure?: boolean | null;
  // login
  login_action?: 'upstream' | 'response' | 'redirect' | null;
  login_methods?: readonly string[] | null;
  login_tokens?: readonly string[] | null;
  login_redirect_mode?: 'fragment' | 'query' | null;
  login_redirect_uri?: readonly string[] | null;
  // userinfo after code exchange (Kong: `search_user_info` fetches it on the code flow)
  search_user_info?: boolean | null;
  // logout
  logout_methods?: readonly string[] | null;
  logout_query_arg?: string | null;
  logout_post_arg?: string | null;
  logout_uri_suffix?: string | null;
  logout_redirect_uri?: readonly string[] | null;
  logout_revoke?: boolean | null;
  logout_revoke_access_token?: boolean | null;
  logout_revoke_refresh_token?: boolean | null;
  end_session_endpoint?: string | null;
  /** Beyond Kong: path suffix of the OpenID Connect Back-Channel Logout 1.0 endpoint. */
  backchannel_logout_uri_suffix?: string | null;
  // failure handling
  unauthorized_error_message?: string | null;
  forbidden_error_message?: string | null;
  unauthorized_redirect_uri?: readonly string[] | null;
  forbidden_redirect_uri?: readonly string[] | null;
  unexpected_redirect_uri?: readonly string[] | null;
  display_errors?: boolean | null;
  expose_error_code?: boolean | null;
  // session
  session_secret?: string | readonly string[] | null;
  session_storage?: 'cookie' | 'redis' | 'memcache' | 'memcached' | null;
  session_cookie_name?: string | null;
  session_cookie_path?: string | null;
  session_cookie_domain?: string | null;
  session_cookie_same_site?: SameSite | null;
  session_cookie_http_only?: boolean | null;
  session_cookie_secure?: boolean | null;
  session_rolling_timeout?: number | null;
  session_idling_timeout?: number | null;
  session_absolute_timeout?: number | null;
  session_remember?: boolean | null;
  session_remember_cookie_name?: string | null;
  session_remember_rolling_timeout?: number | null;
  session_remember_absolute_timeout?: number | null;
  session_audience?: string | null;
  disable_session?: readonly string[] | null;
  refresh_tokens?: boolean | null;
  redis?: RedisRecord | null;
  session_store_metadata?: boolean | null;
  session_enforce_same_subject?: boolean | null;
  session_hash_subject?: boolean | null;
  session_hash_storage_key?: boolean | null;
  session_bind?: readonly SessionBind[] | null;
  session_memcached_prefix?: string | null;
  session_memcached_socket?: string | null;
  session_memcached_host?: string | null;
  session_memcached_port?: number | null;
  session_memcached_ssl?: boolean | null;
  session_memcached_ssl_verify?: boolean | null;
}

/** `session_bind` values: what a session is tied to (lua-resty-session `bind`). */
export type SessionBind = 'ip' | 'scheme' | 'user-agent';

/** Kong's `session_memcached_*` fields (session storage in memcached). */
export interface MemcachedSettings {
  prefix: string | null;
  host: string;
  port: number;
  ssl: boolean;
  sslVerify: boolean;
}

export interface CookieSettings {
  name: string;
  path: string;
  domain: string | null;
  sameSite: SameSite;
  httpOnly: boolean;
  /** null = follow the request scheme. */
  secure: boolean | null;
}

export interface LoginSettings {
  action: 'upstream' | 'response' | 'redirect';
  methods: readonly string[];
  tokens: readonly string[];
  redirectMode: 'fragment' | 'query';
  redirectUri: readonly string[];
  preserveQueryArgs: boolean;
}

/** `login_*` with Kong's defaults (login.ts applies them). */
export function loginSettings(c: BrowserConfig): LoginSettings {
  return {
    action: c.login_action ?? 'upstream',
    methods: c.login_methods ?? ['authorization_code'],
    // null means "no tokens" (the how-to sets it to keep tokens out of the address bar)
    tokens: c.login_tokens === undefined ? ['id_token'] : c.login_tokens ? [...c.login_tokens] : [],
    redirectMode: c.login_redirect_mode ?? 'fragment',
    redirectUri: c.login_redirect_uri ? [...c.login_redirect_uri] : [],
    preserveQueryArgs: c.preserve_query_args ?? false,
  };
}

/** Config with Kong's defaults applied; read by every module of this folder. */
export interface ResolvedConfig {
  clientIds: readonly string[];
  responseMode: string;
  responseType: string;
  scopes: readonly string[];
  audience: readonly string[];
  redirectUri: readonly string[];
  authorizationArgs: readonly (readonly [string, string])[];
  authorizationArgsClient: readonly string[];
  preserveQueryArgs: boolean;
  verifyNonce: boolean;
  pkce: boolean | null;
  /** null = follow discovery's require_pushed_authorization_requests */
  par: boolean | null;
  /** null = follow discovery's require_signed_request_object (JAR, RFC 9101) */
  jar: boolean | null;
  maxAge: number | null;
  authCookie: CookieSettings;
  /** seconds */
  authorizationRollingTimeout: number;
  login: LoginSettings;
  loginAction: 'upstream' | 'response' | 'redirect';
  loginMethods: readonly string[];
  loginTokens: readonly string[];
  loginRedirectMode: 'fragment' | 'query';
  loginRedirectUri: readonly string[];
  searchUserInfo: boolean;
  logoutMethods: readonly string[];
  logoutQueryArg: string | null;
  logoutPostArg: string | null;
  logoutUriSuffix: string | null;
  logoutRedirectUri: readonly string[];
  logoutRevoke: boolean;
  logoutRevokeAccessToken: boolean;
  logoutRevokeRefreshToken: boolean;
  endSessionEndpoint: string | null;
  backchannelLogoutUriSuffix: string | null;
  unauthorizedMessage: string;
  forbiddenMessage: string;
  unauthorizedRedirectUri: readonly string[];
  forbiddenRedirectUri: readonly string[];
  unexpectedRedirectUri: readonly string[];
  displayErrors: boolean;
  exposeErrorCode: boolean;
  /** index 0 seals; every entry unseals (rotation). Empty = generate one per instance. */
  secrets: readonly string[];
  /** Where session data lives: in the cookie, or server-side (only a reference in the cookie). */
  storage: 'cookie' | 'redis' | 'memcached';
  /** Session records, and the metadata below, in a server-side store (redis or memcached). */
  serverSide: boolean;
  /** `session_store_metadata`: the ids of the sessions of each subject and audience are kept in the store. */
  storeMetadata: boolean;
  /** `session_hash_subject`: the subject in those metadata keys is hashed. */
  hashSubject: boolean;
  /** `session_hash_storage_key`: the store key of a record is a hash of the session id (in the cookie only). */
  hashStorageKey: boolean;
  /** `session_enforce_same_subject` */
  enforceSameSubject: boolean;
  /** `session_bind`: request facts a session is bound to. */
  bind: readonly SessionBind[];
  memcached: MemcachedSettings;
  sessionCookie: CookieSettings;
  rememberCookie: CookieSettings;
  /** seconds; 0 disables the check */
  rollingTimeout: number;
  idlingTimeout: number;
  absoluteTimeout: number;
  remember: boolean;
  rememberRollingTimeout: number;
  rememberAbsoluteTimeout: number;
  sessionAudience: string;
  disableSession: readonly string[];
  refreshTokens: boolean;
  redis: RedisRecord | null;
}

function list(v: readonly string[] | null | undefined): readonly string[] {
  return v ? [...v] : [];
}

function num(v: number | null | undefined, d: number): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : d;
}

/** Pick the per-client entry (§3.2): index i, else the first entry, else null. */
export function perClient(values: readonly string[], index: number): string | null {
  return values[index] ?? values[0] ?? null;
}

/**
 * The session settings that cannot work, as `{path, message}` pairs (paths relative to `config`).
 * The same checks run when a config is validated (Admin API, `config validate`, a declarative
 * file: see the plugin's `check`) and when the browser flows are built, so a config the Admin API
 * accepted is never refused by the workers afterwards.
 */
export function sessionSettingsIssues(c: BrowserConfig, workers: number, database: 'off' | 'sqlite' | 'postgres' = 'off'): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const secrets = c.session_secret == null ? [] : typeof c.session_secret === 'string' ? [c.session_secret] : [...c.session_secret];
  if (secrets.some((s) => s.length === 0)) issues.push({ path: 'session_secret', message: 'length must be at least 1' });
  // No secret needed: one is generated per node and shared by its workers (Kong's per-node
  // behaviour; see createBrowserFlows). `workers` and `database` stay for checks that depend on them.
  void workers;
  void database;
  const storageIn = c.session_storage ?? 'cookie';
  const serverSide = storageIn !== 'cookie';
  if (c.session_memcached_socket) {
    issues.push({ path: 'session_memcached_socket', message: 'not supported: the memcached client connects over TCP (session_memcached_host/port, optionally TLS)' });
  }
  // lua-resty-session keeps these only in a server-side store; with cookie storage they would do nothing.
  if (c.session_store_metadata && !serverSide) issues.push({ path: 'session_store_metadata', message: 'needs server-side session_storage (redis or memcached)' });
  if (c.session_hash_storage_key && !serverSide) issues.push({ path: 'session_hash_storage_key', message: 'needs server-side session_storage (redis or memcached)' });
  if (c.session_hash_subject && !c.session_store_metadata) issues.push({ path: 'session_hash_subject', message: 'applies only with session_store_metadata: true' });
  if (storageIn === 'redis' && !c.redis) issues.push({ path: 'redis', message: 'session_storage=redis needs a redis record (host, socket, sentinel_nodes or cluster_nodes)' });
  const names = c.authorization_query_args_names ?? [];
  const values = c.authorization_query_args_values ?? [];
  if (names.length !== values.length) issues.push({ path: 'authorization_query_args_values', message: 'must have as many entries as authorization_query_args_names' });
  const sessionCookieName = c.session_cookie_name ?? 'session';
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(sessionCookieName)) issues.push({ path: 'session_cookie_name', message: 'not a valid cookie name' });
  return issues;
}

/**
 * Apply Kong's defaults (reference §2.4–2.8) and check the session settings.
 * Throws an Error whose message names the field for settings that cannot work.
 */
export function resolveConfig(c: BrowserConfig, workers: number, database: 'off' | 'sqlite' | 'postgres' = 'off'): ResolvedConfig {
  const problems = sessionSettingsIssues(c, workers, database).map((i) => `${i.path}: ${i.message}`);
  if (problems.length > 0) throw new Error(`openid-connect: invalid session settings:\n${problems.join('\n')}`);
  const secrets = c.session_secret == null ? [] : typeof c.session_secret === 'string' ? [c.session_secret] : [...c.session_secret];
  const storage: 'cookie' | 'redis' | 'memcached' = c.session_storage === 'redis' ? 'redis' : c.session_storage === 'memcache' || c.session_storage === 'memcached' ? 'memcached' : 'cookie';
  const sessionCookieName = c.session_cookie_name ?? 'session';
  const names = c.authorization_query_args_names ?? [];
  const values = c.authorization_query_args_values ?? [];
  const login = loginSettings(c);

  const sessionCookie: CookieSettings = {
    name: sessionCookieName,
    path: c.session_cookie_path ?? '/',
    domain: c.session_cookie_domain ?? null,
    sameSite: c.session_cookie_same_site ?? 'Lax',
    httpOnly: c.session_cookie_http_only ?? true,
    secure: c.session_cookie_secure ?? null,
  };
  return {
    clientIds: list(c.client_id),
    responseMode: c.response_mode ?? 'query',
    responseType: (c.response_type ?? ['code']).join(' '),
    scopes: c.scopes ?? ['openid'],
    audience: list(c.audience),
    redirectUri: list(c.redirect_uri),
    authorizationArgs: names.map((n, i) => [n, values[i]] as const),
    authorizationArgsClient: list(c.authorization_query_args_client),
    preserveQueryArgs: c.preserve_query_args ?? false,
    verifyNonce: c.verify_nonce ?? true,
    pkce: c.require_proof_key_for_code_exchange ?? null,
    par: c.require_pushed_authorization_requests ?? null,
    jar: c.require_signed_request_object ?? null,
    maxAge: c.max_age ?? null,
    authCookie: {
      name: c.authorization_cookie_name ?? 'authorization',
      path: c.authorization_cookie_path ?? '/',
      domain: c.authorization_cookie_domain ?? null,
      sameSite: c.authorization_cookie_same_site ?? 'Default',
      httpOnly: c.authorization_cookie_http_only ?? true,
      secure: c.authorization_cookie_secure ?? null,
    },
    authorizationRollingTimeout: num(c.authorization_rolling_timeout, 600),
    login,
    loginAction: login.action,
    loginMethods: login.methods,
    loginTokens: login.tokens,
    loginRedirectMode: login.redirectMode,
    loginRedirectUri: login.redirectUri,
    searchUserInfo: c.search_user_info ?? false,
    logoutMethods: (c.logout_methods ?? ['POST', 'DELETE']).map((m) => m.toUpperCase()),
    logoutQueryArg: c.logout_query_arg ?? null,
    logoutPostArg: c.logout_post_arg ?? null,
    logoutUriSuffix: c.logout_uri_suffix ?? null,
    logoutRedirectUri: list(c.logout_redirect_uri),
    logoutRevoke: c.logout_revoke ?? false,
    logoutRevokeAccessToken: c.logout_revoke_access_token ?? true,
    logoutRevokeRefreshToken: c.logout_revoke_refresh_token ?? true,
    endSessionEndpoint: c.end_session_endpoint ?? null,
    backchannelLogoutUriSuffix: c.backchannel_logout_uri_suffix ?? null,
    unauthorizedMessage: c.unauthorized_error_message ?? 'Unauthorized',
    forbiddenMessage: c.forbidden_error_message ?? 'Forbidden',
    unauthorizedRedirectUri: list(c.unauthorized_redirect_uri),
    forbiddenRedirectUri: list(c.forbidden_redirect_uri),
    unexpectedRedirectUri: list(c.unexpected_redirect_uri),
    displayErrors: c.display_errors ?? false,
    exposeErrorCode: c.expose_error_code ?? true,
    secrets,
    storage,
    serverSide: storage !== 'cookie',
    storeMetadata: c.session_store_metadata ?? false,
    hashSubject: c.session_hash_subject ?? false,
    hashStorageKey: c.session_hash_storage_key ?? false,
    enforceSameSubject: c.session_enforce_same_subject ?? false,
    bind: c.session_bind ? [...new Set(c.session_bind)] : [],
    memcached: {
      prefix: c.session_memcached_prefix ?? null,
      host: c.session_memcached_host ?? '127.0.0.1',
      port: c.session_memcached_port ?? 11211,
      ssl: c.session_memcached_ssl ?? false,
      sslVerify: c.session_memcached_ssl_verify ?? true,
    },
    sessionCookie,
    rememberCookie: { ...sessionCookie, name: c.session_remember_cookie_name ?? 'remember' },
    rollingTimeout: num(c.session_rolling_timeout, 3600),
    idlingTimeout: num(c.session_idling_timeout, 900),
    absoluteTimeout: num(c.session_absolute_timeout, 86400),
    remember: c.session_remember ?? false,
    rememberRollingTimeout: num(c.session_remember_rolling_timeout, 604800),
    rememberAbsoluteTimeout: num(c.session_remember_absolute_timeout, 2592000),
    sessionAudience: c.session_audience ?? 'default',
    disableSession: list(c.disable_session),
    refreshTokens: c.refresh_tokens ?? true,
    redis: c.redis ?? null,
  };
}
