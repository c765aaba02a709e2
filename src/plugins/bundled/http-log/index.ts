/**
 * http-log — sends Kong's log record (plugins/log-record.ts) to an HTTP collector through Kong's
 * queue (plugins/log-queue.ts). Kong's fields and defaults: `http_endpoint` (required; userinfo
 * becomes `Authorization: Basic`), `method` POST|PUT|PATCH, `content_type` application/json (or
 * with `; charset=utf-8`), `timeout` 10000 ms, `keepalive` 60000 ms, `headers` (no Host,
 * Content-Length or Content-Type), `queue`. One JSON object per request when
 * `queue.max_batch_size` is 1, else a JSON array; a status below 300 is delivered. As Kong, the
 * collector's TLS certificate is not verified. Kong 3.x's deprecated `queue_size`, `flush_timeout`
 * and `retry_count` are stored as given (so decK reads back what it sent) and applied as Kong's
 * queue does when an instance starts: a `queue_size` other than its old default 1 becomes
 * `queue.max_batch_size`, a `flush_timeout` other than 2 becomes `queue.max_coalescing_delay`, a
 * `retry_count` other than 10 does nothing (Kong: it "no longer works"; retries follow
 * `queue.max_retry_time`); each logs Kong's deprecation warning.
 * `custom_fields_by_lua` is refused. An `Authorization` header together with userinfo in
 * `http_endpoint` is refused, as Kong does. Priority 12.
 */
import { Pool } from 'undici';
import { z } from 'zod';
import { definePlugin, LOG_PROTOCOLS, type LogContext, type StreamLogContext } from '../../sdk.ts';
import { LogQueue, pluginQueueHooks, queueSchema, withLegacyQueueFields } from '../../log-queue.ts';
import { customFieldsByLua, serializeLogJson, serializeStreamLogJson } from '../../log-record.ts';

const forbiddenHeaders = new Set(['host', 'content-length', 'content-type']);

export const httpLogSchema = z.strictObject({
  http_endpoint: z.url({ protocol: /^https?$/, error: 'must be an http or https URL' }),
  method: z.enum(['POST', 'PUT', 'PATCH']).default('POST'),
  content_type: z.enum(['application/json', 'application/json; charset=utf-8']).default('application/json'),
  timeout: z.number().int().min(0).default(10000),
  keepalive: z.number().int().min(0).default(60000),
  headers: z.record(z.string(), z.string()).nullable().default(null).refine(
    (h) => h === null || Object.keys(h).every((k) => !forbiddenHeaders.has(k.toLowerCase())),
    { message: 'cannot contain Host, Content-Length or Content-Type' },
  ),
  queue: queueSchema.default(queueSchema.parse({})),
  // Deprecated in Kong 3.x and without effect there (Kong: "no longer works"); kept so Kong
  // configurations load, with Kong's warning (see create).
  retry_count: z.number().int().nullable().default(null),
  queue_size: z.number().int().min(1).nullable().default(null),
  flush_timeout: z.number().min(0).nullable().default(null),
  custom_fields_by_lua: customFieldsByLua,
}).refine(
  (c) => c.headers === null || !/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(c.http_endpoint) || !Object.keys(c.headers).some((k) => k.toLowerCase() === 'authorization'),
  { message: "specifying both an 'Authorization' header and user info in 'http_endpoint' is not allowed", path: ['headers'] },
);

export type HttpLogConfig = z.infer<typeof httpLogSchema>;

export default definePlugin<HttpLogConfig>({
  name: 'http-log',
  version: '0.1.0',
  priority: 12,
  // Kong's schema: typedefs.protocols. Stream sessions get Kong's stream record (streamLog); udp
  // is refused (no udp route exists here).
  protocols: LOG_PROTOCOLS,
  schema: httpLogSchema,
  create(config, deps) {
    const queueConfig = withLegacyQueueFields(config.queue, [
      { name: 'retry_count', value: config.retry_count, oldDefault: 10, replaces: null, message: 'http-log: config.retry_count no longer works, please use config.queue.max_retry_time instead' },
      { name: 'queue_size', value: config.queue_size, oldDefault: 1, replaces: 'max_batch_size', message: 'http-log: config.queue_size is deprecated, please use config.queue.max_batch_size instead' },
      { name: 'flush_timeout', value: config.flush_timeout, oldDefault: 2, replaces: 'max_coalescing_delay', message: 'http-log: config.flush_timeout is deprecated, please use config.queue.max_coalescing_delay instead' },
    ], (field, message) => deps.log.warn({ field }, message));
    const url = new URL(config.http_endpoint);
    const headers: Record<string, string> = { 'content-type': config.content_type, ...(config.headers ?? {}) };
    if (url.username !== '' || url.password !== '') {
      headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
      url.username = '';
      url.password = '';
    }
    const origin = url.origin;
    const path = `${url.pathname}${url.search}`;
    // One pool for the one origin (not undici 7's Agent, which after a collector closes a
    // keep-alive connection opens a new one for every later POST: see plugins/origin-pools.ts).
    const pool = new Pool(origin, {
      // Kong's keepalive is how long an idle connection may live: also the cap on what the
      // collector's Keep-Alive hint may ask for (undici lets the hint override keepAliveTimeout).
      keepAliveTimeout: Math.max(1, config.keepalive),
      keepAliveMaxTimeout: Math.max(1, config.keepalive),
      connect: { rejectUnauthorized: false, timeout: config.timeout || undefined },
      headersTimeout: config.timeout,
      bodyTimeout: config.timeout,
    });
    const single = queueConfig.max_batch_size === 1;
    const endpointForLog = `${url.protocol}//${url.host}${url.pathname}`;
    const queue = new LogQueue<string>(queueConfig, {
      size: (e) => e.length,
      send(batch) {
        const body = single ? batch[0] : `[${batch.join(',')}]`;
        // undici's dispatcher with a handler that ignores the answer's body: no response stream
        // is made for it (about a fifth of a POST's CPU time next to request() + body.dump()).
        return new Promise<void>((resolve, reject) => {
          let status = 0;
          try {
            pool.dispatch({ origin, path, method: config.method, headers, body }, {
              // (undici tells its handler interfaces apart by this method.)
              onRequestStart() {},
              onResponseStart(_controller, statusCode) {
                status = statusCode;
              },
              onResponseData() {},
              onResponseEnd() {
                if (status >= 300) reject(new Error(`${endpointForLog} answered ${status}`));
                else resolve();
              },
              onResponseError(_controller, err) {
                reject(new Error(`${endpointForLog}: ${err.message}`));
              },
            });
          } catch (err) {
            reject(new Error(`${endpointForLog}: ${(err as Error).message}`));
          }
        });
      },
      ...pluginQueueHooks('http-log', deps, endpointForLog, {
        queue: 'http-log queue', items: 'entries', gaveUp: 'http-log gave up delivering a batch', failed: 'http-log delivery failed',
      }),
    });
    return {
      log(ctx: LogContext) {
        queue.add(serializeLogJson(ctx));
      },
      streamLog(ctx: StreamLogContext) {
        queue.add(serializeStreamLogJson(ctx));
      },
      async close() {
        await queue.close();
        await pool.close();
      },
    };
  },
});
