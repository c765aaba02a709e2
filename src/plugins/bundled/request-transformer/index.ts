/**
 * request-transformer — edits the request on its way upstream, as Kong's plugin of that name
 * (priority 801): `replace.uri`, then headers, then the body, then the query string; within each,
 * remove → rename → replace → add → append.
 *
 * - remove: drop the key; rename `old:new`: move the value if the old key is there; replace
 *   `name:value`: overwrite only a key that is there; add: set only a key that is absent;
 *   append: add another value (a repeated header or query key, a JSON value turned into an array).
 * - Bodies: JSON objects, `application/x-www-form-urlencoded` forms and `multipart/form-data`
 *   bodies are edited; a JSON body that does not parse (or is not an object) and a multipart body
 *   that does not parse are forwarded untouched. Multipart follows Kong's own order and rules
 *   (rename → remove → replace → add, append not applied: see editParts) and is written again by
 *   the platform's FormData (multipart.ts lists what that changes).
 * - Values may hold `$(...)` lookups in the client request's headers or query, or in the
 *   matched route's uri_captures (template.ts); any other expression is refused when the config
 *   is validated.
 * - `http_method` sets the upstream request's method (after `replace.uri`, before the headers, as
 *   Kong); to GET, HEAD or TRACE, a form-urlencoded body's fields are also appended to the query.
 *   A method outside Kong's set_method list is refused at validation (Kong fails the request).
 * - Host, as in Kong: never removed, renamed from or added; `replace`, `append` and a rename to
 *   Host set the upstream Host, over preserve_host and the service host.
 */
import { z } from 'zod';
import { definePlugin, HTTP_PROTOCOLS, UPSTREAM_METHODS } from '../../sdk.ts';
import type { MaybeReply, Reply, RequestContext } from '../../sdk.ts';
import { utf8HeaderValue } from '../../header-value.ts';
import { colonEntryProblem, headerEntryProblem, splitEntry } from '../../transformer-entries.ts';
import { compileTemplate, renderTemplate, type Template, type TemplateSource } from './template.ts';
import { dropParts, firstPart, readParts, writeParts, type Part } from './multipart.ts';

type Issues = z.core.$RefinementCtx;

function issue(ctx: Issues, message: string, input: string): void {
  ctx.addIssue({ code: 'custom', message, input });
}

/** Kong's validate_headers: the name before the colon (and, for renames, the new name) is a header name. */
function checkHeaderEntry(entry: string, ctx: Issues, both: boolean): boolean {
  const problem = headerEntryProblem(entry, both);
  if (problem !== null) issue(ctx, problem, entry);
  return problem === null;
}

function checkTemplate(value: string, ctx: Issues): void {
  const t = compileTemplate(value);
  if ('error' in t) issue(ctx, t.error, value);
}

function checkColon(entry: string, ctx: Issues): boolean {
  const problem = colonEntryProblem(entry);
  if (problem !== null) issue(ctx, problem, entry);
  return problem === null;
}

const isHost = (name: string): boolean => name.toLowerCase() === 'host';

/** remove.headers: names (Kong's validate_headers on the part before any colon). */
const headerNames = z.array(z.string().superRefine((e, ctx) => { checkHeaderEntry(e, ctx, false); })).default([]);
/** remove.body / remove.querystring: plain names. */
const plainNames = z.array(z.string()).default([]);
/** Body and query `name:value` entries (Kong's check_for_value: a value is required). */
const colonValues = z.array(z.string().superRefine((e, ctx) => {
  const parts = splitEntry(e);
  if (parts === null || parts.value === '') {
    issue(ctx, `key '${parts?.name ?? ''}' has no value`, e);
    return;
  }
  checkTemplate(parts.value, ctx);
})).default([]);
/** replace/add/append headers: `name:value`, a valid header name, a value that may be empty. */
const headerValues = z.array(z.string().superRefine((e, ctx) => {
  if (!checkColon(e, ctx) || !checkHeaderEntry(e, ctx, false)) return;
  checkTemplate(splitEntry(e)!.value, ctx);
})).default([]);
/** rename.headers: `old:new`, both valid header names. */
const headerRenames = z.array(z.string().superRefine((e, ctx) => {
  if (checkColon(e, ctx)) checkHeaderEntry(e, ctx, true);
})).default([]);

const nonEmpty = z.string().min(1, { message: 'length must be at least 1' });

export const requestTransformerSchema = z.strictObject({
  // Kong's typedefs.http_method (upper-case letters); one set_method does not take is refused below.
  http_method: nonEmpty.regex(/^[A-Z]+$/, { message: 'invalid value' }).nullable().default(null),
  remove: z.strictObject({ body: plainNames, headers: headerNames, querystring: plainNames }).prefault({}),
  rename: z.strictObject({ body: colonValues, headers: headerRenames, querystring: colonValues }).prefault({}),
  replace: z.strictObject({
    body: colonValues,
    headers: headerValues,
    querystring: colonValues,
    uri: nonEmpty.superRefine((v, ctx) => checkTemplate(v, ctx)).nullable().default(null),
  }).prefault({}),
  // Kong never adds a Host header: accepted, and skipped as Kong skips it.
  add: z.strictObject({ body: colonValues, headers: headerValues, querystring: colonValues }).prefault({}),
  append: z.strictObject({ body: colonValues, headers: headerValues, querystring: colonValues }).prefault({}),
}).superRefine((conf, ctx) => {
  // Kong's schema takes any upper-case word, then set_method raises an error (500) for one outside its list.
  const m = conf.http_method;
  if (m !== null && /^[A-Z]+$/.test(m) && !UPSTREAM_METHODS.includes(m)) {
    ctx.addIssue({ code: 'custom', path: ['http_method'], message: `http_method '${m}' is not supported: the upstream method must be one of ${UPSTREAM_METHODS.join(', ')} (Kong's set_method)`, input: m });
  }
});

export type RequestTransformerConfig = z.infer<typeof requestTransformerSchema>;

/** A config entry ready to run: its name and its value (null when the entry has none). */
interface Op {
  readonly name: string;
  readonly value: Template | null;
}

function compileOps(entries: readonly string[]): Op[] {
  return entries.map((e) => {
    const parts = splitEntry(e)!;
    if (parts.value === '') return { name: parts.name, value: null };
    const t = compileTemplate(parts.value);
    if ('error' in t) throw new Error(t.error); // the schema refused it already
    return { name: parts.name, value: t.template };
  });
}

interface Target {
  readonly remove: readonly Op[];
  readonly rename: readonly Op[];
  readonly replace: readonly Op[];
  readonly add: readonly Op[];
  readonly append: readonly Op[];
}

function compileTarget(conf: RequestTransformerConfig, key: 'headers' | 'body' | 'querystring'): Target & { readonly any: boolean } {
  const t = {
    remove: compileOps(conf.remove[key]),
    rename: compileOps(conf.rename[key]),
    replace: compileOps(conf.replace[key]),
    add: compileOps(conf.add[key]),
    append: compileOps(conf.append[key]),
  };
  return { ...t, any: Object.values(t).some((l) => l.length > 0) };
}

/** A value that cannot go into a header (Kong's set_header refuses it): the request fails with 500. */
class TransformError extends Error {}

function headerText(v: string): string {
  if (/[\r\n\0]/.test(v)) throw new TransformError('rendered header value has a control character');
  return utf8HeaderValue(v);
}

/**
 * Kong drops Host from the table it edits, so remove, rename from and add of Host do nothing;
 * replace (whether or not the client sent Host), append and a rename to Host put it back, and
 * Kong's set_headers then sets the upstream Host (`upstream_host`): here `setHeader('host')`,
 * which the proxy keeps over preserve_host and the service host.
 */
function transformHeaders(t: Target, ctx: RequestContext, src: TemplateSource): void {
  const up = ctx.upstream;
  for (const op of t.remove) if (!isHost(op.name)) up.removeHeader(op.name);
  for (const op of t.rename) {
    if (isHost(op.name) || op.value === null) continue;
    const to = renderTemplate(op.value, src);
    if (to.toLowerCase() === op.name.toLowerCase()) continue; // names are sent lower-case here
    const v = up.getHeader(op.name);
    if (v === undefined) continue;
    if (isHost(to)) {
      // One Host only (Kong cannot set upstream_host to a list either).
      if (Array.isArray(v)) throw new TransformError('cannot rename a repeated header to Host');
      up.setHeader('host', v);
    } else up.setHeader(to, v);
    up.removeHeader(op.name);
  }
  for (const op of t.replace) {
    if (op.value === null) continue; // `name:` has no value: Kong leaves the header as it is
    if (isHost(op.name) || up.getHeader(op.name) !== undefined) up.setHeader(op.name, headerText(renderTemplate(op.value, src)));
  }
  for (const op of t.add) {
    if (op.value === null || isHost(op.name)) continue;
    if (up.getHeader(op.name) === undefined) up.setHeader(op.name, headerText(renderTemplate(op.value, src)));
  }
  for (const op of t.append) {
    if (op.value === null) continue;
    // Host: the table Kong appends to has none, so the value is the Host (addHeader replaces it).
    up.addHeader(op.name, headerText(renderTemplate(op.value, src)));
  }
}

/**
 * Kong's transform_method for GET, HEAD and TRACE: a form-urlencoded body's fields are also
 * appended to the query string (the body itself is still sent).
 */
async function bodyToQuery(ctx: RequestContext): Promise<void> {
  const raw = await ctx.request.body();
  if (raw.length === 0) return;
  const q = ctx.upstream.query;
  for (const [k, v] of new URLSearchParams(raw.toString('utf8'))) q.append(k, v);
}

/** The methods after which Kong moves a form body's fields into the query string. */
const QUERY_METHODS = new Set(['GET', 'HEAD', 'TRACE']);

/**
 * The five operations on name/value pairs (the query string, a form body). `existing`: whether
 * there were pairs to edit before (Kong skips remove, rename and replace on an empty body).
 * True when anything was done.
 */
function editParams(t: Target, params: URLSearchParams, src: TemplateSource, existing: boolean): boolean {
  let changed = false;
  if (existing) {
    for (const op of t.remove) {
      params.delete(op.name);
      changed = true;
    }
    for (const op of t.rename) {
      const to = renderTemplate(op.value!, src);
      if (to === op.name || !params.has(op.name)) continue;
      const values = params.getAll(op.name);
      params.delete(op.name);
      params.delete(to);
      for (const v of values) params.append(to, v);
      changed = true;
    }
    for (const op of t.replace) {
      if (!params.has(op.name)) continue;
      params.set(op.name, renderTemplate(op.value!, src));
      changed = true;
    }
  }
  for (const op of t.add) {
    if (params.has(op.name)) continue;
    params.append(op.name, renderTemplate(op.value!, src));
    changed = true;
  }
  for (const op of t.append) {
    params.append(op.name, renderTemplate(op.value!, src));
    changed = true;
  }
  return changed;
}

type Json = Record<string, unknown>;
const own = (o: Json, k: string): unknown => (Object.hasOwn(o, k) ? o[k] : undefined);
/** Lua truthiness of a decoded JSON value: absent and `false` are false (JSON null is not). */
const truthy = (v: unknown): boolean => v !== undefined && v !== false;
function put(o: Json, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Kong's append_value: a string becomes [old, new], an array grows, anything else is replaced by [new]. */
function appendValue(current: unknown, value: string): unknown[] {
  if (typeof current === 'string') return [current, value];
  if (Array.isArray(current)) return [...current, value];
  return [value];
}

function transformJson(t: Target, raw: Buffer, src: TemplateSource): string | null {
  let obj: Json = {};
  const hasBody = raw.length > 0;
  if (hasBody) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch {
      return null; // unparsable: forwarded as it came
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return null;
    obj = parsed as Json;
  }
  let changed = false;
  if (hasBody) {
    for (const op of t.remove) {
      delete obj[op.name];
      changed = true;
    }
    for (const op of t.rename) {
      const to = renderTemplate(op.value!, src);
      const v = own(obj, op.name);
      if (to === op.name || !truthy(v)) continue;
      delete obj[op.name];
      put(obj, to, v);
      changed = true;
    }
    for (const op of t.replace) {
      if (!truthy(own(obj, op.name))) continue;
      put(obj, op.name, renderTemplate(op.value!, src));
      changed = true;
    }
  }
  for (const op of t.add) {
    if (truthy(own(obj, op.name))) continue;
    put(obj, op.name, renderTemplate(op.value!, src));
    changed = true;
  }
  for (const op of t.append) {
    put(obj, op.name, appendValue(own(obj, op.name), renderTemplate(op.value!, src)));
    changed = true;
  }
  return changed ? JSON.stringify(obj) : null;
}

function transformForm(t: Target, raw: Buffer, src: TemplateSource): string | null {
  const form = new URLSearchParams(raw.toString('utf8'));
  return editParams(t, form, src, raw.length > 0) ? form.toString() : null;
}

const firstValue = (v: string | string[]): string => (Array.isArray(v) ? v[0] : v);

function contentKind(ct: string | string[] | undefined): 'json' | 'multipart' | 'form' | null {
  if (ct === undefined) return null;
  const v = firstValue(ct).toLowerCase();
  if (v.includes('application/json')) return 'json';
  if (v.includes('multipart/form-data')) return 'multipart';
  if (v.includes('application/x-www-form-urlencoded')) return 'form';
  return null;
}

/**
 * Kong's transform_multipart_body, on a list of parts (multipart.ts): its order is rename →
 * remove → replace → add, and append is not applied. Kong's lua-multipart finds a name's first
 * part. rename: the first `old` part takes the place of the first `new` part (else goes last) and
 * every `old` part is dropped; replace: every part of the name is dropped and a text part goes
 * last; add: a text part goes last when the name is absent. Kong rewrites a renamed part as a
 * text field; here a renamed file stays a file (filename, type and bytes kept).
 * `existing`: the body was not empty (Kong skips rename, remove and replace on an empty body).
 * True when anything changed.
 */
function editParts(t: Target, parts: Part[], src: TemplateSource, existing: boolean): boolean {
  let changed = false;
  if (existing) {
    for (const op of t.rename) {
      const to = renderTemplate(op.value!, src);
      const from = firstPart(parts, op.name);
      if (to === op.name || from < 0) continue;
      const moved: Part = [to, parts[from][1]];
      const at = firstPart(parts, to);
      if (at >= 0) parts[at] = moved;
      else parts.push(moved);
      dropParts(parts, op.name);
      changed = true;
    }
    for (const op of t.remove) changed = dropParts(parts, op.name) || changed;
    for (const op of t.replace) {
      if (!dropParts(parts, op.name)) continue;
      parts.push([op.name, renderTemplate(op.value!, src)]);
      changed = true;
    }
  }
  for (const op of t.add) {
    if (firstPart(parts, op.name) >= 0) continue;
    parts.push([op.name, renderTemplate(op.value!, src)]);
    changed = true;
  }
  return changed;
}

/** A multipart body edited, then written with a new boundary (Content-Type and Content-Length follow). */
async function transformMultipart(t: Target, ctx: RequestContext, src: TemplateSource, contentType: string): Promise<void> {
  // append alone: Kong leaves a multipart body as it is, so it is not even read.
  if (t.rename.length + t.remove.length + t.replace.length + t.add.length === 0) return;
  const raw = await ctx.request.body();
  const parts = await readParts(raw, contentType);
  if (parts === null || !editParts(t, parts, src, raw.length > 0)) return;
  const out = await writeParts(parts);
  ctx.upstream.setBody(out.body, out.contentType);
}

async function transformBody(t: Target, ctx: RequestContext, src: TemplateSource): Promise<void> {
  const ct = ctx.upstream.getHeader('content-type');
  const kind = contentKind(ct);
  if (kind === null) return;
  if (kind === 'multipart') return transformMultipart(t, ctx, src, firstValue(ct!));
  const raw = await ctx.request.body();
  const out = kind === 'json' ? transformJson(t, raw, src) : transformForm(t, raw, src);
  if (out !== null) ctx.upstream.setBody(out);
}

/** RFC 3986 characters stay; anything else is percent-encoded (Kong's set_path escapes too). */
function escapePath(path: string): string {
  return path.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/gu, (c) => encodeURIComponent(c));
}

export default definePlugin<RequestTransformerConfig>({
  name: 'request-transformer',
  version: '0.1.0',
  priority: 801,
  // Kong's schema: typedefs.protocols (every protocol, stream ones too). Here the plugin runs on
  // HTTP requests only (no log phase for stream sessions): tcp, tls, tls_passthrough and udp are
  // refused naming the field rather than accepted and never run.
  protocols: HTTP_PROTOCOLS,
  schema: requestTransformerSchema,
  // Kong (3.4+): request-transformer may be scoped to a consumer group.
  scopes: { consumer_group: true },
  create(config) {
    const uriValue = config.replace.uri;
    const uri = uriValue === null ? null : (compileTemplate(uriValue) as { template: Template }).template;
    const headers = compileTarget(config, 'headers');
    const body = compileTarget(config, 'body');
    const query = compileTarget(config, 'querystring');
    const method = config.http_method;
    const methodMovesForm = method !== null && QUERY_METHODS.has(method);
    // Kong's error() in the access phase: the request fails with 500.
    const fail = (ctx: RequestContext, err: unknown) => {
      if (!(err instanceof TransformError)) throw err;
      ctx.log.error({ err: err.message }, '[request-transformer] failed to transform the request');
      return ctx.reply(500, { message: 'An unexpected error occurred' });
    };
    /** What may wait for the body: a form body's fields to the query (http_method), then headers, body and query. */
    const rest = async (ctx: RequestContext, src: TemplateSource, formToQuery: boolean): Promise<void | Reply> => {
      if (formToQuery) {
        await bodyToQuery(ctx);
        try {
          if (headers.any) transformHeaders(headers, ctx, src);
        } catch (err) {
          return fail(ctx, err);
        }
      }
      if (body.any) await transformBody(body, ctx, src);
      if (query.any) editParams(query, ctx.upstream.query, src, true);
    };
    return {
      access(ctx): MaybeReply {
        const src: TemplateSource = { headers: ctx.request.headers, query: ctx.request.query, uriCaptures: ctx.uriCaptures };
        // Kong's order: the uri, then the method (for GET, HEAD and TRACE a form body's fields also
        // go to the query), then headers, body and query. Synchronous unless the body is needed.
        const formToQuery = methodMovesForm && contentKind(ctx.request.headers['content-type']) === 'form';
        try {
          if (uri !== null) {
            const path = renderTemplate(uri, src);
            if (!path.startsWith('/')) throw new TransformError('path must start with /');
            ctx.upstream.path = escapePath(path);
          }
          if (method !== null) ctx.upstream.method = method;
          if (!formToQuery && headers.any) transformHeaders(headers, ctx, src);
        } catch (err) {
          return fail(ctx, err);
        }
        if (formToQuery || body.any) return rest(ctx, src, formToQuery);
        if (query.any) editParams(query, ctx.upstream.query, src, true);
      },
    };
  },
});
