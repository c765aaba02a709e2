/** The opentelemetry plugin's config schema (Kong's fields); see index.ts. */
import { z } from 'zod';
import { between } from '../../sdk.ts';
import { queueSchema } from '../../log-queue.ts';
import { kongHeaderName } from '../../kong-typedefs.ts';

const formats = ['w3c', 'b3', 'b3-single'] as const;
export type Format = typeof formats[number];
const kongFormats = ['w3c', 'b3', 'b3-single', 'jaeger', 'ot', 'datadog', 'aws', 'gcp', 'instana'];

const format = z.string().refine((f) => (formats as readonly string[]).includes(f), {
  error: (i) => (kongFormats.includes(String(i.input)) ? `propagation format '${String(i.input)}' is not available here (w3c, b3, b3-single are)` : `unknown propagation format '${String(i.input)}'`),
});

/** Kong's extractors: every format but `b3-single` (the b3 extractor reads both b3 spellings). */
const extractFormat = z.string().refine((f) => f !== 'b3-single', { message: "expected one of: w3c, b3 (b3-single is an injector only; its header is read by the b3 extractor)" }).pipe(format);

/** Kong's `header_type` values (deprecated; translated into `propagation` when that is unset). */
export const headerTypes = ['preserve', 'ignore', 'b3', 'b3-single', 'w3c', 'jaeger', 'ot', 'aws', 'gcp', 'datadog', 'instana'] as const;

/** typedefs.timeout: 0 .. 2^31-2 milliseconds. */
const maxTimeout = 2 ** 31 - 2;

const onlyDefault = <T extends z.ZodType>(schema: T, def: z.infer<T>, why: string) =>
  (schema as z.ZodType).default(def).refine((v) => v === def, { message: why });

/**
 * Kong's queue record with the plugin's default batch size (200). `max_bytes` needs text entries
 * in Kong's queue; spans are not text until a batch is encoded, so it is refused.
 */
const otelQueue = queueSchema.extend({
  max_batch_size: between(z.number().int(), 1, 1_000_000).default(200),
  max_bytes: onlyDefault(z.number().nullable(), null, 'not available for opentelemetry: spans are not text until a batch is encoded; the span queue is bounded by max_entries'),
});

export const opentelemetrySchema = z.strictObject({
  traces_endpoint: z.url({ protocol: /^https?$/, error: 'must be an http or https URL (OTLP/HTTP)' }),
  logs_endpoint: onlyDefault(z.string().nullable(), null, 'OpenTelemetry logs are not exported by this gateway; use file-log or http-log'),
  headers: z.record(kongHeaderName, z.string().min(1)).nullable().default(null),
  // Kong: string values, an empty one is "required field missing".
  resource_attributes: z.record(z.string().min(1), z.string().min(1, { message: 'required field missing' })).nullable().default(null),
  queue: otelQueue.default(otelQueue.parse({})),
  // Kong 3.x deprecated fields, stored as Kong stores them; at runtime a value other than the old
  // default (200 / 3) overrides queue.max_batch_size / queue.max_coalescing_delay, with Kong's
  // warning (index.ts), as Kong's Queue.get_plugin_params does.
  // (Kong sets no range; a size below 1 or a negative delay would break the queue, so they are refused.)
  batch_span_count: z.number().int().min(1).nullable().default(null),
  batch_flush_delay: z.number().int().min(0).nullable().default(null),
  connect_timeout: onlyDefault(between(z.number().int(), 0, maxTimeout), 1000, 'not adjustable: the exporter has one timeout, send_timeout'),
  send_timeout: between(z.number().int(), 1, maxTimeout).default(5000),
  read_timeout: onlyDefault(between(z.number().int(), 0, maxTimeout), 5000, 'not adjustable: the exporter has one timeout, send_timeout'),
  http_response_header_for_traceid: z.string().min(1).nullable().default(null),
  // Deprecated in Kong; used only while `propagation` sets none of extract/inject/clear (index.ts).
  header_type: z.enum(headerTypes).default('preserve').refine((t) => !['jaeger', 'ot', 'aws', 'gcp', 'datadog', 'instana'].includes(t), {
    error: (i) => `propagation format '${String(i.input)}' is not available here (header_type: preserve, ignore, w3c, b3, b3-single are)`,
  }),
  sampling_rate: between(z.number(), 0, 1).nullable().default(null),
  propagation: z.strictObject({
    extract: z.array(extractFormat).nullable().default(null),
    inject: z.array(z.string().refine((f) => f === 'preserve' || (formats as readonly string[]).includes(f), { message: 'must be preserve, w3c, b3 or b3-single' })).nullable().default(null),
    clear: z.array(kongHeaderName).nullable().default(null),
    default_format: format.default('w3c'),
  }).default({ extract: null, inject: null, clear: null, default_format: 'w3c' }),
});

export type OpentelemetryConfig = z.infer<typeof opentelemetrySchema>;

/** Kong's `tracing_sampling_rate` default. */
export const defaultSamplingRate = 0.01;

