/**
 * Entity endpoints, Kong style, for every entity descriptor: collections, entities by id or
 * endpoint key, and the nested collections under each foreign key's target
 * (`/services/{s}/routes`, `/services/{s}/plugins`, `/routes/{r}/plugins`,
 * `/consumers/{c}/plugins`, `/consumers/{c}/acls`).
 *
 * Statuses: POST 201, GET/PUT/PATCH 200, DELETE 204 (top-level even when absent, nested 404),
 * unknown entity 404 `{"message":"Not found"}`, a method the path does not have 405.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { EntityName } from '../config/types.ts';
import { descriptorOf, entities } from '../config/entities/index.ts';
import type { PluginRegistry } from '../plugins/registry.ts';
import type { ConfigStore, ForeignField, ListOptions } from '../storage/ports.ts';
import { decodeOffset } from '../storage/sql-common.ts';
import { coerceForm, isFormBody, jsonSchemaOf, nestForm } from './body.ts';
import { AdminError, badRequest, methodNotAllowed, notFound } from './errors.ts';
import type { EntityService } from './service.ts';

export const allMethods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
type Method = (typeof allMethods)[number];
type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/**
 * Registers `handlers` on `path` and a 405 for every other method. A path an entity's own module
 * registered first (admin/certificates.ts) is left to it.
 */
export function endpoint(app: FastifyInstance, path: string, handlers: Partial<Record<Method, Handler>>): void {
  for (const m of allMethods) {
    if (app.hasRoute({ method: m, url: path })) continue;
    const h = handlers[m];
    app.route({
      method: m,
      url: path,
      exposeHeadRoute: m === 'GET',
      handler: h ?? (async () => {
        throw methodNotAllowed();
      }),
    });
  }
}

export interface RouteDeps {
  store: ConfigStore;
  registry: PluginRegistry;
  service: EntityService;
  /** Per-server cache of JSON Schemas used to coerce form bodies. */
  schemaCache: Map<string, ReturnType<typeof jsonSchemaOf>>;
  /**
   * How a kind's top-level reads answer when Kong's shape is not the row itself (consumer groups:
   * `GET /consumer_groups/{g}` is `{"consumer_group", "consumers", "plugins"}`).
   */
  views: Partial<Record<EntityName, EntityView>>;
}

export interface EntityView {
  one?(row: { id: string }, query: Record<string, unknown>): Promise<unknown>;
  list?(rows: readonly { id: string }[], query: Record<string, unknown>): Promise<unknown[]>;
}

function cached(deps: RouteDeps, key: string, make: () => ReturnType<typeof jsonSchemaOf>) {
  if (!deps.schemaCache.has(key)) deps.schemaCache.set(key, make());
  return deps.schemaCache.get(key) ?? null;
}

/**
 * The request body as an entity input: JSON as is; form bodies nested and coerced with the
 * entity's schema (and, for plugins, the plugin's config schema).
 */
export async function entityBody(deps: RouteDeps, entity: EntityName, body: unknown, pluginName?: () => Promise<string | undefined>): Promise<unknown> {
  if (body === undefined || body === null) return {};
  // text/plain and YAML bodies are parsed only for POST /config; Kong answers entity endpoints 415.
  if (typeof body === 'object' && (body as { kind?: unknown }).kind === 'text') throw new AdminError(415, { message: 'Unsupported Content-Type' });
  if (!isFormBody(body)) return body;
  const nested = nestForm(body.entries);
  const schema = cached(deps, `entity:${entity}`, () => jsonSchemaOf(descriptorOf(entity).schema));
  const overrides: Record<string, ReturnType<typeof jsonSchemaOf>> = {};
  if (entity === 'plugins') {
    const name = typeof nested.name === 'string' ? nested.name : await pluginName?.();
    const def = name ? deps.registry.get(name) : undefined;
    overrides.config = def ? cached(deps, `plugin:${def.name}`, () => jsonSchemaOf(def.schema)) : null;
  }
  return coerceForm(nested, schema, overrides);
}

/** Kong's query: `size`, `offset`, `tags=a,b` (all) or `tags=a/b` (any). */
export function listOptions(query: Record<string, unknown>): ListOptions {
  const o: ListOptions = {};
  if (query.size !== undefined) {
    const n = Number(query.size);
    if (!Number.isInteger(n) || n < 1 || n > 1000) throw new AdminError(400, { code: 9, name: 'invalid size', message: 'size must be an integer between 1 and 1000' });
    o.size = n;
  }
  if (typeof query.offset === 'string' && query.offset !== '') {
    try {
      decodeOffset(query.offset);
    } catch {
      throw new AdminError(400, { code: 7, name: 'invalid offset', message: `'${query.offset.slice(0, 100)}' is not a valid offset` });
    }
    o.offset = query.offset;
  }
  // A repeated `tags` parameter: the first one, as Kong's endpoints (`if type(tags) == "table" then tags = tags[1]`).
  const tags = Array.isArray(query.tags) ? query.tags[0] : query.tags;
  if (typeof tags === 'string' && tags !== '') {
    const or = tags.includes('/');
    if (or && tags.includes(',')) throw badRequest('invalid option (tags: invalid filter syntax)');
    o.tags = tags.split(or ? '/' : ',').map((t) => t.trim()).filter(Boolean);
    o.tagsMode = or ? 'or' : 'and';
  }
  return o;
}

/** Kong's `next`: the same path and query with the new offset (null on the last page). */
export function nextLink(path: string, query: Record<string, unknown>, offset: string | null): string | null {
  if (!offset) return null;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    const first = Array.isArray(v) ? v[0] : v;
    if (k !== 'offset' && typeof first === 'string') q.set(k, first);
  }
  q.set('offset', offset);
  return `${path}?${q.toString()}`;
}

export function dbLessWrite(entity: EntityName, verb: string): AdminError {
  return methodNotAllowed(`cannot ${verb} '${entity}' entities when not using a database (declarative mode); replace the whole configuration with POST /config`);
}

interface MountSpec {
  entity: EntityName;
  /** Collection path, e.g. `/services` or `/services/:parent/routes`. */
  path: string;
  parent?: ForeignField;
}

/** Collection + entity endpoints for one (possibly nested) collection. */
function mount(app: FastifyInstance, deps: RouteDeps, spec: MountSpec): void {
  const { entity, path, parent } = spec;
  const { service, store } = deps;
  const scope = (req: FastifyRequest) => {
    const p = req.params as Record<string, string>;
    return parent ? { field: parent, idOrKey: p.parent } : undefined;
  };
  const guardWrite = (verb: string) => {
    if (store.readOnly) throw dbLessWrite(entity, verb);
  };
  const existingPluginName = (req: FastifyRequest) => async () => {
    const row = await service.find('plugins', (req.params as Record<string, string>).key, scope(req));
    return row && 'name' in row ? (row.name as string) : undefined;
  };

  endpoint(app, path, {
    GET: async (req) => {
      const query = req.query as Record<string, unknown>;
      // Kong: GET /consumers?custom_id=X answers the one consumer with that custom_id (or none).
      if (entity === 'consumers' && !parent && typeof query.custom_id === 'string') {
        const row = await store.findBy('consumers', 'custom_id', query.custom_id);
        return { data: row ? [row] : [], next: null };
      }
      const page = await service.list(entity, listOptions(query), scope(req));
      const view = parent ? undefined : deps.views[entity]?.list;
      const data = view ? await view(page.data, query) : page.data;
      const out: Record<string, unknown> = { data, next: nextLink(req.url.split('?')[0], query, page.offset) };
      if (page.offset) out.offset = page.offset;
      return out;
    },
    POST: async (req, reply) => {
      guardWrite('create');
      const body = await entityBody(deps, entity, req.body);
      const row = await service.create(entity, body, scope(req));
      return reply.code(201).send(row);
    },
  });

  endpoint(app, `${path}/:key`, {
    GET: async (req) => {
      const row = await service.find(entity, (req.params as Record<string, string>).key, scope(req));
      if (!row) throw notFound();
      const view = parent ? undefined : deps.views[entity]?.one;
      return view ? view(row, req.query as Record<string, unknown>) : row;
    },
    PUT: async (req) => {
      guardWrite('update');
      const body = await entityBody(deps, entity, req.body, entity === 'plugins' ? existingPluginName(req) : undefined);
      if (descriptorOf(entity).putUpdatesOnly) return service.patch(entity, (req.params as Record<string, string>).key, body, scope(req));
      return service.upsert(entity, (req.params as Record<string, string>).key, body, scope(req));
    },
    PATCH: async (req) => {
      guardWrite('update');
      const body = await entityBody(deps, entity, req.body, entity === 'plugins' ? existingPluginName(req) : undefined);
      return service.patch(entity, (req.params as Record<string, string>).key, body, scope(req));
    },
    DELETE: async (req, reply) => {
      guardWrite('delete');
      const removed = await service.remove(entity, (req.params as Record<string, string>).key, scope(req));
      if (!removed && parent) throw notFound();
      return reply.code(204).send();
    },
  });
}

/**
 * Registers every entity endpoint, from the entity descriptors: each kind's collection, and for
 * each foreign key the nested collection under the entity it points at (`/services/{s}/routes`).
 */
export function registerEntityRoutes(app: FastifyInstance, deps: RouteDeps): void {
  for (const d of entities) if (d.adminTopLevel !== false) mount(app, deps, { entity: d.name, path: `/${d.adminPath}` });
  for (const d of entities) {
    for (const fk of d.foreignKeys) {
      const parent = descriptorOf(fk.entity);
      mount(app, deps, { entity: d.name, path: `/${parent.adminPath}/:parent/${d.nestedAdminPath ?? d.adminPath}`, parent: fk.field });
    }
  }
}
