/** CA certificates (Kong: kong/db/schema/entities/ca_certificates.lua): trusted CAs for upstream TLS and client certificates. */
import { PemEntityCheckError, PemError, checkCaCertificate } from '../../tls/pem.ts';
import type { EntityDescriptor } from '../entity.ts';
import { readableErrorMap, zodIssues } from '../issues.ts';
import { entityId, timestamps } from '../normalize-kit.ts';
import { caCertificateInputSchema } from '../schemas.ts';

export const ca_certificates: EntityDescriptor<'ca_certificates'> = {
  name: 'ca_certificates',
  singular: 'ca_certificate',
  adminPath: 'ca_certificates',
  endpointKey: null,
  uniqueKeys: ['cert_digest'],
  compositeKeys: [],
  foreignKeys: [],
  schema: caCertificateInputSchema,
  // Kong: kong/db/schema/entities/ca_certificates.lua (the custom check's function is not shown).
  kongEntityChecks: [{ custom_entity_check: { field_sources: ['cert'] } }],
  naturalKey: { from: 'input', key: (r) => `cert:${String(r.cert)}` },
  label: (r) => `ca_certificate ${String(r.id)}`,
  normalize(r, ctx) {
    const parsed = caCertificateInputSchema.safeParse(r, { error: readableErrorMap });
    const issues = parsed.success ? [] : zodIssues(parsed.error);
    let digest: string | null = null;
    if (typeof r.cert === 'string') {
      try {
        digest = checkCaCertificate(r.cert).digest;
      } catch (err) {
        if (!(err instanceof PemError)) throw err;
        // Unreadable PEM: the field (Kong's certificate typedef); one, unexpired, a CA: @entity.
        issues.push({ path: err instanceof PemEntityCheckError ? '' : 'cert', message: err.message });
      }
    }
    // Kong: cert_digest is computed on every write (a transformation), whatever the input said.
    if (!parsed.success || issues.length > 0) return { ok: false, issues };
    const v = parsed.data;
    return {
      ok: true,
      value: { id: entityId(v.id, ctx), cert: v.cert, cert_digest: digest!, tags: v.tags, ...timestamps(v, ctx.existing, ctx.now) },
    };
  },
};
