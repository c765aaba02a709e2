/**
 * ConfigData → decK document (for `GET /config` and `portcullis config dump`), from the entity
 * descriptors: a kind with `dumpNestedUnder` is written under its parent (routes under their
 * service, ACLs under their consumer; with `dumpNestedUnderAlone` only rows with no other
 * reference: group-only plugins under their consumer group), a link kind with `nestedRefLists` as decK's reference list
 * (consumer-group memberships as `consumers[].groups: [{name}]`), the others at the top level
 * referencing what they point at by endpoint key (plugins name their service/route/consumer). Ids are written only when they
 * differ from the id the loader would derive, and timestamps are left out, so the dump is
 * readable and `parseDeclarative(dump)` gives back the same entities (at the same load time).
 */
import type { EntityDescriptor } from './entity.ts';
import { fkId } from './entity.ts';
import { descriptorOf, entities } from './entities/index.ts';
import { deterministicId } from './ids.ts';
import type { ConfigData, EntityName } from './types.ts';

const omitted = new Set(['id', 'created_at', 'updated_at']);

type Row = Record<string, unknown> & { id: string };

/** Copy of an entity without ids, timestamps, the listed fields and null values (null is every such field's default). */
function fields(entity: object, drop: readonly string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(entity)) {
    if (omitted.has(k) || drop.includes(k) || v === null || v === undefined) continue;
    out[k] = v;
  }
  return out;
}

/** Render the configuration as a decK `_format_version: "3.0"` document. */
export function toDeclarative(data: ConfigData): Record<string, unknown> {
  const byId = new Map<EntityName, Map<string, Row>>();
  for (const d of entities) byId.set(d.name, new Map((data[d.name] as unknown as Row[]).map((r) => [r.id, r])));
  /** A row whose only non-null reference is `field` (descriptor `dumpNestedUnderAlone`). */
  const onlyRef = (d: EntityDescriptor, row: Row, field: string) => d.foreignKeys.every((fk) => fk.field === field || fkId(row[fk.field]) === null);
  /** Kinds written nested under `parent`, with their parent foreign key and which rows qualify. */
  const nestedUnder = (parent: EntityName) =>
    entities.flatMap((d) => d.foreignKeys
      .filter((fk) => fk.entity === parent && (d.dumpNestedUnder === fk.field || d.dumpNestedUnderAlone === fk.field))
      .map((fk) => ({ d, fk, qualifies: (row: Row) => d.dumpNestedUnder === fk.field || onlyRef(d, row, fk.field) })));

  /**
   * Link kinds written as decK's nested reference lists (descriptor `nestedRefLists`, first form):
   * per owner id, the references; the rows so written are left out of the top level.
   */
  const refLists = new Map<EntityName, Map<string, Record<string, Record<string, unknown>[]>>>();
  const linked = new Set<string>();
  for (const d of entities) {
    const form = d.nestedRefLists?.[0];
    if (!form) continue;
    const ownerKind = d.foreignKeys.find((fk) => fk.field === form.under)?.entity;
    const namedKind = d.foreignKeys.find((fk) => fk.field === form.names)?.entity;
    if (!ownerKind || !namedKind) continue;
    const key = descriptorOf(namedKind).endpointKey;
    for (const row of data[d.name] as unknown as Row[]) {
      const ownerId = fkId(row[form.under]);
      const named = byId.get(namedKind)?.get(fkId(row[form.names]) ?? '');
      if (ownerId === null || !named || !byId.get(ownerKind)?.has(ownerId)) continue;
      const ref = key && typeof named[key] === 'string' ? { [key]: named[key] } : { id: named.id };
      if (!refLists.has(ownerKind)) refLists.set(ownerKind, new Map());
      const lists = refLists.get(ownerKind)!;
      if (!lists.has(ownerId)) lists.set(ownerId, {});
      const own = lists.get(ownerId)!;
      (own[form.key] ??= []).push(ref);
      linked.add(row.id);
    }
  }

  /** A row as the loader would read it at `path`; `parentField` is implied by the enclosing entity. */
  const render = (d: EntityDescriptor, row: Row, path: string, parentField?: string): Record<string, unknown> => {
    const rest = fields(row, parentField ? [parentField] : []);
    for (const fk of d.foreignKeys) {
      if (fk.field === parentField || !(fk.field in rest)) continue;
      // Reference by endpoint key when there is one (readable), else by id.
      const id = fkId(row[fk.field]);
      const target = id === null ? undefined : byId.get(fk.entity)?.get(id);
      const key = descriptorOf(fk.entity).endpointKey;
      const name = target && key ? target[key] : undefined;
      rest[fk.field] = typeof name === 'string' ? name : id;
    }
    for (const { d: child, fk, qualifies } of nestedUnder(d.name)) {
      const own = (data[child.name] as unknown as Row[]).filter((c) => fkId(c[fk.field]) === row.id && qualifies(c));
      if (own.length > 0) rest[child.name] = own.map((c, j) => render(child, c, `${path}.${child.name}[${j}]`, fk.field));
    }
    for (const [key, refs] of Object.entries(refLists.get(d.name)?.get(row.id) ?? {})) {
      rest[key] = [...refs].sort((a, b) => String(Object.values(a)[0]).localeCompare(String(Object.values(b)[0])));
    }
    const derived = deterministicId(d.name, d.naturalKey.key(row, path));
    return row.id === derived ? rest : { id: row.id, ...rest };
  };

  const doc: Record<string, unknown> = { _format_version: '3.0' };
  for (const d of entities) {
    const rows = data[d.name] as unknown as Row[];
    // Nested kinds: only the rows whose parent is not in this data stay at the top level.
    const parentFk = d.foreignKeys.find((fk) => fk.field === d.dumpNestedUnder);
    const aloneFk = d.foreignKeys.find((fk) => fk.field === d.dumpNestedUnderAlone);
    const parentIn = (fk: { field: string; entity: EntityName }, r: Row) => { const id = fkId(r[fk.field]); return id !== null && byId.get(fk.entity)?.has(id) === true; };
    const top = rows.filter((r) => !linked.has(r.id)
      && !(parentFk && parentIn(parentFk, r))
      && !(aloneFk && parentIn(aloneFk, r) && onlyRef(d, r, aloneFk.field)));
    if (top.length > 0) doc[d.name] = top.map((r, i) => render(d, r, `${d.name}[${i}]`));
  }
  return doc;
}
