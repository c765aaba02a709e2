/**
 * When an upstream request is sent again (Kong: a service's `retries`): only a failure before the
 * upstream could have processed anything (connection refused/reset, connect timeout), only for
 * idempotent methods (RFC 9110 §9.2.2), and only when the body can be sent again (none, or
 * buffered).
 */
import { isConnectFailure } from './errors.ts';

const idempotent = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Whether a request with this method and body may be sent more than once. */
export function isReplayable(method: string, body: unknown): boolean {
  return idempotent.has(method) && (body === null || Buffer.isBuffer(body));
}

/** Whether attempt number `attempt` (0 = the first) that failed with `err` gets another try. */
export function shouldRetry(err: unknown, attempt: number, retries: number): boolean {
  return attempt < retries && isConnectFailure(err);
}
