/**
 * The `$(...)` values of request-transformer. Kong renders them with Penlight templates, running
 * each `$(expr)` as Lua in a sandbox. Here no code is evaluated: a value is split into literal
 * text and lookups in the client request's `headers` or `query_params`, or in the matched
 * route's `uri_captures` (a named group by name, a numbered group by index from 1), optionally
 * chained with Lua's `or` to further lookups and a final string literal, as in Kong's "advanced
 * templates" (`$(uri_captures["user-id"] or query_params["user"] or "unknown")`); any other
 * expression is refused when the config is validated.
 */
import type { UriCaptures } from '../../sdk.ts';

/** One operand of a template: a lookup, or a string literal. */
export type TemplateOperand =
  | { readonly table: 'headers' | 'query_params' | 'uri_captures'; readonly key: string }
  /** `$(uri_captures[n])`: the n-th group (n ≥ 1). */
  | { readonly table: 'uri_captures'; readonly index: number }
  | { readonly literal: string };

/** Literal text, or a `$(a or b or ...)`: the first operand that finds a value (Lua's `or`). */
export type TemplatePiece = { readonly text: string } | { readonly or: readonly TemplateOperand[] };

export type Template = readonly TemplatePiece[];

/** What a lookup reads: the client request's headers (lower-case names) and query, the route's captures. */
export interface TemplateSource {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly query: URLSearchParams;
  /** The matched route's regex captures (RequestContext.uriCaptures); null: none. */
  readonly uriCaptures: UriCaptures | null;
}

const IDENT = '[A-Za-z_][A-Za-z0-9_]*';
const LOOKUP = new RegExp(
  `^\\s*(${IDENT})\\s*(?:\\.\\s*(${IDENT})|\\[\\s*(?:"([^"\\\\]*)"|'([^'\\\\]*)'|([0-9]+))\\s*\\])\\s*$`,
);
/** A Lua string literal without escapes. */
const LITERAL = /^\s*(?:"([^"\\]*)"|'([^'\\]*)')\s*$/;

const SUPPORTED = 'only lookups $(headers.<name>), $(headers["<name>"]), $(query_params.<name>), $(query_params["<name>"]), $(uri_captures.<name>), $(uri_captures["<name>"]) and $(uri_captures[<n>]) (n from 1), chained with `or` to other lookups and a final string literal, are supported (no Lua is evaluated)';

/** Splits `a or b or c` at the `or` keywords outside string literals and brackets. */
function orParts(expr: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quote = '';
  let depth = 0;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (quote !== '') {
      if (c === quote) quote = '';
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '[') depth++;
    else if (c === ']') depth--;
    else if (depth === 0 && /\s/.test(c) && expr.startsWith('or', i + 1) && /\s/.test(expr[i + 3] ?? '')) {
      parts.push(expr.slice(start, i));
      start = i + 3;
      i += 2;
    }
  }
  parts.push(expr.slice(start));
  return parts;
}

/** One operand, or an error message. */
function operand(part: string, expr: string): TemplateOperand | string {
  const lit = LITERAL.exec(part);
  if (lit !== null) return { literal: lit[1] ?? lit[2] };
  const m = LOOKUP.exec(part);
  if (m === null) return `template '$(${expr})' is not supported: ${SUPPORTED}`;
  const table = m[1];
  if (table !== 'headers' && table !== 'query_params' && table !== 'uri_captures') return `template '$(${expr})' is not supported: ${SUPPORTED}`;
  const key = m[2] ?? m[3] ?? m[4];
  const n = m[5] === undefined ? 0 : Number(m[5]);
  if (key !== undefined) return { table, key };
  if (table === 'uri_captures' && n >= 1 && Number.isSafeInteger(n)) return { table, index: n };
  // Kong's [0] is the whole match; the captures kept here start at group 1.
  if (table === 'uri_captures') return `template '$(${expr})' is not supported: uri_captures are numbered from 1 (the whole match, [0], is not available); ${SUPPORTED}`;
  return `template '$(${expr})' is not supported: ${SUPPORTED}`;
}

/**
 * Index of the `)` closing the `(` at `open` (Lua's `%b()`), or -1 when unbalanced.
 */
function closing(value: string, open: number): number {
  let depth = 0;
  for (let i = open; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 40) depth++;
    else if (c === 41 && --depth === 0) return i;
  }
  return -1;
}

/**
 * Splits a value into text and lookups. `$(` without its balanced `)` stays literal text, as in
 * Kong (Penlight only takes `$` followed by a balanced parenthesis). Returns an error message for
 * an expression that is not a plain lookup.
 */
export function compileTemplate(value: string): { template: Template } | { error: string } {
  const pieces: TemplatePiece[] = [];
  let text = '';
  let i = 0;
  while (i < value.length) {
    if (value.charCodeAt(i) === 36 && value.charCodeAt(i + 1) === 40) {
      const end = closing(value, i + 1);
      if (end !== -1) {
        const expr = value.slice(i + 2, end);
        const operands: TemplateOperand[] = [];
        for (const part of orParts(expr)) {
          const o = operand(part, expr);
          if (typeof o === 'string') return { error: o };
          operands.push(o);
        }
        // A literal ends the chain (what follows it never runs in Lua): only last.
        if (operands.slice(0, -1).some((o) => 'literal' in o)) return { error: `template '$(${expr})' is not supported: a string literal may only end an \`or\` chain; ${SUPPORTED}` };
        const piece: TemplatePiece = { or: operands };
        if (text !== '') pieces.push({ text });
        text = '';
        pieces.push(piece);
        i = end + 1;
        continue;
      }
    }
    text += value[i];
    i++;
  }
  if (text !== '') pieces.push({ text });
  return { template: pieces };
}

/** True when the value has no lookup (renders to itself). */
export function isPlain(t: Template): boolean {
  return t.every((p) => 'text' in p);
}

function headerValue(src: TemplateSource, key: string): string | undefined {
  const lower = key.toLowerCase();
  // ngx.req.get_headers() also finds `my_header` as `my-header`.
  let v = src.headers[lower];
  if (v === undefined && lower.includes('_')) v = src.headers[lower.replaceAll('_', '-')];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(', ') : v;
}

function queryValue(src: TemplateSource, key: string): string | undefined {
  const all = src.query.getAll(key);
  if (all.length === 0) return undefined;
  return all.join(', ');
}

/** A named group by name (own keys only), a numbered one by index from 1. */
function captureValue(src: TemplateSource, p: { readonly key: string } | { readonly index: number }): string | undefined {
  const c = src.uriCaptures;
  if (c === null) return undefined;
  if ('index' in p) return c.unnamed[p.index - 1];
  return Object.hasOwn(c.named, p.key) ? c.named[p.key] : undefined;
}

function operandValue(o: TemplateOperand, src: TemplateSource): string | undefined {
  if ('literal' in o) return o.literal;
  if (o.table === 'uri_captures') return captureValue(src, o);
  if ('key' in o) return o.table === 'headers' ? headerValue(src, o.key) : queryValue(src, o.key);
  return undefined;
}

/**
 * Renders a template: each `$(...)` is its first operand that finds a value (Lua's `or`: an
 * empty string is a value), else '' (Penlight's `(expr or '')`).
 */
export function renderTemplate(t: Template, src: TemplateSource): string {
  let out = '';
  for (const p of t) {
    if ('text' in p) {
      out += p.text;
      continue;
    }
    let v: string | undefined;
    for (const o of p.or) {
      v = operandValue(o, src);
      if (v !== undefined) break;
    }
    out += v ?? '';
  }
  return out;
}
