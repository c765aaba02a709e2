/**
 * Kong Admin API endpoints beyond the entity collections:
 *
 *   - `GET /tags` and `GET /tags/{tag}`: every tagged entity as `{entity_name, entity_id, tag}`,
 *     paged like the collections (Kong: kong/api/routes/tags.lua, "Tags" in the Admin API docs);
 *   - the entity a foreign key points at, for every foreign key of every descriptor:
 *     `/routes/{id}/service`, `/acls/{id}/consumer`, `/plugins/{id}/service`, ... (Kong generates
 *     these, kong/api/endpoints.lua `get_entity_endpoint` with a parent schema). A null
 *     reference → 404.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { entities } from '../config/entities/index.ts';
import { fkId } from '../config/entity.ts';
import { entityNames, type ConfigData, type EntityName } from '../config/types.ts';
import { AdminError, notFound } from './errors.ts';
import { dbLessWrite, endpoint, entityBody, listOptions, type RouteDeps } from './routes.ts';

/** One row of `/tags`, Kong's field names. */
export interface TagRow {
  entity_name: EntityName;
  entity_id: string;
  tag: string;
}

/** Every (entity, tag) pair in a stable order: entity kind, then store order, then tag order. */
export function tagRows(data: ConfigData, only?: string): TagRow[] {
  const out: TagRow[] = [];
  for (const entity of entityNames) {
    for (const row of data[entity] as readonly { id: string; tags?: string[] | null }[]) {
      for (const tag of row.tags ?? []) if (only === undefined || tag === only) out.push({ entity_name: entity, entity_id: row.id, tag });
    }
  }
  return out;
}

/** `/tags` offsets: the position of the next row, opaque to clients like the collections' own. */
function encodeTagOffset(n: number): string {
  return Buffer.from(JSON.stringify({ tag_pos: n })).toString('base64url');
}

function decodeTagOffset(offset: string): number {
  try {
    const v = JSON.parse(Buffer.from(offset, 'base64url').toString('utf8')) as { tag_pos?: unknown };
    if (typeof v.tag_pos === 'number' && Number.isSafeInteger(v.tag_pos) && v.tag_pos >= 0) return v.tag_pos;
  } catch {
    // fall through to Kong's error
  }
  throw new AdminError(400, { code: 7, name: 'invalid offset', message: `'${offset.slice(0, 100)}' is not a valid offset` });
}

/** A page of `rows` as Kong answers a paged list (`next` null on the last page, `offset` then absent). */
function page(req: FastifyRequest, rows: TagRow[]): Record<string, unknown> {
  const query = req.query as Record<string, unknown>;
  // Reuses the collections' size check (1–1000, default 100, Kong's code 9 otherwise).
  const size = listOptions({ size: query.size }).size ?? 100;
  const start = typeof query.offset === 'string' && query.offset !== '' ? decodeTagOffset(query.offset) : 0;
  const data = rows.slice(start, start + size);
  const more = start + size < rows.length;
  const out: Record<string, unknown> = { data, next: null };
  if (more) {
    const offset = encodeTagOffset(start + size);
    const q = new URLSearchParams({ ...(typeof query.size === 'string' ? { size: query.size } : {}), offset });
    out.next = `${req.url.split('?')[0]}?${q.toString()}`;
    out.offset = offset;
  }
  return out;
}

/** Registers `/tags`, `/tags/{tag}` and the foreign-entity endpoints. */
export function registerExtraRoutes(app: FastifyInstance, deps: RouteDeps): void {
  endpoint(app, '/tags', { GET: async (req) => page(req, tagRows(await deps.store.load())) });
  endpoint(app, '/tags/:tag', {
    GET: async (req) => {
      const tag = (req.params as { tag: string }).tag;
      // Kong's /tags/{tags} takes exactly one tag; the collections take lists via ?tags=.
      if (tag.includes(',') || tag.includes('/')) throw new AdminError(400, { message: 'invalid tag: only one tag may be given' });
      return page(req, tagRows(await deps.store.load(), tag));
    },
  });

  // Every foreign key: `/{entity}/{id}/{field}` answers the entity it points at; PATCH updates
  // that entity (Kong: `/routes/{route}/service`).
  for (const d of entities) {
    if (d.adminTopLevel === false) continue;
    for (const fk of d.foreignKeys) {
      const target = async (req: FastifyRequest): Promise<string> => {
        const row = (await deps.service.find(d.name, (req.params as { parent: string }).parent)) as Record<string, unknown> | null;
        const id = row ? fkId(row[fk.field]) : null;
        if (id === null) throw notFound();
        return id;
      };
      endpoint(app, `/${d.adminPath}/:parent/${fk.field}`, {
        GET: async (req) => {
          const found = await deps.service.find(fk.entity, await target(req));
          if (!found) throw notFound();
          return found;
        },
        PATCH: async (req) => {
          if (deps.store.readOnly) throw dbLessWrite(fk.entity, 'update');
          const body = await entityBody(deps, fk.entity, req.body);
          return deps.service.patch(fk.entity, await target(req), body);
        },
      });
    }
  }
}
