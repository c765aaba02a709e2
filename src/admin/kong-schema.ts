/**
 * Kong's own schema format (`{"fields": [{"name": {"type": ..., "default": ..., ...}}, ...]}`, as
 * `GET /schemas/{entity}` answers in Kong: kong/api/api_helpers.lua `schema_to_jsonable`), derived
 * from the JSON Schema we already produce. Tools written for Kong (Kong Manager-like UIs, scripts
 * reading `.fields[] | keys`) find the field names, types, defaults, `one_of` and `between` where
 * they expect them, and each entity's and plugin's `entity_checks` as Kong declares them (the
 * entity descriptor's or plugin definition's `kongEntityChecks`). It is a faithful summary, not
 * Kong's exact schema: Lua patterns and custom validators have no equivalent here.
 */
import type { EntityName } from '../config/types.ts';
import { descriptorOf } from '../config/entities/index.ts';
import { scopeAllowed } from '../config/entities/plugins.ts';
import { pluginInputSchema } from '../config/schemas.ts';
import type { PluginDefinition } from '../plugins/sdk.ts';
import { jsonSchemaOf } from './body.ts';

/** The parts of a JSON Schema this conversion reads (draft 2020-12, as zod writes it). */
export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  enum?: unknown[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  uniqueItems?: boolean;
  /**
   * Our mark (zod `.meta({ kongSet: true })`) for a list Kong declares `type = "set"` (tags, a
   * route's protocols, methods, snis): shown as a `set` like `uniqueItems`, without JSON
   * Schema's claim that duplicates are refused (Kong accepts them and keeps one of each).
   */
  kongSet?: boolean;
  /** Our mark (zod `.meta({ auto: true })`) for Kong's `auto`: a value generated when none is given. */
  auto?: boolean;
  /** Our mark for Kong's `encrypted` on a field whose name does not say it is a secret. */
  encrypted?: boolean;
  /**
   * Our mark for a field Kong declares `required` that the input schema leaves optional because
   * another field may supply it (a service's `host`, given by `url`).
   */
  kongRequired?: boolean;
}

/** One `{name: definition}` item of a Kong `fields` array. */
export type KongField = Record<string, Record<string, unknown>>;

/** What the entity knows about its fields beyond their JSON Schema (foreign keys, unique keys). */
export interface FieldContext {
  foreign: Record<string, { reference: string; on_delete?: 'cascade' }>;
  unique: ReadonlySet<string>;
}

/** Plugins' foreign fields when no entity context is given (a plugin's own `config`). */
const noContext: FieldContext = { foreign: {}, unique: new Set() };

/** The non-null alternatives of a schema, and whether null is allowed. */
function unwrap(s: JsonSchema): { v: JsonSchema; nullable: boolean } {
  const alts = s.anyOf ?? s.oneOf;
  const types = Array.isArray(s.type) ? s.type : null;
  if (alts) {
    const nonNull = alts.filter((a) => a.type !== 'null');
    const inner = nonNull.length > 0 ? unwrap(nonNull[0]) : { v: {}, nullable: true };
    return { v: { ...inner.v, ...(s.default !== undefined ? { default: s.default } : {}) }, nullable: nonNull.length < alts.length || inner.nullable };
  }
  if (types) {
    const nonNull = types.filter((t) => t !== 'null');
    return { v: { ...s, type: nonNull[0] }, nullable: nonNull.length < types.length };
  }
  return { v: s, nullable: false };
}

/** Kong's definition of one field. `ctx` applies to this level's fields only (not nested records). */
/** Field names that hold secrets (client secrets, passwords, keys, tokens). */
const secretField = /(secret|password|passphrase|private_key)s?$|^(access_)?token$/i;

function definition(name: string, s: JsonSchema, required: boolean, ctx: FieldContext = noContext): Record<string, unknown> {
  const { v, nullable } = unwrap(s);
  const fk = ctx.foreign[name];
  if (fk) return { type: 'foreign', reference: fk.reference, ...(fk.on_delete ? { on_delete: fk.on_delete } : {}), ...(required ? { required: true } : {}) };
  // Kong's typedefs: `id` is an auto-generated uuid, timestamps are auto-set integers.
  if (ctx !== noContext && name === 'id') return { type: 'string', uuid: true, auto: true };
  if (ctx !== noContext && (name === 'created_at' || name === 'updated_at')) return { type: 'integer', timestamp: true, auto: true };
  const out: Record<string, unknown> = {};
  const t = typeof v.type === 'string' ? v.type : undefined;
  if (t === 'object' && v.properties) {
    out.type = 'record';
    out.fields = kongFields(v);
  } else if (t === 'object') {
    out.type = 'map';
    out.keys = { type: 'string' };
    if (v.additionalProperties && typeof v.additionalProperties === 'object') out.values = definition('', v.additionalProperties, false);
  } else if (t === 'array') {
    out.type = v.uniqueItems === true || v.kongSet === true ? 'set' : 'array';
    if (v.items) out.elements = definition('', v.items, false);
  } else if (t === 'string' || t === 'integer' || t === 'number' || t === 'boolean') {
    out.type = t;
  } else {
    out.type = 'any';
  }
  if (Array.isArray(v.enum)) out.one_of = v.enum;
  // zod writes the safe-integer range for any integer; only real bounds are worth showing.
  const bounded = (n: number | undefined) => typeof n === 'number' && Math.abs(n) < Number.MAX_SAFE_INTEGER;
  if (bounded(v.minimum) && bounded(v.maximum)) out.between = [v.minimum, v.maximum];
  if (typeof v.minLength === 'number' && v.minLength > 0) out.len_min = v.minLength;
  if (ctx.unique.has(name)) out.unique = true;
  // Kong marks secrets `encrypted` (keyring): Kong Manager's forms mask them, revealed on demand.
  if (v.encrypted === true) out.encrypted = true;
  else if (secretField.test(name) && (out.type === 'string' || (out.type === 'array' && (out.elements as { type?: string } | undefined)?.type === 'string'))) out.encrypted = true;
  // An `auto` field (oauth2 `provision_key`) is generated per entity: Kong shows `auto`, never a
  // default, which decK would otherwise copy into every plugin it creates.
  if (v.auto === true) {
    out.auto = true;
    out.required = true;
    return out;
  }
  // A null default is Kong's "no default" (the field is simply absent from the definition).
  if (v.default !== undefined && v.default !== null) out.default = v.default;
  out.required = required || v.kongRequired === true || (v.default !== undefined && v.default !== null && !nullable);
  return out;
}

/** The `fields` array of an object JSON Schema, in property order. */
export function kongFields(schema: JsonSchema | null, ctx: FieldContext = noContext): KongField[] {
  if (!schema?.properties) return [];
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties).map(([name, s]) => ({ [name]: definition(name, s, required.has(name), ctx) }));
}

/** Schemas do not change while the process runs: each is converted once. */
const entityMemo = new Map<EntityName, { fields: KongField[]; entity_checks: unknown[] }>();
const pluginMemo = new WeakMap<object, { fields: KongField[]; entity_checks: unknown[] }>();

/**
 * `GET /schemas/{entity}`: the entity's fields in Kong's format, foreign and unique keys marked,
 * and Kong's entity checks (the descriptor's `kongEntityChecks`).
 */
export function kongEntitySchema(name: EntityName): { fields: KongField[]; entity_checks: unknown[] } {
  let out = entityMemo.get(name);
  if (!out) entityMemo.set(name, (out = convertEntitySchema(name)));
  return out;
}

function convertEntitySchema(name: EntityName): { fields: KongField[]; entity_checks: unknown[] } {
  const d = descriptorOf(name);
  const ctx: FieldContext = {
    foreign: Object.fromEntries(d.foreignKeys.map((fk) => [fk.field, { reference: fk.entity, ...(fk.onDelete === 'cascade' ? { on_delete: 'cascade' as const } : {}) }])),
    unique: new Set(d.uniqueKeys as readonly string[]),
  };
  return { fields: kongFields((jsonSchemaOf(d.schema) ?? {}) as JsonSchema, ctx), entity_checks: [...(d.kongEntityChecks ?? [])] };
}

const pluginScopes = [
  ['consumer', 'consumers'],
  ['route', 'routes'],
  ['service', 'services'],
  ['consumer_group', 'consumer_groups'],
] as const;

/**
 * `GET /schemas/plugins/{name}`: what a Kong plugin schema declares — the scopes the plugin
 * refuses (`{"consumer": {"type": "foreign", "reference": "consumers", "eq": null}}`, Kong's
 * `typedefs.no_consumer`; a consumer group scope only where the plugin allows one), `protocols`
 * with its default (decK fills it from here) and the `config` record; then the plugin schema's
 * `entity_checks` (the definition's `kongEntityChecks`, `[]` when it declares none), a key Kong's
 * answer always has.
 */
export function kongPluginSchema(def: Pick<PluginDefinition, 'schema' | 'scopes' | 'protocols' | 'defaultProtocols' | 'kongEntityChecks'>): { fields: KongField[]; entity_checks: unknown[] } {
  let out = pluginMemo.get(def);
  if (!out) pluginMemo.set(def, (out = convertPluginSchema(def)));
  return out;
}

function convertPluginSchema(def: Pick<PluginDefinition, 'schema' | 'scopes' | 'protocols' | 'defaultProtocols' | 'kongEntityChecks'>): { fields: KongField[]; entity_checks: unknown[] } {
  const fields: KongField[] = [];
  for (const [scope, reference] of pluginScopes) {
    if (scope === 'consumer_group') {
      if (scopeAllowed(def.scopes, 'consumer_group')) fields.push({ consumer_group: { type: 'foreign', reference } });
    } else if (!scopeAllowed(def.scopes, scope)) {
      fields.push({ [scope]: { type: 'foreign', reference, eq: null } });
    }
  }
  const protocols = (jsonSchemaOf(pluginInputSchema) as JsonSchema | null)?.properties?.protocols;
  if (protocols) {
    const field: Record<string, unknown> = definition('protocols', protocols, true);
    // The plugin's own narrower set (Kong's protocols_http), as Kong Manager offers it.
    if (def.protocols && typeof field.elements === 'object' && field.elements !== null) field.elements = { ...(field.elements as Record<string, unknown>), one_of: [...def.protocols] };
    if (def.defaultProtocols) field.default = [...def.defaultProtocols];
    fields.push({ protocols: field });
  }
  fields.push({ config: { type: 'record', required: true, fields: kongFields((jsonSchemaOf(def.schema) ?? {}) as JsonSchema) } });
  return { fields, entity_checks: [...(def.kongEntityChecks ?? [])] };
}
