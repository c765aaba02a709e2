/** Services (Kong: kong/db/schema/entities/services.lua). */
import type { EntityDescriptor } from '../entity.ts';
import { naturalKey } from '../ids.ts';
import { readableErrorMap, zodIssues } from '../issues.ts';
import { entityId, refField, timestamps } from '../normalize-kit.ts';
import { serviceInputSchema } from '../schemas.ts';
import type { Protocol } from '../types.ts';
import { parseServiceUrl } from '../url.ts';
import { uuidPattern } from '../fields.ts';

/** Kong's entity-level message for a failed `conditional` entity check. */
const conditionalFailed = (field: string) => `failed conditional validation given value of field '${field}'`;

const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : null);

export const services: EntityDescriptor<'services'> = {
  name: 'services',
  singular: 'service',
  adminPath: 'services',
  endpointKey: 'name',
  uniqueKeys: ['name'],
  compositeKeys: [],
  // Kong: a certificate a service still uses for mTLS cannot be deleted.
  foreignKeys: [{ field: 'client_certificate', entity: 'certificates', onDelete: 'restrict', nested: false }],
  idLists: [{ field: 'ca_certificates', entity: 'ca_certificates' }],
  schema: serviceInputSchema,
  // Kong: kong/db/schema/entities/services.lua (`null` is Lua's ngx.null).
  kongEntityChecks: [
    { conditional: { if_field: 'protocol', if_match: { one_of: ['tcp', 'tls', 'udp', 'grpc', 'grpcs'] }, then_field: 'path', then_match: { eq: null } } },
    { conditional: { if_field: 'protocol', if_match: { not_one_of: ['https', 'tls'] }, then_field: 'client_certificate', then_match: { eq: null } } },
    { conditional: { if_field: 'protocol', if_match: { not_one_of: ['https', 'tls'] }, then_field: 'tls_verify', then_match: { eq: null } } },
    { conditional: { if_field: 'protocol', if_match: { not_one_of: ['https', 'tls'] }, then_field: 'tls_verify_depth', then_match: { eq: null } } },
    { conditional: { if_field: 'protocol', if_match: { not_one_of: ['https', 'tls'] }, then_field: 'ca_certificates', then_match: { eq: null } } },
  ],
  naturalKey: { from: 'input', key: (r, path) => naturalKey.service(str(r.name), path) },
  mergePatch(existing, input) {
    const base: Record<string, unknown> = { ...existing };
    // `url` replaces the four fields it stands for.
    if (input.url !== undefined) for (const k of ['protocol', 'host', 'port', 'path']) delete base[k];
    return { ...base, ...input };
  },
  normalize(r, ctx) {
    const parsed = serviceInputSchema.safeParse(r, { error: readableErrorMap });
    const issues = parsed.success ? [] : zodIssues(parsed.error);
    const parts = ['protocol', 'host', 'port', 'path'] as const;
    let fromUrl: ReturnType<typeof parseServiceUrl> | null = null;
    if (typeof r.url === 'string') {
      fromUrl = parseServiceUrl(r.url);
      if ('error' in fromUrl) issues.push({ path: 'url', message: fromUrl.error });
      // Kong Manager sends the parts it derived from the URL beside it (url + port): a part equal
      // to what the URL says is accepted; one that says otherwise is refused, not overridden.
      const said: Record<string, unknown> = 'error' in fromUrl ? {} : {
        protocol: fromUrl.protocol, host: fromUrl.host, path: fromUrl.path,
        port: fromUrl.port ?? (['https', 'grpcs', 'wss', 'tls'].includes(fromUrl.protocol) ? 443 : 80),
      };
      const given = parts.filter((p) => r[p] !== undefined && r[p] !== null && r[p] !== said[p]);
      if (given.length > 0) issues.push({ path: 'url', message: `cannot be set together with ${given.map((g) => `'${g}'`).join(', ')}` });
    } else if (r.url === undefined && (r.host === undefined || r.host === null)) {
      issues.push({ path: 'host', message: 'required field missing' });
    }
    const clientCertificate = refField('certificates', r, 'client_certificate', ctx, issues);
    if (Array.isArray(r.ca_certificates)) {
      r.ca_certificates.forEach((id, i) => {
        if (typeof id !== 'string' || !uuidPattern.test(id)) issues.push({ path: `ca_certificates[${i}]`, message: 'expected a valid UUID' });
        else if (ctx.resolve && ctx.resolve('ca_certificates', { id }) === null) issues.push({ path: `ca_certificates[${i}]`, message: `no ca_certificate with id '${id}'` });
      });
    }
    // Kong: upstream TLS settings only where the upstream speaks TLS.
    const protocolGiven = typeof r.url === 'string' ? r.url.slice(0, Math.max(0, r.url.indexOf(':'))).toLowerCase() : (typeof r.protocol === 'string' ? r.protocol : 'http');
    // Kong's conditional entity checks, one per field, each reported on the field ('value must be
    // null') and on the entity (Kong names only https and tls; grpcs and wss speak TLS here too).
    if (!['https', 'grpcs', 'wss', 'tls'].includes(protocolGiven)) {
      for (const f of ['client_certificate', 'tls_verify', 'tls_verify_depth', 'ca_certificates']) {
        if (r[f] === undefined || r[f] === null) continue;
        // Entity messages first, as Kong's message lists them.
        issues.unshift({ path: '', message: conditionalFailed('protocol') });
        issues.push({ path: f, message: 'value must be null' });
      }
    }
    // Kong proxies udp for udp routes; here stream routes are TCP only (routes.ts refuses udp), and
    // a tcp route would reach a udp service over TCP: refused rather than accepted and mis-served.
    if (protocolGiven === 'udp') issues.push({ path: typeof r.url === 'string' ? 'url' : 'protocol', message: "'udp' is not supported: stream services are proxied over TCP ('tcp' or 'tls')" });
    if (!parsed.success || issues.length > 0) return { ok: false, issues };
    const v = parsed.data;
    const protocol: Protocol = fromUrl && !('error' in fromUrl) ? fromUrl.protocol : v.protocol;
    const host = fromUrl && !('error' in fromUrl) ? fromUrl.host : (v.host as string);
    // Kong: a port left out is 80 (the schema default GET /schemas/services shows), even for
    // https; only a `url` without a port takes the scheme's default.
    const urlPort = protocol === 'https' || protocol === 'grpcs' || protocol === 'wss' || protocol === 'tls' ? 443 : 80;
    const port = fromUrl && !('error' in fromUrl) ? (fromUrl.port ?? urlPort) : v.port;
    const path = fromUrl && !('error' in fromUrl) ? fromUrl.path : (v.path ?? null);
    // Kong: stream and gRPC services proxy no path.
    if (path !== null && ['tcp', 'tls', 'udp', 'tls_passthrough', 'grpc', 'grpcs'].includes(protocol)) {
      return { ok: false, issues: [{ path: '', message: conditionalFailed('protocol') }, { path: fromUrl ? 'url' : 'path', message: 'value must be null' }] };
    }
    return {
      ok: true,
      value: {
        id: entityId(v.id, ctx),
        name: v.name,
        protocol,
        host,
        port,
        path,
        retries: v.retries,
        connect_timeout: v.connect_timeout,
        write_timeout: v.write_timeout,
        read_timeout: v.read_timeout,
        tls_verify: v.tls_verify,
        tls_verify_depth: v.tls_verify_depth,
        ca_certificates: v.ca_certificates,
        client_certificate: clientCertificate,
        enabled: v.enabled,
        tags: v.tags,
        ...timestamps(v, ctx.existing, ctx.now),
      },
    };
  },
};
