/** Routes (Kong: kong/db/schema/entities/routes.lua). */
import type { EntityDescriptor } from '../entity.ts';
import { naturalKey } from '../ids.ts';
import { readableErrorMap, zodIssues } from '../issues.ts';
import { entityId, isRecord, refField, timestamps } from '../normalize-kit.ts';
import { routeInputSchema } from '../schemas.ts';

const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : null);

function nonEmpty(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (isRecord(v)) return Object.keys(v).length > 0;
  return false;
}

const streamProtocolList = "'tcp', 'tls', 'tls_passthrough' or 'udp'";

function isStreamFamily(family: readonly string[]): boolean {
  return family.includes('tcp') || family.includes('tls_passthrough');
}

/**
 * Kong's stream subschema (routes_subschemas.lua): no HTTP matching fields; tcp/tls routes need
 * one of sources, destinations, snis; tls_passthrough routes need snis. UDP is not proxied here:
 * a route naming it is refused rather than accepted and never served.
 */
function streamRules(r: Record<string, unknown>, protocolsGiven: readonly unknown[], issues: Array<{ path: string; message: string }>): void {
  if (protocolsGiven.includes('udp')) {
    issues.push({ path: 'protocols', message: "'udp' is not supported: stream routes proxy TCP only ('tcp', 'tls', 'tls_passthrough')" });
  }
  for (const f of ['methods', 'hosts', 'paths', 'headers']) {
    if (nonEmpty(r[f])) issues.push({ path: f, message: `cannot set '${f}' when 'protocols' is ${streamProtocolList}` });
  }
  if (protocolsGiven.includes('tls_passthrough')) {
    if (!nonEmpty(r.snis)) issues.push({ path: '', message: "must set snis when 'protocols' is 'tls_passthrough'" });
  } else if (!['sources', 'destinations', 'snis'].some((f) => nonEmpty(r[f]))) {
    issues.push({ path: '', message: "must set one of 'sources', 'destinations', 'snis' when 'protocols' is 'tcp', 'tls' or 'udp'" });
  }
}

export const routes: EntityDescriptor<'routes'> = {
  name: 'routes',
  singular: 'route',
  adminPath: 'routes',
  endpointKey: 'name',
  uniqueKeys: ['name'],
  compositeKeys: [],
  // Kong: deleting a service that routes still use is refused.
  foreignKeys: [{ field: 'service', entity: 'services', onDelete: 'restrict', nested: true }],
  schema: routeInputSchema,
  // Kong: kong/db/schema/entities/routes.lua with Kong's default router_flavor
  // (traditional_compatible), which adds the third check (the router's own validation).
  kongEntityChecks: [
    {
      conditional: {
        if_field: 'protocols',
        if_match: { elements: { type: 'string', not_one_of: ['grpcs', 'https', 'tls', 'tls_passthrough'] } },
        then_field: 'snis',
        then_match: { len_eq: 0 },
        then_err: "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'",
      },
    },
    { custom_entity_check: { field_sources: ['path_handling'] } },
    {
      custom_entity_check: {
        field_sources: ['id', 'protocols', 'snis', 'sources', 'destinations', 'methods', 'hosts', 'paths', 'headers', 'expression', 'regex_priority', 'priority'],
        run_with_missing_fields: true,
      },
    },
  ],
  naturalKey: { from: 'input', key: (r, path) => naturalKey.route(str(r.name), path) },
  dumpNestedUnder: 'service',
  normalize(r, ctx) {
    const parsed = routeInputSchema.safeParse(r, { error: readableErrorMap });
    const issues = parsed.success ? [] : zodIssues(parsed.error);
    const protocolsGiven = Array.isArray(r.protocols) ? (r.protocols as unknown[]) : ['http', 'https'];
    const matchFields = ['methods', 'hosts', 'headers', 'paths'];
    if (protocolsGiven.includes('http') || protocolsGiven.includes('https')) {
      // Kong's http subschema: any route whose protocols contain https (the default [http, https]
      // does) gets the https rule, where 'snis' counts too.
      const https = protocolsGiven.includes('https');
      const fields = https ? [...matchFields, 'snis'] : matchFields;
      if (!fields.some((f) => nonEmpty(r[f]))) {
        issues.push({ path: '', message: `must set one of ${fields.map((f) => `'${f}'`).join(', ')} when 'protocols' is '${https ? 'https' : 'http'}'` });
      }
    }
    // Kong's entity check: SNIs only where a TLS handshake carries one.
    if (nonEmpty(r.snis) && !protocolsGiven.some((p) => typeof p === 'string' && ['grpcs', 'https', 'tls', 'tls_passthrough', 'wss'].includes(p))) {
      issues.push({ path: '', message: "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'" });
      issues.push({ path: 'snis', message: 'length must be 0' });
    }
    const protocolSets = [['http', 'https'], ['tcp', 'tls', 'udp'], ['tls_passthrough'], ['grpc', 'grpcs'], ['ws', 'wss']];
    const usedSets = protocolSets.filter((set) => set.some((p) => protocolsGiven.includes(p)));
    if (usedSets.length > 1) {
      // Kong: a route serves one family of protocols (HTTP, stream, gRPC, WebSocket).
      issues.push({ path: 'protocols', message: `these sets are mutually exclusive: ${usedSets.map((set) => `(${set.map((p) => `'${p}'`).join(', ')})`).join(', ')}` });
    }
    const family = usedSets.length === 1 ? usedSets[0] : null;
    if (family !== null && (family.includes('http') || family.includes('ws'))) {
      // Kong's http/ws subschemas: source and destination addresses match stream routes only.
      for (const f of ['sources', 'destinations']) {
        if (nonEmpty(r[f])) issues.push({ path: f, message: `cannot set '${f}' when 'protocols' is ${family.map((p) => `'${p}'`).join(' or ')}` });
      }
    }
    if (family !== null && isStreamFamily(family)) streamRules(r, protocolsGiven, issues);
    if (family !== null && family.includes('grpc')) {
      // Kong's grpc subschema: gRPC paths are /package.Service/Method, never stripped; no methods.
      if (r.strip_path === true) issues.push({ path: 'strip_path', message: "cannot set 'strip_path' when 'protocols' is 'grpc' or 'grpcs'" });
      if (nonEmpty(r.methods)) issues.push({ path: 'methods', message: "cannot set 'methods' when 'protocols' is 'grpc' or 'grpcs'" });
      const fields = protocolsGiven.includes('grpcs') ? [...matchFields.filter((f) => f !== 'methods'), 'snis'] : matchFields.filter((f) => f !== 'methods');
      if (!fields.some((f) => nonEmpty(r[f]))) issues.push({ path: '', message: `must set one of ${fields.map((f) => `'${f}'`).join(', ')} when 'protocols' is '${protocolsGiven.includes('grpcs') ? 'grpcs' : 'grpc'}'` });
    }
    const service = refField('services', r, 'service', ctx, issues);
    if (!parsed.success || issues.length > 0) return { ok: false, issues };
    const v = parsed.data;
    let headers: Record<string, string[]> | null = null;
    if (v.headers !== null) {
      headers = {};
      for (const [name, values] of Object.entries(v.headers)) headers[name.toLowerCase()] = typeof values === 'string' ? [values] : values;
    }
    return {
      ok: true,
      value: {
        id: entityId(v.id, ctx),
        name: v.name,
        protocols: v.protocols,
        methods: v.methods,
        hosts: v.hosts === null ? null : v.hosts.map((h) => h.toLowerCase()),
        paths: v.paths,
        headers,
        snis: v.snis,
        sources: v.sources,
        destinations: v.destinations,
        // gRPC routes never strip (Kong: strip_path false for grpc/grpcs).
        strip_path: family !== null && family.includes('grpc') ? false : v.strip_path,
        preserve_host: v.preserve_host,
        regex_priority: v.regex_priority,
        path_handling: v.path_handling,
        https_redirect_status_code: v.https_redirect_status_code,
        request_buffering: v.request_buffering,
        response_buffering: v.response_buffering,
        service,
        tags: v.tags,
        ...timestamps(v, ctx.existing, ctx.now),
      },
    };
  },
};
