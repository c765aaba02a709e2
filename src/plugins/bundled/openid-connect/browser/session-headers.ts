/**
 * `session_request_headers` / `session_response_headers` (reference §2.8): facts about the current
 * session sent upstream or to the client, with lua-resty-session v4's header names (`Session-Id`,
 * `Session-Timeout`, ...). Pure: takes the session, the resolved timeouts and the clock.
 */
import type { ResolvedConfig } from './config.ts';
import type { SessionData } from './session.ts';

export const sessionHeaderFields = ['absolute-timeout', 'audience', 'id', 'idling-timeout', 'rolling-timeout', 'subject', 'timeout'] as const;
export type SessionHeaderField = (typeof sessionHeaderFields)[number];

/** `idling-timeout` → `Session-Idling-Timeout`. */
export function sessionHeaderName(field: string): string {
  return `Session-${field.split('-').map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join('-')}`;
}

type Timeouts = Pick<ResolvedConfig, 'idlingTimeout' | 'rollingTimeout' | 'absoluteTimeout'>;

/**
 * Seconds left before the session ends by whichever of its enabled timeouts comes first
 * (idling from the last use, rolling from the last renewal, absolute from creation); null when
 * every timeout is disabled (0).
 */
export function remainingSeconds(s: SessionData, t: Timeouts, nowMs: number): number | null {
  const ends: number[] = [];
  if (t.idlingTimeout > 0) ends.push(s.lastSeenAt + t.idlingTimeout * 1000);
  if (t.rollingTimeout > 0) ends.push(s.renewedAt + t.rollingTimeout * 1000);
  if (t.absoluteTimeout > 0) ends.push(s.createdAt + t.absoluteTimeout * 1000);
  if (ends.length === 0) return null;
  return Math.max(0, Math.floor((Math.min(...ends) - nowMs) / 1000));
}

/**
 * The headers for `fields` describing session `s`. The `*-timeout` fields are the configured
 * values in seconds; `timeout` is what is left of the session ({@link remainingSeconds}). A fact
 * with no value (no subject, no timeout enabled) gives no header.
 */
export function sessionHeaders(fields: readonly string[], s: SessionData, t: Timeouts, nowMs: number): Array<{ name: string; value: string }> {
  const out: Array<{ name: string; value: string }> = [];
  for (const field of fields) {
    let value: string | number | null = null;
    if (field === 'id') value = s.id;
    else if (field === 'audience') value = s.audience;
    else if (field === 'subject') value = s.subject;
    else if (field === 'timeout') value = remainingSeconds(s, t, nowMs);
    else if (field === 'idling-timeout') value = t.idlingTimeout;
    else if (field === 'rolling-timeout') value = t.rollingTimeout;
    else if (field === 'absolute-timeout') value = t.absoluteTimeout;
    if (value !== null) out.push({ name: sessionHeaderName(field), value: String(value) });
  }
  return out;
}
