/**
 * Kong's older declarative formats ("1.1", "2.1"), migrated in memory to "3.0" as Kong 3.x does
 * on load (kong/db/declarative/migrations/route_path.lua): only route paths change.
 *
 * - A path made only of `A–Z a–z 0–9 . - _ ~ / %` is a plain prefix; it is URI-normalised
 *   (percent-escapes of unreserved characters decoded, the others upper-cased).
 * - Any other path was a regex in 2.x; it becomes `~` + path, with its percent-escapes
 *   rewritten: encoded reserved characters stay encoded (upper-case hex), encoded regex
 *   metacharacters become backslash-escaped literals, anything else is decoded.
 *
 * Unlike Kong (which logs nothing), every changed path is reported so the operator can update
 * the file.
 */
export const oldFormatVersions = new Set(['1.1', '2.1']);

const plainPath = /^[A-Za-z0-9._~/%-]*$/;
const unreserved = /^[A-Za-z0-9._~-]$/;
const reservedChars = new Set([...'!#$%&\'()*+,/:;=?@[]']);
const regexMeta = new Set([...'.^-{}\\|']);

function normalizePrefix(path: string): string {
  return path.replace(/%([0-9a-fA-F]{2})/g, (_m, hex: string) => {
    const ch = String.fromCharCode(parseInt(hex, 16));
    return unreserved.test(ch) ? ch : `%${hex.toUpperCase()}`;
  });
}

function regexPath(path: string): string {
  const body = path.replace(/%([0-9a-fA-F]{2})/g, (_m, hex: string) => {
    const ch = String.fromCharCode(parseInt(hex, 16));
    if (reservedChars.has(ch)) return `%${hex.toUpperCase()}`;
    if (regexMeta.has(ch)) return `\\${ch}`;
    return ch;
  });
  return `~${body}`;
}

/** The 3.0 form of one 1.1/2.1 route path. */
export function migratePath(path: string): string {
  return plainPath.test(path) ? normalizePrefix(path) : regexPath(path);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Rewrites the route paths of a parsed 1.1/2.1 document in place (top-level `routes` and
 * `services[].routes`) and sets `_format_version: "3.0"`. Returns one message per changed path.
 */
export function migrateOldFormat(doc: Record<string, unknown>): string[] {
  const from = String(doc._format_version);
  const warnings: string[] = [];
  const routes = (list: unknown, where: string): void => {
    if (!Array.isArray(list)) return;
    list.forEach((r, i) => {
      if (!isRecord(r) || !Array.isArray(r.paths)) return;
      r.paths = r.paths.map((p: unknown, j: number) => {
        if (typeof p !== 'string') return p;
        const next = migratePath(p);
        if (next !== p) {
          const name = typeof r.name === 'string' ? ` (route '${r.name}')` : '';
          warnings.push(`${where}[${i}].paths[${j}]${name}: format ${from} path '${p}' migrated to '${next}'${next.startsWith('~') ? ' (regex paths start with "~" since 3.0)' : ''}`);
        }
        return next;
      });
    });
  };
  if (Array.isArray(doc.services)) {
    doc.services.forEach((s, i) => {
      if (isRecord(s)) routes(s.routes, `services[${i}].routes`);
    });
  }
  routes(doc.routes, 'routes');
  doc._format_version = '3.0';
  return warnings;
}
