/**
 * The descriptor of every entity kind (see ../entity.ts), in `entityNames` order: parents before
 * the kinds that point at them.
 */
import type { EntityDescriptor } from '../entity.ts';
import { type EntityName, entityNames } from '../types.ts';
import { acls } from './acls.ts';
import { consumers } from './consumers.ts';
import { plugins } from './plugins.ts';
import { routes } from './routes.ts';
import { services } from './services.ts';
import { upstreams } from './upstreams.ts';
import { targets } from './targets.ts';

const byName: { readonly [E in EntityName]: EntityDescriptor<E> } = {
  services, routes, consumers, plugins, acls,
  upstreams, targets,
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
  return entities.some((d) => d.foreignKeys.some((fk) => fk.entity === name));
}

