/**
 * Validate one entity and fill Kong's defaults: the single code path for Admin API bodies and
 * declarative entries. Cross-entity facts (does the referenced service exist? is the name
 * unique?) are not known here; foreign keys are resolved through the caller's `resolve`.
 */
import { randomUUID } from 'node:crypto';
import type { ValidationIssue } from '../errors.ts';
import type { PluginRegistry } from '../plugins/registry.ts';
import type { Acl, Consumer, EntityName, EntityOf, ForeignKey, Plugin, Protocol, Route, Service } from './types.ts';
import { uuidPattern } from './fields.ts';
import { joinPath, prefixIssues, readableErrorMap, zodIssues } from './issues.ts';
import { aclInputSchema, consumerInputSchema, pluginInputSchema, routeInputSchema, serviceInputSchema, foreignRefSchema, type ForeignRefInput } from './schemas.ts';
import { parseServiceUrl } from './url.ts';

/** Entity kinds a foreign key can point to. */
export type RefKind = 'services' | 'routes' | 'consumers' | 'certificates';

/** A reference as written: by id or by endpoint key (service/route name, consumer username). */
export interface EntityRef {
  id?: string;
  name?: string;
}

export interface NormalizeContext<E extends EntityName> {
  registry: PluginRegistry;
  /** Milliseconds since epoch; timestamps are stored in seconds, as Kong does. */
  now: number;
  /** The stored entity this input updates (PUT/PATCH). Its id and created_at are kept. */
  existing?: EntityOf<E>;
  /** PATCH semantics: `input` holds only the fields to change; they are merged onto `existing`. */
  partial?: boolean;
  /** Id to use when the input has none (the declarative loader's deterministic ids). Default: random v4. */
  id?: string;
  /**
   * Turn a reference into an id. Return null when nothing matches. Without a resolver, only
   * references by id are accepted (as is, unchecked).
   */
  resolve?: (kind: RefKind, ref: EntityRef) => string | null;
}

export type NormalizeResult<T> = { ok: true; value: T } | { ok: false; issues: ValidationIssue[] };

const singular: Record<RefKind, string> = { services: 'service', routes: 'route', consumers: 'consumer', certificates: 'certificate' };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Recursive merge of plain objects (arrays and scalars are replaced), for PATCH of `config`. */
function deepMerge(base: unknown, patch: unknown): unknown {
  if (!isRecord(base) || !isRecord(patch)) return patch;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) out[k] = deepMerge(base[k], v);
  return out;
}

/** Copy of a config with every object property whose value is null removed (recursively). */
function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNulls);
  if (!isRecord(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = withoutNulls(x);
  return out;
}

function containsNull(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(containsNull);
  if (!isRecord(v)) return false;
  return Object.values(v).some((x) => x === null || containsNull(x));
}

/** Read a reference in any accepted shape into `{ id }` or `{ name }`. */
export function toEntityRef(ref: ForeignRefInput): EntityRef {
  if (typeof ref === 'string') return uuidPattern.test(ref) ? { id: ref } : { name: ref };
  if ('id' in ref) return { id: ref.id };
  if ('name' in ref) return { name: ref.name };
  return { name: ref.username };
}

function resolveRef(kind: RefKind, ref: ForeignRefInput, path: string, ctx: NormalizeContext<EntityName>, issues: ValidationIssue[]): ForeignKey | null {
  const r = toEntityRef(ref);
  if (r.id !== undefined && !uuidPattern.test(r.id)) {
    issues.push({ path, message: 'expected a UUID' });
    return null;
  }
  if (!ctx.resolve) {
    if (r.id !== undefined) return { id: r.id };
    issues.push({ path, message: `a reference by name ('${r.name}') cannot be resolved here; use { "id": ... }` });
    return null;
  }
  const id = ctx.resolve(kind, r);
  if (id === null) {
    issues.push({ path, message: r.id !== undefined ? `no ${singular[kind]} with id '${r.id}'` : `no ${singular[kind]} named '${r.name}'` });
    return null;
  }
  return { id };
}

/**
 * Resolve the reference in `r[field]` (raw input), whether or not the rest of the entity is
 * valid, so a bad reference is reported together with every other problem. A field that does
 * not have a reference's shape was already reported by the schema.
 */
function refField(kind: RefKind, r: Record<string, unknown>, field: string, ctx: NormalizeContext<EntityName>, issues: ValidationIssue[]): ForeignKey | null {
  const v = r[field];
  if (v === undefined || v === null) return null;
  const parsed = foreignRefSchema.safeParse(v);
  if (!parsed.success) return null;
  return resolveRef(kind, parsed.data, field, ctx, issues);
}

function timestamps(input: { created_at?: number; updated_at?: number }, existing: { created_at: number } | undefined, now: number) {
  const nowSec = Math.floor(now / 1000);
  return {
    created_at: input.created_at ?? existing?.created_at ?? nowSec,
    updated_at: existing ? nowSec : (input.updated_at ?? nowSec),
  };
}

function raw(input: unknown): Record<string, unknown> {
  return isRecord(input) ? input : {};
}

function normalizeService(input: unknown, ctx: NormalizeContext<'services'>): NormalizeResult<Service> {
  const r = raw(input);
  const parsed = serviceInputSchema.safeParse(input, { error: readableErrorMap });
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
  const clientCertificate = refField('certificates', r, 'client_certificate', ctx as NormalizeContext<EntityName>, issues);
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
      id: v.id ?? ctx.existing?.id ?? ctx.id ?? randomUUID(),
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
}

function nonEmpty(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (isRecord(v)) return Object.keys(v).length > 0;
  return false;
}

function normalizeRoute(input: unknown, ctx: NormalizeContext<'routes'>): NormalizeResult<Route> {
  const r = raw(input);
  const parsed = routeInputSchema.safeParse(input, { error: readableErrorMap });
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
  const protocolSets = [['http', 'https'], ['tcp', 'tls', 'udp'], ['tls_passthrough'], ['grpc', 'grpcs'], ['ws', 'wss']];
  const usedSets = protocolSets.filter((set) => set.some((p) => protocolsGiven.includes(p)));
  if (usedSets.length > 1) {
    // Kong: a route serves one family of protocols (HTTP, stream, gRPC, WebSocket).
    issues.push({ path: 'protocols', message: `these sets are mutually exclusive: ${usedSets.map((set) => `(${set.map((p) => `'${p}'`).join(', ')})`).join(', ')}` });
  }
  const service = refField('services', r, 'service', ctx as NormalizeContext<EntityName>, issues);
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
      id: v.id ?? ctx.existing?.id ?? ctx.id ?? randomUUID(),
      name: v.name,
      protocols: v.protocols,
      methods: v.methods,
      hosts: v.hosts === null ? null : v.hosts.map((h) => h.toLowerCase()),
      paths: v.paths,
      headers,
      snis: v.snis,
      sources: v.sources,
      destinations: v.destinations,
      strip_path: v.strip_path,
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
}

function normalizeConsumer(input: unknown, ctx: NormalizeContext<'consumers'>): NormalizeResult<Consumer> {
  const r = raw(input);
  const parsed = consumerInputSchema.safeParse(input, { error: readableErrorMap });
  const issues = parsed.success ? [] : zodIssues(parsed.error);
  if ((r.username === undefined || r.username === null) && (r.custom_id === undefined || r.custom_id === null)) {
    issues.push({ path: '', message: "at least one of these fields must be non-empty: 'custom_id', 'username'" });
  }
  if (!parsed.success || issues.length > 0) return { ok: false, issues };
  const v = parsed.data;
  return {
    ok: true,
    value: { id: v.id ?? ctx.existing?.id ?? ctx.id ?? randomUUID(), username: v.username, custom_id: v.custom_id, tags: v.tags, ...timestamps(v, ctx.existing, ctx.now) },
  };
}

type ScopeKey = 'route' | 'service' | 'consumer' | 'global';

/**
 * The plugin definition's `scopes`: omitted = everywhere. If any scope is `true`, exactly the
 * `true` ones are allowed; otherwise everything except the ones set to `false`.
 */
export function scopeAllowed(scopes: Partial<Record<ScopeKey, boolean>> | undefined, key: ScopeKey): boolean {
  if (!scopes) return true;
  const anyTrue = Object.values(scopes).some((x) => x === true);
  return anyTrue ? scopes[key] === true : scopes[key] !== false;
}

function normalizePlugin(input: unknown, ctx: NormalizeContext<'plugins'>): NormalizeResult<Plugin> {
  const parsed = pluginInputSchema.safeParse(input, { error: readableErrorMap });
  const issues = parsed.success ? [] : zodIssues(parsed.error);
  const r = raw(input);
  const def = typeof r.name === 'string' ? ctx.registry.get(r.name) : undefined;
  if (typeof r.name === 'string' && !def) {
    issues.push({ path: 'name', message: `plugin '${r.name}' not enabled; add it to the 'plugins' configuration property` });
  }
  let config: Record<string, unknown> = {};
  if (def && (r.config === undefined || r.config === null || isRecord(r.config))) {
    const given = def.shorthands && isRecord(r.config) ? def.shorthands(r.config) : r.config ?? {};
    let c = def.schema.safeParse(given, { error: readableErrorMap });
    if (!c.success) {
      // Kong (and `deck dump`) write `null` for unset config fields. Our plugin schemas model
      // "unset" as absent, so retry with nulls removed before reporting.
      const retry = def.schema.safeParse(withoutNulls(given), { error: readableErrorMap });
      if (retry.success || containsNull(given)) c = retry;
    }
    if (c.success) {
      config = c.data as Record<string, unknown>;
      // Checks that depend on the node (e.g. several workers): refuse here what the workers
      // could not build, instead of storing a config no worker will apply.
      for (const i of def.check?.(config, ctx.registry.node) ?? []) issues.push({ path: i.path ? `config.${i.path}` : 'config', message: i.message });
    } else issues.push(...zodIssues(c.error, 'config'));
  }
  if (def) {
    const present = (k: string) => r[k] !== undefined && r[k] !== null;
    for (const k of ['route', 'service', 'consumer'] as const) {
      if (present(k) && !scopeAllowed(def.scopes, k)) issues.push({ path: k, message: `plugin '${def.name}' cannot be applied to a ${k}` });
    }
    if (!present('route') && !present('service') && !present('consumer') && !scopeAllowed(def.scopes, 'global')) {
      issues.push({ path: '', message: `plugin '${def.name}' cannot be applied globally; attach it to a route, service or consumer` });
    }
  }
  const c = ctx as NormalizeContext<EntityName>;
  const route = refField('routes', r, 'route', c, issues);
  const service = refField('services', r, 'service', c, issues);
  const consumer = refField('consumers', r, 'consumer', c, issues);
  if (!parsed.success || issues.length > 0) return { ok: false, issues };
  const v = parsed.data;
  return {
    ok: true,
    value: {
      id: v.id ?? ctx.existing?.id ?? ctx.id ?? randomUUID(),
      name: v.name,
      instance_name: v.instance_name,
      config,
      protocols: v.protocols,
      enabled: v.enabled,
      route,
      service,
      consumer,
      ordering: v.ordering,
      tags: v.tags,
      ...timestamps(v, ctx.existing, ctx.now),
    },
  };
}

function normalizeAcl(input: unknown, ctx: NormalizeContext<'acls'>): NormalizeResult<Acl> {
  const parsed = aclInputSchema.safeParse(input, { error: readableErrorMap });
  const issues = parsed.success ? [] : zodIssues(parsed.error);
  const consumer = refField('consumers', raw(input), 'consumer', ctx as NormalizeContext<EntityName>, issues);
  if (!parsed.success || issues.length > 0 || !consumer) return { ok: false, issues };
  const v = parsed.data;
  return {
    ok: true,
    value: {
      id: v.id ?? ctx.existing?.id ?? ctx.id ?? randomUUID(),
      consumer,
      group: v.group,
      tags: v.tags,
      created_at: v.created_at ?? ctx.existing?.created_at ?? Math.floor(ctx.now / 1000),
    },
  };
}

/** For PATCH: the stored entity with the given fields laid over it. */
function mergeForPatch(entity: EntityName, existing: Record<string, unknown>, input: unknown): unknown {
  if (!isRecord(input)) return input;
  const base: Record<string, unknown> = { ...existing };
  delete base.updated_at;
  // `url` replaces the four fields it stands for.
  if (entity === 'services' && input.url !== undefined) for (const k of ['protocol', 'host', 'port', 'path']) delete base[k];
  const out: Record<string, unknown> = { ...base, ...input };
  if (entity === 'plugins' && isRecord(input.config)) out.config = deepMerge(existing.config, input.config);
  return out;
}

/**
 * Validate one entity from Admin API or declarative input and fill Kong's defaults, id
 * (random UUID v4 unless given) and timestamps (seconds). With `partial` and `existing`, the
 * input is merged onto the existing entity first (PATCH). Issue paths are relative to the
 * entity (`paths[0]`, `config.issuer`; `''` for the entity as a whole).
 */
export function normalizeEntity<E extends EntityName>(entity: E, input: unknown, ctx: NormalizeContext<E>): NormalizeResult<EntityOf<E>> {
  const effective = ctx.partial && ctx.existing ? mergeForPatch(entity, ctx.existing as unknown as Record<string, unknown>, input) : input;
  if (!isRecord(effective)) return { ok: false, issues: [{ path: '', message: 'expected an object' }] };
  let result: NormalizeResult<unknown>;
  switch (entity) {
    case 'services': result = normalizeService(effective, ctx as NormalizeContext<'services'>); break;
    case 'routes': result = normalizeRoute(effective, ctx as NormalizeContext<'routes'>); break;
    case 'consumers': result = normalizeConsumer(effective, ctx as NormalizeContext<'consumers'>); break;
    case 'plugins': result = normalizePlugin(effective, ctx as NormalizeContext<'plugins'>); break;
    default: result = normalizeAcl(effective, ctx as NormalizeContext<'acls'>); break;
  }
  return result as NormalizeResult<EntityOf<E>>;
}

export { joinPath, prefixIssues };
