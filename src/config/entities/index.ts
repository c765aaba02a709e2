/**
 * The descriptor of every entity kind (see ../entity.ts), in `entityNames` order: parents before
 * the kinds that point at them.
 */
import type { EntityDescriptor } from '../entity.ts';
import { type EntityName, entityNames } from '../types.ts';
import { acls } from './acls.ts';
import { ca_certificates } from './ca_certificates.ts';
import { certificates } from './certificates.ts';
import { snis } from './snis.ts';
import { consumers } from './consumers.ts';
import { plugins } from './plugins.ts';
import { routes } from './routes.ts';
import { services } from './services.ts';
import { consumer_group_consumers, consumer_groups } from './consumer-groups.ts';
import { upstreams } from './upstreams.ts';
import { targets } from './targets.ts';
import { basicauth_credentials, jwt_secrets, keyauth_credentials, oauth2_credentials } from './credentials.ts';

const byName: { readonly [E in EntityName]: EntityDescriptor<E> } = {
  certificates, ca_certificates, snis,
  services,
  routes,
  consumers,
  consumer_groups,
  plugins,
  acls,
  keyauth_credentials,
  basicauth_credentials,
  jwt_secrets,
  oauth2_credentials,
  consumer_group_consumers,
  upstreams,
  targets,
};

/** Every descriptor, in dependency order. */
export const entities: readonly EntityDescriptor[] = entityNames.map((n) => byName[n] as unknown as EntityDescriptor);

if (entities.length !== Object.keys(byName).length) throw new Error('entityNames and the entity descriptors disagree');
for (const d of entities) {
  if (d.naturalKey.from !== 'input' && entities.some((o) => o.foreignKeys.some((fk) => fk.entity === d.name))) {
    throw new Error(`entity ${d.name}: others refer to it, so its natural key must be read from the input`);
  }
  for (const fk of d.foreignKeys) {
    // Dependency order is what bulk writes, dumps and `config sync` rely on.
    if (entityNames.indexOf(fk.entity as never) >= entityNames.indexOf(d.name as never)) {
      throw new Error(`entity ${d.name}: ${fk.entity} (foreign key ${fk.field}) must come earlier in entityNames`);
    }
  }
}

export function descriptorOf<E extends EntityName>(name: E): EntityDescriptor<E> {
  return byName[name];
}

/** Is `name` an entity kind (for user input such as `/schemas/{name}`)? */
export function isEntityName(name: string): name is EntityName {
  return Object.hasOwn(byName, name);
}

/** Kinds whose rows point at `target`, with the foreign key that does. */
export function referencesTo(target: EntityName): { entity: EntityDescriptor; fk: EntityDescriptor['foreignKeys'][number] }[] {
  const out: { entity: EntityDescriptor; fk: EntityDescriptor['foreignKeys'][number] }[] = [];
  for (const d of entities) for (const fk of d.foreignKeys) if (fk.entity === target) out.push({ entity: d, fk });
  return out;
}

/** Kinds something points at: their ids must be known before references are resolved. */
export function isReferenced(name: EntityName): boolean {
  return entities.some((d) => d.foreignKeys.some((fk) => fk.entity === name) || (d.idLists ?? []).some((l) => l.entity === name));
}

/** Kinds with an id-list field (descriptor `idLists`) naming rows of `target`. */
export function idListsTo(target: EntityName): { entity: EntityDescriptor; field: string }[] {
  const out: { entity: EntityDescriptor; field: string }[] = [];
  for (const d of entities) for (const l of d.idLists ?? []) if (l.entity === target) out.push({ entity: d, field: l.field });
  return out;
}

