/** Turns undici/network failures into the gateway's typed errors (Kong's messages, no internal detail). */
import { GatewayError } from '../errors.ts';

const connectFailures = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

function codeOf(err: unknown): string {
  const e = err as { code?: string; cause?: { code?: string } };
  return e?.code ?? e?.cause?.code ?? '';
}

/** True when the failure happened before the upstream could have processed the request. */
export function isConnectFailure(err: unknown): boolean {
  return connectFailures.has(codeOf(err));
}

export function upstreamError(err: unknown): GatewayError {
  const code = codeOf(err);
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UPSTREAM_WRITE_TIMEOUT' || code === 'ETIMEDOUT') {
    return new GatewayError('GW_UPSTREAM_TIMEOUT', 'The upstream server is timing out', { status: 504, expose: true, detail: code, cause: err });
  }
  if (code.startsWith('ERR_TLS') || code.includes('CERT') || code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'SELF_SIGNED_CERT_IN_CHAIN' || code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE') {
    return new GatewayError('GW_UPSTREAM_TLS', 'An invalid response was received from the upstream server', { status: 502, expose: true, detail: code, cause: err });
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    // Kong's balancer: a host name that does not resolve (NXDOMAIN / no records, or the resolver
    // failing for now) is 503 "name resolution failed".
    return new GatewayError('GW_UPSTREAM_UNAVAILABLE', 'name resolution failed', { status: 503, expose: true, detail: code, cause: err });
  }
  return new GatewayError('GW_UPSTREAM_UNAVAILABLE', 'An invalid response was received from the upstream server', { status: 502, expose: true, detail: code || String((err as Error)?.message ?? err), cause: err });
}
