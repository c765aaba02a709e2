/**
 * The request body the proxy sends upstream: a plugin's replacement, the body a plugin already
 * buffered, or the client's stream (bounded by client_max_body_size when its length is not
 * declared up front).
 */
import type { IncomingMessage } from 'node:http';
import { Transform } from 'node:stream';
import { GatewayError } from '../errors.ts';
import type { UpstreamBody } from './forward.ts';

/** Counts streamed request bytes and fails once the limit is passed (chunked uploads). */
function limitStream(limit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > limit) cb(new GatewayError('GW_REQUEST_TOO_LARGE', 'Payload too large', { status: 413 }));
      else cb(null, chunk);
    },
  });
}

/**
 * Chooses the upstream body. `replaced` is a plugin's `setBody` (its headers already set),
 * `buffered` a body a plugin read; a buffered body gets its Content-Length set on `headers`.
 */
export function upstreamBody(
  client: IncomingMessage, replaced: Buffer | undefined, buffered: Buffer | undefined,
  headers: Record<string, string | string[] | undefined>, maxBodySize: number,
): UpstreamBody {
  if (replaced !== undefined) return replaced;
  if (buffered !== undefined) {
    headers['content-length'] = String(buffered.length);
    return buffered;
  }
  const cl = client.headers['content-length'];
  const hasBody = (cl !== undefined && cl !== '0') || client.headers['transfer-encoding'] !== undefined;
  if (!hasBody) return null;
  return maxBodySize > 0 && cl === undefined ? client.pipe(limitStream(maxBodySize)) : client;
}
