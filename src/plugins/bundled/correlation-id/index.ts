/**
 * correlation-id — puts a unique id on every request sent upstream (and, with `echo_downstream`,
 * on the response), keeping one the client already sent. Kong's names and defaults:
 * `header_name` "Kong-Request-ID", `generator` "uuid#counter", `echo_downstream` false.
 * Priority 100001 (Kong 3.x; it was 1 before 3.0) so that the id exists before any other plugin.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { definePlugin, HTTP_PROTOCOLS } from '../../sdk.ts';
import type { RequestContext } from '../../sdk.ts';

export const generators = ['uuid', 'uuid#counter', 'tracker'] as const;

export const correlationIdSchema = z.strictObject({
  header_name: z.string().min(1).default('Kong-Request-ID'),
  generator: z.enum(generators).default('uuid#counter'),
  echo_downstream: z.boolean().default(false),
});

export type CorrelationIdConfig = z.infer<typeof correlationIdSchema>;

/** Per-request state key; other plugins (and log serializers) may read the id from here. */
export const CORRELATION_ID_STATE = 'correlation-id';

export default definePlugin<CorrelationIdConfig>({
  name: 'correlation-id',
  version: '0.1.0',
  priority: 100001,
  // Kong's schema: protocols_http.
  protocols: HTTP_PROTOCOLS,
  schema: correlationIdSchema,
  create(config) {
    // Kong keeps one UUID and one counter per nginx worker; here they belong to the plugin
    // instance (one per worker process too), which keeps ids unique per process.
    const instanceUuid = randomUUID();
    let counter = 0;
    let trackerSeq = 0;

    const generate = (ctx: RequestContext): string => {
      switch (config.generator) {
        case 'uuid':
          return randomUUID();
        case 'uuid#counter':
          counter += 1;
          return `${instanceUuid}#${counter}`;
        case 'tracker': {
          // Kong: server_addr-server_port-pid-connection-connection_requests-time. The SDK does not
          // expose the connection, so a per-instance sequence stands in for the connection serial
          // and the request id for the per-connection request number.
          trackerSeq += 1;
          return `${ctx.request.host}-${ctx.request.port}-${process.pid}-${trackerSeq}-${ctx.id}-${(ctx.now() / 1000).toFixed(3)}`;
        }
      }
    };

    return {
      access(ctx) {
        let id = ctx.request.header(config.header_name);
        if (id === undefined || id === '') {
          id = generate(ctx);
          ctx.upstream.setHeader(config.header_name, id);
        }
        ctx.state.set(CORRELATION_ID_STATE, id);
        // As Kong: the log plugins' record carries it as `correlation_id`.
        ctx.setSerializeValue('correlation_id', id);
      },
      response(ctx) {
        if (!config.echo_downstream) return;
        const id = ctx.state.get(CORRELATION_ID_STATE);
        const value = typeof id === 'string' ? id : ctx.request.header(config.header_name);
        // As Kong's header_filter: when access did not give the request an id (it did not run), one is made for the response.
        ctx.response.setHeader(config.header_name, value ? value : generate(ctx));
      },
    };
  },
});
