/**
 * Turning zod issues into the gateway's readable `path: message` form.
 *
 * Zod's default messages ("Invalid input: expected string, received undefined") are written for
 * developers; operators reading a config error want Kong's style ("required field missing",
 * "expected a string", "unknown field"). We pass a per-parse error map instead of configuring
 * zod globally, so other modules' schemas are not affected and no module-scope state is touched.
 * Messages a schema sets itself (`{ error: '...' }`) take precedence over this map.
 */
import type { z } from 'zod';
import type { ValidationIssue } from '../errors.ts';
import { formatPath } from '../plugins/registry.ts';

type RawIssue = Parameters<z.core.$ZodErrorMap>[0];

const typeNames: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'a boolean',
  array: 'an array',
  object: 'an object',
  record: 'an object',
  map: 'an object',
  bigint: 'an integer',
  null: 'null',
  date: 'a date',
};

function describeType(expected: string): string {
  return typeNames[expected] ?? `a ${expected}`;
}

/** A value as Kong's messages print it (`expected one of: http, https`: no quotes). */
function describeValue(v: unknown): string {
  return String(v);
}

/** Error map for `schema.safeParse(input, { error: readableErrorMap })`. */
export function readableErrorMap(iss: RawIssue): string {
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return 'required field missing';
      return `expected ${describeType(String(iss.expected))}`;
    case 'unrecognized_keys':
      return 'unknown field';
    // Kong's `len_min` / `len_max` (strings, arrays, sets, maps) and `gt`; a number bounded on
    // both sides says Kong's `between` message through the schema (`between` in schemas.ts).
    case 'too_small': {
      const min = String(iss.minimum);
      if (iss.origin === 'string' || iss.origin === 'array' || iss.origin === 'set') return `length must be at least ${min}`;
      return iss.inclusive === false ? `value must be greater than ${min}` : `value should be at least ${min}`;
    }
    case 'too_big': {
      const max = String(iss.maximum);
      if (iss.origin === 'string' || iss.origin === 'array' || iss.origin === 'set') return `length must be at most ${max}`;
      return iss.inclusive === false ? `value should be less than ${max}` : `value should be at most ${max}`;
    }
    // Kong's `eq` ("value must be X") and `one_of` ("expected one of: a, b").
    case 'invalid_value':
      return iss.values.length === 1
        ? `value must be ${describeValue(iss.values[0])}`
        : `expected one of: ${iss.values.map(describeValue).join(', ')}`;
    case 'invalid_format':
      if (iss.format === 'regex') return 'invalid value';
      return `expected a valid ${iss.format}`;
    case 'not_multiple_of':
      return `must be a multiple of ${String(iss.divisor)}`;
    case 'invalid_key':
      return 'invalid key';
    case 'invalid_element':
      return 'invalid element';
    case 'invalid_union':
      return 'invalid value';
    case 'custom':
      return iss.message ?? 'invalid value';
    default:
      return 'invalid value';
  }
}

/**
 * Flatten a zod error into our issues, prefixing every path. An `unrecognized_keys` issue names
 * several keys at once; it becomes one `unknown field` issue per key so each has its own path.
 */
export function zodIssues(error: z.ZodError, prefix = ''): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ path: formatPath([...issue.path, key], prefix), message: 'unknown field' });
      continue;
    }
    if (issue.code === 'invalid_key' && issue.issues.length > 0) {
      // A record key failed its own schema: show why, at the key's path.
      for (const inner of issue.issues) out.push({ path: formatPath(issue.path, prefix), message: inner.message });
      continue;
    }
    out.push({ path: formatPath(issue.path, prefix), message: issue.message });
  }
  return out;
}

/** Join a prefix and a relative path (`a` + `b[0]` → `a.b[0]`, `a` + `[0]` → `a[0]`). */
export function joinPath(prefix: string, rel: string): string {
  if (prefix === '') return rel;
  if (rel === '') return prefix;
  return rel.startsWith('[') ? prefix + rel : `${prefix}.${rel}`;
}

/** Re-root issues under `prefix`. */
export function prefixIssues(issues: readonly ValidationIssue[], prefix: string): ValidationIssue[] {
  return issues.map((i) => ({ path: joinPath(prefix, i.path), message: i.message }));
}
