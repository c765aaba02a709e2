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

/** Seconds left of each enabled timeout (idling from the last use, rolling from the last renewal, absolute from creation). */
function remaining(s: SessionData, t: Timeouts, nowMs: number): { idling: number | null; rolling: number | null; absolute: number | null } {
  const left = (timeoutS: number, fromMs: number): number | null => (timeoutS > 0 ? Math.max(0, Math.floor((fromMs + timeoutS * 1000 - nowMs) / 1000)) : null);
  return {
    idling: left(t.idlingTimeout, s.lastSeenAt),
    rolling: left(t.rollingTimeout, s.renewedAt),
    absolute: left(t.absoluteTimeout, s.createdAt),
  };
}

/**
 * Seconds left before the session ends by whichever of its enabled timeouts comes first; null
 * when every timeout is disabled (0).
 */
export function remainingSeconds(s: SessionData, t: Timeouts, nowMs: number): number | null {
  const left = Object.values(remaining(s, t, nowMs)).filter((v): v is number => v !== null);
  return left.length > 0 ? Math.min(...left) : null;
}

/**
 * The headers for `fields` describing session `s`, as lua-resty-session computes them: the
 * `*-timeout` facts are the seconds left of that timeout, `timeout` the least of them. A fact
 * with no value (no subject, a disabled timeout) gives no header.
 */
export function sessionHeaders(fields: readonly string[], s: SessionData, t: Timeouts, nowMs: number): Array<{ name: string; value: string }> {
  const out: Array<{ name: string; value: string }> = [];
  const left = remaining(s, t, nowMs);
  for (const field of fields) {
    let value: string | number | null = null;
    if (field === 'id') value = s.id;
    else if (field === 'audience') value = s.audience;
    else if (field === 'subject') value = s.subject;
    else if (field === 'timeout') value = remainingSeconds(s, t, nowMs);
    else if (field === 'idling-timeout') value = left.idling;
    else if (field === 'rolling-timeout') value = left.rolling;
    else if (field === 'absolute-timeout') value = left.absolute;
    if (value !== null) out.push({ name: sessionHeaderName(field), value: String(value) });
  }
  return out;
}
