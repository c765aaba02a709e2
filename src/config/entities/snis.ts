/** SNIs (Kong: kong/db/schema/entities/snis.lua): a server name pointing at a certificate. */
import { sniNameProblem } from '../../tls/names.ts';
import type { EntityDescriptor } from '../entity.ts';
import { readableErrorMap, zodIssues } from '../issues.ts';
import { entityId, refField, timestamps } from '../normalize-kit.ts';
import { sniInputSchema } from '../schemas.ts';

export const snis: EntityDescriptor<'snis'> = {
  name: 'snis',
  singular: 'sni',
  adminPath: 'snis',
  endpointKey: 'name',
  uniqueKeys: ['name'],
  compositeKeys: [],
  // Kong: deleting a certificate deletes its SNIs.
  foreignKeys: [{ field: 'certificate', entity: 'certificates', onDelete: 'cascade', nested: true }],
  schema: sniInputSchema,
  naturalKey: { from: 'input', key: (r) => `name:${String(r.name).toLowerCase()}` },
  dumpNestedUnder: 'certificate',
  // decK: `snis: [a.example.com]` under a certificate, as Kong's certificates `snis` shorthand.
  nestedStringField: 'name',
  label: (r) => String(r.name),
  normalize(r, ctx) {
    const parsed = sniInputSchema.safeParse(r, { error: readableErrorMap });
    const issues = parsed.success ? [] : zodIssues(parsed.error);
    if (typeof r.name === 'string') {
      const problem = sniNameProblem(r.name);
      if (problem !== null) issues.push({ path: 'name', message: problem });
    }
    const certificate = refField('certificates', r, 'certificate', ctx, issues);
    if (!parsed.success || issues.length > 0) return { ok: false, issues };
    const v = parsed.data;
    return {
      ok: true,
      value: {
        id: entityId(v.id, ctx),
        name: v.name.toLowerCase(),
        certificate: certificate!,
        tags: v.tags,
        ...timestamps(v, ctx.existing, ctx.now),
      },
    };
  },
};
