/**
 * oauth2 — Kong's OAuth 2.0 provider plugin (priority 1400). Any routed request whose path ends
 * with `/oauth2/authorize` or `/oauth2/token` (a trailing slash allowed) is answered by the
 * plugin: the authorization code grant (with `provision_key`, `authenticated_userid` and PKCE per
 * `pkce`), the implicit grant, client credentials, password and refresh tokens, per the
 * `enable_*` flags. Every other request must carry an access token the plugin issued (the
 * `auth_header_name` header, else `access_token` in the query or body). Kong's parameter names,
 * check order ("later failing checks overwrite earlier ones"), error bodies
 * (`error`, `error_description`) and statuses throughout; see docs/plugins.md#oauth2.
 *
 * Tokens and codes live in the node's shared store (plugins/oauth2-tokens.ts): the plugin needs a
 * database and is refused in DB-less mode, as Kong's is.
 */
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { definePlugin, type PluginAdminRoute, type RequestContext, type Reply, HTTP_PROTOCOLS, between } from '../../sdk.ts';
import { authAccess, ownerOf, setIdentity, type AttemptResult, type AuthFailure } from '../../auth.ts';
import { OAuth2TokenStore, tokenLive, type OAuth2Token } from '../../oauth2-tokens.ts';
import { verifyClientSecret } from '../../../password-hash.ts';
import type { OAuth2Credential } from '../../../config/credentials.ts';

export const oauth2Schema = z
  .strictObject({
    scopes: z.array(z.string()).nullable().default(null),
    mandatory_scope: z.boolean().default(false),
    // Kong: `auto` (generated when not given) and `encrypted`: its schema shows no default (kong-schema.ts).
    provision_key: z.string().min(1).default(() => randomBytes(16).toString('hex')).meta({ auto: true, encrypted: true }),
    token_expiration: z.number().min(0).default(7200),
    enable_authorization_code: z.boolean().default(false),
    enable_implicit_grant: z.boolean().default(false),
    enable_client_credentials: z.boolean().default(false),
    enable_password_grant: z.boolean().default(false),
    hide_credentials: z.boolean().default(false),
    accept_http_if_already_terminated: z.boolean().default(false),
    anonymous: z.string().min(1).nullable().default(null),
    global_credentials: z.boolean().default(false),
    auth_header_name: z.string().min(1).default('authorization'),
    refresh_token_ttl: between(z.number(), 0, 100000000).default(1209600),
    reuse_refresh_token: z.boolean().default(false),
    pkce: z.enum(['none', 'lax', 'strict']).default('lax'),
    realm: z.string().nullable().default(null),
    persistent_refresh_token: z.boolean().default(false),
  })
  .superRefine((c, issues) => {
    if (c.persistent_refresh_token) {
      // Kong OSS has no such field (its own docs dropped it as nonexistent: Kong/kong#8348,
      // Kong/docs.konghq.com#3602); reuse_refresh_token is what keeps a refresh token.
      issues.addIssue({ code: 'custom', path: ['persistent_refresh_token'], message: 'not supported: Kong Gateway OSS has no such setting (only false is accepted); use reuse_refresh_token to keep the refresh token across refreshes' });
    }
    // Kong's conditional (mandatory_scope → scopes required): only an unset list fails it.
    if (c.mandatory_scope && c.scopes === null) {
      issues.addIssue({ code: 'custom', path: ['scopes'], message: 'required field missing' });
    }
    if (!c.enable_authorization_code && !c.enable_implicit_grant && !c.enable_client_credentials && !c.enable_password_grant) {
      // Kong's custom_validator of the config record, word for word (no quotes around the names).
      issues.addIssue({
        code: 'custom',
        path: [],
        message: 'at least one of these fields must be true: enable_authorization_code, enable_implicit_grant, enable_client_credentials, enable_password_grant',
      });
    }
  });

export type OAuth2Config = z.infer<typeof oauth2Schema>;

type Params = Record<string, unknown>;
type OAuthError = { error: string; error_description: string };

const INVALID_CLIENT: OAuthError = { error: 'invalid_client', error_description: 'Invalid client authentication' };
const BAD_REDIRECT: OAuthError = { error: 'invalid_request', error_description: 'Invalid redirect_uri that does not match with any redirect_uri created with the application' };
const INVALID_CODE: OAuthError = { error: 'invalid_request', error_description: 'Invalid code' };
const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };
const TOKEN_INVALID = 'The access token is invalid or has expired';

/** Kong's `Bearer realm=…, error=…, error_description=…` challenge. */
export function bearerChallenge(realm: string | null, error?: string, description?: string): string {
  const parts: string[] = [];
  if (realm) parts.push(`realm="${realm}"`);
  if (error) parts.push(`error="${error}"`);
  if (description) parts.push(`error_description="${description}"`);
  return parts.length > 0 ? `Bearer ${parts.join(', ')}` : 'Bearer';
}

/** Query merged with the form or JSON body (body wins), as Kong's retrieve_parameters. */
async function parameters(ctx: RequestContext): Promise<Params> {
  const out: Params = {};
  for (const [k, v] of ctx.request.query) if (!(k in out)) out[k] = v;
  const m = ctx.request.method;
  if (m === 'POST' || m === 'PUT' || m === 'PATCH') {
    const form = await ctx.request.form();
    if (form !== null) for (const [k, v] of form) out[k] = v;
    else {
      const json = await ctx.request.json();
      if (json !== null && typeof json === 'object' && !Array.isArray(json)) Object.assign(out, json);
    }
  }
  return out;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function endpointOf(path: string): 'token' | 'authorize' | null {
  const p = path.endsWith('/') ? path.slice(0, -1) : path;
  if (p.endsWith('/oauth2/token')) return 'token';
  if (p.endsWith('/oauth2/authorize')) return 'authorize';
  return null;
}

const sha256url = (v: string): string => createHash('sha256').update(v).digest('base64url');

const tokenNotFound = { status: 404, body: { message: 'Not found' } };

/** `/oauth2_tokens/{id or access_token}`. */
async function findToken(store: OAuth2TokenStore, key: string): Promise<OAuth2Token | null> {
  return (await store.byId(key)) ?? (await store.byAccessToken(key));
}

/** Kong's `/oauth2_tokens` endpoints over the tokens in the shared store. */
const adminRoutes: PluginAdminRoute[] = [
  {
    method: 'GET',
    path: '/oauth2_tokens',
    async handler(req, deps) {
      const size = req.query.size === undefined ? 100 : Number(req.query.size);
      if (!Number.isInteger(size) || size < 1 || size > 1000) return { status: 400, body: { code: 9, name: 'invalid size', message: 'size must be an integer between 1 and 1000' } };
      const page = await new OAuth2TokenStore(deps.sharedKv, Date.now).list(req.query.offset ?? null, size);
      const next = page.offset === null ? null : `/oauth2_tokens?offset=${encodeURIComponent(page.offset)}${req.query.size ? `&size=${size}` : ''}`;
      return { status: 200, body: { data: page.data, offset: page.offset, next } };
    },
  },
  {
    method: 'GET',
    path: '/oauth2_tokens/:token',
    async handler(req, deps) {
      const t = await findToken(new OAuth2TokenStore(deps.sharedKv, Date.now), req.params.token);
      return t === null ? tokenNotFound : { status: 200, body: t };
    },
  },
  {
    method: 'DELETE',
    path: '/oauth2_tokens/:token',
    async handler(req, deps) {
      const store = new OAuth2TokenStore(deps.sharedKv, Date.now);
      const t = await findToken(store, req.params.token);
      if (t !== null) await store.delete(t);
      return { status: 204 };
    },
  },
];

export default definePlugin<OAuth2Config>({
  name: 'oauth2',
  adminRoutes,
  version: '0.1.0',
  priority: 1400,
  // Kong's schema: protocols_http.
  protocols: HTTP_PROTOCOLS,
  schema: oauth2Schema,
  scopes: { consumer: false },
  // Kong's plugin schema has no entity_checks of its own: its one check (mandatory_scope →
  // scopes required) is declared inside the `config` record (kong/plugins/oauth2/schema.lua).
  kongEntityChecks: [],
  check(_config, node) {
    if ((node.database ?? 'off') === 'off') {
      return [{ path: '', message: "the oauth2 plugin needs a database (it writes tokens and codes per request): it cannot be used in DB-less mode (database = off)" }];
    }
    return [];
  },
  create(conf, deps) {
    const store = new OAuth2TokenStore(deps.sharedKv, deps.now);
    const pluginId = deps.entity.id;
    const realm = conf.realm;
    const refreshTtl = conf.refresh_token_ttl > 0 ? conf.refresh_token_ttl : null;
    const rowTtl = conf.token_expiration > 0 ? refreshTtl : null;

    const isHttps = (ctx: RequestContext): { ok: true } | { ok: false; err?: string } => {
      const xfp = ctx.request.headers['x-forwarded-proto'];
      if (conf.accept_http_if_already_terminated) {
        if (typeof xfp === 'string' && xfp.includes(',')) return { ok: false, err: 'Only one X-Forwarded-Proto header allowed' };
        return ctx.request.scheme === 'https' ? { ok: true } : { ok: false };
      }
      // Without the setting only a TLS connection to the gateway counts, not a forwarded scheme.
      return ctx.request.scheme === 'https' && xfp === undefined ? { ok: true } : { ok: false };
    };

    const scopeOf = (p: Params): { scope: string | null } | OAuthError => {
      const scope = p.scope;
      if (conf.scopes !== null && scope !== undefined) {
        if (typeof scope !== 'string') return { error: 'invalid_scope', error_description: 'scope must be a string' };
        const list: string[] = [];
        for (const v of scope.split(/\s+/).filter(Boolean)) {
          if (!conf.scopes.includes(v)) return { error: 'invalid_scope', error_description: `"${v}" is an invalid scope` };
          list.push(v);
        }
        return { scope: list.length > 0 ? list.join(' ') : null };
      }
      if (scope === undefined && conf.mandatory_scope) return { error: 'invalid_scope', error_description: 'You must specify a scope' };
      return { scope: null };
    };

    const requiresPkce = (client: OAuth2Credential | null, usedPkce: boolean): boolean =>
      client !== null && (usedPkce || (client.client_type === 'public' && conf.pkce !== 'none') || (client.client_type === 'confidential' && conf.pkce === 'strict'));

    const clientById = (ctx: RequestContext, clientId: unknown): OAuth2Credential | null => {
      if (typeof clientId !== 'string' || clientId === '') return null;
      const c = ctx.entities.oauth2ByClientId(clientId);
      return c !== null && ownerOf(ctx, c) !== null ? c : null;
    };

    const serviceId = (ctx: RequestContext): string | null => (conf.global_credentials ? null : ctx.service?.id ?? null);

    const generate = async (ctx: RequestContext, client: OAuth2Credential, userid: string | null, scope: string | null, state: unknown, disableRefresh: boolean, existing?: OAuth2Token): Promise<Params> => {
      const exp = conf.token_expiration;
      let token: OAuth2Token;
      if (existing !== undefined && conf.reuse_refresh_token) token = await store.renew(existing, exp, rowTtl);
      else {
        const refresh = !disableRefresh && exp > 0 ? randomBytes(24).toString('base64url') : null;
        const sid = serviceId(ctx);
        token = await store.issue({ service: sid === null ? null : { id: sid }, credential: { id: client.id }, authenticated_userid: userid, expires_in: exp, refresh_token: refresh, scope, ttl: rowTtl });
      }
      const out: Params = { access_token: token.access_token, token_type: 'bearer' };
      if (exp > 0) out.expires_in = token.expires_in;
      if (token.refresh_token !== null) out.refresh_token = token.refresh_token;
      if (state !== undefined) out.state = state;
      return out;
    };

    const authorize = async (ctx: RequestContext): Promise<Reply> => {
      const p = await parameters(ctx);
      const state = p.state;
      let response: Params = {};
      let redirectUri: string | null = null;
      let implicit = false;
      const https = isHttps(ctx);
      if (!https.ok) response = { error: 'access_denied', error_description: https.err ?? 'You must use HTTPS' };
      else if (p.provision_key !== conf.provision_key) response = { error: 'invalid_provision_key', error_description: 'Invalid provision_key' };
      else if (typeof p.authenticated_userid !== 'string' || p.authenticated_userid.trim() === '') {
        response = { error: 'invalid_authenticated_userid', error_description: 'Missing authenticated_userid parameter' };
      } else {
        const responseType = p.response_type;
        if (!((responseType === 'code' && conf.enable_authorization_code) || (conf.enable_implicit_grant && responseType === 'token'))) {
          response = { error: 'unsupported_response_type', error_description: 'Invalid response_type' };
        }
        const scope = scopeOf(p);
        if ('error' in scope) response = scope;
        const client = clientById(ctx, p.client_id);
        const allowed = client?.redirect_uris ?? null;
        if (client === null || allowed === null || allowed.length === 0) response = INVALID_CLIENT;
        else {
          redirectUri = str(p.redirect_uri) ?? allowed[0];
          if (!allowed.includes(redirectUri)) {
            response = BAD_REDIRECT;
            redirectUri = allowed[0];
          }
        }
        const challenge = str(p.code_challenge) ?? null;
        let method = str(p.code_challenge_method) ?? null;
        if (method !== null && challenge === null) response = { error: 'invalid_request', error_description: 'code_challenge is required when code_method is present' };
        else if (method !== null && method !== 'S256' && method !== 's256') response = { error: 'invalid_request', error_description: 'code_challenge_method is not supported, must be S256' };
        else if (client !== null && challenge === null && requiresPkce(client, false)) {
          response = { error: 'invalid_request', error_description: `code_challenge is required for ${client.client_type} clients` };
        }
        method = challenge !== null ? 'S256' : null;
        if (!('error' in response) && client !== null && !('error' in scope)) {
          if (responseType === 'code') {
            const sid = serviceId(ctx);
            const code = await store.saveCode({
              service: sid === null ? null : { id: sid }, credential: { id: client.id }, authenticated_userid: p.authenticated_userid as string,
              scope: scope.scope, challenge, challenge_method: method as 'S256' | null, plugin: { id: pluginId },
            });
            response = { code: code.code };
          } else {
            response = await generate(ctx, client, p.authenticated_userid as string, scope.scope, undefined, true);
            implicit = true;
          }
        }
      }
      if (state !== undefined) response.state = state;
      const status = 'error' in response ? 400 : 200;
      if (redirectUri === null) return ctx.reply(status, response, NO_STORE);
      const url = new URL(redirectUri);
      const params = new URLSearchParams(implicit ? url.hash.slice(1) : url.search);
      for (const [k, v] of Object.entries(response)) if (v !== undefined && v !== null) params.set(k, String(v));
      if (implicit) url.hash = params.toString();
      else url.search = params.toString();
      return ctx.reply(status, { redirect_uri: url.toString() }, NO_STORE);
    };

    const clientCredentials = (ctx: RequestContext, p: Params): { id: unknown; secret: unknown; fromHeader: boolean } => {
      if (p.client_id !== undefined && p.client_secret !== undefined) return { id: p.client_id, secret: p.client_secret, fromHeader: false };
      const header = ctx.request.header(conf.auth_header_name);
      if (header !== undefined) {
        const m = /[Bb]asic\s*(.+)/.exec(header);
        if (m !== null) {
          const decoded = Buffer.from(m[1].trim(), 'base64').toString('utf8');
          const i = decoded.indexOf(':');
          return i < 0 ? { id: decoded, secret: undefined, fromHeader: true } : { id: decoded.slice(0, i), secret: decoded.slice(i + 1), fromHeader: true };
        }
        return { id: undefined, secret: undefined, fromHeader: true };
      }
      return { id: p.client_id, secret: undefined, fromHeader: false };
    };

    const secretMatches = async (client: OAuth2Credential, given: unknown): Promise<boolean> => {
      if (typeof given !== 'string') return false;
      if (client.hash_secret) return verifyClientSecret(given, client.client_secret);
      return given === client.client_secret;
    };

    const issueToken = async (ctx: RequestContext): Promise<Reply> => {
      const p = await parameters(ctx);
      const state = p.state;
      let response: Params = {};
      let unauthorizedHeader = false;
      const https = isHttps(ctx);
      if (!https.ok) response = { error: 'access_denied', error_description: https.err ?? 'You must use HTTPS' };
      else {
        const grant = p.grant_type;
        if (!(grant === 'authorization_code' || grant === 'refresh_token' || (conf.enable_client_credentials && grant === 'client_credentials') || (conf.enable_password_grant && grant === 'password'))) {
          response = { error: 'unsupported_grant_type', error_description: 'Invalid grant_type' };
        }
        const creds = clientCredentials(ctx, p);
        const client = clientById(ctx, creds.id);
        const allowed = client?.redirect_uris ?? null;
        if (grant !== 'client_credentials') {
          if (allowed !== null && allowed.length > 0) {
            const redirect = str(p.redirect_uri) ?? allowed[0];
            if (!allowed.includes(redirect)) response = BAD_REDIRECT;
          } else {
            response = INVALID_CLIENT;
            unauthorizedHeader = creds.fromHeader;
          }
        }
        if (client !== null) {
          if (client.client_type === 'confidential') {
            if (!(await secretMatches(client, creds.secret))) {
              response = INVALID_CLIENT;
              unauthorizedHeader = creds.fromHeader;
            }
          } else if (typeof creds.secret === 'string' && creds.secret.trim() !== '') {
            response = { error: 'invalid_request', error_description: 'client_secret is disallowed for public clients' };
          }
        }
        if (!('error' in response)) {
          if (grant === 'authorization_code') response = await codeGrant(ctx, p, client!, state);
          else if (grant === 'client_credentials') {
            if (p.authenticated_userid !== undefined && p.provision_key !== conf.provision_key) response = { error: 'invalid_provision_key', error_description: 'Invalid provision_key' };
            else if (client === null) response = INVALID_CLIENT;
            else {
              const scope = scopeOf(p);
              response = 'error' in scope ? scope : await generate(ctx, client, str(p.authenticated_userid) ?? null, scope.scope, state, true);
            }
          } else if (grant === 'password') {
            if (p.provision_key !== conf.provision_key) response = { error: 'invalid_provision_key', error_description: 'Invalid provision_key' };
            else if (typeof p.authenticated_userid !== 'string' || p.authenticated_userid.trim() === '') {
              response = { error: 'invalid_authenticated_userid', error_description: 'Missing authenticated_userid parameter' };
            } else {
              const scope = scopeOf(p);
              response = 'error' in scope ? scope : await generate(ctx, client!, p.authenticated_userid, scope.scope, state, false);
            }
          } else if (grant === 'refresh_token') response = await refreshGrant(ctx, p, client!, state);
        }
      }
      if (state !== undefined) response.state = state;
      const failed = 'error' in response;
      const status = failed ? (unauthorizedHeader ? 401 : 400) : 200;
      const headers: Record<string, string> = unauthorizedHeader && failed ? { ...NO_STORE, 'www-authenticate': 'Basic realm="OAuth2.0"' } : NO_STORE;
      return ctx.reply(status, response, headers);
    };

    const codeGrant = async (ctx: RequestContext, p: Params, client: OAuth2Credential, state: unknown): Promise<Params> => {
      const code = str(p.code);
      const sid = serviceId(ctx);
      const found = code !== undefined ? await store.code(code) : null;
      if (found === null || (sid !== null && found.service?.id !== sid) || found.credential.id !== client.id) return INVALID_CODE;
      if (requiresPkce(client, found.challenge_method !== null)) {
        const verifier = p.code_verifier;
        if (verifier === undefined) return { error: 'invalid_request', error_description: 'code_verifier is required for PKCE authorization requests' };
        if (typeof verifier !== 'string') return { error: 'invalid_request', error_description: 'code_verifier is not a string' };
        if (verifier.length < 43 || verifier.length > 128) return { error: 'invalid_request', error_description: 'code_verifier must be between 43 and 128 characters' };
        if (found.challenge === null || sha256url(verifier) !== found.challenge) return { error: 'invalid_grant', error_description: 'Invalid code' };
      }
      if (conf.global_credentials && found.plugin.id !== pluginId) return INVALID_CODE;
      // Used up here: of two concurrent exchanges of one code, only one gets a token.
      if (!(await store.consumeCode(found.code))) return INVALID_CODE;
      return generate(ctx, client, found.authenticated_userid, found.scope, state, false);
    };

    const refreshGrant = async (ctx: RequestContext, p: Params, client: OAuth2Credential, state: unknown): Promise<Params> => {
      const rt = str(p.refresh_token);
      const sid = serviceId(ctx);
      const token = rt !== undefined ? await store.byRefreshToken(rt) : null;
      if (token === null || (sid !== null && token.service?.id !== sid)) return { error: 'invalid_request', error_description: 'Invalid refresh_token' };
      if (token.credential.id !== client.id) return INVALID_CLIENT;
      if (token.scope !== null) {
        for (const s of token.scope.split(/\s+/).filter(Boolean)) {
          if (!(conf.scopes ?? []).includes(s)) return { error: 'invalid_scope', error_description: 'Scope mismatch' };
        }
      }
      const out = await generate(ctx, client, token.authenticated_userid, token.scope, state, false, token);
      if (!conf.reuse_refresh_token) await store.delete(token);
      return out;
    };

    // --- API calls: the access token -------------------------------------------------------
    const missing: AuthFailure = { status: 401, body: { error: 'invalid_request', error_description: 'The access token is missing' }, headers: { 'www-authenticate': bearerChallenge(realm) } };
    const invalid: AuthFailure = { status: 401, body: { error: 'invalid_token', error_description: TOKEN_INVALID }, headers: { 'www-authenticate': bearerChallenge(realm, 'invalid_token', TOKEN_INVALID) } };
    const globalToken: AuthFailure = {
      status: 401,
      body: { error: 'invalid_token', error_description: "The access token is global, but the current plugin is configured without 'global_credentials'" },
      headers: { 'www-authenticate': bearerChallenge(realm, 'invalid_token', TOKEN_INVALID) },
    };

    const accessTokenOf = async (ctx: RequestContext): Promise<string | undefined> => {
      const header = ctx.request.header(conf.auth_header_name);
      if (header !== undefined) {
        const parts = header.split(/\s+/).filter(Boolean);
        const scheme = parts[0]?.toLowerCase();
        const fromHeader = parts.length === 2 && (scheme === 'bearer' || scheme === 'token');
        if (conf.hide_credentials && fromHeader) ctx.upstream.removeHeader(conf.auth_header_name);
        return fromHeader ? parts[1] : header;
      }
      const p = await parameters(ctx);
      const token = p.access_token;
      if (typeof token !== 'string') return undefined;
      if (conf.hide_credentials) {
        ctx.upstream.query.delete('access_token');
        const form = ctx.request.method !== 'GET' ? await ctx.request.form() : null;
        if (form !== null && form.has('access_token')) {
          const copy = new URLSearchParams(form);
          copy.delete('access_token');
          ctx.upstream.setBody(copy.toString(), 'application/x-www-form-urlencoded');
        }
      }
      return token;
    };

    const attempt = async (ctx: RequestContext): Promise<AttemptResult> => {
      const at = await accessTokenOf(ctx);
      if (at === undefined || at === '') return missing;
      const token = await store.byAccessToken(at);
      if (token === null) return invalid;
      if (!conf.global_credentials && token.service === null) return globalToken;
      if (token.service !== null && token.service.id !== ctx.service?.id) return invalid;
      if (!tokenLive(token, ctx.now())) return invalid;
      const credential = ctx.entities.oauth2ById(token.credential.id);
      const consumer = credential !== null ? ownerOf(ctx, credential) : null;
      if (credential === null || consumer === null) return invalid;
      setIdentity(ctx, consumer, { id: credential.id, identifier: credential.client_id, consumer: credential.consumer });
      if (token.scope !== null) ctx.upstream.setHeader('x-authenticated-scope', token.scope);
      else ctx.upstream.removeHeader('x-authenticated-scope');
      if (token.authenticated_userid !== null) ctx.upstream.setHeader('x-authenticated-userid', token.authenticated_userid);
      else ctx.upstream.removeHeader('x-authenticated-userid');
      return null;
    };

    const authenticate = authAccess({ anonymous: conf.anonymous }, 'oauth2', (ctx) => {
      return attempt(ctx).then((r) => {
        // The anonymous consumer carries no scope or user id.
        if (r !== null) {
          ctx.upstream.removeHeader('x-authenticated-scope');
          ctx.upstream.removeHeader('x-authenticated-userid');
        }
        return r;
      });
    });

    return {
      access(ctx) {
        const endpoint = endpointOf(ctx.request.path);
        if (endpoint !== null) {
          if (ctx.request.method !== 'POST') {
            const description = `The HTTP method ${ctx.request.method} is invalid for the ${endpoint === 'token' ? 'token' : 'authorization'} endpoint`;
            return ctx.reply(405, { error: 'invalid_method', error_description: description }, { 'www-authenticate': bearerChallenge(realm, 'invalid_method', description) });
          }
          return endpoint === 'token' ? issueToken(ctx) : authorize(ctx);
        }
        if (conf.anonymous !== null && ctx.credential !== null) {
          ctx.upstream.removeHeader('x-authenticated-scope');
          ctx.upstream.removeHeader('x-authenticated-userid');
          return;
        }
        return authenticate(ctx);
      },
    };
  },
});
