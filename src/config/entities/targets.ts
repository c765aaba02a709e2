/** Targets of an upstream (Kong: kong/db/schema/entities/targets.lua, kong/db/dao/targets.lua). */
import type { EntityDescriptor } from '../entity.ts';
import { fkId } from '../entity.ts';
import { readableErrorMap, zodIssues } from '../issues.ts';
import { entityId, refField } from '../normalize-kit.ts';
import { targetInputSchema } from '../upstreams.ts';

export const targets: EntityDescriptor<'targets'> = {
  name: 'targets',
  singular: 'target',
  adminPath: 'targets',
  // Kong: targets live under their upstream only; PUT updates (404 when missing), never creates.
  adminTopLevel: false,
  putUpdatesOnly: true,
  // Unique per upstream only: `/upstreams/{u}/targets/{host:port}`.
  endpointKey: 'target',
  uniqueKeys: [],
  compositeKeys: [
    { name: 'upstream_target', fields: ['upstream', 'target'], nullable: false, issueField: 'target', duplicateMessage: (r) => `duplicate target '${String(r.target)}' for this upstream` },
  ],
  foreignKeys: [{ field: 'upstream', entity: 'upstreams', onDelete: 'cascade', nested: true }],
  schema: targetInputSchema,
  naturalKey: { from: 'entity', key: (r) => `${fkId(r.upstream) ?? ''}|${String(r.target)}` },
  dumpNestedUnder: 'upstream',
  label: (r, ref) => `${String(r.target)} of upstream ${ref(r.upstream)}`,
  normalize(r, ctx) {
    const parsed = targetInputSchema.safeParse(r, { error: readableErrorMap });
    const issues = parsed.success ? [] : zodIssues(parsed.error);
    const upstream = refField('upstreams', r, 'upstream', ctx, issues);
    if (r.upstream === undefined || r.upstream === null) issues.push({ path: 'upstream', message: 'required field missing' });
    if (!parsed.success || issues.length > 0 || upstream === null) return { ok: false, issues };
    const v = parsed.data;
    // Kong: targets carry seconds with a millisecond fraction (auto_timestamp_ms).
    const nowMs = Math.round(ctx.now) / 1000;
    const existing = ctx.existing;
    return {
      ok: true,
      value: {
        id: entityId(v.id, ctx),
        upstream,
        target: v.target,
        weight: v.weight,
        tags: v.tags,
        created_at: v.created_at ?? existing?.created_at ?? nowMs,
        updated_at: existing ? nowMs : (v.updated_at ?? nowMs),
      },
    };
  },
};
