/** Upstreams (Kong: kong/db/schema/entities/upstreams.lua); rules in ../upstreams.ts. */
import type { EntityDescriptor } from '../entity.ts';
import { readableErrorMap, zodIssues } from '../issues.ts';
import { entityId, refField, timestamps } from '../normalize-kit.ts';
import { upstreamInputSchema, upstreamRules } from '../upstreams.ts';

export const upstreams: EntityDescriptor<'upstreams'> = {
  name: 'upstreams',
  singular: 'upstream',
  adminPath: 'upstreams',
  endpointKey: 'name',
  uniqueKeys: ['name'],
  compositeKeys: [],
  // Kong: a certificate an upstream still uses cannot be deleted.
  foreignKeys: [{ field: 'client_certificate', entity: 'certificates', onDelete: 'restrict', nested: false }],
  schema: upstreamInputSchema,
  // Kong: kong/db/schema/entities/upstreams.lua.
  kongEntityChecks: [
    { conditional: { if_field: 'hash_on', if_match: { match: '^header$' }, then_field: 'hash_on_header', then_match: { required: true } } },
    { conditional: { if_field: 'hash_fallback', if_match: { match: '^header$' }, then_field: 'hash_fallback_header', then_match: { required: true } } },
    { conditional: { if_field: 'hash_on', if_match: { match: '^cookie$' }, then_field: 'hash_on_cookie', then_match: { required: true } } },
    { conditional: { if_field: 'hash_fallback', if_match: { match: '^cookie$' }, then_field: 'hash_on_cookie', then_match: { required: true } } },
    { conditional: { if_field: 'hash_on', if_match: { match: '^none$' }, then_field: 'hash_fallback', then_match: { one_of: ['none'] } } },
    { conditional: { if_field: 'hash_on', if_match: { match: '^cookie$' }, then_field: 'hash_fallback', then_match: { one_of: ['none'] } } },
    { conditional: { if_field: 'hash_on', if_match: { match: '^consumer$' }, then_field: 'hash_fallback', then_match: { one_of: ['none', 'ip', 'header', 'cookie', 'path', 'query_arg', 'uri_capture'] } } },
    { conditional: { if_field: 'hash_on', if_match: { match: '^ip$' }, then_field: 'hash_fallback', then_match: { one_of: ['none', 'consumer', 'header', 'cookie', 'path', 'query_arg', 'uri_capture'] } } },
    { conditional: { if_field: 'hash_on', if_match: { match: '^path$' }, then_field: 'hash_fallback', then_match: { one_of: ['none', 'consumer', 'header', 'cookie', 'query_arg', 'ip', 'uri_capture'] } } },
    { distinct: ['hash_on_header', 'hash_fallback_header'] },
    { conditional: { if_field: 'hash_on', if_match: { match: '^query_arg$' }, then_field: 'hash_on_query_arg', then_match: { required: true } } },
    { conditional: { if_field: 'hash_fallback', if_match: { match: '^query_arg$' }, then_field: 'hash_fallback_query_arg', then_match: { required: true } } },
    { distinct: ['hash_on_query_arg', 'hash_fallback_query_arg'] },
    { conditional: { if_field: 'hash_on', if_match: { match: '^uri_capture$' }, then_field: 'hash_on_uri_capture', then_match: { required: true } } },
    { conditional: { if_field: 'hash_fallback', if_match: { match: '^uri_capture$' }, then_field: 'hash_fallback_uri_capture', then_match: { required: true } } },
    { distinct: ['hash_on_uri_capture', 'hash_fallback_uri_capture'] },
  ],
  naturalKey: { from: 'input', key: (r, path) => (typeof r.name === 'string' && r.name !== '' ? `name:${r.name}` : `path:${path}`) },
  mergePatch(existing, input) {
    // Kong's shorthands read what the request says: a new hash_on picks the algorithm, a new
    // algorithm may reset hash_on — the stored counterpart must not win over it.
    const base: Record<string, unknown> = { ...existing };
    if (input.hash_on !== undefined && input.algorithm === undefined) delete base.algorithm;
    if (input.algorithm !== undefined && input.hash_on === undefined) delete base.hash_on;
    return { ...base, ...input };
  },
  normalize(r, ctx) {
    const parsed = upstreamInputSchema.safeParse(r, { error: readableErrorMap });
    if (!parsed.success) return { ok: false, issues: zodIssues(parsed.error) };
    const v = parsed.data;
    const issues = upstreamRules(v, { algorithm: r.algorithm !== undefined && r.algorithm !== null, hash_on: r.hash_on !== undefined && r.hash_on !== null });
    const clientCertificate = refField('certificates', r, 'client_certificate', ctx, issues);
    if (issues.length > 0) return { ok: false, issues };
    return {
      ok: true,
      value: {
        id: entityId(v.id, ctx),
        name: v.name,
        algorithm: v.algorithm!,
        hash_on: v.hash_on!,
        hash_fallback: v.hash_fallback,
        hash_on_header: v.hash_on_header,
        hash_fallback_header: v.hash_fallback_header,
        hash_on_cookie: v.hash_on_cookie,
        hash_on_cookie_path: v.hash_on_cookie_path,
        hash_on_query_arg: v.hash_on_query_arg,
        hash_fallback_query_arg: v.hash_fallback_query_arg,
        hash_on_uri_capture: v.hash_on_uri_capture,
        hash_fallback_uri_capture: v.hash_fallback_uri_capture,
        slots: v.slots,
        healthchecks: v.healthchecks,
        host_header: v.host_header,
        client_certificate: clientCertificate,
        use_srv_name: v.use_srv_name,
        tags: v.tags,
        ...timestamps(v, ctx.existing, ctx.now),
      },
    };
  },
};
