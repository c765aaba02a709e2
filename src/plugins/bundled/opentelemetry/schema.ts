/** The opentelemetry plugin's config schema (Kong's fields); see index.ts. */
import { z } from 'zod';
import { queueSchema } from '../../log-queue.ts';

const formats = ['w3c', 'b3', 'b3-single'] as const;
export type Format = typeof formats[number];
const kongFormats = ['w3c', 'b3', 'b3-single', 'jaeger', 'ot', 'datadog', 'aws', 'gcp', 'instana'];

const format = z.string().refine((f) => (formats as readonly string[]).includes(f), {
  error: (i) => (kongFormats.includes(String(i.input)) ? `propagation format '${String(i.input)}' is not available here (w3c, b3, b3-single are)` : `unknown propagation format '${String(i.input)}'`),
});

const onlyDefault = <T extends z.ZodType>(schema: T, def: z.infer<T>, why: string) =>
  (schema as z.ZodType).default(def).refine((v) => v === def, { message: why });

const otelQueue = queueSchema.extend({
  max_batch_size: z.number().int().min(1).max(1_000_000).default(200),
  max_bytes: onlyDefault(z.number().nullable(), null, 'not available for opentelemetry: the span queue is bounded by max_entries'),
  max_retry_time: onlyDefault(z.number(), 60, 'not adjustable: the OTLP exporter retries by its own policy'),
  initial_retry_delay: onlyDefault(z.number(), 0.01, 'not adjustable: the OTLP exporter retries by its own policy'),
  max_retry_delay: onlyDefault(z.number(), 60, 'not adjustable: the OTLP exporter retries by its own policy'),
  concurrency_limit: onlyDefault(z.number(), 1, 'not adjustable for opentelemetry'),
});

export const opentelemetrySchema = z.strictObject({
  traces_endpoint: z.url({ protocol: /^https?$/, error: 'must be an http or https URL (OTLP/HTTP)' }),
  logs_endpoint: onlyDefault(z.string().nullable(), null, 'OpenTelemetry logs are not exported by this gateway; use file-log or http-log'),
  headers: z.record(z.string(), z.string()).nullable().default(null),
  resource_attributes: z.record(z.string(), z.string()).nullable().default(null),
  queue: otelQueue.default(otelQueue.parse({})),
  connect_timeout: onlyDefault(z.number().int(), 1000, 'not adjustable: the exporter has one timeout, send_timeout'),
  send_timeout: z.number().int().min(1).default(5000),
  read_timeout: onlyDefault(z.number().int(), 5000, 'not adjustable: the exporter has one timeout, send_timeout'),
  http_response_header_for_traceid: z.string().min(1).nullable().default(null),
  header_type: onlyDefault(z.string(), 'preserve', 'deprecated; only preserve is available (use propagation)'),
  sampling_rate: z.number().min(0).max(1).nullable().default(null),
  propagation: z.strictObject({
    extract: z.array(format).nullable().default(null),
    inject: z.array(z.string().refine((f) => f === 'preserve' || (formats as readonly string[]).includes(f), { message: 'must be preserve, w3c, b3 or b3-single' })).nullable().default(null),
    clear: z.array(z.string().min(1)).nullable().default(null),
    default_format: format.default('w3c'),
  }).default({ extract: null, inject: null, clear: null, default_format: 'w3c' }),
});

export type OpentelemetryConfig = z.infer<typeof opentelemetrySchema>;

/** Kong's `tracing_sampling_rate` default. */
export const defaultSamplingRate = 0.01;

