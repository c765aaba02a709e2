/**
 * Building blocks of the entities' `normalize` functions (entities/*.ts): reading references,
 * timestamps, and `normalizeSimple` for entities whose only rules are their schema and their
 * foreign keys.
 */
import { randomUUID } from 'node:crypto';
import type { ValidationIssue } from '../errors.ts';
import type { EntityDescriptor, EntityRef, NormalizeContext, NormalizeResult, RefKind } from './entity.ts';
import type { EntityName, EntityOf, ForeignKey } from './types.ts';
import { uuidPattern } from './fields.ts';
import { readableErrorMap, zodIssues } from './issues.ts';
import { foreignRefSchema, type ForeignRefInput } from './schemas.ts';

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Read a reference in any accepted shape into `{ id }` or `{ name }`. */
export function toEntityRef(ref: ForeignRefInput): EntityRef {
  if (typeof ref === 'string') return uuidPattern.test(ref) ? { id: ref } : { name: ref };
  if ('id' in ref) return { id: ref.id };
  if ('name' in ref) return { name: ref.name };
  return { name: ref.username };
}

/** `services` → `service` for messages (certificates are not a stored entity yet). */
function singularOf(kind: RefKind): string {
  return kind.endsWith('s') ? kind.slice(0, -1) : kind;
}

function resolveRef(kind: RefKind, ref: ForeignRefInput, path: string, ctx: NormalizeContext<EntityName>, issues: ValidationIssue[]): ForeignKey | null {
  const r = toEntityRef(ref);
  if (r.id !== undefined && !uuidPattern.test(r.id)) {
    // Kong validates a foreign key as the referenced entity's primary key: the message is the id's.
    issues.push({ path: `${path}.id`, message: 'expected a valid UUID' });
    return null;
  }
  if (!ctx.resolve) {
    if (r.id !== undefined) return { id: r.id };
    issues.push({ path, message: `a reference by name ('${r.name}') cannot be resolved here; use { "id": ... }` });
    return null;
  }
  const id = ctx.resolve(kind, r);
  if (id === null) {
    issues.push({ path, message: r.id !== undefined ? `no ${singularOf(kind)} with id '${r.id}'` : `no ${singularOf(kind)} named '${r.name}'` });
    return null;
  }
  return { id };
}

/**
 * Resolve the reference in `r[field]` (raw input), whether or not the rest of the entity is
 * valid, so a bad reference is reported together with every other problem. A field that does
 * not have a reference's shape was already reported by the schema.
 */
export function refField<E extends EntityName>(kind: RefKind, r: Record<string, unknown>, field: string, ctx: NormalizeContext<E>, issues: ValidationIssue[]): ForeignKey | null {
  const v = r[field];
  if (v === undefined || v === null) return null;
  const parsed = foreignRefSchema.safeParse(v);
  if (!parsed.success) return null;
  return resolveRef(kind, parsed.data, field, ctx as NormalizeContext<EntityName>, issues);
}

export function timestamps(input: { created_at?: number; updated_at?: number }, existing: { created_at: number } | undefined, now: number) {
  const nowSec = Math.floor(now / 1000);
  return {
    created_at: input.created_at ?? existing?.created_at ?? nowSec,
    updated_at: existing ? nowSec : (input.updated_at ?? nowSec),
  };
}

/** The id of a normalized entity: given, kept from the stored one, the loader's, or a new v4. */
export function entityId(given: string | undefined, ctx: NormalizeContext<EntityName> | NormalizeContext<never>): string {
  return given ?? (ctx.existing as { id?: string } | undefined)?.id ?? ctx.id ?? randomUUID();
}

/**
 * Normalization for an entity whose rules are its schema and its foreign keys: parse, resolve
 * every foreign key, fill id and timestamps (`created_at`, and `updated_at` when the schema has it).
 */
export function normalizeSimple<E extends EntityName>(d: EntityDescriptor<E>, input: Record<string, unknown>, ctx: NormalizeContext<E>): NormalizeResult<EntityOf<E>> {
  const parsed = d.schema.safeParse(input, { error: readableErrorMap });
  const issues = parsed.success ? [] : zodIssues(parsed.error);
  const refs: Record<string, ForeignKey | null> = {};
  for (const fk of d.foreignKeys) refs[fk.field] = refField(fk.entity, input, fk.field, ctx, issues);
  if (!parsed.success || issues.length > 0) return { ok: false, issues };
  const v = parsed.data as Record<string, unknown> & { id?: string; created_at?: number; updated_at?: number };
  // Schema field order, id first, foreign keys as `{ id }`.
  const out: Record<string, unknown> = { id: entityId(v.id, ctx) };
  for (const [k, x] of Object.entries(v)) if (k !== 'id') out[k] = k in refs ? refs[k] : x;
  const existing = ctx.existing as { created_at: number } | undefined;
  const stamps = timestamps(v, existing, ctx.now);
  out.created_at = stamps.created_at;
  if ('updated_at' in d.schema.shape) out.updated_at = stamps.updated_at;
  return { ok: true, value: out as unknown as EntityOf<E> };
}
