/**
 * The entity service: every Admin API write goes through here, inside one store transaction, so
 * validation, unique checks, foreign-key resolution and cascades either all apply or none does.
 *
 * Kong semantics kept, driven by the entity descriptors (config/entities/): lookups by id or
 * endpoint key (service/route `name`, consumer `username`, plugin `instance_name`, ACL `group`
 * under its consumer); PUT upserts; PATCH merges (nested plugin `config` field by field, arrays
 * replaced); foreign keys' `on_delete`: `restrict` refuses the delete (a service routes still
 * use), `cascade` deletes the referencing rows too (a route's plugins, a consumer's ACLs).
 */
import type { EntityName, EntityOf } from '../config/types.ts';
import { compositeValue, fkId, uniqueValue } from '../config/entity.ts';
import { descriptorOf, idListsTo, referencesTo } from '../config/entities/index.ts';
import { uuidPattern } from '../config/fields.ts';
import { deterministicId } from '../config/ids.ts';
import { normalizeEntity, toEntityRef, type EntityRef, type RefKind } from '../config/normalize.ts';
import { foreignRefSchema } from '../config/schemas.ts';
import { isGatewayError, type ValidationIssue } from '../errors.ts';
import { sniNameProblem } from '../tls/names.ts';
import type { PluginRegistry } from '../plugins/registry.ts';
import type { ConfigStore, ConfigTx, ForeignField, ListOptions, ListPage } from '../storage/ports.ts';
import { foreignKeyViolation, notFound, referencedBy, schemaViolation, uniqueViolation, AdminError } from './errors.ts';

/** The parent a nested endpoint scopes an entity to (`/services/{s}/routes` → service s). */
export interface ParentScope {
  field: ForeignField;
  id: string;
}

/** The entity a foreign key of `entity` points at. */
function targetOf(entity: EntityName, field: ForeignField): EntityName {
  const fk = descriptorOf(entity).foreignKeys.find((f) => f.field === field);
  if (!fk) throw new Error(`${entity} has no foreign key ${field}`);
  return fk.entity;
}

export interface EntityServiceOptions {
  store: ConfigStore;
  registry: PluginRegistry;
  now?: () => number;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function createEntityService(opts: EntityServiceOptions) {
  const { store, registry } = opts;
  const now = opts.now ?? Date.now;

  /** Finds by id or endpoint key, optionally only under a parent. Null when absent. */
  async function find<E extends EntityName>(tx: ConfigTx, entity: E, idOrKey: string, parent?: ParentScope): Promise<EntityOf<E> | null> {
    let row: EntityOf<E> | null = null;
    if (uuidPattern.test(idOrKey)) row = await tx.get(entity, idOrKey);
    const d = descriptorOf(entity);
    const key = d.endpointKey;
    if (!row && key !== null && d.uniqueKeys.includes(key)) {
      row = await tx.findBy(entity, key, idOrKey);
    } else if (!row && key !== null && parent) {
      // A key unique only under its parent (an ACL group per consumer) needs the parent scope.
      const page = await listAll(tx, entity, { foreign: parent });
      row = page.find((r) => (r as unknown as Record<string, unknown>)[key] === idOrKey) ?? null;
    }
    if (!row && d.keyAlias !== undefined && !uuidPattern.test(idOrKey)) {
      const a = d.keyAlias;
      const via = await tx.findBy(a.entity, a.key, a.key === 'name' ? idOrKey.toLowerCase() : idOrKey);
      const id = via === null ? null : fkId((via as unknown as Record<string, unknown>)[a.field]);
      if (id !== null) row = await tx.get(entity, id);
    }
    if (row && parent && fkId((row as unknown as Record<string, unknown>)[parent.field]) !== parent.id) return null;
    return row;
  }

  async function listAll<E extends EntityName>(tx: ConfigTx, entity: E, o: ListOptions = {}): Promise<EntityOf<E>[]> {
    const out: EntityOf<E>[] = [];
    let offset: string | null = null;
    do {
      const page: ListPage<EntityOf<E>> = await tx.list(entity, { ...o, size: 1000, offset });
      out.push(...page.data);
      offset = page.offset;
    } while (offset);
    return out;
  }

  /** Resolves the parent of a nested endpoint (`/services/{s}/...`): 404 when it does not exist. */
  async function parentScope(tx: ConfigTx, entity: EntityName, field: ForeignField, idOrKey: string): Promise<ParentScope> {
    const row = await find(tx, targetOf(entity, field), idOrKey);
    if (!row) throw notFound();
    return { field, id: row.id };
  }

  /**
   * Looks up every reference in `input` ahead of normalization (normalize's resolver is
   * synchronous). Returns the resolver and the references that matched nothing.
   */
  async function prefetchRefs(tx: ConfigTx, entity: EntityName, input: Record<string, unknown>) {
    const found = new Map<string, string | null>();
    const keyOf = (kind: RefKind, r: EntityRef) => `${kind}:${r.id !== undefined ? `id:${r.id}` : `name:${r.name}`}`;
    const fks = descriptorOf(entity).foreignKeys;
    for (const { field, entity: kind } of fks) {
      const raw = input[field];
      if (raw === undefined || raw === null) continue;
      const parsed = foreignRefSchema.safeParse(raw);
      if (!parsed.success) continue;
      const ref = toEntityRef(parsed.data);
      const key = descriptorOf(kind).endpointKey;
      let row: { id: string } | null = null;
      if (ref.id !== undefined) row = uuidPattern.test(ref.id) ? await tx.get(kind, ref.id) : null;
      else if (ref.name !== undefined && key !== null) row = await tx.findBy(kind, key, ref.name);
      found.set(keyOf(kind, ref), row?.id ?? null);
    }
    for (const { field, entity: kind } of descriptorOf(entity).idLists ?? []) {
      const list = input[field];
      if (!Array.isArray(list)) continue;
      for (const id of list) {
        if (typeof id !== 'string' || !uuidPattern.test(id)) continue;
        found.set(keyOf(kind, { id }), (await tx.get(kind, id))?.id ?? null);
      }
    }
    const missing: { field: ForeignField; kind: EntityName; ref: EntityRef }[] = [];
    const resolve = (kind: RefKind, r: EntityRef): string | null => {
      const id = found.get(keyOf(kind, r)) ?? null;
      if (id === null) {
        const fk = fks.find((f) => f.entity === kind);
        if (fk) missing.push({ field: fk.field, kind, ref: r });
      }
      return id;
    };
    return { resolve, missing };
  }

  /** Validates and fills defaults; schema errors → 400 code 2, dangling references → 400 code 4. */
  async function normalize<E extends EntityName>(
    tx: ConfigTx,
    entity: E,
    input: unknown,
    extra: { existing?: EntityOf<E>; partial?: boolean; id?: string; schemaOnly?: boolean },
  ): Promise<EntityOf<E>> {
    if (!isRecord(input)) throw schemaViolation([{ path: '', message: 'expected an object' }]);
    const effective = extra.partial && extra.existing ? { ...(extra.existing as unknown as Record<string, unknown>), ...input } : input;
    const prefetched = await prefetchRefs(tx, entity, effective);
    const { missing } = prefetched;
    // Schema-only validation (Kong's /schemas/{entity}/validate): a reference counts as valid
    // whether or not it exists yet (decK validates a file before any of it is written).
    const resolve: typeof prefetched.resolve = extra.schemaOnly
      ? (kind, r) => prefetched.resolve(kind, r) ?? r.id ?? deterministicId(kind, `validate:${r.name ?? ''}`)
      : prefetched.resolve;
    const result = normalizeEntity(entity, input, { registry, now: now(), existing: extra.existing, partial: extra.partial, id: extra.id, resolve });
    if (result.ok) return result.value;
    if (extra.schemaOnly) throw schemaViolation(result.issues);
    const refIssues = new Set(missing.map((m) => m.field as string));
    const others = result.issues.filter((i: ValidationIssue) => !refIssues.has(i.path));
    if (others.length === 0 && missing.length > 0) {
      const m = missing[0];
      throw foreignKeyViolation(m.field, m.ref.id !== undefined ? { id: m.ref.id } : { name: m.ref.name }, m.kind);
    }
    throw schemaViolation(result.issues);
  }

  /** Unique keys and composite keys of the entity's descriptor → 409 naming the fields. */
  async function checkUnique<E extends EntityName>(tx: ConfigTx, entity: E, row: EntityOf<E>): Promise<void> {
    const d = descriptorOf(entity);
    const r = row as unknown as Record<string, unknown>;
    for (const key of d.uniqueKeys) {
      const v = uniqueValue(d, r, key);
      if (v === null) continue;
      const other = await tx.findBy(entity, key, v);
      if (other && other.id !== row.id) throw uniqueViolation({ [key]: r[key] });
    }
    for (const key of d.compositeKeys) {
      const mine = compositeValue(d, r, key);
      // Narrow the scan to the rows sharing a foreign key with this one, when the key has one.
      const fk = d.foreignKeys.find((f) => key.fields.includes(f.field) && fkId(r[f.field]) !== null);
      const candidates = await listAll(tx, entity, fk ? { foreign: { field: fk.field, id: fkId(r[fk.field]) as string } } : {});
      const same = candidates.find((o) => o.id !== row.id && compositeValue(d, o as unknown as Record<string, unknown>, key) === mine);
      if (same) throw uniqueViolation(Object.fromEntries([...key.fields].sort().map((f) => [f, r[f]])));
    }
  }

  /**
   * A store-level unique violation that slipped past our checks means a concurrent writer (another
   * worker or node) committed first: the write runs once more and then sees that row, so a POST
   * answers the 409 naming the field and a PUT replaces it. `upsert` also reruns on its own 409
   * (the key was absent when looked up, present when checked). Still conflicting → a 409.
   */
  async function inTx<T>(fn: (tx: ConfigTx) => Promise<T>, rerunOn409 = false): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await store.transaction(fn);
      } catch (err) {
        const storeConflict = isGatewayError(err) && err.code === 'GW_STORE_CONFLICT';
        if (attempt === 0 && (storeConflict || (rerunOn409 && err instanceof AdminError && err.status === 409))) continue;
        if (storeConflict) throw uniqueViolation({});
        throw err;
      }
    }
  }

  /** Deletes a row and, first, what cascades from it; refuses while a `restrict` reference remains. */
  async function removeRow(tx: ConfigTx, entity: EntityName, id: string): Promise<void> {
    for (const { entity: child, fk } of referencesTo(entity)) {
      if (fk.onDelete !== 'restrict') continue;
      const page = await tx.list(child.name, { foreign: { field: fk.field, id }, size: 1 });
      if (page.data.length > 0) throw referencedBy(entity, child.name);
    }
    for (const { entity: child, field } of idListsTo(entity)) {
      // Kong: `ca certificate <id> is still referenced by services (id = <id>)`.
      const user = (await listAll(tx, child.name, {})).find((row) => ((row as unknown as Record<string, unknown>)[field] as unknown[] | null)?.includes(id));
      if (user !== undefined) {
        throw new AdminError(400, { message: `${descriptorOf(entity).singular.replace('_', ' ')} ${id} is still referenced by ${child.name} (id = ${user.id})` });
      }
    }
    for (const { entity: child, fk } of referencesTo(entity)) {
      if (fk.onDelete !== 'cascade') continue;
      for (const c of await listAll(tx, child.name, { foreign: { field: fk.field, id } })) await removeRow(tx, child.name, c.id);
    }
    await tx.delete(entity, id);
  }

  async function createIn<E extends EntityName>(tx: ConfigTx, entity: E, input: unknown, parent?: { field: ForeignField; idOrKey: string }): Promise<EntityOf<E>> {
    const scope = parent ? await parentScope(tx, entity, parent.field, parent.idOrKey) : undefined;
    const row = await normalize(tx, entity, withParent(input, scope), {});
    if (await tx.get(entity, row.id)) throw uniqueViolation({ id: row.id });
    await checkUnique(tx, entity, row);
    await tx.insert(entity, row);
    return row;
  }

  async function upsertIn<E extends EntityName>(tx: ConfigTx, entity: E, idOrKey: string, input: unknown, parent?: { field: ForeignField; idOrKey: string }): Promise<EntityOf<E>> {
    const scope = parent ? await parentScope(tx, entity, parent.field, parent.idOrKey) : undefined;
    const existing = await find(tx, entity, idOrKey, scope);
    let body = withParent(input, scope);
    const isId = uuidPattern.test(idOrKey);
    const key = descriptorOf(entity).endpointKey;
    if (isRecord(body)) {
      if (isId) body = { ...body, id: idOrKey };
      else if (key) body = { ...body, [key]: idOrKey };
      if (existing && !isId) body = { ...(body as Record<string, unknown>), id: existing.id };
    }
    if (!isId && !key && !existing) throw notFound();
    const row = await normalize(tx, entity, body, { existing: existing ?? undefined });
    await checkUnique(tx, entity, row);
    if (existing) await tx.update(entity, row);
    else await tx.insert(entity, row);
    return row;
  }

  async function patchIn<E extends EntityName>(tx: ConfigTx, entity: E, idOrKey: string, input: unknown, parent?: { field: ForeignField; idOrKey: string }): Promise<EntityOf<E>> {
    const scope = parent ? await parentScope(tx, entity, parent.field, parent.idOrKey) : undefined;
    const existing = await find(tx, entity, idOrKey, scope);
    if (!existing) throw notFound();
    if (isRecord(input) && input.id !== undefined && input.id !== existing.id) {
      throw schemaViolation([{ path: 'id', message: 'cannot be changed' }]);
    }
    const row = await normalize(tx, entity, withParent(input, scope), { existing, partial: true });
    await checkUnique(tx, entity, row);
    await tx.update(entity, row);
    return row;
  }

  /** Kong's parse_name_list + the names' own checks: `<name> is duplicated`, wildcard host rules. */
  function checkSniNames(names: readonly unknown[]): void {
    const issues: ValidationIssue[] = [];
    const seen = new Set<string>();
    names.forEach((n, i) => {
      const problem = sniNameProblem(n);
      if (problem !== null) return issues.push({ path: `snis[${i}]`, message: problem });
      const name = (n as string).toLowerCase();
      if (seen.has(name)) issues.push({ path: 'snis', message: `${name} is duplicated` });
      seen.add(name);
    });
    if (issues.length > 0) throw schemaViolation(issues);
  }

  function withParent(input: unknown, parent?: ParentScope): unknown {
    if (!parent || !isRecord(input)) return input;
    return { ...input, [parent.field]: { id: parent.id } };
  }

  return {
    // Reads go straight to the store (it is a ConfigTx too): no write lock for a GET.
    find: async (entity: EntityName, idOrKey: string, parent?: { field: ForeignField; idOrKey: string }) => {
      const scope = parent ? await parentScope(store, entity, parent.field, parent.idOrKey) : undefined;
      return find(store, entity, idOrKey, scope);
    },

    /** GET on a collection, optionally nested. */
    list: async <E extends EntityName>(entity: E, o: ListOptions, parent?: { field: ForeignField; idOrKey: string }) => {
      const scope = parent ? await parentScope(store, entity, parent.field, parent.idOrKey) : undefined;
      return store.list(entity, { ...o, foreign: scope });
    },

    /** POST → the created entity. */
    create: <E extends EntityName>(entity: E, input: unknown, parent?: { field: ForeignField; idOrKey: string }) =>
      inTx((tx) => createIn(tx, entity, input, parent)),

    /** PUT: replace the entity found by id or key, or create it with that id / key. */
    upsert: <E extends EntityName>(entity: E, idOrKey: string, input: unknown, parent?: { field: ForeignField; idOrKey: string }) =>
      inTx((tx) => upsertIn(tx, entity, idOrKey, input, parent), true),

    /** PATCH: merge onto the existing entity (404 when absent). */
    patch: <E extends EntityName>(entity: E, idOrKey: string, input: unknown, parent?: { field: ForeignField; idOrKey: string }) =>
      inTx((tx) => patchIn(tx, entity, idOrKey, input, parent)),

    /**
     * Kong's certificates with the `snis` shorthand (kong/db/dao/certificates.lua): the write and
     * the SNI rows it implies in one transaction. `names` null = no SNIs (PUT without `snis`),
     * undefined = leave them (PATCH without `snis`). Returns the row and its sorted SNI names.
     */
    writeCertificate: (verb: 'create' | 'upsert' | 'patch', idOrKey: string | null, input: unknown, names: readonly string[] | null | undefined) =>
      inTx(async (tx) => {
        const list = names === null ? [] : names;
        if (list !== undefined) checkSniNames(list);
        const row = verb === 'create' ? await createIn(tx, 'certificates', input)
          : verb === 'upsert' ? await upsertIn(tx, 'certificates', idOrKey ?? '', input)
            : await patchIn(tx, 'certificates', idOrKey ?? '', input);
        const current = await listAll(tx, 'snis', { foreign: { field: 'certificate', id: row.id } });
        if (list !== undefined) {
          const wanted = new Set(list.map((n) => n.toLowerCase()));
          for (const name of wanted) {
            const owner = await tx.findBy('snis', 'name', name);
            if (owner !== null && fkId(owner.certificate) !== row.id) {
              throw schemaViolation([{ path: 'snis', message: `${name} already associated with existing certificate '${fkId(owner.certificate)}'` }]);
            }
            if (owner === null) await createIn(tx, 'snis', { name, certificate: { id: row.id } });
          }
          for (const s of current) if (!wanted.has(s.name)) await removeRow(tx, 'snis', s.id);
        }
        const after = list === undefined ? current.map((s) => s.name) : [...new Set(list.map((n) => n.toLowerCase()))];
        return { ...row, snis: after.sort() };
      }, true),

    /** The sorted SNI names of a certificate (Kong's `snis` on certificate reads). */
    sniNamesOf: async (certificateId: string): Promise<string[]> =>
      (await listAll(store, 'snis', { foreign: { field: 'certificate', id: certificateId } })).map((s) => s.name).sort(),

    /**
     * DELETE with Kong's cascades. Returns false when nothing matched (top-level endpoints still
     * answer 204; nested ones 404).
     */
    remove: (entity: EntityName, idOrKey: string, parent?: { field: ForeignField; idOrKey: string }) =>
      inTx(async (tx) => {
        const scope = parent ? await parentScope(tx, entity, parent.field, parent.idOrKey) : undefined;
        const row = await find(tx, entity, idOrKey, scope);
        if (!row) return false;
        await removeRow(tx, entity, row.id);
        return true;
      }),

    /** Validation only (POST /schemas/plugins/validate): nothing is written. */
    validate: async (entity: EntityName, input: unknown) => {
      await normalize(store, entity, input, { schemaOnly: true });
      return true;
    },
  };
}

export type EntityService = ReturnType<typeof createEntityService>;
export { AdminError };
