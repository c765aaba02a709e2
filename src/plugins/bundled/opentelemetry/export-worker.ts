/**
 * The opentelemetry plugin's export thread (a worker_threads entry; see thread-exporter.ts).
 *
 * Batches arrive already encoded by the official `ProtobufTraceSerializer` in the gateway's thread
 * and are sent here by the official OTLP/HTTP export delegate, exactly as `OTLPTraceExporter` (of
 * `@opentelemetry/exporter-trace-otlp-proto`) builds it: the same options conversion, headers,
 * User-Agent, timeout, retrying transport and response handling. Only its serializer is a pass
 * through for the bytes. The HTTP client runs in this thread so that its objects never share V8's
 * inline caches and field types with the proxy's hot path (bench/NOTES.md, session 13).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ExportResultCode } from '@opentelemetry/core';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import { ProtobufTraceSerializer, type IExportTraceServiceResponse, type ISerializer } from '@opentelemetry/otlp-transformer';
import type { ExportReply, ExportRequest, ExportThreadOptions } from './thread-exporter.ts';

const port = parentPort!;
const options = workerData as ExportThreadOptions;

/** One batch: its protobuf bytes and how many spans they hold (for the exporter's own span count). */
interface Encoded {
  readonly body: Uint8Array;
  readonly spans: number;
}
const passThrough: ISerializer<Encoded, IExportTraceServiceResponse> = {
  serializeRequest: (e) => e.body,
  deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data),
};

const delegate = createOtlpHttpExportDelegate(
  convertLegacyHttpOptions({ url: options.url, headers: options.headers, timeoutMillis: options.timeoutMillis }, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' }),
  passThrough,
  // OTLPTraceExporter's component type (exporter-trace-otlp-proto's semconv) and span counter.
  'otlp_http_span_exporter',
  { name: 'span', countItems: (e: Encoded) => e.spans },
  // No meter provider: the exporter's self-metrics stay off, as the plugin sets none.
  undefined,
);

port.on('message', (m: ExportRequest) => {
  if (m.kind === 'shutdown') {
    void delegate.shutdown().finally(() => port.postMessage({ kind: 'shutdown' } satisfies ExportReply));
    return;
  }
  delegate.export({ body: m.body, spans: m.spans }, (result) => {
    const reply: ExportReply = result.code === ExportResultCode.SUCCESS
      ? { kind: 'export', id: m.id, ok: true }
      : { kind: 'export', id: m.id, ok: false, error: result.error?.message ?? 'export failed' };
    port.postMessage(reply);
  });
});
