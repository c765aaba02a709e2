/**
 * An in-test OTLP/HTTP trace receiver: a node:http server on port 0 that accepts
 * ExportTraceServiceRequest bodies in protobuf (what the gateway's exporter sends) and decodes the
 * spans with a small protobuf wire-format reader (only the fields the tests look at).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  /** start_time_unix_nano / end_time_unix_nano. */
  startNs: bigint;
  endNs: bigint;
  /** Status.code: 0 unset, 1 ok, 2 error. */
  status: number;
  traceState: string;
  attributes: Record<string, string | number | boolean>;
  resource: Record<string, string | number | boolean>;
}

export interface OtlpReceiver {
  url: string;
  spans: ReceivedSpan[];
  contentTypes: string[];
  close(): Promise<void>;
}

type Field = { no: number; wire: number; value: bigint | Buffer };

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let i = 0;
  const varint = (): bigint => {
    let shift = 0n;
    let v = 0n;
    for (;;) {
      const b = buf[i++];
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const no = key >> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ no, wire, value: varint() });
    else if (wire === 1) {
      out.push({ no, wire, value: buf.readBigUInt64LE(i) });
      i += 8;
    } else if (wire === 2) {
      const len = Number(varint());
      out.push({ no, wire, value: buf.subarray(i, i + len) });
      i += len;
    } else if (wire === 5) {
      out.push({ no, wire, value: BigInt(buf.readUInt32LE(i)) });
      i += 4;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

const bytesOf = (fs: Field[], no: number): Buffer[] => fs.filter((f) => f.no === no && f.wire === 2).map((f) => f.value as Buffer);

/** AnyValue: string(1), bool(2), int(3), double(4). */
function anyValue(buf: Buffer): string | number | boolean {
  for (const f of fields(buf)) {
    if (f.no === 1) return (f.value as Buffer).toString('utf8');
    if (f.no === 2) return f.value !== 0n;
    if (f.no === 3) return Number(BigInt.asIntN(64, f.value as bigint));
    if (f.no === 4) return Buffer.from((f.value as bigint).toString(16).padStart(16, '0'), 'hex').readDoubleBE(0);
  }
  return '';
}

/** KeyValue list: key(1), value(2). */
function attributes(list: Buffer[]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list) {
    const fs = fields(kv);
    const key = bytesOf(fs, 1)[0]?.toString('utf8') ?? '';
    const value = bytesOf(fs, 2)[0];
    out[key] = value === undefined ? '' : anyValue(value);
  }
  return out;
}

export function decodeTraces(body: Buffer): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const rs of bytesOf(fields(body), 1)) {
    const rsf = fields(rs);
    const resourceBuf = bytesOf(rsf, 1)[0];
    const resource = resourceBuf ? attributes(bytesOf(fields(resourceBuf), 1)) : {};
    for (const ss of bytesOf(rsf, 2)) {
      for (const sp of bytesOf(fields(ss), 2)) {
        const f = fields(sp);
        const kind = f.find((x) => x.no === 6);
        const time = (no: number): bigint => (f.find((x) => x.no === no && x.wire === 1)?.value as bigint | undefined) ?? 0n;
        const statusBuf = bytesOf(f, 15)[0];
        const code = statusBuf ? fields(statusBuf).find((x) => x.no === 3) : undefined;
        spans.push({
          traceId: bytesOf(f, 1)[0]?.toString('hex') ?? '',
          spanId: bytesOf(f, 2)[0]?.toString('hex') ?? '',
          parentSpanId: bytesOf(f, 4)[0]?.toString('hex') ?? '',
          name: bytesOf(f, 5)[0]?.toString('utf8') ?? '',
          kind: kind ? Number(kind.value) : 0,
          startNs: time(7),
          endNs: time(8),
          status: code ? Number(code.value) : 0,
          traceState: bytesOf(f, 3)[0]?.toString('utf8') ?? '',
          attributes: attributes(bytesOf(f, 9)),
          resource,
        });
      }
    }
  }
  return spans;
}

/**
 * `delayMs`: how long each export waits before its answer (a slow collector). `failFirst`: the
 * first n exports are answered 500 and their spans not kept (a collector having trouble).
 */
export async function startOtlpReceiver(opts: { delayMs?: number; failFirst?: number } = {}): Promise<OtlpReceiver> {
  let failing = opts.failFirst ?? 0;
  const r = { spans: [] as ReceivedSpan[], contentTypes: [] as string[] } as OtlpReceiver;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.contentTypes.push(String(req.headers['content-type']));
      const answer = (): void => {
        if (failing > 0) {
          failing--;
          res.writeHead(500);
          res.end();
          return;
        }
        if (req.url === '/v1/traces') r.spans.push(...decodeTraces(Buffer.concat(chunks)));
        res.writeHead(200, { 'content-type': 'application/x-protobuf' });
        res.end();
      };
      if (opts.delayMs) setTimeout(answer, opts.delayMs);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  r.close = () => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  return r;
}
