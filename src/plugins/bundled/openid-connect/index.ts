/**
 * The `openid-connect` plugin (Kong priority 1050): API-client authentication against an OpenID
 * Provider — JWT bearer, introspection, user info, refresh token, password and client credentials
 * grants — with claims-based authorization, consumer mapping and upstream/downstream headers.
 * May be attached globally, to a service or to a route (never to a consumer).
 */
import { definePlugin, HTTP_PROTOCOLS } from '../../sdk.ts';
import type { PluginAdminRoute } from '../../sdk.ts';
import { oidcConfigSchema, oidcShorthands } from './schema.ts';
import { sessionSettingsIssues } from './browser/config.ts';
import type { OidcConfig } from './schema.ts';
import { createOidc } from './create.ts';
import { deleteGeneratedKeys, publicGeneratedJwks } from './clients.ts';
import { deleteAllIssuers, deleteIssuer, findIssuer, listIssuers } from './admin-issuers.ts';

export type { OidcConfig } from './schema.ts';

const notFound = { status: 404, body: { message: 'Not found' } };

/**
 * GET/DELETE /openid-connect/issuers[/{id or issuer}] (the discovery cache, reference §7.3) and
 * GET/DELETE /openid-connect/jwks (the public part of the plugin-generated private_key_jwt keys).
 */
const adminRoutes: PluginAdminRoute[] = [
  {
    method: 'GET',
    path: '/openid-connect/issuers',
    async handler(_req, deps) {
      return { status: 200, body: { data: await listIssuers(deps.sharedKv), next: null } };
    },
  },
  {
    method: 'DELETE',
    path: '/openid-connect/issuers',
    async handler(_req, deps) {
      await deleteAllIssuers(deps.sharedKv);
      return { status: 204 };
    },
  },
  {
    method: 'GET',
    path: '/openid-connect/issuers/*',
    async handler(req, deps) {
      const found = await findIssuer(deps.sharedKv, issuerParam(req.params));
      return found ? { status: 200, body: found } : notFound;
    },
  },
  {
    method: 'DELETE',
    path: '/openid-connect/issuers/*',
    async handler(req, deps) {
      return (await deleteIssuer(deps.sharedKv, issuerParam(req.params))) ? { status: 204 } : notFound;
    },
  },
  {
    method: 'GET',
    path: '/openid-connect/jwks',
    async handler(_req, deps) {
      const jwks = await publicGeneratedJwks(deps.sharedKv);
      if (!jwks) return notFound;
      return { status: 200, body: jwks, headers: { 'content-type': 'application/jwk-set+json' } };
    },
  },
  {
    method: 'DELETE',
    path: '/openid-connect/jwks',
    async handler(_req, deps) {
      // The next private_key_jwt call generates a fresh key: a key rotation.
      await deleteGeneratedKeys(deps.sharedKv);
      return { status: 204 };
    },
  },
];

/** The `{id or issuer}` path part: a wildcard, since an issuer URL contains slashes. */
function issuerParam(params: Record<string, string>): string {
  const raw = params['*'] ?? '';
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

export const openidConnectPlugin = definePlugin<OidcConfig>({
  name: 'openid-connect',
  version: '0.1.0',
  priority: 1050,
  // Kong's schema: protocols_http.
  protocols: HTTP_PROTOCOLS,
  schema: oidcConfigSchema,
  scopes: { global: true, service: true, route: true, consumer: false },
  // openid-connect is a Kong Enterprise plugin: its schema.lua is not in Kong's OSS source, so
  // its entity_checks are not known here and none are shown (not guessed).
  kongEntityChecks: [],
  shorthands: oidcShorthands,
  // The session settings the browser flows would refuse at build time (browser/config.ts).
  check: (config, node) =>
    config.auth_methods?.includes('session') || config.auth_methods?.includes('authorization_code') ? sessionSettingsIssues(config, node.workers, node.database) : [],
  create: (config, deps) => createOidc(config, deps),
  adminRoutes,
});

export default openidConnectPlugin;
