/**
 * Path normalisation done before routing, so that `/foo`, `/fo%6F`, `/./foo` and `//foo` cannot
 * be used to reach a route's upstream while skipping the route (or plugins) meant for it.
 *
 * Kong documents four steps (RFC 3986 §6.2.2 syntax-based normalisation plus slash merging):
 *   1. percent-encoded triplets are upper-cased (`%3a` → `%3A`, §6.2.2.1);
 *   2. triplets that encode an unreserved character are decoded (`%6F` → `o`, §6.2.2.2);
 *   3. dot segments are removed (§5.2.4, §6.2.2.3);
 *   4. runs of slashes are merged into one.
 * Request paths and plain route paths get all four; regex route paths get only 1 and 2, with a
 * decoded character escaped when it is a regex metacharacter.
 *
 * Nothing here rejects input: malformed escapes (`%zz`, a trailing `%`) are kept verbatim and the
 * kernel decides whether such a request deserves a 400.
 */

/** RFC 3986 §2.3 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(code: number): boolean {
  return (
    (code >= 0x41 && code <= 0x5a) || // A-Z
    (code >= 0x61 && code <= 0x7a) || // a-z
    (code >= 0x30 && code <= 0x39) || // 0-9
    code === 0x2d || // -
    code === 0x2e || // .
    code === 0x5f || // _
    code === 0x7e // ~
  );
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -1;
}

/**
 * Steps 1 and 2: upper-case every valid `%XY` triplet and decode those that stand for an
 * unreserved character. `escapeMeta` puts a backslash before a decoded character that would
 * otherwise change a regular expression's meaning (`.` and `-`).
 */
function normalizePercent(input: string, escapeMeta: boolean): string {
  let out = '';
  let last = 0;
  let i = input.indexOf('%');
  while (i !== -1 && i + 2 < input.length) {
    const hi = hexValue(input.charCodeAt(i + 1));
    const lo = hexValue(input.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) {
      // Not a triplet: leave it alone.
      i = input.indexOf('%', i + 1);
      continue;
    }
    const code = hi * 16 + lo;
    out += input.slice(last, i);
    if (isUnreserved(code)) {
      const ch = String.fromCharCode(code);
      out += escapeMeta && (ch === '.' || ch === '-') ? `\\${ch}` : ch;
    } else {
      out += input.slice(i, i + 3).toUpperCase();
    }
    last = i + 3;
    i = input.indexOf('%', last);
  }
  return last === 0 ? input : out + input.slice(last);
}

/**
 * RFC 3986 §5.2.4 "remove_dot_segments" for an absolute path whose slashes are already merged.
 * A `..` above the root stays at the root, as the RFC requires.
 */
function removeDotSegments(path: string): string {
  const segments = path.split('/');
  const out: string[] = [];
  // segments[0] is the empty string before the leading slash.
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i];
    const isLast = i === segments.length - 1;
    if (seg === '.' || seg === '..') {
      if (seg === '..' && out.length > 0) out.pop();
      // `/a/.` and `/a/b/..` both end in a directory: keep the trailing slash.
      if (isLast) out.push('');
      continue;
    }
    out.push(seg);
  }
  return `/${out.join('/')}`;
}

function needsDotRemoval(path: string): boolean {
  // Only a segment that is exactly "." or ".." matters; "/.well-known" must stay untouched.
  for (let i = path.indexOf('/.'); i !== -1; i = path.indexOf('/.', i + 1)) {
    const a = path.charCodeAt(i + 2);
    if (Number.isNaN(a) || a === 0x2f) return true; // "/." then end or "/"
    if (a === 0x2e) {
      const b = path.charCodeAt(i + 3);
      if (Number.isNaN(b) || b === 0x2f) return true; // "/.." then end or "/"
    }
  }
  return false;
}

/**
 * Normalise a request path (or a plain route path) for matching: all four documented steps.
 * Returns the input string itself when nothing needs to change, so the common case allocates
 * nothing. Paths that do not start with `/` (e.g. `*` for `OPTIONS *`) only get the
 * percent-encoding steps.
 */
export function normalizePath(raw: string): string {
  let path = raw;
  if (path.includes('%')) path = normalizePercent(path, false);
  if (path.charCodeAt(0) !== 0x2f) return path;
  if (path.includes('//')) path = path.replace(/\/{2,}/g, '/');
  if (needsDotRemoval(path)) path = removeDotSegments(path);
  return path;
}

/**
 * Normalise the source of a regex route path (without its leading `~`): only the
 * percent-encoding steps, escaping decoded metacharacters so `%2E` still means a literal dot.
 */
export function normalizeRegexSource(source: string): string {
  return source.includes('%') ? normalizePercent(source, true) : source;
}
