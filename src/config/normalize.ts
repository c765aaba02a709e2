/**
 * Validate one entity and fill Kong's defaults: the single code path for Admin API bodies and
 * declarative entries. Cross-entity facts (does the referenced service exist? is the name
 * unique?) are not known here; foreign keys are resolved through the caller's `resolve`.
 * Each entity's own rules are its descriptor's `normalize` (entities/*.ts).
 */
import type { NormalizeContext, NormalizeResult } from './entity.ts';
import { descriptorOf } from './entities/index.ts';
import { isRecord } from './normalize-kit.ts';
import type { EntityName, EntityOf } from './types.ts';

export type { EntityRef, NormalizeContext, NormalizeResult, RefKind } from './entity.ts';
export { toEntityRef } from './normalize-kit.ts';
export { scopeAllowed } from './entities/plugins.ts';

/**
 * Validate one entity from Admin API or declarative input and fill Kong's defaults, id
 * (random UUID v4 unless given) and timestamps (seconds). With `partial` and `existing`, the
 * input is merged onto the existing entity first (PATCH). Issue paths are relative to the
 * entity (`paths[0]`, `config.issuer`; `''` for the entity as a whole).
 */
export function normalizeEntity<E extends EntityName>(entity: E, input: unknown, ctx: NormalizeContext<E>): NormalizeResult<EntityOf<E>> {
  const d = descriptorOf(entity);
  let effective = input;
  if (ctx.partial && ctx.existing && isRecord(input)) {
    const base: Record<string, unknown> = { ...(ctx.existing as unknown as Record<string, unknown>) };
    delete base.updated_at;
    effective = d.mergePatch ? d.mergePatch(base, input) : { ...base, ...input };
  }
  if (!isRecord(effective)) return { ok: false, issues: [{ path: '', message: 'expected an object' }] };
  return d.normalize(effective, ctx);
}
