/**
 * ConfigData → decK document (for `GET /config` and `portcullis config dump`): routes nested
 * under their service, ACLs under their consumer, plugins at the top level referencing their
 * scope by name. Ids are written only when they differ from the id the loader would derive, and
 * timestamps are left out, so the dump is readable and `parseDeclarative(dump)` gives back the
 * same entities (at the same load time).
 */
import type { ConfigData } from './types.ts';
import { derivedId } from './declarative.ts';
import { deterministicId, naturalKey } from './ids.ts';

const omitted = new Set(['id', 'created_at', 'updated_at']);

/** Copy of an entity without ids, timestamps, the listed fields and null values (null is every such field's default). */
function fields(entity: object, drop: readonly string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(entity)) {
    if (omitted.has(k) || drop.includes(k) || v === null || v === undefined) continue;
    out[k] = v;
  }
  return out;
}

/** `{ id, ...rest }` when the id must be kept, else `rest`. */
function withId(id: string, derived: string, rest: Record<string, unknown>): Record<string, unknown> {
  return id === derived ? rest : { id, ...rest };
}

/** Render the configuration as a decK `_format_version: "3.0"` document. */
export function toDeclarative(data: ConfigData): Record<string, unknown> {
  const services = new Map(data.services.map((s) => [s.id, s]));
  const routes = new Map(data.routes.map((r) => [r.id, r]));
  const consumers = new Map(data.consumers.map((c) => [c.id, c]));

  const doc: Record<string, unknown> = { _format_version: '3.0' };

  const renderRoute = (r: ConfigData['routes'][number], path: string, nested: boolean) => {
    const rest = fields(r, nested ? ['service'] : []);
    if (!nested && r.service) rest.service = r.service.id;
    return withId(r.id, deterministicId('routes', naturalKey.route(r.name, path)), rest);
  };

  if (data.services.length > 0) {
    doc.services = data.services.map((s, i) => {
      const path = `services[${i}]`;
      const out = withId(s.id, deterministicId('services', naturalKey.service(s.name, path)), fields(s));
      const own = data.routes.filter((r) => r.service?.id === s.id);
      if (own.length > 0) out.routes = own.map((r, j) => renderRoute(r, `${path}.routes[${j}]`, true));
      return out;
    });
  }
  // Routes without a service (or pointing at one not in this data) stay at the top level.
  const loose = data.routes.filter((r) => !r.service || !services.has(r.service.id));
  if (loose.length > 0) doc.routes = loose.map((r, k) => renderRoute(r, `routes[${k}]`, false));

  if (data.consumers.length > 0) {
    doc.consumers = data.consumers.map((c, i) => {
      const path = `consumers[${i}]`;
      const out = withId(c.id, deterministicId('consumers', naturalKey.consumer(c.username, c.custom_id, path)), fields(c));
      const acls = data.acls.filter((a) => a.consumer.id === c.id);
      if (acls.length > 0) out.acls = acls.map((a) => withId(a.id, derivedId(a, 'acls'), fields(a, ['consumer'])));
      return out;
    });
  }
  const looseAcls = data.acls.filter((a) => !consumers.has(a.consumer.id));
  if (looseAcls.length > 0) doc.acls = looseAcls.map((a) => withId(a.id, derivedId(a, 'acls'), { ...fields(a), consumer: a.consumer.id }));

  if (data.plugins.length > 0) {
    doc.plugins = data.plugins.map((p) => {
      const rest = fields(p, ['route', 'service', 'consumer']);
      // Reference by endpoint key when there is one (readable), else by id.
      if (p.service) rest.service = services.get(p.service.id)?.name ?? p.service.id;
      if (p.route) rest.route = routes.get(p.route.id)?.name ?? p.route.id;
      if (p.consumer) rest.consumer = consumers.get(p.consumer.id)?.username ?? p.consumer.id;
      return withId(p.id, derivedId(p, 'plugins'), rest);
    });
  }
  return doc;
}
