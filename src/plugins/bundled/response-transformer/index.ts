/**
 * response-transformer — edits the headers of the response on its way to the client, as Kong's
 * plugin of that name (priority 800): remove → rename → replace → add → append.
 *
 * As in Kong's header_filter, rename/replace/add look at the headers as the response arrived
 * at this plugin (before its own edits): `remove` then `add` of one header does not add it back.
 *
 * Kong also edits a JSON response body (the `json` and `json_types` fields). The plugin SDK's
 * response phase sees headers only, no body, so a non-empty `json` or `json_types` list is
 * refused at config validation, naming the field, rather than accepted and ignored.
 */
import { z } from 'zod';
import { definePlugin, HTTP_PROTOCOLS } from '../../sdk.ts';
import type { ResponseContext } from '../../sdk.ts';
import { utf8HeaderValue } from '../../header-value.ts';
import { colonEntryProblem, headerEntryProblem, splitEntry } from '../../transformer-entries.ts';

const JSON_REFUSED = 'JSON body transformations are not supported: the plugin SDK gives the response phase no access to the response body';

const refusedList = <T extends z.ZodType<string>>(elem: T) => z.array(elem).default([]).superRefine((list, ctx) => {
  if (list.length > 0) ctx.addIssue({ code: 'custom', message: JSON_REFUSED, input: list });
});

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
  json: refusedList(colonEntry),
  json_types: refusedList(jsonType),
  headers: z.array(headerEntry).default([]),
}).prefault({});

export const responseTransformerSchema = z.strictObject({
  remove: z.strictObject({ json: refusedList(z.string()), headers: z.array(z.string()).default([]) }).prefault({}),
  rename: z.strictObject({ json: refusedList(colonEntry), headers: z.array(headerRename).default([]) }).prefault({}),
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
    return {
      response(ctx: ResponseContext) {
        const res = ctx.response;
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
      },
    };
  },
});
