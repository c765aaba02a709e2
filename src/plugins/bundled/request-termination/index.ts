/**
 * request-termination — answers every request (in its scope) locally: `status_code` (503) with
 * `{"message": message}`, or a raw `body` with `content_type`, or, with `echo`, a JSON
 * description of the request. With `trigger`, only requests carrying that header or query
 * parameter are terminated. Kong's priority 2: it runs after authentication and rate limiting.
 */
import os from 'node:os';
import { z } from 'zod';
import { definePlugin, HTTP_PROTOCOLS, between } from '../../sdk.ts';
import { kongHeaderName } from '../../kong-typedefs.ts';
import type { RequestContext } from '../../sdk.ts';

export const requestTerminationSchema = z
  .strictObject({
    status_code: between(z.int(), 100, 599).default(503),
    // Kong's strings are non-empty unless a schema says otherwise.
    message: z.string().min(1, { message: 'length must be at least 1' }).nullable().default(null),
    content_type: z.string().min(1, { message: 'length must be at least 1' }).nullable().default(null),
    body: z.string().min(1, { message: 'length must be at least 1' }).nullable().default(null),
    echo: z.boolean().default(false),
    // Kong's typedefs.header_name ([A-Za-z0-9_-]); also looked up as a query parameter.
    trigger: kongHeaderName.nullable().default(null),
  })
  .superRefine((conf, issues) => {
    const has = (v: string | null): boolean => v !== null && v !== '';
    if (has(conf.message) && (has(conf.content_type) || has(conf.body))) {
      issues.addIssue({ code: 'custom', path: [], message: 'message cannot be used with content_type or body' });
    }
    if (has(conf.content_type) && !has(conf.body)) {
      issues.addIssue({ code: 'custom', path: [], message: 'content_type requires a body' });
    }
    if (conf.echo && (has(conf.content_type) || has(conf.body))) {
      issues.addIssue({ code: 'custom', path: [], message: 'echo cannot be used with content_type and body' });
    }
  });

export type RequestTerminationConfig = z.infer<typeof requestTerminationSchema>;

/** Kong's default messages when `message` is not set. */
const defaultMessages: Readonly<Record<number, string>> = {
  400: 'Bad request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not found',
  405: 'Method not allowed',
  409: 'Conflict',
  429: 'Too many requests',
  500: 'An unexpected error occurred',
  502: 'Bad Gateway',
  503: 'Service unavailable',
  504: 'Gateway timeout',
};

const DEFAULT_BODY_TYPE = 'application/json; charset=utf-8';

/** Query as Kong's `get_query()` gives it: repeated keys become arrays. */
function queryObject(params: URLSearchParams): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of params) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

async function echoBody(ctx: RequestContext, message: string | null): Promise<unknown> {
  const raw = await ctx.request.body();
  const form = await ctx.request.form();
  const body = form ? queryObject(form) : await ctx.request.json();
  return {
    message,
    kong: { node_id: null, worker_pid: process.pid, hostname: os.hostname() },
    request: {
      scheme: ctx.request.scheme,
      host: ctx.request.host,
      port: ctx.request.port,
      headers: ctx.request.headers,
      query: queryObject(ctx.request.query),
      body: body ?? null,
      raw_body: raw.toString('utf8'),
      method: ctx.request.method,
      path: ctx.request.path,
    },
    matched_route: ctx.route,
    matched_service: ctx.service,
  };
}

export default definePlugin<RequestTerminationConfig>({
  name: 'request-termination',
  version: '0.1.0',
  priority: 2,
  // Kong's schema: protocols_http.
  protocols: HTTP_PROTOCOLS,
  schema: requestTerminationSchema,
  create(config) {
    const status = config.status_code;
    const message = config.message ?? defaultMessages[status] ?? null;
    const trigger = config.trigger;
    return {
      async access(ctx) {
        if (trigger !== null && ctx.request.header(trigger) === undefined && !ctx.request.query.has(trigger)) {
          return; // trigger configured but absent: let the request through
        }
        if (config.echo) {
          return ctx.reply(status, await echoBody(ctx, message), { 'Content-Type': 'application/json; charset=utf-8' });
        }
        if (config.body !== null) {
          return ctx.reply(status, config.body, { 'Content-Type': config.content_type ?? DEFAULT_BODY_TYPE });
        }
        return ctx.reply(status, message === null ? undefined : { message });
      },
    };
  },
});
