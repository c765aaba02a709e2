/**
 * response-transformer's JSON body edits, as Kong's body_transformer.lua and
 * header_transformer.lua `is_json_body`: the body is decoded, a top-level object edited in
 * Kong's order (remove → rename → replace → add → append), and encoded again.
 *
 * Kong's rules kept here, quirks included:
 *   - keys are literal (Kong 3.10 has no nested `a.b` paths: a dot is part of the key);
 *   - a configured value is a string (Kong re-encodes it as a JSON string and strips the quotes:
 *     the text stays as written), cast by the parallel `json_types` entry: `number` is Lua's
 *     `tonumber` (a value that is not a number skips the entry), `boolean` is true only for
 *     `true`; an entry without a value (`a:`) gives the string `null` (Kong's `cjson.encode(nil)`);
 *   - a key "is present" for rename when it is in the object at all (JSON null included); replace
 *     only when its value is truthy in Lua (not false), add only when it is not (false is
 *     overwritten);
 *   - append makes an array of a string value and the new one, pushes onto an array, and replaces
 *     any other value (number, boolean, null, absent) by a one-element array; onto an object it
 *     sets the key `1` (Lua's table.insert), and an empty object becomes a one-element array.
 * Deviations: a body that is not a JSON object (an array, a scalar) is left as it is (Kong
 * re-encodes an array unchanged and fails on a scalar); numbers keep their precision (Kong's
 * encoder writes 14 significant digits) and `/` is not escaped; an entry whose name is empty
 * (`:x` in remove.json) is skipped (Kong fails on it).
 */
import { splitEntry } from '../../transformer-entries.ts';

export type JsonType = 'boolean' | 'number' | 'string';

/** One json entry, split as Kong's `iter`: value null when nothing follows the colons. */
export interface JsonOp {
  readonly name: string;
  readonly value: string | null;
}

/** A replace/add/append list with its parallel types. */
export interface TypedOps {
  readonly ops: readonly JsonOp[];
  readonly types: readonly JsonType[];
}

export interface JsonEdits {
  readonly remove: readonly JsonOp[];
  readonly rename: readonly JsonOp[];
  readonly replace: TypedOps;
  readonly add: TypedOps;
  readonly append: TypedOps;
}

/** Kong's `iter` over `name:value` entries; an entry without a name is skipped. */
export function jsonOps(entries: readonly string[]): JsonOp[] {
  const out: JsonOp[] = [];
  for (const e of entries) {
    const p = splitEntry(e);
    if (p !== null) out.push({ name: p.name, value: p.value === '' ? null : p.value });
  }
  return out;
}

/** Kong's is_body_transform_set: some json list is non-empty (json_types alone do nothing). */
export function hasJsonEdits(e: JsonEdits): boolean {
  return e.remove.length > 0 || e.rename.length > 0 || e.replace.ops.length > 0 || e.add.ops.length > 0 || e.append.ops.length > 0;
}

/** RFC 2045 token characters (kong/tools/mime_type.lua). */
const token = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const mediaType = new RegExp(`^(${token})/(${token})(?:[ \\t]*;[ \\t]*${token}=(?:${token}|"(?:[^"\\\\\\x00-\\x1f\\x7f]|\\\\[\\x00-\\x7f])*"))*$`);

/**
 * Kong's is_json_body: one of the comma-separated media types is application/json or
 * application/<x>+json (case-insensitive, parameters allowed; a malformed one does not count).
 */
export function isJsonBody(contentType: string | string[] | undefined): boolean {
  const ct = Array.isArray(contentType) ? contentType[0] : contentType;
  if (ct === undefined) return false;
  for (const part of ct.split(',')) {
    const m = mediaType.exec(part.trim());
    if (m === null || m[1].toLowerCase() !== 'application') continue;
    const sub = m[2].toLowerCase();
    if (sub === 'json' || sub.endsWith('+json')) return true;
  }
  return false;
}

/** A cast value no JSON encoder can write (Kong's encoder fails on it, and the body stays as it was). */
class Unencodable extends Error {}

/** Lua's tonumber on a string (LuaJIT): decimal or 0x hex, surrounding blanks allowed; else undefined. */
function luaNumber(s: string): number | undefined {
  const t = s.trim();
  let n: number;
  if (/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(t)) n = Number(t);
  else if (/^[+-]?0[xX][0-9a-fA-F]+$/.test(t)) n = (t[0] === '-' ? -1 : 1) * Number.parseInt(t.replace(/^[+-]?0[xX]/, ''), 16);
  else if (/^[+-]?(?:inf|infinity|nan)$/i.test(t)) throw new Unencodable();
  else return undefined;
  if (!Number.isFinite(n)) throw new Unencodable();
  return n;
}

/**
 * Kong's json_value: the configured text through cjson.encode with the quotes stripped and `\"`
 * turned back into `"` (other escapes stay: a backslash is written doubled), then the cast.
 */
function jsonValue(value: string | null, type: JsonType | undefined): unknown {
  let v: string;
  if (value === null) v = 'null';
  else v = JSON.stringify(value).slice(1, -1).replaceAll('\\"', '"').replaceAll('\x7f', '\\u007f');
  if (type === 'number') return luaNumber(v);
  if (type === 'boolean') return v === 'true';
  return v;
}

/** Lua truthiness of a decoded value (JSON null is cjson.null: truthy). */
const truthy = (v: unknown): boolean => v !== undefined && v !== false;

type JsonObject = Record<string, unknown>;

/** Kong's append_value. */
function appendValue(current: unknown, value: unknown): unknown {
  if (typeof current === 'string') return [current, value];
  if (Array.isArray(current)) {
    current.push(value);
    return current;
  }
  if (current !== null && typeof current === 'object') {
    if (Object.keys(current).length === 0) return [value];
    set(current as JsonObject, '1', value);
    return current;
  }
  return [value];
}

function has(obj: JsonObject, key: string): boolean {
  return Object.hasOwn(obj, key);
}

/** Sets an own key (a key `__proto__` is a key like any other, not the object's prototype). */
function set(obj: JsonObject, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

function edit(body: JsonObject, e: JsonEdits): void {
  for (const op of e.remove) delete body[op.name];
  for (const op of e.rename) {
    if (op.value === null || !has(body, op.name)) continue;
    const v = body[op.name];
    set(body, op.value, v);
    delete body[op.name];
  }
  e.replace.ops.forEach((op, i) => {
    const v = jsonValue(op.value, e.replace.types[i]);
    if (has(body, op.name) && truthy(body[op.name]) && v !== undefined) set(body, op.name, v);
  });
  e.add.ops.forEach((op, i) => {
    const v = jsonValue(op.value, e.add.types[i]);
    if (!(has(body, op.name) && truthy(body[op.name])) && v !== undefined) set(body, op.name, v);
  });
  e.append.ops.forEach((op, i) => {
    const v = jsonValue(op.value, e.append.types[i]);
    if (v !== undefined) set(body, op.name, appendValue(has(body, op.name) ? body[op.name] : undefined, v));
  });
}

/**
 * The edited body, or null when it cannot be edited (not JSON, or a value no encoder can write):
 * the caller keeps the body as it was, as Kong does. A JSON array or scalar is returned as is.
 */
export function transformJsonBody(body: Buffer, e: JsonEdits): Buffer | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return body;
  try {
    edit(parsed as JsonObject, e);
  } catch (err) {
    if (err instanceof Unencodable) return null;
    throw err;
  }
  return Buffer.from(JSON.stringify(parsed));
}
