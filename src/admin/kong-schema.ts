/**
 * Kong's own schema format (`{"fields": [{"name": {"type": ..., "default": ..., ...}}, ...]}`, as
 * `GET /schemas/{entity}` answers in Kong: kong/api/api_helpers.lua `schema_to_jsonable`), derived
 * from the JSON Schema we already produce. Tools written for Kong (Kong Manager-like UIs, scripts
 * reading `.fields[] | keys`) find the field names, types, defaults, `one_of` and `between` where
 * they expect them. It is a faithful summary, not Kong's exact schema: Lua patterns, custom
 * validators and entity checks have no equivalent here.
 */
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
}

/** One `{name: definition}` item of a Kong `fields` array. */
export type KongField = Record<string, Record<string, unknown>>;

const foreignRefs: Record<string, string> = { service: 'services', route: 'routes', consumer: 'consumers' };

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

/** Kong's definition of one field. */
function definition(name: string, s: JsonSchema, required: boolean): Record<string, unknown> {
  const { v, nullable } = unwrap(s);
  if (foreignRefs[name]) return { type: 'foreign', reference: foreignRefs[name], ...(s.default !== undefined ? { default: s.default } : {}) };
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
    out.type = v.uniqueItems ? 'set' : 'array';
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
  if (v.default !== undefined) out.default = v.default;
  out.required = required || (v.default !== undefined && v.default !== null && !nullable);
  return out;
}

/** The `fields` array of an object JSON Schema, in property order. */
export function kongFields(schema: JsonSchema | null): KongField[] {
  if (!schema?.properties) return [];
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties).map(([name, s]) => ({ [name]: definition(name, s, required.has(name)) }));
}
