/**
 * Cross-entity checks on a whole ConfigData: unique ids and endpoint keys, one plugin per
 * (name, route, service, consumer), and every foreign key pointing at an existing entity.
 */
import type { ValidationIssue } from '../errors.ts';
import type { ConfigData, EntityName } from './types.ts';
import { joinPath } from './issues.ts';

export interface IntegrityOptions {
  /** Where entity `index` of `kind` sits in the source document. Default: `kind[index]`. */
  pathOf?: (kind: EntityName, index: number) => string;
  /**
   * Check that names, usernames and custom_ids are unique (default true). The declarative
   * loader checks them on the raw document instead, so invalid entities take part too.
   */
  endpointKeys?: boolean;
  /** Check that foreign keys point at existing entities (default true). */
  foreignKeys?: boolean;
}

/**
 * Report every cross-entity problem of `data` (used for declarative files and `POST /config`).
 * The first occurrence of a duplicate is kept; each later one is reported.
 */
export function checkIntegrity(data: ConfigData, opts: IntegrityOptions = {}): ValidationIssue[] {
  const pathOf = opts.pathOf ?? ((kind, i) => `${kind}[${i}]`);
  const issues: ValidationIssue[] = [];

  const unique = <T>(kind: EntityName, items: readonly T[], field: string, key: (x: T) => string | null, label: (k: string) => string) => {
    const seen = new Map<string, number>();
    items.forEach((item, i) => {
      const k = key(item);
      if (k === null) return;
      const first = seen.get(k);
      if (first === undefined) seen.set(k, i);
      else issues.push({ path: joinPath(pathOf(kind, i), field), message: `${label(k)} (first defined at ${pathOf(kind, first)})` });
    });
  };
  const ids = (kind: EntityName, items: readonly { id: string }[]) => unique(kind, items, 'id', (x) => x.id, (k) => `duplicate id '${k}'`);

  const keys = opts.endpointKeys !== false;
  ids('services', data.services);
  if (keys) unique('services', data.services, 'name', (s) => s.name, (k) => `duplicate name '${k}'`);
  ids('routes', data.routes);
  if (keys) unique('routes', data.routes, 'name', (r) => r.name, (k) => `duplicate name '${k}'`);
  ids('consumers', data.consumers);
  if (keys) unique('consumers', data.consumers, 'username', (c) => c.username, (k) => `duplicate username '${k}'`);
  if (keys) unique('consumers', data.consumers, 'custom_id', (c) => c.custom_id, (k) => `duplicate custom_id '${k}'`);
  ids('plugins', data.plugins);
  unique('plugins', data.plugins, 'instance_name', (p) => p.instance_name, (k) => `duplicate instance_name '${k}'`);
  unique('plugins', data.plugins, '', (p) => JSON.stringify([p.name, p.route?.id ?? null, p.service?.id ?? null, p.consumer?.id ?? null]), () => {
    return 'duplicate plugin: only one instance of a plugin per route, service and consumer combination is allowed';
  });
  ids('acls', data.acls);
  unique('acls', data.acls, 'group', (a) => `${a.consumer.id}\u0000${a.group}`, (k) => `duplicate group '${k.split('\u0000')[1]}' for this consumer`);

  if (opts.foreignKeys === false) return issues;
  const serviceIds = new Set(data.services.map((s) => s.id));
  const routeIds = new Set(data.routes.map((r) => r.id));
  const consumerIds = new Set(data.consumers.map((c) => c.id));
  const fk = (kind: EntityName, i: number, field: string, id: string | undefined, set: Set<string>, what: string) => {
    if (id !== undefined && !set.has(id)) issues.push({ path: joinPath(pathOf(kind, i), field), message: `no ${what} with id '${id}'` });
  };
  data.routes.forEach((r, i) => fk('routes', i, 'service', r.service?.id, serviceIds, 'service'));
  data.plugins.forEach((p, i) => {
    fk('plugins', i, 'route', p.route?.id, routeIds, 'route');
    fk('plugins', i, 'service', p.service?.id, serviceIds, 'service');
    fk('plugins', i, 'consumer', p.consumer?.id, consumerIds, 'consumer');
  });
  data.acls.forEach((a, i) => fk('acls', i, 'consumer', a.consumer.id, consumerIds, 'consumer'));
  return issues;
}
