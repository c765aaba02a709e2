/**
 * key-auth — Kong's API key authentication (priority 1250). For each name of `key_names`, in
 * order: the header (case-insensitive), then the query argument, then the body field
 * (form or JSON, with `key_in_body`); the first name found wins. Two values for one name → 401
 * `Duplicate API key found`; none → 401 `No API key found in request`; unknown or expired
 * (`ttl`) key → 401 `Unauthorized`; every 401 carries `WWW-Authenticate: Key[ realm="…"]`.
 * The key is looked up in the Snapshot's index (no I/O): the hot path stays synchronous unless the
 * body has to be read. `anonymous` and the identity headers: see plugins/auth.ts.
 */
import { z } from 'zod';
import { definePlugin, type RequestContext, HTTP_PROTOCOLS } from '../../sdk.ts';
import { authAccess, ownerOf, setIdentity, type AttemptResult, type AuthFailure } from '../../auth.ts';
import { kongHeaderName } from '../../kong-typedefs.ts';

export const keyAuthSchema = z.strictObject({
  key_names: z.array(kongHeaderName).min(1).default(['apikey']),
  hide_credentials: z.boolean().default(false),
  anonymous: z.string().min(1).nullable().default(null),
  key_in_header: z.boolean().default(true),
  key_in_query: z.boolean().default(true),
  key_in_body: z.boolean().default(false),
  run_on_preflight: z.boolean().default(true),
  realm: z.string().nullable().default(null),
});

export type KeyAuthConfig = z.infer<typeof keyAuthSchema>;

/** The value of a body field: a string, several (→ duplicate), or nothing. */
function bodyValue(body: unknown, name: string): unknown {
  if (body instanceof URLSearchParams) {
    const all = body.getAll(name);
    return all.length === 0 ? undefined : all.length === 1 ? all[0] : all;
  }
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) return (body as Record<string, unknown>)[name];
  return undefined;
}

export default definePlugin<KeyAuthConfig>({
  name: 'key-auth',
  version: '0.1.0',
  priority: 1250,
  // Kong's schema: protocols_http.
  protocols: HTTP_PROTOCOLS,
  schema: keyAuthSchema,
  scopes: { consumer: false },
  create(conf) {
    const challenge = { 'www-authenticate': conf.realm !== null ? `Key realm="${conf.realm}"` : 'Key' };
    const fail = (message: string): AuthFailure => ({ status: 401, body: { message }, headers: challenge });
    const noKey = fail('No API key found in request');
    const duplicate = fail('Duplicate API key found');
    const unauthorized = fail('Unauthorized');
    const names = conf.key_names.map((n) => ({ name: n, lower: n.toLowerCase() }));

    /** Key found: look it up and set the identity. */
    const check = (ctx: RequestContext, key: string): AttemptResult => {
      if (key === '') return noKey;
      const cred = ctx.entities.keyAuthByKey(key);
      if (cred === null) return unauthorized;
      if (cred.ttl !== null && (cred.created_at + cred.ttl) * 1000 <= ctx.now()) return unauthorized;
      const consumer = ownerOf(ctx, cred);
      if (consumer === null) return unauthorized;
      setIdentity(ctx, consumer, { id: cred.id, identifier: cred.id, consumer: cred.consumer });
      return null;
    };

    const hide = (ctx: RequestContext, name: string, body: unknown): void => {
      ctx.upstream.removeHeader(name);
      if (ctx.upstream.query.has(name)) ctx.upstream.query.delete(name);
      if (body instanceof URLSearchParams) {
        const copy = new URLSearchParams(body);
        copy.delete(name);
        ctx.upstream.setBody(copy.toString(), 'application/x-www-form-urlencoded');
      } else if (body !== null && typeof body === 'object' && !Array.isArray(body) && name in (body as object)) {
        const { [name]: _gone, ...rest } = body as Record<string, unknown>;
        ctx.upstream.setBody(JSON.stringify(rest), 'application/json');
      }
    };

    const readBody = async (ctx: RequestContext): Promise<unknown> => (await ctx.request.form()) ?? (await ctx.request.json());

    /** The search from `names[from]` on, with the body already read (key_in_body). */
    const searchWithBody = (ctx: RequestContext, body: unknown, from: number): AttemptResult => {
      for (let i = from; i < names.length; i++) {
        const { name, lower } = names[i];
        let v: unknown = conf.key_in_header ? ctx.request.headers[lower] : undefined;
        if (v === undefined && conf.key_in_query) v = queryValue(ctx, name);
        if (v === undefined) v = bodyValue(body, name);
        if (typeof v === 'string') {
          if (conf.hide_credentials) hide(ctx, name, body);
          return check(ctx, v);
        }
        if (Array.isArray(v)) return duplicate;
      }
      return noKey;
    };

    const attempt = (ctx: RequestContext): AttemptResult | Promise<AttemptResult> => {
      for (let i = 0; i < names.length; i++) {
        const { name, lower } = names[i];
        let v: unknown = conf.key_in_header ? ctx.request.headers[lower] : undefined;
        if (v === undefined && conf.key_in_query && ctx.request.rawQuery !== '') v = queryValue(ctx, name);
        if (v === undefined && conf.key_in_body) return readBody(ctx).then((body) => searchWithBody(ctx, body, i));
        if (typeof v === 'string') {
          if (conf.hide_credentials) {
            if (conf.key_in_body) return readBody(ctx).then((body) => (hide(ctx, name, body), check(ctx, v)));
            hide(ctx, name, null);
          }
          return check(ctx, v);
        }
        if (Array.isArray(v)) return duplicate;
      }
      return noKey;
    };

    return { access: authAccess(conf, 'key-auth', attempt) };
  },
});

function queryValue(ctx: RequestContext, name: string): string | string[] | undefined {
  const q = ctx.request.query;
  const all = q.getAll(name);
  return all.length === 0 ? undefined : all.length === 1 ? all[0] : all;
}
