/**
 * request-size-limiting — refuses request bodies larger than `allowed_payload_size` ×
 * `size_unit`, as Kong's plugin does (see docs/plugins.md#request-size-limiting):
 *
 * - a numeric Content-Length is compared with the limit; the body is not read;
 * - without one: with `require_content_length`, a request that is not chunked gets 411
 *   `A valid Content-Length header is required`; otherwise the body is read (the SDK's
 *   `ctx.request.bodySize()`, which the proxy then sends upstream as held) and its size compared;
 * - too large → 413 `{"message":"Request size limit exceeded"}`, or 417 with the same message
 *   when the client sent `Expect: 100-continue`.
 *
 * A body without Content-Length is held as nginx holds one (`ctx.request.bodySize()`: in memory
 * up to client_body_buffer_size, in a temporary file beyond) and sent upstream as held; reading
 * stops as soon as the limit is passed (Kong's nginx reads it all first), and the connection is
 * closed after the reply. The node's client_max_body_size still comes first (the kernel's 413).
 */
import { z } from 'zod';
import { definePlugin, HTTP_PROTOCOLS } from '../../sdk.ts';
import type { RequestContext, Reply } from '../../sdk.ts';

/** Kong's order: the first is the default. */
export const sizeUnits = ['megabytes', 'kilobytes', 'bytes'] as const;

/** Kong's unit_multiplication_factor (powers of two, whatever the field description says). */
export const unitFactor: Readonly<Record<(typeof sizeUnits)[number], number>> = {
  megabytes: 1048576,
  kilobytes: 1024,
  bytes: 1,
};

export const requestSizeLimitingSchema = z.strictObject({
  allowed_payload_size: z.int().default(128),
  size_unit: z.enum(sizeUnits).default('megabytes'),
  require_content_length: z.boolean().default(false),
});

export type RequestSizeLimitingConfig = z.infer<typeof requestSizeLimitingSchema>;

const TOO_LARGE = 'Request size limit exceeded';
const LENGTH_REQUIRED = 'A valid Content-Length header is required';

/** Kong's `tonumber(cl)` for the header values node:http lets through (digits only). */
const numericLength = /^\s*[0-9]+\s*$/;

export default definePlugin<RequestSizeLimitingConfig>({
  name: 'request-size-limiting',
  version: '0.1.0',
  priority: 951,
  // Kong's schema: protocols_http.
  protocols: HTTP_PROTOCOLS,
  schema: requestSizeLimitingSchema,
  create(config) {
    const limit = config.allowed_payload_size * unitFactor[config.size_unit];

    /**
     * `close`: the body was left half read, so an HTTP/1 connection cannot carry another request
     * (HTTP/2 has no Connection header: only the stream ends).
     */
    const tooLarge = (ctx: RequestContext, close: boolean): Reply => {
      const expect = ctx.request.header('expect');
      const status = expect !== undefined && expect.trim().toLowerCase() === '100-continue' ? 417 : 413;
      const h1 = ctx.request.headers[':method'] === undefined;
      return ctx.reply(status, { message: TOO_LARGE }, close && h1 ? { connection: 'close' } : undefined);
    };

    const measure = async (ctx: RequestContext): Promise<Reply | undefined> => {
      // Held as nginx buffers a body (memory, then a temporary file); reading stops past the limit.
      const size = await ctx.request.bodySize(limit);
      return size > limit ? tooLarge(ctx, true) : undefined;
    };

    return {
      access(ctx) {
        const headers = ctx.request.headers;
        const cl = headers['content-length'];
        if (cl !== undefined && numericLength.test(cl)) {
          return Number(cl) > limit ? tooLarge(ctx, false) : undefined;
        }
        const chunked = headers['transfer-encoding'] === 'chunked';
        if (config.require_content_length && !chunked) return ctx.reply(411, { message: LENGTH_REQUIRED });
        // HTTP/1.x without Content-Length or Transfer-Encoding has no body (RFC 9112 §6.3): nothing
        // to read. HTTP/2 (pseudo-headers present) says so only by ending the stream: read it.
        if (headers['transfer-encoding'] === undefined && headers[':method'] === undefined) return;
        return measure(ctx);
      },
    };
  },
});
