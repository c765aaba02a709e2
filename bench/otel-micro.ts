/**
 * Microbenchmark of the opentelemetry plugin's cost on a request it does not record
 * (sampling_rate 0: every request is propagated unsampled, as Kong does), without HTTP: the
 * global instance's rewrite handler on a fresh kernel request context per iteration. The cost of
 * the context alone is measured and subtracted.
 *
 *   node bench/otel-micro.ts [iterations] [traceparent]   (add --cpu-prof to profile)
 */
import { pino } from 'pino';
import type { Context } from '../src/kernel/context.ts';
import { contextAloneNs, makeContext as makeKernelContext } from './micro-context.ts';
import { createMemoryKv } from '../src/storage/kv.ts';
import { opentelemetrySchema } from '../src/plugins/bundled/opentelemetry/schema.ts';
import { effectiveConfig } from '../src/plugins/bundled/opentelemetry/index.ts';
import { createTracing } from '../src/plugins/bundled/opentelemetry/tracing.ts';

const iterations = Number(process.argv[2] ?? 500_000);
/** With `traceparent`, each request carries an unsampled incoming trace context. */
const withParent = process.argv[3] === 'traceparent';
const log = pino({ level: 'silent' });

const makeContext = (headers: Record<string, string>): Context => makeKernelContext(headers, {} as never);

const config = effectiveConfig(opentelemetrySchema.parse({ traces_endpoint: 'http://127.0.0.1:9/v1/traces', sampling_rate: 0 }), () => {});
const h = createTracing(config, { entity: { route: null, service: null, consumer: null } as never, log, sharedKv: createMemoryKv(), workers: 1, now: Date.now });
const headers: Record<string, string> = withParent ? { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' } : {};

for (let round = 0; round < 3; round++) {
  let sink = 0;
  for (let i = 0; i < 50_000; i++) {
    const ctx = makeContext(headers);
    h.rewrite!(ctx);
  }
  const base = contextAloneNs(iterations, headers, {} as never);
  const t = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const ctx = makeContext(headers);
    h.rewrite!(ctx);
    sink += ctx.upstream.path.length;
  }
  const total = Number(process.hrtime.bigint() - t) / iterations;
  console.log(`unsampled${withParent ? ' (traceparent)' : ''}  ${(total - base).toFixed(0).padStart(6)} ns/op (context alone ${base.toFixed(0)} ns) ${sink > 0 ? '' : '!'}`);
}
await h.close?.();
