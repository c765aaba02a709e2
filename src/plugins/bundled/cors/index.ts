/**
 * cors — Cross-Origin Resource Sharing (Fetch Standard §3.2, "CORS protocol"), with Kong's
 * configuration (`origins`, `methods`, `headers`, `exposed_headers`, `credentials`, `max_age`,
 * `preflight_continue`, `private_network`, `allow_origin_absent`) and behaviour:
 *
 * - A preflight (OPTIONS with `Origin` and `Access-Control-Request-Method`) is answered locally
 *   with 200 and the CORS headers, unless `preflight_continue` hands it to the upstream untouched.
 * - Every other response (upstream or local) gets Access-Control-Allow-Origin / -Credentials /
 *   -Expose-Headers, with `Vary: Origin` whenever the answer depends on the request's Origin.
 */
import { z } from 'zod';
import { definePlugin, HTTP_PROTOCOLS } from '../../sdk.ts';
import type { RequestContext, ResponseContext } from '../../sdk.ts';
import { compileOrigins, isValidOriginEntry, type OriginPolicy } from './origins.ts';

export const corsMethods = ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'] as const;

const nonEmpty = z.string().min(1, { message: 'length must be at least 1' });

export const corsSchema = z.strictObject({
  origins: z
    .array(z.string().min(1, { message: 'length must be at least 1' }).refine((o) => o === '' || isValidOriginEntry(o), { message: 'not a valid regex' }))
    .nullable()
    .default(null),
  // Kong's strings are at least one character long unless a schema says otherwise.
  headers: z.array(nonEmpty).nullable().default(null),
  exposed_headers: z.array(nonEmpty).nullable().default(null),
  methods: z.array(z.enum(corsMethods)).nullable().default([...corsMethods]),
  max_age: z.number().nullable().default(null),
  credentials: z.boolean().default(false),
  private_network: z.boolean().default(false),
  preflight_continue: z.boolean().default(false),
  allow_origin_absent: z.boolean().default(true),
});

export type CorsConfig = z.infer<typeof corsSchema>;

const STATE_KEY = 'cors';
const ALL_METHODS = corsMethods.join(',');

/** Where CORS headers go: the preflight reply's header record, or the response in flight. */
interface HeaderSink {
  set(name: string, value: string): void;
  /** Add `Vary: Origin` (set on a preflight, appended on a proxied response, as Kong). */
  varyOrigin(): void;
  remove(name: string): void;
}

/** Returns true when the origin is allowed as `*` (Kong's `allow_all`). */
function applyOrigin(policy: OriginPolicy, sink: HeaderSink, requestOrigin: string | undefined): boolean {
  if (policy.allowAll) {
    sink.set('Access-Control-Allow-Origin', '*');
    return true;
  }
  // The answer depends on the request's Origin from here on, so caches must key on it.
  sink.varyOrigin();
  if (policy.single !== null) {
    sink.set('Access-Control-Allow-Origin', policy.single);
    return false;
  }
  if (requestOrigin !== undefined) {
    if (policy.wildcardAmongMany) {
      sink.set('Access-Control-Allow-Origin', '*');
      return true;
    }
    const allowed = policy.match(requestOrigin);
    if (allowed !== null) {
      sink.set('Access-Control-Allow-Origin', allowed);
      return false;
    }
  }
  sink.remove('Access-Control-Allow-Origin');
  return false;
}

/**
 * Access-Control-Allow-Credentials. With `*` the Fetch Standard forbids credentials, so the
 * request's Origin is echoed instead (Fetch §3.2.5).
 */
function applyCredentials(config: CorsConfig, allowAll: boolean, sink: HeaderSink, requestOrigin: string | undefined): void {
  if (!config.credentials) return;
  if (!allowAll) {
    sink.set('Access-Control-Allow-Credentials', 'true');
    return;
  }
  if (requestOrigin !== undefined) {
    sink.varyOrigin();
    sink.set('Access-Control-Allow-Origin', requestOrigin);
    sink.set('Access-Control-Allow-Credentials', 'true');
  }
}

/** The request's Origin; an empty one counts as none (Kong's `is_origin_provided`). */
function requestOrigin(ctx: RequestContext): string | undefined {
  const o = ctx.request.header('origin');
  return o === '' ? undefined : o;
}

function isPreflight(ctx: RequestContext): boolean {
  return ctx.request.method === 'OPTIONS'
    && !!ctx.request.header('origin')
    && !!ctx.request.header('access-control-request-method');
}

export default definePlugin<CorsConfig>({
  name: 'cors',
  version: '0.1.0',
  priority: 2000,
  // Kong's schema: protocols_http.
  protocols: HTTP_PROTOCOLS,
  schema: corsSchema,
  // Kong: `no_consumer` — CORS runs before authentication, so a consumer scope cannot apply.
  scopes: { consumer: false },
  create(config) {
    const policy = compileOrigins(config.origins);
    // Kong: an explicit (even empty) list is sent as configured; null means every method.
    const allowedMethods = config.methods !== null ? config.methods.join(',') : ALL_METHODS;
    const allowedHeaders = config.headers && config.headers.length > 0 ? config.headers.join(',') : null;
    const exposed = config.exposed_headers && config.exposed_headers.length > 0 ? config.exposed_headers.join(',') : null;

    return {
      access(ctx) {
        if (!isPreflight(ctx)) return;
        // Either the upstream answers the preflight, or we answer it here: in both cases the
        // response phase must not add headers on top.
        ctx.state.set(STATE_KEY, { preflight: true });
        if (config.preflight_continue) return;

        const origin = requestOrigin(ctx);
        const headers: Record<string, string> = {};
        const sink: HeaderSink = {
          set: (n, v) => { headers[n] = v; },
          varyOrigin: () => { headers['Vary'] = 'Origin'; },
          remove: (n) => { delete headers[n]; },
        };
        const allowAll = applyOrigin(policy, sink, origin);
        applyCredentials(config, allowAll, sink, origin);

        const requested = ctx.request.header('access-control-request-headers');
        if (allowedHeaders !== null) headers['Access-Control-Allow-Headers'] = allowedHeaders;
        else if (requested) headers['Access-Control-Allow-Headers'] = requested;

        headers['Access-Control-Allow-Methods'] = allowedMethods;
        if (config.max_age !== null) headers['Access-Control-Max-Age'] = String(config.max_age);
        // Private Network Access (WICG draft §3.2): only when the browser asked for it.
        if (config.private_network && ctx.request.header('access-control-request-private-network') === 'true') {
          headers['Access-Control-Allow-Private-Network'] = 'true';
        }
        return ctx.reply(200, undefined, headers);
      },

      response(ctx: ResponseContext) {
        if (ctx.state.has(STATE_KEY)) return;
        const origin = requestOrigin(ctx);
        if (origin === undefined && !config.allow_origin_absent) return;
        const res = ctx.response;
        const sink: HeaderSink = {
          set: (n, v) => res.setHeader(n, v),
          // Appended to the upstream's own Vary, once.
          varyOrigin: () => {
            const vary = res.getHeader('vary');
            const tokens = (Array.isArray(vary) ? vary.join(',') : vary ?? '').split(',').map((t) => t.trim().toLowerCase());
            if (!tokens.includes('origin')) res.addHeader('Vary', 'Origin');
          },
          remove: (n) => res.removeHeader(n),
        };
        const allowAll = applyOrigin(policy, sink, origin);
        applyCredentials(config, allowAll, sink, origin);
        if (exposed !== null) res.setHeader('Access-Control-Expose-Headers', exposed);
      },
    };
  },
});
