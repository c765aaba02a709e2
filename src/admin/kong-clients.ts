/**
 * What Kong's own clients call beyond the entities Portcullis has: decK (go-kong,
 * go-database-reconciler) and Kong Manager's UI packages (@kong-ui-public/entities-*).
 *
 *   - The default workspace. Kong OSS has exactly one workspace, `default`; the UI packages put
 *     `/{workspace}` in front of every path when configured with one (`/default/services`), EE-style
 *     clients read `/workspaces` and `GET /{ws}/kong`. `GET /workspaces` lists it,
 *     `GET /workspaces/default` answers it, writes are refused. The `/default` path prefix itself
 *     is removed before routing (`stripDefaultWorkspace`, used by index.ts).
 *   - Kong entities Portcullis does not have (keys, key sets, vaults, hmac-auth credentials,
 *     filter chains, partials): the lists answer empty in Kong's shape, so a decK dump and the UI's
 *     list pages work; one entity by id is 404; every write is refused with 405 and Kong's
 *     `operation unsupported` body naming the entity, never accepted and ignored.
 */
import type { FastifyInstance } from 'fastify';
import { AdminError, adminErrorCodes, notFound } from './errors.ts';
import { endpoint, listOptions, type RouteDeps } from './routes.ts';

/** The default workspace's id: fixed, so every node and every restart answers the same one. */
export const defaultWorkspaceId = '00000000-0000-4000-8000-00000000d3f1';

/**
 * `/default/services` → `/services`, `/default` → `/`. Only the default workspace exists, so any
 * other first segment is left alone (and finds no route).
 */
export function stripDefaultWorkspace(url: string): string {
  if (url === '/default' || url.startsWith('/default?')) return `/${url.slice('/default'.length)}`;
  if (url.startsWith('/default/')) return url.slice('/default'.length);
  return url;
}

/**
 * Kong entities we do not have, by Admin API collection path (Kong OSS 3.10's names), with the
 * entity name used in messages, and nested paths under a parent that does exist.
 */
const absentEntities: { path: string; entity: string; under?: { collection: 'consumers'; nested: string } }[] = [
  { path: 'keys', entity: 'keys' },
  { path: 'key-sets', entity: 'key_sets' },
  { path: 'vaults', entity: 'vaults' },
  { path: 'hmac-auths', entity: 'hmacauth_credentials', under: { collection: 'consumers', nested: 'hmac-auth' } },
  { path: 'filter-chains', entity: 'filter_chains' },
  { path: 'partials', entity: 'partials' },
];

function unsupported(entity: string): AdminError {
  return new AdminError(405, {
    code: adminErrorCodes.operationUnsupported,
    name: 'operation unsupported',
    message: `Portcullis has no '${entity}' entities: they cannot be created, updated or deleted`,
  });
}

export function registerKongClientRoutes(app: FastifyInstance, deps: RouteDeps, now: () => number): void {
  const createdAt = Math.floor(now() / 1000);
  const workspace = {
    id: defaultWorkspaceId,
    name: 'default',
    comment: null,
    config: { meta: null, portal: false },
    meta: { color: null, thumbnail: null },
    created_at: createdAt,
    updated_at: createdAt,
  };
  const refuse = (entity: string) => async () => {
    throw unsupported(entity);
  };
  endpoint(app, '/workspaces', {
    GET: async (req) => {
      listOptions(req.query as Record<string, unknown>);
      return { data: [workspace], next: null };
    },
    POST: refuse('workspaces'),
  });
  endpoint(app, '/workspaces/:ws', {
    GET: async (req) => {
      const ws = (req.params as { ws: string }).ws;
      if (ws !== 'default' && ws !== defaultWorkspaceId) throw notFound();
      return workspace;
    },
    PUT: refuse('workspaces'),
    PATCH: refuse('workspaces'),
    DELETE: refuse('workspaces'),
  });

  for (const e of absentEntities) {
    const list = async (req: { query: unknown }) => {
      // Kong's size/offset checks still apply (a bad size is 400 as on every list).
      listOptions(req.query as Record<string, unknown>);
      return { data: [], next: null };
    };
    endpoint(app, `/${e.path}`, { GET: list, POST: refuse(e.entity) });
    endpoint(app, `/${e.path}/:id`, {
      GET: async () => {
        throw notFound();
      },
      PUT: refuse(e.entity),
      PATCH: refuse(e.entity),
      DELETE: refuse(e.entity),
    });
    if (e.under) {
      const parent = e.under.collection;
      const exists = async (idOrKey: string) => {
        if (!(await deps.service.find('consumers', idOrKey))) throw notFound();
      };
      endpoint(app, `/${parent}/:parent/${e.under.nested}`, {
        GET: async (req) => {
          await exists((req.params as { parent: string }).parent);
          return list(req);
        },
        POST: refuse(e.entity),
      });
      endpoint(app, `/${parent}/:parent/${e.under.nested}/:id`, {
        GET: async () => {
          throw notFound();
        },
        PUT: refuse(e.entity),
        PATCH: refuse(e.entity),
        DELETE: refuse(e.entity),
      });
    }
  }
  // Key sets' keys (`/key-sets/{id}/keys`): no key set exists, so the parent is never found.
  endpoint(app, '/key-sets/:set/keys', { GET: async () => { throw notFound(); }, POST: refuse('keys') });
}
