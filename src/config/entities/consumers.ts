/** Consumers (Kong: kong/db/schema/entities/consumers.lua). */
import type { EntityDescriptor } from '../entity.ts';
import { naturalKey } from '../ids.ts';
import { readableErrorMap, zodIssues } from '../issues.ts';
import { entityId, timestamps } from '../normalize-kit.ts';
import { consumerInputSchema } from '../schemas.ts';

const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : null);

export const consumers: EntityDescriptor<'consumers'> = {
  name: 'consumers',
  singular: 'consumer',
  adminPath: 'consumers',
  endpointKey: 'username',
  uniqueKeys: ['username', 'custom_id'],
  compositeKeys: [],
  foreignKeys: [],
  schema: consumerInputSchema,
  // Kong: kong/db/schema/entities/consumers.lua.
  kongEntityChecks: [{ at_least_one_of: ['custom_id', 'username'] }],
  naturalKey: { from: 'input', key: (r, path) => naturalKey.consumer(str(r.username), str(r.custom_id), path) },
  normalize(r, ctx) {
    const parsed = consumerInputSchema.safeParse(r, { error: readableErrorMap });
    const issues = parsed.success ? [] : zodIssues(parsed.error);
    if ((r.username === undefined || r.username === null) && (r.custom_id === undefined || r.custom_id === null)) {
      issues.push({ path: '', message: "at least one of these fields must be non-empty: 'custom_id', 'username'" });
    }
    if (!parsed.success || issues.length > 0) return { ok: false, issues };
    const v = parsed.data;
    return {
      ok: true,
      value: { id: entityId(v.id, ctx), username: v.username, custom_id: v.custom_id, tags: v.tags, ...timestamps(v, ctx.existing, ctx.now) },
    };
  },
};
