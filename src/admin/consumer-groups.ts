/**
 * Kong's consumer-group membership endpoints (Admin API 3.10, consumer groups):
 *
 *   - `/consumer_groups/{g}/consumers`: GET the group's consumers; POST `{"consumer": <id or
 *     username, or a list>}` → 201 `{"consumer_group", "consumers"}`; DELETE removes every member;
 *   - `/consumer_groups/{g}/consumers/{c}`: GET the consumer if a member; DELETE → 204 (404 when not);
 *   - `/consumers/{c}/consumer_groups`: GET the consumer's groups; POST `{"group": <id or name, or a
 *     list>}` → 201 `{"consumer", "consumer_groups"}`;
 *   - `/consumers/{c}/consumer_groups/{g}`: GET the group if the consumer is in it; DELETE → 204.
 *
 * Memberships are `consumer_group_consumers` rows (config/entities/consumer-groups.ts), written
 * through the entity service (validation, uniqueness → 409, one transaction per row).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Consumer, ConsumerGroup, ConsumerGroupMember } from '../config/types.ts';
import { AdminError, notFound } from './errors.ts';
import { dbLessWrite, endpoint, listOptions, nextLink, type EntityView, type RouteDeps } from './routes.ts';

const MEMBERS = 'consumer_group_consumers';

function list(v: unknown, field: string): string[] {
  const items = Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
  if (items.length === 0 || !items.every((x) => typeof x === 'string' && x !== '')) {
    throw new AdminError(400, { code: 2, name: 'schema violation', message: `schema violation (${field}: required field missing)`, fields: { [field]: 'required field missing' } });
  }
  return items as string[];
}

/** Every membership row of a group or of a consumer, all pages. */
async function allMembers(deps: RouteDeps, field: 'consumer_group' | 'consumer', id: string): Promise<ConsumerGroupMember[]> {
  const out: ConsumerGroupMember[] = [];
  let offset: string | null = null;
  do {
    const page: { data: ConsumerGroupMember[]; offset: string | null } = await deps.store.list(MEMBERS, { foreign: { field, id }, size: 1000, offset });
    out.push(...page.data);
    offset = page.offset;
  } while (offset);
  return out;
}

/** Kong's flag values in query strings (`?counter=true`, `?list_consumers=false`). */
function flag(v: unknown): boolean | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (s === 'true' || s === '1') return true;
  if (s === 'false' || s === '0') return false;
  return undefined;
}

/**
 * Kong Enterprise's answers for consumer groups, which decK and the consumer-groups UI package
 * read: `GET /consumer_groups/{g}` is `{"consumer_group": {...}, "consumers": [...], "plugins": []}`
 * (`?list_consumers=false` leaves `consumers` out; `plugins` is Kong's list of per-group policy
 * overrides, a feature Portcullis does not have: group plugins are plugins with `consumer_group`);
 * `GET /consumer_groups?counter=true` adds `consumers_count` to each group.
 */
export function consumerGroupViews(deps: RouteDeps): EntityView {
  const memberRows = (id: string) => allMembers(deps, 'consumer_group', id);
  return {
    one: async (row, query) => {
      const out: Record<string, unknown> = { consumer_group: row };
      if (flag(query.list_consumers) !== false) {
        const consumers: Consumer[] = [];
        for (const m of await memberRows(row.id)) {
          const c = (await deps.store.get('consumers', m.consumer.id)) as Consumer | null;
          if (c !== null) consumers.push(c);
        }
        out.consumers = consumers;
      }
      out.plugins = [];
      return out;
    },
    list: async (rows, query) => {
      if (flag(query.counter) !== true) return [...rows];
      return Promise.all(rows.map(async (r) => ({ ...r, consumers_count: (await memberRows(r.id)).length })));
    },
  };
}

export function registerConsumerGroupRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const group = async (idOrName: string): Promise<ConsumerGroup> => {
    const g = (await deps.service.find('consumer_groups', idOrName)) as ConsumerGroup | null;
    if (g === null) throw notFound();
    return g;
  };
  const consumer = async (idOrName: string): Promise<Consumer> => {
    const c = (await deps.service.find('consumers', idOrName)) as Consumer | null;
    if (c === null) throw notFound();
    return c;
  };
  const members = (field: 'consumer_group' | 'consumer', id: string) => allMembers(deps, field, id);
  const join = async (g: ConsumerGroup, c: Consumer): Promise<void> => {
    await deps.service.create(MEMBERS, { consumer_group: { id: g.id }, consumer: { id: c.id } });
  };
  /**
   * A page of one side's memberships as the other side's entities, paged like every list
   * (`size`, `offset`, `next`; the order is the order of joining).
   */
  const memberPage = async <T>(req: FastifyRequest, field: 'consumer_group' | 'consumer', id: string, read: (m: ConsumerGroupMember) => Promise<T | null>) => {
    const query = req.query as Record<string, unknown>;
    const o = listOptions({ size: query.size, offset: query.offset });
    const page = await deps.store.list(MEMBERS, { foreign: { field, id }, size: o.size, offset: o.offset });
    const data: T[] = [];
    for (const m of page.data as ConsumerGroupMember[]) {
      const row = await read(m);
      if (row !== null) data.push(row);
    }
    const out: Record<string, unknown> = { data, next: nextLink(req.url.split('?')[0], query, page.offset) };
    if (page.offset) out.offset = page.offset;
    return out;
  };
  const params = (req: FastifyRequest) => req.params as { group: string; consumer: string };
  const body = (req: FastifyRequest): Record<string, unknown> => (req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {});
  const writable = (verb: string): void => {
    if (deps.store.readOnly) throw dbLessWrite(MEMBERS, verb);
  };

  endpoint(app, '/consumer_groups/:group/consumers', {
    GET: async (req) => {
      const g = await group(params(req).group);
      return memberPage(req, 'consumer_group', g.id, async (m) => (await deps.store.get('consumers', m.consumer.id)) as Consumer | null);
    },
    POST: async (req, reply) => {
      writable('create');
      const g = await group(params(req).group);
      const added: Consumer[] = [];
      for (const ref of list(body(req).consumer, 'consumer')) {
        const c = await consumer(ref);
        await join(g, c);
        added.push(c);
      }
      reply.code(201);
      return { consumer_group: g, consumers: added };
    },
    DELETE: async (req, reply) => {
      writable('delete');
      const g = await group(params(req).group);
      for (const m of await members('consumer_group', g.id)) await deps.service.remove(MEMBERS, m.id);
      reply.code(204);
      return null;
    },
  });

  endpoint(app, '/consumer_groups/:group/consumers/:consumer', {
    GET: async (req) => {
      const g = await group(params(req).group);
      const c = await consumer(params(req).consumer);
      if (!(await members('consumer_group', g.id)).some((m) => m.consumer.id === c.id)) throw notFound();
      return c;
    },
    DELETE: async (req, reply) => {
      writable('delete');
      const g = await group(params(req).group);
      const c = await consumer(params(req).consumer);
      const m = (await members('consumer_group', g.id)).find((x) => x.consumer.id === c.id);
      if (m === undefined) throw notFound();
      await deps.service.remove(MEMBERS, m.id);
      reply.code(204);
      return null;
    },
  });

  endpoint(app, '/consumers/:consumer/consumer_groups', {
    GET: async (req) => {
      const c = await consumer(params(req).consumer);
      return memberPage(req, 'consumer', c.id, async (m) => (await deps.store.get('consumer_groups', m.consumer_group.id)) as ConsumerGroup | null);
    },
    POST: async (req, reply) => {
      writable('create');
      const c = await consumer(params(req).consumer);
      const added: ConsumerGroup[] = [];
      for (const ref of list(body(req).group, 'group')) {
        const g = await group(ref);
        await join(g, c);
        added.push(g);
      }
      reply.code(201);
      return { consumer: c, consumer_groups: added };
    },
  });

  endpoint(app, '/consumers/:consumer/consumer_groups/:group', {
    GET: async (req) => {
      const c = await consumer(params(req).consumer);
      const g = await group(params(req).group);
      if (!(await members('consumer', c.id)).some((m) => m.consumer_group.id === g.id)) throw notFound();
      return g;
    },
    DELETE: async (req, reply) => {
      writable('delete');
      const c = await consumer(params(req).consumer);
      const g = await group(params(req).group);
      const m = (await members('consumer', c.id)).find((x) => x.consumer_group.id === g.id);
      if (m === undefined) throw notFound();
      await deps.service.remove(MEMBERS, m.id);
      reply.code(204);
      return null;
    },
  });
}
