/**
 * `GET /config` and `POST /config` (Kong: kong/api/routes/config.lua, "Reload declarative
 * configuration" in the DB-less Admin API docs).
 *
 *   - GET in DB-less mode answers as Kong does, `{"config": "<decK YAML>"}`; with a database
 *     (where Kong has no such endpoint) the decK document itself, as JSON.
 *   - POST replaces everything, validated first. `?check_hash=1` answers 304 when the posted
 *     configuration equals the running one; `?flatten_errors=1` adds Kong's `flattened_errors`
 *     list (one item per entity, each with its field errors) to the 400 body.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { parse as parseYaml, stringify } from 'yaml';
import { parseDeclarative } from '../config/declarative.ts';
import { toDeclarative } from '../config/dump.ts';
import { entities } from '../config/entities/index.ts';
import type { ConfigData } from '../config/types.ts';
import { ConfigError, type ValidationIssue } from '../errors.ts';
import type { PluginRegistry } from '../plugins/registry.ts';
import type { ConfigStore } from '../storage/ports.ts';
import { isFormBody } from './body.ts';
import { AdminError, adminErrorCodes, badRequest, issuesToFields, type AdminErrorBody } from './errors.ts';
import { endpoint } from './routes.ts';

/**
 * A configuration's hash (Kong's `configuration_hash`: 32 hex digits). Taken over the decK
 * rendering, which has no timestamps, so loading the same document twice gives the same hash.
 */
export function configHash(data: ConfigData): string {
  return createHash('md5').update(JSON.stringify(toDeclarative(data))).digest('hex');
}

const singular = new Map(entities.map((d) => [d.name as string, d.singular]));
/** `services[0].routes[1].` — the entity part of an issue path (any entity kind, nested or not). */
const entityPath = new RegExp(`^((?:(?:${entities.map((d) => d.name).join('|')})\\[\\d+\\]\\.?)+)`);

/** One entry of Kong's `flattened_errors`. */
export interface FlatEntityError {
  entity_type: string;
  entity_name?: string;
  entity_id?: string;
  entity_tags?: unknown[];
  entity?: Record<string, unknown>;
  errors: { field?: string; message: string; type: 'field' | 'entity' }[];
}

/**
 * Groups issues by the entity they are in (`services[0].routes[1].paths[0]` → the route at
 * `services[0].routes[1]`, field `paths[0]`). Issues outside any entity (e.g. `_format_version`)
 * stay only in `fields`, as Kong reports them.
 */
export function flattenIssues(issues: readonly ValidationIssue[], doc: unknown): FlatEntityError[] {
  const byEntity = new Map<string, FlatEntityError>();
  for (const issue of issues) {
    const m = entityPath.exec(issue.path);
    if (!m) continue;
    const at = m[1].replace(/\.$/, '');
    const field = issue.path.slice(m[1].length);
    let entry = byEntity.get(at);
    if (!entry) {
      const kind = /(\w+)\[\d+\]$/.exec(at)?.[1] ?? '';
      const raw = lookup(doc, at);
      entry = { entity_type: singular.get(kind) ?? kind, errors: [] };
      if (raw) {
        const name = raw.name ?? raw.username ?? raw.group;
        if (typeof name === 'string') entry.entity_name = name;
        if (typeof raw.id === 'string') entry.entity_id = raw.id;
        if (Array.isArray(raw.tags)) entry.entity_tags = raw.tags;
        entry.entity = raw;
      }
      byEntity.set(at, entry);
    }
    entry.errors.push(field === '' ? { message: issue.message, type: 'entity' } : { field, message: issue.message, type: 'field' });
  }
  return [...byEntity.values()];
}

/** The object at `a[0].b[1]` in a parsed document, or undefined. */
function lookup(doc: unknown, path: string): Record<string, unknown> | undefined {
  let node: unknown = doc;
  for (const m of path.matchAll(/(\w+)\[(\d+)\]/g)) {
    const list = (node as Record<string, unknown> | null)?.[m[1]];
    node = Array.isArray(list) ? list[Number(m[2])] : undefined;
  }
  return typeof node === 'object' && node !== null && !Array.isArray(node) ? (node as Record<string, unknown>) : undefined;
}

function truthy(v: unknown): boolean {
  return typeof v === 'string' && ['1', 'true', 'on', 'yes'].includes(v.toLowerCase());
}

export interface ConfigEndpointOptions {
  store: ConfigStore;
  registry: PluginRegistry;
  env: NodeJS.ProcessEnv;
  now: () => number;
}

/** Registers `/config`. */
export function registerConfigRoutes(app: FastifyInstance, o: ConfigEndpointOptions): void {
  const { store, registry } = o;
  endpoint(app, '/config', {
    GET: async () => {
      const doc = toDeclarative(await store.load());
      return store.kind === 'off' ? { config: stringify(doc) } : doc;
    },
    POST: async (req, reply) => {
      const query = req.query as Record<string, unknown>;
      const text = declarativeText(req.body);
      let data: ConfigData;
      try {
        data = parseDeclarative(text, { registry, env: o.env, now: o.now() });
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        const body: AdminErrorBody = {
          code: adminErrorCodes.declarativeConfig,
          name: 'invalid declarative configuration',
          message: `declarative config is invalid: ${err.format().split('\n').join('; ')}`,
          fields: issuesToFields(err.issues),
        };
        if (truthy(query.flatten_errors)) {
          let doc: unknown;
          try {
            doc = parseYaml(text);
          } catch {
            doc = undefined;
          }
          body.flattened_errors = flattenIssues(err.issues, doc);
        }
        throw new AdminError(400, body);
      }
      if (truthy(query.check_hash) && configHash(data) === configHash(await store.load())) return reply.code(304).send();
      await store.replaceAll(data);
      return reply.code(201).send(toDeclarative(data));
    },
  });
}

/** POST /config accepts the document as JSON, as YAML/JSON text, or in a `config` field (JSON or form). */
function declarativeText(body: unknown): string {
  if (body === undefined || body === null) throw badRequest("expected a declarative configuration (JSON, YAML, or a 'config' field)");
  if (typeof body === 'object' && (body as { kind?: string }).kind === 'text') return (body as { text: string }).text;
  if (isFormBody(body)) {
    const field = body.entries.find(([k]) => k === 'config');
    if (!field) throw badRequest("expected a 'config' field holding the declarative configuration");
    return field[1];
  }
  if (typeof body === 'object' && !Array.isArray(body)) {
    const b = body as Record<string, unknown>;
    if (typeof b.config === 'string' && b._format_version === undefined) return b.config;
    if (typeof b.config === 'object' && b.config !== null && b._format_version === undefined) return JSON.stringify(b.config);
    return JSON.stringify(b);
  }
  throw badRequest('expected a declarative configuration object');
}
