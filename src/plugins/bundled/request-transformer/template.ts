/**
 * The `$(...)` values of request-transformer. Kong renders them with Penlight templates, running
 * each `$(expr)` as Lua in a sandbox. Here no code is evaluated: a value is split into literal
 * text and plain lookups in the client request's `headers` or `query_params`, or in the matched
 * route's `uri_captures` (a named group by name, a numbered group by index from 1), and any other
 * expression is refused when the config is validated.
 */
import type { UriCaptures } from '../../sdk.ts';

export type TemplatePiece =
  | { readonly text: string }
  | { readonly table: 'headers' | 'query_params' | 'uri_captures'; readonly key: string }
  /** `$(uri_captures[n])`: the n-th group (n ≥ 1). */
  | { readonly table: 'uri_captures'; readonly index: number };

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

const SUPPORTED = 'only plain lookups $(headers.<name>), $(headers["<name>"]), $(query_params.<name>), $(query_params["<name>"]), $(uri_captures.<name>), $(uri_captures["<name>"]) and $(uri_captures[<n>]) (n from 1) are supported (no Lua is evaluated)';

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
        const m = LOOKUP.exec(expr);
        if (m === null) return { error: `template '$(${expr})' is not supported: ${SUPPORTED}` };
        const table = m[1];
        if (table !== 'headers' && table !== 'query_params' && table !== 'uri_captures') return { error: `template '$(${expr})' is not supported: ${SUPPORTED}` };
        const key = m[2] ?? m[3] ?? m[4];
        const n = m[5] === undefined ? 0 : Number(m[5]);
        let piece: TemplatePiece;
        if (key !== undefined) piece = { table, key };
        else if (table === 'uri_captures' && n >= 1 && Number.isSafeInteger(n)) piece = { table, index: n };
        else if (table === 'uri_captures') {
          // Kong's [0] is the whole match; the captures kept here start at group 1.
          return { error: `template '$(${expr})' is not supported: uri_captures are numbered from 1 (the whole match, [0], is not available); ${SUPPORTED}` };
        } else return { error: `template '$(${expr})' is not supported: ${SUPPORTED}` };
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

/** Renders a template; a lookup that finds nothing renders as '' (Penlight's `(expr or '')`). */
export function renderTemplate(t: Template, src: TemplateSource): string {
  let out = '';
  for (const p of t) {
    if ('text' in p) out += p.text;
    else if (p.table === 'uri_captures') out += captureValue(src, p) ?? '';
    else if ('key' in p) out += (p.table === 'headers' ? headerValue(src, p.key) : queryValue(src, p.key)) ?? '';
  }
  return out;
}
