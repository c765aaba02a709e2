/**
 * Kong's Admin API form notation, for `application/x-www-form-urlencoded` and multipart bodies:
 *
 *   - dotted keys nest (`config.redis.host=h`, `service.id=...`);
 *   - a repeated key, `key[]=` or `key[1]=` makes an array (`config.scopes=openid&config.scopes=email`);
 *   - an empty value means null (`config.login_tokens=`).
 *
 * Form values are all strings, so they are then coerced with the target schema as a guide: one
 * value for an array field becomes a one-element array, "true"/"false" become booleans and
 * numeric strings numbers where the schema says so. JSON bodies are taken as they are.
 */
import { z } from 'zod';
import { badRequest } from './errors.ts';

/** Deepest nesting a body may have (form keys and JSON alike); Kong's entities need far less. */
export const maxBodyDepth = 32;

/** Keys that would reach an object's prototype machinery: refused wherever a body names them. */
const forbiddenKeys = new Set(['__proto__', 'constructor', 'prototype']);

function refuseKey(key: string, where: string): never {
  throw badRequest(`invalid key '${key}' in ${where}: '__proto__', 'constructor' and 'prototype' are not allowed`);
}

/**
 * Checks a parsed JSON body without recursion: no forbidden key, no nesting deeper than
 * `maxBodyDepth` (a deeper body would overflow the stack of whatever walks it next).
 */
export function checkJsonBody(value: unknown): void {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= maxBodyDepth) throw badRequest(`body nests deeper than ${maxBodyDepth} levels`);
    if (Array.isArray(v)) {
      for (const x of v) stack.push([x, depth + 1]);
      continue;
    }
    for (const k of Object.keys(v)) {
      if (forbiddenKeys.has(k)) refuseKey(k, 'the JSON body');
      stack.push([(v as Record<string, unknown>)[k], depth + 1]);
    }
  }
}

export type FormEntries = readonly (readonly [string, string])[];

/** A parsed form body before coercion (marks which bodies need schema-guided coercion). */
export interface FormBody {
  readonly kind: 'form';
  readonly entries: FormEntries;
}

export function isFormBody(v: unknown): v is FormBody {
  return typeof v === 'object' && v !== null && (v as FormBody).kind === 'form' && Array.isArray((v as FormBody).entries);
}

/** Splits `a.b[0].c[]` into `['a', 'b', 0, 'c', '[]']`. */
function keyPath(key: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of key.matchAll(/([^.[\]]+)|\[(\d*)\]/g)) {
    if (m[1] !== undefined) out.push(m[1]);
    else out.push(m[2] === '' ? '[]' : Number(m[2]));
  }
  return out;
}

/**
 * Builds the nested object from form entries (values still strings; '' → null). Built on
 * null-prototype objects, and keys naming prototype machinery (`__proto__.tags=x`) or nesting
 * deeper than `maxBodyDepth` are refused (400), so a form can never reach Object.prototype.
 */
export function nestForm(entries: FormEntries): Record<string, unknown> {
  const root: Record<string, unknown> = Object.create(null);
  for (const [rawKey, rawValue] of entries) {
    const path = keyPath(rawKey);
    if (path.length === 0) continue;
    if (path.length > maxBodyDepth) throw badRequest(`form key '${rawKey.slice(0, 64)}...' nests deeper than ${maxBodyDepth} levels`);
    for (const seg of path) if (typeof seg === 'string' && forbiddenKeys.has(seg)) refuseKey(seg, `form key '${rawKey.slice(0, 100)}'`);
    const value: unknown = rawValue === '' ? null : rawValue;
    let node: Record<string | number, unknown> = root;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      const last = i === path.length - 1;
      if (seg === '[]') {
        // `key[]=v` appends; only meaningful as the last segment.
        continue;
      }
      const nextSeg = path[i + 1];
      if (last || (nextSeg === '[]' && i + 1 === path.length - 1)) {
        const appending = nextSeg === '[]';
        const prev = node[seg];
        if (prev === undefined) node[seg] = appending ? (value === null ? [] : [value]) : value;
        else if (Array.isArray(prev)) {
          if (value !== null) prev.push(value);
        } else node[seg] = [prev, value];
        break;
      }
      let child = node[seg];
      if (typeof child !== 'object' || child === null) {
        child = typeof nextSeg === 'number' ? [] : Object.create(null);
        node[seg] = child;
      }
      node = child as Record<string | number, unknown>;
    }
  }
  return compactArrays(root) as Record<string, unknown>;
}

/** `a[1]=x` leaves holes; remove them so `[x]` results. Also turns the null-prototype objects into plain ones (keys were checked). */
function compactArrays(v: unknown): unknown {
  if (Array.isArray(v)) return v.filter((x) => x !== undefined).map(compactArrays);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = compactArrays(x);
    return out;
  }
  return v;
}

type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
};

/** JSON Schema (input side) of a zod schema, or null when zod cannot express it. */
export function jsonSchemaOf(schema: z.ZodType): JsonSchema | null {
  try {
    return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', cycles: 'ref', reused: 'inline' }) as JsonSchema;
  } catch {
    return null;
  }
}

/** Every alternative of a schema (anyOf/oneOf flattened, $ref followed). */
function variants(s: JsonSchema | undefined, defs: Record<string, JsonSchema>, depth = 0): JsonSchema[] {
  if (!s || depth > 20) return [];
  if (s.$ref) {
    const name = s.$ref.replace(/^#\/(\$defs|definitions)\//, '');
    return variants(defs[name], defs, depth + 1);
  }
  const alts = s.anyOf ?? s.oneOf;
  if (alts) return alts.flatMap((a) => variants(a, defs, depth + 1));
  if (s.allOf) return s.allOf.flatMap((a) => variants(a, defs, depth + 1));
  return [s];
}

function types(vs: JsonSchema[]): Set<string> {
  const out = new Set<string>();
  for (const v of vs) {
    if (Array.isArray(v.type)) v.type.forEach((t) => out.add(t));
    else if (v.type) out.add(v.type);
  }
  return out;
}

/**
 * Coerces form-derived values with `schema` as the guide. `overrides` replaces the schema of a
 * top-level property (the plugin entity's `config` is checked by the plugin's own schema).
 */
export function coerceForm(value: unknown, schema: JsonSchema | null, overrides: Record<string, JsonSchema | null> = {}): unknown {
  if (!schema) return value;
  const defs = schema.$defs ?? {};
  const walk = (v: unknown, s: JsonSchema | undefined, d: Record<string, JsonSchema>): unknown => {
    const vs = variants(s, d);
    if (vs.length === 0 || v === null) return v;
    const t = types(vs);
    // A field that takes a string as well as an array keeps a single string as it is.
    if (typeof v === 'string' && t.has('string')) return v;
    if (t.has('array') && !Array.isArray(v) && !(typeof v === 'object')) {
      const item = vs.find((x) => x.type === 'array' || (Array.isArray(x.type) && x.type.includes('array')))?.items;
      return [walk(v, item, d)];
    }
    if (Array.isArray(v)) {
      const item = vs.find((x) => x.items)?.items;
      return v.map((x) => walk(x, item, d));
    }
    if (typeof v === 'object') {
      const obj = vs.find((x) => x.properties || x.additionalProperties);
      if (!obj) return v;
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        const sub = obj.properties?.[k] ?? (typeof obj.additionalProperties === 'object' ? obj.additionalProperties : undefined);
        out[k] = walk(x, sub, d);
      }
      return out;
    }
    if (typeof v === 'string') {
      if (t.has('string')) return v;
      if (t.has('boolean') && (v === 'true' || v === 'false')) return v === 'true';
      if ((t.has('integer') || t.has('number')) && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
    }
    return v;
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return walk(value, schema, defs);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k in overrides) {
      const o = overrides[k];
      out[k] = o ? walk(v, o, o.$defs ?? {}) : v;
    } else out[k] = walk(v, schema.properties?.[k], defs);
  }
  return out;
}

/** Reads a multipart/form-data body with the platform's own parser (undici's `Response.formData`). */
export async function parseMultipart(body: Buffer, contentType: string): Promise<FormEntries> {
  const form = await new Response(new Uint8Array(body), { headers: { 'content-type': contentType } }).formData();
  const out: [string, string][] = [];
  for (const [k, v] of form.entries()) out.push([k, typeof v === 'string' ? v : await v.text()]);
  return out;
}
