/**
 * Certificates (Kong: kong/db/schema/entities/certificates.lua): a cert/key pair, optionally an
 * alternative pair of the other key type (RSA + ECDSA). PEM checks with node:crypto (tls/pem.ts).
 */
import { createHash } from 'node:crypto';
import type { ValidationIssue } from '../../errors.ts';
import { checkPair } from '../../tls/pem.ts';
import type { EntityDescriptor } from '../entity.ts';
import { readableErrorMap, zodIssues } from '../issues.ts';
import { entityId, timestamps } from '../normalize-kit.ts';
import { certificateInputSchema } from '../schemas.ts';

/** Kong's entity checks over cert/key and cert_alt/key_alt; an expired certificate is accepted (as Kong). */
export function certificateIssues(r: Record<string, unknown>): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const toIssue = (i: { field: string; message: string }): ValidationIssue => ({ path: i.field === '@entity' ? '' : i.field, message: i.message });
  let kind: string | null = null;
  if (typeof r.cert === 'string' && typeof r.key === 'string') {
    const main = checkPair(r.cert, r.key, 'cert', 'key', 'certificate does not match key');
    issues.push(...main.issues.map(toIssue));
    kind = main.pair?.kind ?? null;
  }
  const hasAlt = r.cert_alt !== undefined && r.cert_alt !== null;
  const hasKeyAlt = r.key_alt !== undefined && r.key_alt !== null;
  if (hasAlt !== hasKeyAlt) {
    issues.push({ path: '', message: "all or none of these fields must be set: 'cert_alt', 'key_alt'" });
  } else if (hasAlt && typeof r.cert_alt === 'string' && typeof r.key_alt === 'string') {
    const alt = checkPair(r.cert_alt, r.key_alt, 'cert_alt', 'key_alt', 'alternative certificate does not match key');
    issues.push(...alt.issues.map(toIssue));
    if (alt.pair !== null && kind !== null && alt.pair.kind === kind) {
      issues.push({ path: '', message: 'certificate and alternative certificate need to have different type (e.g. RSA and ECDSA), the provided certificates were both of the same type' });
    }
  }
  return issues;
}

export const certificates: EntityDescriptor<'certificates'> = {
  name: 'certificates',
  singular: 'certificate',
  adminPath: 'certificates',
  endpointKey: null,
  // Kong: `/certificates/{name}` is the certificate of the SNI with that name.
  keyAlias: { entity: 'snis', key: 'name', field: 'certificate' },
  uniqueKeys: [],
  compositeKeys: [],
  foreignKeys: [],
  schema: certificateInputSchema,
  // Kong: kong/db/schema/entities/certificates.lua (the custom checks' functions are not shown).
  kongEntityChecks: [
    { mutually_required: ['cert_alt', 'key_alt'] },
    { custom_entity_check: { field_sources: ['cert', 'key'] } },
    { custom_entity_check: { field_sources: ['cert_alt', 'key_alt'] } },
    { custom_entity_check: { field_sources: ['cert', 'cert_alt'] } },
  ],
  // decK identifies a certificate by its content.
  naturalKey: { from: 'input', key: (r) => createHash('sha256').update(`${String(r.cert)}\0${String(r.key)}`).digest('hex') },
  label: (r) => `certificate ${String(r.id)}`,
  normalize(r, ctx) {
    const parsed = certificateInputSchema.safeParse(r, { error: readableErrorMap });
    const issues = parsed.success ? [] : zodIssues(parsed.error);
    issues.push(...certificateIssues(r));
    if (!parsed.success || issues.length > 0) return { ok: false, issues };
    const v = parsed.data;
    return {
      ok: true,
      value: {
        id: entityId(v.id, ctx),
        cert: v.cert,
        key: v.key,
        cert_alt: v.cert_alt,
        key_alt: v.key_alt,
        tags: v.tags,
        ...timestamps(v, ctx.existing, ctx.now),
      },
    };
  },
};
