/** Services (Kong: kong/db/schema/entities/services.lua). */
import type { EntityDescriptor } from '../entity.ts';
import { naturalKey } from '../ids.ts';
import { readableErrorMap, zodIssues } from '../issues.ts';
import { entityId, refField, timestamps } from '../normalize-kit.ts';
import { serviceInputSchema } from '../schemas.ts';
import type { Protocol } from '../types.ts';
import { parseServiceUrl } from '../url.ts';

const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : null);

export const services: EntityDescriptor<'services'> = {
  name: 'services',
  singular: 'service',
  adminPath: 'services',
  endpointKey: 'name',
  uniqueKeys: ['name'],
  compositeKeys: [],
  foreignKeys: [],
  schema: serviceInputSchema,
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
      const given = parts.filter((p) => r[p] !== undefined && r[p] !== null);
      if (given.length > 0) issues.push({ path: 'url', message: `cannot be set together with ${given.map((g) => `'${g}'`).join(', ')}` });
      fromUrl = parseServiceUrl(r.url);
      if ('error' in fromUrl) issues.push({ path: 'url', message: fromUrl.error });
    } else if (r.url === undefined && (r.host === undefined || r.host === null)) {
      issues.push({ path: 'host', message: 'required field missing' });
    }
    if (r.tls_verify_depth !== undefined && r.tls_verify_depth !== null) {
      // Not applied to upstream TLS yet: refused rather than accepted and ignored.
      issues.push({ path: 'tls_verify_depth', message: 'is not supported yet; leave it null (the default)' });
    }
    const clientCertificate = refField('certificates', r, 'client_certificate', ctx, issues);
    if (!parsed.success || issues.length > 0) return { ok: false, issues };
    const v = parsed.data;
    const protocol: Protocol = fromUrl && !('error' in fromUrl) ? fromUrl.protocol : (v.protocol ?? 'http');
    const host = fromUrl && !('error' in fromUrl) ? fromUrl.host : (v.host as string);
    const defaultPort = protocol === 'https' || protocol === 'grpcs' || protocol === 'wss' || protocol === 'tls' ? 443 : 80;
    const port = fromUrl && !('error' in fromUrl) ? (fromUrl.port ?? defaultPort) : (v.port ?? defaultPort);
    const path = fromUrl && !('error' in fromUrl) ? fromUrl.path : (v.path ?? null);
    // Kong: stream and gRPC services proxy no path.
    if (path !== null && ['tcp', 'tls', 'udp', 'tls_passthrough', 'grpc', 'grpcs'].includes(protocol)) {
      return { ok: false, issues: [{ path: fromUrl ? 'url' : 'path', message: `a path cannot be set when protocol is '${protocol}'` }] };
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
