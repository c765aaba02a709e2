/**
 * prometheus — records each request in Kong's metric families (kong_http_requests_total,
 * kong_{request,upstream,kong}_latency_ms, kong_bandwidth_bytes) and each stream session in
 * Kong's stream families (kong_stream_sessions_total, kong_session_duration_ms, and
 * kong_kong_latency_ms / kong_bandwidth_bytes with an empty consumer) of the process's registry; the
 * node serves them at `/metrics` on the Status API and the Admin API. Kong's config fields and
 * defaults (every gate off). Priority 13, as Kong's.
 *
 * As Kong: requests that matched no route are not recorded; `consumer` is the username only with
 * `per_consumer`; `source` is `service` when the upstream answered, `kong` when the gateway did.
 * `ai_metrics` and `wasm_metrics` need features this gateway does not have and are refused when
 * true. `upstream_health_metrics` (node-wide, as Kong: on when any instance has it) makes each scrape
 * report `kong_upstream_target_health` for every upstream's target addresses, from the same
 * health states as `GET /upstreams/{u}/health` (balancer/target-health.ts).
 */
import { z } from 'zod';
import { definePlugin, LOG_PROTOCOLS, type LogContext, type StreamLogContext } from '../../sdk.ts';
import type { MetricGates } from '../../../observability/metrics.ts';

const notHere = (what: string) => z.boolean().default(false).refine((v) => v === false, { message: `${what} are not available in this gateway; leave it false` });

export const prometheusSchema = z.strictObject({
  per_consumer: z.boolean().default(false),
  status_code_metrics: z.boolean().default(false),
  ai_metrics: notHere('AI metrics (ai-proxy plugins)'),
  latency_metrics: z.boolean().default(false),
  bandwidth_metrics: z.boolean().default(false),
  upstream_health_metrics: z.boolean().default(false),
  wasm_metrics: notHere('WebAssembly filter metrics'),
});

export type PrometheusConfig = z.infer<typeof prometheusSchema>;

export default definePlugin<PrometheusConfig>({
  name: 'prometheus',
  version: '0.1.0',
  priority: 13,
  // Kong's schema: typedefs.protocols. Stream sessions are recorded in Kong's stream families
  // (streamLog); udp is refused (no udp route exists here).
  protocols: LOG_PROTOCOLS,
  schema: prometheusSchema,
  create(config, deps) {
    const metrics = deps.metrics;
    const gates: MetricGates = {
      status_code_metrics: config.status_code_metrics,
      latency_metrics: config.latency_metrics,
      bandwidth_metrics: config.bandwidth_metrics,
    };
    if (metrics === undefined || !(gates.status_code_metrics || gates.latency_metrics || gates.bandwidth_metrics)) return {};
    const perConsumer = config.per_consumer;
    return {
      log(ctx: LogContext) {
        const route = ctx.route;
        if (route === null) return;
        const svc = ctx.service;
        metrics.record({
          service: svc === null ? '' : svc.name ?? svc.host,
          route: route.name ?? route.id,
          status: ctx.response.status,
          source: ctx.response.local ? 'kong' : 'service',
          consumer: perConsumer && ctx.consumer !== null ? ctx.consumer.username ?? '' : '',
          requestLatency: ctx.latencies.total,
          upstreamLatency: ctx.latencies.upstream,
          kongLatency: ctx.latencies.kong,
          ingressBytes: ctx.bytes.received,
          egressBytes: ctx.bytes.sent,
        }, gates);
      },
      streamLog(ctx: StreamLogContext) {
        const svc = ctx.service;
        metrics.recordSession({
          service: svc === null ? '' : svc.name ?? svc.host,
          route: ctx.route.name ?? ctx.route.id,
          status: ctx.status,
          source: ctx.source,
          sessionLatency: ctx.latencies.session,
          kongLatency: ctx.latencies.kong,
          ingressBytes: ctx.bytes.received,
          egressBytes: ctx.bytes.sent,
        }, gates);
      },
    };
  },
});
