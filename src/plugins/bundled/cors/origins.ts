/**
 * Origin matching for the cors plugin, compiled once per plugin instance.
 *
 * Kong's rules, reproduced: an entry made only of `[A-Za-z0-9.:/-]` is an exact origin
 * (compared after normalisation: scheme + host + non-default port); any other entry is a
 * regular expression anchored at the start and (unless it already ends with `$`) at the end.
 * A regex without a `:` in it is matched against the request origin's host only; one with a
 * `:` against the whole normalised origin.
 */

/** Matches strings that contain only characters an exact origin may have. */
const plainOrigin = /^[A-Za-z0-9.:/-]+$/;
/** `scheme://host[:port]` — just enough of URL parsing for an Origin header (RFC 6454 §7). */
const originParts = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(\[[^\]]*\]|[^/:?#]+)(?::(\d*))?/;

export interface NormalizedOrigin {
  /** `scheme://host[:port]`, default ports dropped. */
  readonly domain: string;
  readonly host: string;
}

/**
 * Normalise an origin the way Kong does: drop the port when it is the scheme's default.
 * A value that does not parse as `scheme://host` is kept as is (domain = host = value).
 */
export function normalizeOrigin(value: string): NormalizedOrigin {
  const m = originParts.exec(value);
  if (!m) return { domain: value, host: value };
  const scheme = m[1];
  const host = m[2];
  let port = m[3] || undefined;
  if ((scheme === 'http' && port === '80') || (scheme === 'https' && port === '443')) port = undefined;
  return { domain: `${scheme}://${host}${port ? `:${port}` : ''}`, host };
}

type Matcher =
  | { kind: 'exact'; domain: string }
  | { kind: 'regex'; regex: RegExp; byHost: boolean };

export interface OriginPolicy {
  /** No origins configured, or exactly `["*"]`: every origin is allowed with `*`. */
  readonly allowAll: boolean;
  /** Exactly one plain origin: sent as is, whatever the request's Origin. */
  readonly single: string | null;
  /** `*` appears among several entries: treated as allow-all once a request has an Origin. */
  readonly wildcardAmongMany: boolean;
  /** The normalised origin to echo back, or null when the request origin is not allowed. */
  match(requestOrigin: string): string | null;
}

/** True when the string is `*` or compiles as a JavaScript regular expression. */
export function isValidOriginEntry(entry: string): boolean {
  if (entry === '*') return true;
  try {
    new RegExp(entry);
    return true;
  } catch {
    return false;
  }
}

export function compileOrigins(origins: readonly string[] | null): OriginPolicy {
  const list = origins ?? [];
  if (list.length === 0 || (list.length === 1 && list[0] === '*')) {
    return { allowAll: true, single: null, wildcardAmongMany: false, match: () => null };
  }
  if (list.length === 1 && plainOrigin.test(list[0])) {
    return { allowAll: false, single: list[0], wildcardAmongMany: false, match: () => null };
  }
  const matchers: Matcher[] = [];
  let wildcard = false;
  for (const entry of list) {
    if (entry === '*') {
      wildcard = true;
      continue;
    }
    const byHost = !entry.includes(':');
    if (plainOrigin.test(entry)) {
      matchers.push({ kind: 'exact', domain: normalizeOrigin(entry).domain });
    } else {
      // Kong anchors user regexes at both ends (PCRE "anchored" + appended `$`). The sticky flag
      // gives the same start anchoring to every alternative of the pattern.
      let source = entry.endsWith('$') ? entry : `${entry}$`;
      if (source.startsWith('^')) source = source.slice(1);
      matchers.push({ kind: 'regex', regex: new RegExp(source, 'y'), byHost });
    }
  }
  return {
    allowAll: false,
    single: null,
    wildcardAmongMany: wildcard,
    match(requestOrigin) {
      const req = normalizeOrigin(requestOrigin);
      for (const m of matchers) {
        if (m.kind === 'exact') {
          if (m.domain === req.domain) return req.domain;
        } else {
          m.regex.lastIndex = 0;
          if (m.regex.test(m.byHost ? req.host : req.domain)) return req.domain;
        }
      }
      return null;
    },
  };
}
