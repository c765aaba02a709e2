/**
 * Kong's shared field types (kong/db/schema/typedefs.lua) that bundled plugin schemas reuse, with
 * Kong's rules and error messages, so a value Kong refuses is refused here too (and the reverse).
 */
import { z } from 'zod';

/**
 * `typedefs.header_name` (kong/tools/http.lua `validate_header_name`): letters, digits, `_` and `-`
 * only — narrower than an RFC 9110 token, as Kong has it.
 */
export function headerNameError(name: string): string | null {
  if (name === '') return 'no header name provided';
  return /^[A-Za-z0-9_-]+$/.test(name) ? null : `bad header name '${name}', allowed characters are A-Z, a-z, 0-9, '_', and '-'`;
}

export const kongHeaderName = z.string().superRefine((v, ctx) => {
  const err = headerNameError(v);
  if (err !== null) ctx.addIssue({ code: 'custom', message: err, input: v });
});

/**
 * `typedefs.path`: starts with `/`, no empty segment, only RFC 3986 unreserved, sub-delims, `:`,
 * `@`, `/` and `%` characters, every `%` starting a percent-encoded octet.
 */
export function pathError(path: string): string | null {
  if (!path.startsWith('/')) return 'should start with: /';
  if (path.includes('//')) return 'must not have empty segments';
  if (!/^\/[A-Za-z0-9._~/%:@!$&'()*+,;=-]*$/.test(path)) return `invalid path: '${path}' (characters outside of the reserved list of RFC 3986 found)`;
  const raw = path.replace(/%[0-9A-Fa-f]{2}/g, '___');
  const i = raw.indexOf('%');
  if (i >= 0) return `invalid url-encoded value: '${raw.slice(i, i + 3)}'`;
  return null;
}

export const kongPath = z.string().superRefine((v, ctx) => {
  const err = pathError(v);
  if (err !== null) ctx.addIssue({ code: 'custom', message: err, input: v });
});
