/**
 * response-transformer — edits the response on its way to the client, as Kong's plugin of that
 * name (priority 800): headers, and the fields of a JSON body, each in the order remove → rename
 * → replace → add → append.
 *
 * As in Kong's header_filter, rename/replace/add look at the headers as the response arrived
 * at this plugin (before its own edits): `remove` then `add` of one header does not add it back.
 *
 * The JSON body (the `json` and `json_types` fields, json-body.ts): when some json list is set
 * and the response's Content-Type is JSON, the response handler drops Content-Length (as Kong's
 * header_filter) and asks the kernel for the whole body (`bufferBody()`); the `body` handler
 * (Kong's body_filter) edits it. A body that does not parse is sent as it was, with a warning.
 */
import { z } from 'zod';
import { definePlugin, HTTP_PROTOCOLS } from '../../sdk.ts';
import type { ResponseContext } from '../../sdk.ts';
import { utf8HeaderValue } from '../../header-value.ts';
import { colonEntryProblem, headerEntryProblem, splitEntry } from '../../transformer-entries.ts';
import { hasJsonEdits, isJsonBody, jsonOps, transformJsonBody, type JsonEdits } from './json-body.ts';

/** Kong's `match = "^[^:]+:.*$"` (message `invalid value: <entry>`). */
const colonEntry = z.string().superRefine((e, ctx) => {
  const problem = colonEntryProblem(e);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: problem, input: e });
});

/**
 * Header `name:value` entries. A value with CR, LF or NUL cannot be sent as a header (node:http
 * throws): refused here rather than failing every response.
 */
const headerEntry = colonEntry.superRefine((e, ctx) => {
  if (/[\r\n\0]/.test(e)) ctx.addIssue({ code: 'custom', message: `'${e}' is not a valid header value`, input: e });
});

/** rename.headers: `old:new`, both valid header names (Kong's validate_colon_headers). */
const headerRename = z.string().superRefine((e, ctx) => {
  const problem = colonEntryProblem(e) ?? headerEntryProblem(e, true);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: problem, input: e });
});

const jsonType = z.enum(['boolean', 'number', 'string']);

/** replace/add/append: one instance each, so every field is its own (schema introspection, coverage). */
const colonRecord = () => z.strictObject({
  json: z.array(colonEntry).default([]),
  json_types: z.array(jsonType).default([]),
  headers: z.array(headerEntry).default([]),
}).prefault({});

export const responseTransformerSchema = z.strictObject({
  remove: z.strictObject({ json: z.array(z.string()).default([]), headers: z.array(z.string()).default([]) }).prefault({}),
  rename: z.strictObject({ json: z.array(colonEntry).default([]), headers: z.array(headerRename).default([]) }).prefault({}),
  replace: colonRecord(),
  add: colonRecord(),
  append: colonRecord(),
});

export type ResponseTransformerConfig = z.infer<typeof responseTransformerSchema>;

interface Op {
  readonly name: string;
  /** Null when the entry has nothing after its colon (Kong then skips it). */
  readonly value: string | null;
}

function ops(entries: readonly string[]): Op[] {
  return entries.map((e) => {
    const p = splitEntry(e);
    // A remove entry without a colon-separated value is just the name.
    if (p === null) return { name: e, value: null };
    return { name: p.name, value: p.value === '' ? null : p.value };
  });
}

export default definePlugin<ResponseTransformerConfig>({
  name: 'response-transformer',
  version: '0.1.0',
  priority: 800,
  // Kong's schema: protocols_http.
  protocols: HTTP_PROTOCOLS,
  schema: responseTransformerSchema,
  // Kong (3.4+): response-transformer may be scoped to a consumer group.
  scopes: { consumer_group: true },
  create(config) {
    // Kong's remove iterates names with the same split: `a:b` removes `a`.
    const remove = ops(config.remove.headers);
    const rename = ops(config.rename.headers);
    const replace = ops(config.replace.headers);
    const add = ops(config.add.headers);
    const append = ops(config.append.headers);
    // The names whose presence rename/replace/add test, looked up before any edit.
    const watched = [...new Set([...rename, ...replace, ...add].map((o) => o.name.toLowerCase()))];
    const json: JsonEdits = {
      remove: jsonOps(config.remove.json),
      rename: jsonOps(config.rename.json),
      replace: { ops: jsonOps(config.replace.json), types: config.replace.json_types },
      add: { ops: jsonOps(config.add.json), types: config.add.json_types },
      append: { ops: jsonOps(config.append.json), types: config.append.json_types },
    };
    const editsJson = hasJsonEdits(json);
    return {
      response(ctx: ResponseContext) {
        const res = ctx.response;
        // Kong tests the Content-Type as the response arrived for dropping Content-Length.
        const arrivedJson = editsJson && isJsonBody(res.getHeader('content-type'));
        const before = new Map<string, string | string[] | undefined>();
        for (const n of watched) before.set(n, res.getHeader(n));
        const had = (n: string): boolean => before.get(n.toLowerCase()) !== undefined;
        for (const op of remove) res.removeHeader(op.name);
        for (const op of rename) {
          if (op.value === null || !had(op.name)) continue;
          // As Kong: set the new name, then clear the old one (so `a:A` drops the header).
          res.setHeader(op.value, before.get(op.name.toLowerCase())!);
          res.removeHeader(op.name);
        }
        for (const op of replace) if (op.value !== null && had(op.name)) res.setHeader(op.name, utf8HeaderValue(op.value));
        for (const op of add) if (op.value !== null && !had(op.name)) res.setHeader(op.name, utf8HeaderValue(op.value));
        for (const op of append) if (op.value !== null) res.addHeader(op.name, utf8HeaderValue(op.value));
        if (!editsJson) return;
        // The body is going to change (Kong's header_filter).
        if (arrivedJson) res.removeHeader('content-length');
        if (isJsonBody(res.getHeader('content-type'))) res.bufferBody();
      },
      body(ctx: ResponseContext, body: Buffer) {
        // Kong's body_filter: the Content-Type as it is now (another plugin may have buffered the body).
        if (!editsJson || !isJsonBody(ctx.response.getHeader('content-type'))) return undefined;
        const out = transformJsonBody(body, json);
        if (out === null) ctx.log.warn('response-transformer: body transform failed: the body is not JSON the plugin can edit; sent unchanged');
        return out ?? undefined;
      },
    };
  },
});
