/**
 * The entity service: every Admin API write goes through here, inside one store transaction, so
 * validation, unique checks, foreign-key resolution and cascades either all apply or none does.
 *
 * Kong semantics kept: lookups by id or endpoint key (service/route `name`, consumer `username`,
 * plugin `instance_name`, ACL `group` under its consumer); PUT upserts; PATCH merges (nested
 * plugin `config` field by field, arrays replaced); deleting a service that routes still use is
 * refused; deleting a route/service/consumer deletes its plugins (and a consumer its ACLs).
 */
import type { EntityName, EntityOf, Plugin } from '../config/types.ts';
import { uuidPattern } from '../config/fields.ts';
import { normalizeEntity, toEntityRef, type EntityRef, type RefKind } from '../config/normalize.ts';
import { foreignRefSchema } from '../config/schemas.ts';
import { isGatewayError, type ValidationIssue } from '../errors.ts';
import type { PluginRegistry } from '../plugins/registry.ts';
import type { ConfigStore, ConfigTx, ForeignField, ListOptions, ListPage, UniqueKey } from '../storage/ports.ts';
import { foreignKeyViolation, notFound, referencedBy, schemaViolation, uniqueViolation, AdminError } from './errors.ts';

/** The parent a nested endpoint scopes an entity to (`/services/{s}/routes` → service s). */
export interface ParentScope {
  field: ForeignField;
  id: string;
}

/** Endpoint keys: what a non-UUID path segment is matched against. */
const endpointKey: Record<EntityName, UniqueKey | 'group' | null> = {
  services: 'name',
  routes: 'name',
  consumers: 'username',
  plugins: 'instance_name',
  acls: 'group',
};

const refKindOf: Record<ForeignField, RefKind & EntityName> = { service: 'services', route: 'routes', consumer: 'consumers' };
const refFields: Record<EntityName, readonly ForeignField[]> = {
  services: [],
  routes: ['service'],
  consumers: [],
  plugins: ['route', 'service', 'consumer'],
  acls: ['consumer'],
};

export interface EntityServiceOptions {
  store: ConfigStore;
  registry: PluginRegistry;
  now?: () => number;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fkId(v: unknown): string | null {
  return isRecord(v) && typeof v.id === 'string' ? v.id : null;
}

export function createEntityService(opts: EntityServiceOptions) {
  const { store, registry } = opts;
  const now = opts.now ?? Date.now;

  /** Finds by id or endpoint key, optionally only under a parent. Null when absent. */
  async function find<E extends EntityName>(tx: ConfigTx, entity: E, idOrKey: string, parent?: ParentScope): Promise<EntityOf<E> | null> {
    let row: EntityOf<E> | null = null;
    if (uuidPattern.test(idOrKey)) row = await tx.get(entity, idOrKey);
    const key = endpointKey[entity];
    if (!row && key === 'group') {
      // ACL groups are only unique per consumer: a group needs the consumer scope.
      if (parent) {
        const page = await listAll(tx, entity, { foreign: parent });
        row = page.find((r) => (r as unknown as { group: string }).group === idOrKey) ?? null;
      }
    } else if (!row && key) {
      row = await tx.findBy(entity, key as UniqueKey, idOrKey);
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
  async function parentScope(tx: ConfigTx, field: ForeignField, idOrKey: string): Promise<ParentScope> {
    const row = await find(tx, refKindOf[field], idOrKey);
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
    for (const field of refFields[entity]) {
      const raw = input[field];
      if (raw === undefined || raw === null) continue;
      const parsed = foreignRefSchema.safeParse(raw);
      if (!parsed.success) continue;
      const ref = toEntityRef(parsed.data);
      const kind = refKindOf[field];
      let row: { id: string } | null = null;
      if (ref.id !== undefined) row = uuidPattern.test(ref.id) ? await tx.get(kind, ref.id) : null;
      else if (ref.name !== undefined) row = await tx.findBy(kind, kind === 'consumers' ? 'username' : 'name', ref.name);
      found.set(keyOf(kind, ref), row?.id ?? null);
    }
    const missing: { field: ForeignField; ref: EntityRef }[] = [];
    const resolve = (kind: RefKind, r: EntityRef): string | null => {
      if (kind === 'certificates') return r.id ?? null; // certificates are not stored entities (yet)
      const id = found.get(keyOf(kind, r)) ?? null;
      if (id === null) {
        const field = (Object.keys(refKindOf) as ForeignField[]).find((f) => refKindOf[f] === kind)!;
        missing.push({ field, ref: r });
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
    extra: { existing?: EntityOf<E>; partial?: boolean; id?: string },
  ): Promise<EntityOf<E>> {
    if (!isRecord(input)) throw schemaViolation([{ path: '', message: 'expected an object' }]);
    const effective = extra.partial && extra.existing ? { ...(extra.existing as unknown as Record<string, unknown>), ...input } : input;
    const { resolve, missing } = await prefetchRefs(tx, entity, effective);
    const result = normalizeEntity(entity, input, { registry, now: now(), existing: extra.existing, partial: extra.partial, id: extra.id, resolve });
    if (result.ok) return result.value;
    const refIssues = new Set(missing.map((m) => m.field as string));
    const others = result.issues.filter((i: ValidationIssue) => !refIssues.has(i.path));
    if (others.length === 0 && missing.length > 0) {
      const m = missing[0];
      throw foreignKeyViolation(m.field, m.ref.id !== undefined ? { id: m.ref.id } : { name: m.ref.name }, refKindOf[m.field]);
    }
    throw schemaViolation(result.issues);
  }

  /** Unique keys (Kong's `unique = true` fields and the plugin scope rule) → 409. */
  async function checkUnique<E extends EntityName>(tx: ConfigTx, entity: E, row: EntityOf<E>): Promise<void> {
    const r = row as unknown as Record<string, unknown>;
    const keys: UniqueKey[] = entity === 'services' || entity === 'routes' ? ['name'] : entity === 'consumers' ? ['username', 'custom_id'] : entity === 'plugins' ? ['instance_name'] : [];
    for (const key of keys) {
      const v = r[key];
      if (typeof v !== 'string') continue;
      const other = await tx.findBy(entity, key, v);
      if (other && other.id !== row.id) throw uniqueViolation({ [key]: v });
    }
    if (entity === 'plugins') {
      const p = row as unknown as Plugin;
      const same = (await listAll(tx, 'plugins')).find(
        (o) => o.id !== p.id && o.name === p.name && fkId(o.route) === fkId(p.route) && fkId(o.service) === fkId(p.service) && fkId(o.consumer) === fkId(p.consumer),
      );
      if (same) throw uniqueViolation({ consumer: p.consumer, name: p.name, route: p.route, service: p.service });
    }
    if (entity === 'acls') {
      const a = row as unknown as EntityOf<'acls'>;
      const same = (await listAll(tx, 'acls', { foreign: { field: 'consumer', id: a.consumer.id } })).find((o) => o.id !== a.id && o.group === a.group);
      if (same) throw uniqueViolation({ consumer: a.consumer, group: a.group });
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

  function withParent(input: unknown, parent?: ParentScope): unknown {
    if (!parent || !isRecord(input)) return input;
    return { ...input, [parent.field]: { id: parent.id } };
  }

  return {
    // Reads go straight to the store (it is a ConfigTx too): no write lock for a GET.
    find: async (entity: EntityName, idOrKey: string, parent?: { field: ForeignField; idOrKey: string }) => {
      const scope = parent ? await parentScope(store, parent.field, parent.idOrKey) : undefined;
      return find(store, entity, idOrKey, scope);
    },

    /** GET on a collection, optionally nested. */
    list: async <E extends EntityName>(entity: E, o: ListOptions, parent?: { field: ForeignField; idOrKey: string }) => {
      const scope = parent ? await parentScope(store, parent.field, parent.idOrKey) : undefined;
      return store.list(entity, { ...o, foreign: scope });
    },

    /** POST → the created entity. */
    create: <E extends EntityName>(entity: E, input: unknown, parent?: { field: ForeignField; idOrKey: string }) =>
      inTx(async (tx) => {
        const scope = parent ? await parentScope(tx, parent.field, parent.idOrKey) : undefined;
        const row = await normalize(tx, entity, withParent(input, scope), {});
        if (await tx.get(entity, row.id)) throw uniqueViolation({ id: row.id });
        await checkUnique(tx, entity, row);
        await tx.insert(entity, row);
        return row;
      }),

    /** PUT: replace the entity found by id or key, or create it with that id / key. */
    upsert: <E extends EntityName>(entity: E, idOrKey: string, input: unknown, parent?: { field: ForeignField; idOrKey: string }) =>
      inTx(async (tx) => {
        const scope = parent ? await parentScope(tx, parent.field, parent.idOrKey) : undefined;
        const existing = await find(tx, entity, idOrKey, scope);
        let body = withParent(input, scope);
        const isId = uuidPattern.test(idOrKey);
        const key = endpointKey[entity];
        if (isRecord(body)) {
          if (isId) body = { ...body, id: idOrKey };
          else if (key) body = { ...body, [key]: idOrKey };
          if (existing && !isId) body = { ...(body as Record<string, unknown>), id: existing.id };
        }
        if (!isId && !key) throw notFound();
        const row = await normalize(tx, entity, body, { existing: existing ?? undefined });
        await checkUnique(tx, entity, row);
        if (existing) await tx.update(entity, row);
        else await tx.insert(entity, row);
        return row;
      }, true),

    /** PATCH: merge onto the existing entity (404 when absent). */
    patch: <E extends EntityName>(entity: E, idOrKey: string, input: unknown, parent?: { field: ForeignField; idOrKey: string }) =>
      inTx(async (tx) => {
        const scope = parent ? await parentScope(tx, parent.field, parent.idOrKey) : undefined;
        const existing = await find(tx, entity, idOrKey, scope);
        if (!existing) throw notFound();
        if (isRecord(input) && input.id !== undefined && input.id !== existing.id) {
          throw schemaViolation([{ path: 'id', message: 'cannot be changed' }]);
        }
        const row = await normalize(tx, entity, withParent(input, scope), { existing, partial: true });
        await checkUnique(tx, entity, row);
        await tx.update(entity, row);
        return row;
      }),

    /**
     * DELETE with Kong's cascades. Returns false when nothing matched (top-level endpoints still
     * answer 204; nested ones 404).
     */
    remove: (entity: EntityName, idOrKey: string, parent?: { field: ForeignField; idOrKey: string }) =>
      inTx(async (tx) => {
        const scope = parent ? await parentScope(tx, parent.field, parent.idOrKey) : undefined;
        const row = await find(tx, entity, idOrKey, scope);
        if (!row) return false;
        if (entity === 'services') {
          const routes = await tx.list('routes', { foreign: { field: 'service', id: row.id }, size: 1 });
          if (routes.data.length > 0) throw referencedBy('services', 'routes');
        }
        const field: ForeignField | null = entity === 'services' ? 'service' : entity === 'routes' ? 'route' : entity === 'consumers' ? 'consumer' : null;
        if (field) {
          for (const p of await listAll(tx, 'plugins', { foreign: { field, id: row.id } })) await tx.delete('plugins', p.id);
        }
        if (entity === 'consumers') {
          for (const a of await listAll(tx, 'acls', { foreign: { field: 'consumer', id: row.id } })) await tx.delete('acls', a.id);
        }
        await tx.delete(entity, row.id);
        return true;
      }),

    /** Validation only (POST /schemas/plugins/validate): nothing is written. */
    validate: async (entity: EntityName, input: unknown) => {
      await normalize(store, entity, input, {});
      return true;
    },
  };
}

export type EntityService = ReturnType<typeof createEntityService>;
export { AdminError };
