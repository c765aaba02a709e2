/**
 * The opentelemetry plugin's export thread (plugins/send-thread.ts says why there is one).
 *
 * Batches arrive already encoded by the official `ProtobufTraceSerializer` in the gateway's thread
 * and are sent by the official OTLP/HTTP export delegate, built exactly as `OTLPTraceExporter` (of
 * `@opentelemetry/exporter-trace-otlp-proto`) builds it: the same options conversion, headers,
 * User-Agent, timeout, retrying transport and response handling. Only its serializer is a pass
 * through for the bytes.
 */
import { workerData } from 'node:worker_threads';
import { ExportResultCode } from '@opentelemetry/core';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import { ProtobufTraceSerializer, type IExportTraceServiceResponse, type ISerializer } from '@opentelemetry/otlp-transformer';
import { serveSends } from '../../send-thread.ts';

/** What the thread is started with: the OTLPTraceExporter options the plugin sets. */
export interface ExportThreadOptions {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly timeoutMillis: number;
}

/** One batch: its protobuf bytes and how many spans they hold (the exporter's own span count). */
export interface EncodedBatch {
  readonly body: Uint8Array;
  readonly spans: number;
}

const options = workerData as ExportThreadOptions;
const passThrough: ISerializer<EncodedBatch, IExportTraceServiceResponse> = {
  serializeRequest: (e) => e.body,
  deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data),
};
const delegate = createOtlpHttpExportDelegate(
  convertLegacyHttpOptions({ url: options.url, headers: options.headers, timeoutMillis: options.timeoutMillis }, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' }),
  passThrough,
  // OTLPTraceExporter's component type (exporter-trace-otlp-proto's semconv) and span counter.
  'otlp_http_span_exporter',
  { name: 'span', countItems: (e: EncodedBatch) => e.spans },
  // No meter provider: the exporter's self-metrics stay off, as the plugin sets none.
  undefined,
);

serveSends<EncodedBatch>({
  send: (batch) => new Promise<void>((resolve, reject) => {
    delegate.export(batch, (result) => {
      if (result.code === ExportResultCode.SUCCESS) resolve();
      else reject(result.error ?? new Error('export failed'));
    });
  }),
  close: () => delegate.shutdown(),
});
