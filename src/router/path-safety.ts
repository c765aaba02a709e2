/**
 * Path safety: the decisions that keep a request from being routed on one reading of its path
 * while the upstream acts on another.
 *
 * Kong's normalisation (normalize.ts) decodes unreserved characters and removes dot segments,
 * but an upstream may read the path it receives differently: decode `%2F`/`%5C` into separators
 * (`/public/..%2Fadmin`), take `\` as a separator as WHATWG parsers do (`/public/..\admin`),
 * drop Tomcat-style `;` parameters (`/public/..;/admin`) or decode twice
 * (`/public/%252e%252e/admin`). The rule applied here:
 *
 * - the path must be well-formed: every `%` starts a `%XY` triplet, the escaped bytes are UTF-8
 *   (no overlong forms such as `%c0%af`), no NUL (`%00`) under any reading;
 * - `PORTCULLIS_PATH_ESCAPED_SLASHES` (after Envoy's `path_with_escaped_slashes_action`):
 *   `keep` (default) leaves `%2F`/`%5C` as they are, `reject` refuses any of them,
 *   `unescape` decodes them before routing;
 * - every reading of the path that a common decoding produces (any sequence of: decode `%2F`
 *   and `%5C`, decode everything, `\` as a separator, strip `;` parameters; at most two rounds
 *   of decoding) must match the same route as the path itself, else the request is refused.
 *
 * Everything here is pure. A path without `%`, `\`, `;` or NUL has only one reading and is
 * recognised by one scan ({@link pathNeedsCheck}).
 */
import { normalizePath } from './normalize.ts';

/** Values of `PORTCULLIS_PATH_ESCAPED_SLASHES`. */
export const escapedSlashesModes = ['keep', 'reject', 'unescape'] as const;
export type EscapedSlashes = (typeof escapedSlashesModes)[number];

/** The reasons a path is refused (each answered with 400). */
export const pathRefusals = {
  encoding: 'Bad request: invalid percent-encoding in the path',
  nul: 'Bad request: NUL in the path',
  escapedSlash: 'Bad request: encoded slash or backslash in the path',
  ambiguous: 'Bad request: the path matches another route once decoded',
} as const;
export type PathRefusal = (typeof pathRefusals)[keyof typeof pathRefusals];

/** More readings than this (only reachable by deliberately layered encodings) → refused. */
const MAX_READINGS = 128;
/** Rounds of percent-decoding an upstream is assumed to apply at most. */
const MAX_ROUNDS = 2;

/**
 * The one cheap scan every request pays: true when the raw path holds `%`, `\`, `;` or NUL,
 * the characters that can give it more than one reading.
 */
export function pathNeedsCheck(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25 || c === 0x5c || c === 0x3b || c === 0) return true;
  }
  return false;
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -1;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Lenient = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * One round of percent-decoding of every triplet. When `strict`, returns null when a `%` does
 * not start a triplet or a run of escaped bytes is not valid UTF-8 (overlong forms, lone
 * continuation bytes, encoded surrogates). Otherwise (a second decoding round, whose input
 * legitimately holds a literal `%` from `%25`) such a `%` is kept and invalid bytes become
 * U+FFFD, so `/100%25cafe` stays acceptable. A multi-byte character is either wholly escaped or
 * wholly literal, so each run of consecutive triplets is decoded on its own.
 */
export function percentDecode(path: string, strict = true): string | null {
  let i = path.indexOf('%');
  if (i === -1) return path;
  let out = '';
  let last = 0;
  while (i !== -1) {
    out += path.slice(last, i);
    let bytes: number[] | null = null;
    let literal = false;
    while (i < path.length && path.charCodeAt(i) === 0x25) {
      const hi = hexValue(path.charCodeAt(i + 1));
      const lo = hexValue(path.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) {
        if (strict) return null;
        literal = true;
        break;
      }
      const byte = hi * 16 + lo;
      i += 3;
      // ASCII needs no UTF-8 decoder (the common case: %2F, %20, %25...).
      if (byte < 0x80 && bytes === null) out += String.fromCharCode(byte);
      else (bytes ??= []).push(byte);
    }
    if (bytes !== null) {
      try {
        out += (strict ? utf8 : utf8Lenient).decode(new Uint8Array(bytes));
      } catch {
        return null;
      }
    }
    if (literal) {
      out += '%';
      i++;
    }
    last = i;
    i = path.indexOf('%', last);
  }
  return out + path.slice(last);
}

const escapedSlash = /%(?:2f|5c)/i;

/** `%2F`, `%5C`: the escapes whose decoding makes a separator. */
function isSlashByte(byte: number): boolean {
  return byte === 0x2f || byte === 0x5c;
}

/**
 * The escapes whose decoding can change a path's structure: separators (`/`, `\`), parameters
 * (`;`), dots and `%` (which makes another escape for the next round). Decoding any other byte
 * only renames a segment, so readings decode just these (and a route whose own path holds
 * `%C3%A9` still matches them).
 */
function isStructuralByte(byte: number): boolean {
  return byte === 0x2f || byte === 0x5c || byte === 0x3b || byte === 0x2e || byte === 0x25;
}

/** Decode the `%XY` triplets whose byte `which` selects; other text (and bad triplets) kept. */
function decodeSome(path: string, which: (byte: number) => boolean): string {
  let i = path.indexOf('%');
  if (i === -1) return path;
  let out = '';
  let last = 0;
  while (i !== -1) {
    const hi = hexValue(path.charCodeAt(i + 1));
    const lo = hexValue(path.charCodeAt(i + 2));
    if (hi >= 0 && lo >= 0 && which(hi * 16 + lo)) {
      out += path.slice(last, i) + String.fromCharCode(hi * 16 + lo);
      last = i + 3;
      i = path.indexOf('%', last);
    } else {
      i = path.indexOf('%', i + 1);
    }
  }
  return last === 0 ? path : out + path.slice(last);
}

/** Decode only `%2F` and `%5C` (any case) into `/` and `\`. */
export function unescapeSlashes(path: string): string {
  return decodeSome(path, isSlashByte);
}

function backslashesAsSlashes(path: string): string {
  return path.includes('\\') ? path.replaceAll('\\', '/') : path;
}

/** Tomcat-style path parameters: `/a;x=1/b` → `/a/b`, `/..;/x` → `/../x`. */
function stripParameters(path: string): string {
  return path.includes(';') ? path.replace(/;[^/]*/g, '') : path;
}

/** Outcome of preparing a raw path for routing. */
export type PreparedPath = { readonly path: string; readonly refusal: null } | { readonly path: null; readonly refusal: PathRefusal };

/**
 * Validate a raw request path and apply the escaped-slashes mode: the result is the path the
 * router normalises and matches (and the upstream receives, normalised), or the reason to refuse.
 */
export function preparePath(raw: string, mode: EscapedSlashes): PreparedPath {
  const decoded = percentDecode(raw);
  if (decoded === null) return { path: null, refusal: pathRefusals.encoding };
  if (decoded.includes('\0')) return { path: null, refusal: pathRefusals.nul };
  if (mode === 'reject' && escapedSlash.test(raw)) return { path: null, refusal: pathRefusals.escapedSlash };
  return { path: mode === 'unescape' ? unescapeSlashes(raw) : raw, refusal: null };
}

/** The path the router matches on, for a path that already passed {@link preparePath}. */
export function routingPath(raw: string, mode: EscapedSlashes): string {
  return normalizePath(mode === 'unescape' && raw.includes('%') ? unescapeSlashes(raw) : raw);
}

/**
 * Every other normalised reading of `path` (the prepared, not yet normalised path): the results
 * of any sequence of `\` as a separator, stripping `;` parameters, and up to two rounds of
 * decoding (`%2F`/`%5C` only, or every structural escape), or a refusal when a reading holds an
 * escaped NUL or there are too many readings. The path's own normalised form is not included.
 */
export function alternativeReadings(path: string): Set<string> | PathRefusal {
  const readings = new Set<string>();
  if (!hasSecondReading(path)) return readings;
  const own = normalizePath(path);
  // Each reading with the fewest decoding rounds that reached it (fewer used = more to explore).
  const seen = new Map<string, number>([[path, 0]]);
  const queue: Array<readonly [string, number]> = [[path, 0]];
  const visit = (next: string, rounds: number): boolean => {
    const before = seen.get(next);
    if (before !== undefined && before <= rounds) return true;
    seen.set(next, rounds);
    if (queue.length >= MAX_READINGS) return false;
    queue.push([next, rounds]);
    const normalized = normalizePath(next);
    if (normalized !== own) readings.add(normalized);
    return true;
  };
  for (let q = 0; q < queue.length; q++) {
    const [current, rounds] = queue[q];
    const b = backslashesAsSlashes(current);
    if (b !== current && !visit(b, rounds)) return pathRefusals.ambiguous;
    const p = stripParameters(current);
    if (p !== current && !visit(p, rounds)) return pathRefusals.ambiguous;
    if (rounds >= MAX_ROUNDS || !current.includes('%')) continue;
    if (hasEscapedNul(current)) return pathRefusals.nul;
    const s = unescapeSlashes(current);
    if (s !== current && !visit(s, rounds + 1)) return pathRefusals.ambiguous;
    const d = decodeSome(current, isStructuralByte);
    if (d !== current && d !== s && !visit(d, rounds + 1)) return pathRefusals.ambiguous;
  }
  return readings;
}

/**
 * False when no transformation can change the path beyond what normalisation already does: no
 * `\`, no `;`, and no escape of `/`, `\`, `;`, `%` or NUL (`%2E` is decoded by normalisation
 * anyway; `%20` or `%C3%A9` only rename a segment). Most paths with `%` stop here.
 */
function hasSecondReading(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x5c || c === 0x3b) return true;
    if (c === 0x25) {
      const hi = hexValue(path.charCodeAt(i + 1));
      const lo = hexValue(path.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) continue;
      const byte = hi * 16 + lo;
      if (byte === 0 || (byte !== 0x2e && isStructuralByte(byte))) return true;
    }
  }
  return false;
}

function hasEscapedNul(path: string): boolean {
  return path.includes('%00');
}
