/**
 * Admin API error bodies, shaped as Kong's (kong/db/errors.lua): a numeric `code`, its `name`, a
 * readable `message` and, for validation problems, `fields` nested like the entity
 * (`{"config": {"issuer": "required field missing"}}`), entity-wide problems under `@entity`.
 */
import type { ValidationIssue } from '../errors.ts';

/** Kong's DB error codes (the subset the Admin API produces). */
export const adminErrorCodes = {
  invalidPrimaryKey: 1,
  schemaViolation: 2,
  primaryKeyViolation: 3,
  foreignKeyViolation: 4,
  uniqueViolation: 5,
  notFound: 6,
  invalidOffset: 7,
  databaseError: 8,
  invalidSize: 9,
  operationUnsupported: 12,
  declarativeConfig: 14,
} as const;

export interface AdminErrorBody {
  code?: number;
  name?: string;
  message: string;
  fields?: Record<string, unknown>;
  /** `POST /config?flatten_errors=1`: one item per entity with its errors (Kong 3.x). */
  flattened_errors?: unknown[];
}

/** Thrown by the entity service and the routes; the error handler sends `status` + `body`. */
export class AdminError extends Error {
  readonly status: number;
  readonly body: AdminErrorBody;
  readonly headers: Record<string, string> | undefined;
  constructor(status: number, body: AdminErrorBody, headers?: Record<string, string>) {
    super(body.message);
    this.name = 'AdminError';
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

export function isAdminError(err: unknown): err is AdminError {
  return err instanceof AdminError;
}

/** Splits `config.redis.hosts[1].port` into `['config', 'redis', 'hosts', 1, 'port']`. */
export function splitPath(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : m[1]);
  return out;
}

/**
 * Nests issues by path. Array positions become JSON arrays (gaps are null), as Kong's
 * integer-keyed Lua tables serialize. Several messages for one spot are joined with '; '.
 */
export function issuesToFields(issues: readonly ValidationIssue[]): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const issue of issues) {
    const parts = splitPath(issue.path);
    if (parts.length === 0) {
      const list = (root['@entity'] ??= []) as string[];
      list.push(issue.message);
      continue;
    }
    let node: Record<string | number, unknown> | unknown[] = root;
    for (let i = 0; i < parts.length; i++) {
      const key = parts[i];
      const last = i === parts.length - 1;
      const container = node as Record<string | number, unknown>;
      if (last) {
        const prev = container[key];
        container[key] = typeof prev === 'string' ? `${prev}; ${issue.message}` : issue.message;
        break;
      }
      let next = container[key];
      if (typeof next !== 'object' || next === null) {
        next = typeof parts[i + 1] === 'number' ? [] : {};
        container[key] = next;
      }
      node = next as Record<string, unknown>;
    }
  }
  // Fill array gaps with null so JSON keeps positions.
  const fill = (v: unknown): void => {
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        if (v[i] === undefined) v[i] = null;
        else fill(v[i]);
      }
    } else if (v && typeof v === 'object') for (const x of Object.values(v)) fill(x);
  };
  fill(root);
  return root;
}

/** 400 schema violation (code 2), message listing every `path: message`. */
export function schemaViolation(issues: readonly ValidationIssue[]): AdminError {
  const parts = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message));
  const message = parts.length === 1 ? `schema violation (${parts[0]})` : `${parts.length} schema violations (${parts.join('; ')})`;
  return new AdminError(400, { code: adminErrorCodes.schemaViolation, name: 'schema violation', message, fields: issuesToFields(issues) });
}

/** Lua-table style rendering Kong uses in messages: `{name="foo",service={id="..."}}`. */
export function luaPretty(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v !== 'object') return String(v);
  if (Array.isArray(v)) return `{${v.map(luaPretty).join(',')}}`;
  const keys = Object.keys(v).sort();
  return `{${keys.map((k) => `${k}=${luaPretty((v as Record<string, unknown>)[k])}`).join(',')}}`;
}

/** 409 unique constraint violation (code 5). */
export function uniqueViolation(fields: Record<string, unknown>): AdminError {
  return new AdminError(409, {
    code: adminErrorCodes.uniqueViolation,
    name: 'unique constraint violation',
    message: `UNIQUE violation detected on '${luaPretty(fields)}'`,
    fields,
  });
}

/** 400 foreign key violation (code 4): the reference points at nothing. */
export function foreignKeyViolation(field: string, ref: Record<string, unknown>, parent: string): AdminError {
  return new AdminError(400, {
    code: adminErrorCodes.foreignKeyViolation,
    name: 'foreign key violation',
    message: `the foreign key '${luaPretty(ref)}' does not reference an existing '${parent}' entity.`,
    fields: { [field]: ref },
  });
}

/** 400 foreign key violation (code 4): something still references the entity being deleted. */
export function referencedBy(parent: string, child: string): AdminError {
  return new AdminError(400, {
    code: adminErrorCodes.foreignKeyViolation,
    name: 'foreign key violation',
    message: `an existing '${child}' entity references this '${parent}' entity`,
    fields: { '@referenced_by': child },
  });
}

export function notFound(): AdminError {
  return new AdminError(404, { message: 'Not found' });
}

export function methodNotAllowed(message = 'Method not allowed'): AdminError {
  return new AdminError(405, { message });
}

export function badRequest(message: string): AdminError {
  return new AdminError(400, { message });
}
