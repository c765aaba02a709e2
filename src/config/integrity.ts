/**
 * Cross-entity checks on a whole ConfigData, from the entity descriptors: unique ids, unique
 * keys (names, usernames, ...), composite keys (one plugin per (name, route, service, consumer),
 * one ACL group per consumer), and every foreign key pointing at an existing entity.
 */
import type { ValidationIssue } from '../errors.ts';
import type { ConfigData, EntityName } from './types.ts';
import { compositeValue, fkId, uniqueValue } from './entity.ts';
import { descriptorOf, entities } from './entities/index.ts';
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
  const keys = opts.endpointKeys !== false;
  for (const d of entities) {
    const rows = data[d.name] as unknown as Record<string, unknown>[];
    unique(d.name, rows, 'id', (x) => String(x.id), (k) => `duplicate id '${k}'`);
    if (keys) {
      for (const field of d.uniqueKeys) unique(d.name, rows, field, (x) => uniqueValue(d, x, field), (k) => `duplicate ${field} '${k}'`);
    }
    for (const key of d.compositeKeys) {
      const messages = new Map<string, string>();
      unique(d.name, rows, key.issueField, (x) => {
        const v = compositeValue(d, x, key);
        messages.set(v, key.duplicateMessage(x));
        return v;
      }, (k) => messages.get(k) ?? 'duplicate');
    }
  }

  if (opts.foreignKeys === false) return issues;
  const idsOf = new Map<EntityName, Set<string>>();
  const idSet = (kind: EntityName) => {
    let set = idsOf.get(kind);
    if (!set) idsOf.set(kind, (set = new Set((data[kind] as readonly { id: string }[]).map((r) => r.id))));
    return set;
  };
  for (const d of entities) {
    (data[d.name] as unknown as Record<string, unknown>[]).forEach((row, i) => {
      for (const fk of d.foreignKeys) {
        const id = fkId(row[fk.field]);
        if (id !== null && !idSet(fk.entity).has(id)) issues.push({ path: joinPath(pathOf(d.name, i), fk.field), message: `no ${descriptorOf(fk.entity).singular} with id '${id}'` });
      }
    });
  }
  return issues;
}
