/**
 * The proxy access log (Kong's `proxy_access_log`): one line per request, JSON by default or the
 * nginx "combined" text format followed by `kong_request_id: "<id>"`, as Kong's `kong_log_format`.
 *
 * It is on the hot path, so it avoids the logger: each line is built by string concatenation
 * (values escaped only when they hold characters JSON must escape), the timestamp text is reused
 * within one millisecond, and lines are gathered and written at most every 20 ms (or when 64 KiB
 * are waiting; on close, what waits is written). Nothing credential-bearing is ever in a line: the path is logged without
 * its query string and no header values are logged apart from Referer/User-Agent in `combined`
 * (their query strings are cut too).
 */
import { createWriteStream, type WriteStream } from 'node:fs';

export type AccessLogFormat = 'json' | 'combined';

/** Parsed `PORTCULLIS_PROXY_ACCESS_LOG`: `off`, `stdout` (or `on`), or a file path; then an optional format. */
export interface AccessLogSetting {
  target: 'off' | 'stdout' | { path: string };
  format: AccessLogFormat;
}

export class AccessLogSettingError extends Error {
  override name = 'AccessLogSettingError';
}

export function parseAccessLogSetting(value: string | undefined): AccessLogSetting {
  const words = (value ?? '').trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return { target: 'stdout', format: 'json' };
  if (words.length > 2) throw new AccessLogSettingError(`PORTCULLIS_PROXY_ACCESS_LOG: '${value}' must be "off", "stdout" or a file path, optionally followed by json or combined`);
  const [where, fmt = 'json'] = words;
  if (fmt !== 'json' && fmt !== 'combined') throw new AccessLogSettingError(`PORTCULLIS_PROXY_ACCESS_LOG: format '${fmt}' must be json or combined`);
  const w = where.toLowerCase();
  if (['off', 'false', '0', 'no'].includes(w)) return { target: 'off', format: fmt };
  if (['on', 'true', '1', 'yes', 'stdout', '/dev/stdout'].includes(w)) return { target: 'stdout', format: fmt };
  return { target: { path: where }, format: fmt };
}

/** What the kernel knows about a finished request (all already computed for other uses). */
export interface AccessEntry {
  requestId: string;
  method: string;
  path: string;
  status: number;
  /** ms */
  latency: number;
  upstreamLatency: number | null;
  route: string | null;
  service: string | null;
  consumer: string | null;
  clientIp: string;
  aborted: boolean;
  /** Response body bytes sent (combined format). */
  bytesSent: number;
  referer: string | undefined;
  userAgent: string | undefined;
  httpVersion: string;
}

/** Strings that need no escaping inside JSON quotes: printable ASCII without `"` and `\`. */
const plain = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function q(s: string | null): string {
  if (s === null) return 'null';
  return plain.test(s) ? `"${s}"` : JSON.stringify(s);
}

function ms(n: number): number {
  return Math.round(n * 100) / 100;
}

const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** nginx `$time_local` (in UTC): `07/Dec/2026:04:15:50 +0000`. */
function timeLocal(d: Date): string {
  return `${two(d.getUTCDate())}/${months[d.getUTCMonth()]}/${d.getUTCFullYear()}:${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`;
}

function noQuery(s: string | undefined): string {
  if (s === undefined || s === '') return '-';
  const i = s.indexOf('?');
  const v = i >= 0 ? s.slice(0, i) : s;
  return v.replace(/["\\\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

const maxPending = 64 * 1024;
/**
 * How long a line may wait for the next write (as nginx's `access_log ... flush=`): one write per
 * 20 ms (or per 64 KiB) instead of one per event-loop turn, which under load was a write, and a
 * thread-pool round trip, every few requests.
 */
const flushDelayMs = 20;

/** The sink lines go to: anything with `write(string)` (the logger's stream, a file stream). */
export interface LineSink {
  write(chunk: string): unknown;
}

export class AccessLog {
  readonly format: AccessLogFormat;
  readonly #sink: LineSink;
  readonly #owned: WriteStream | null;
  readonly #pid: number;
  #pending = '';
  #scheduled = false;
  #lastMs = -1;
  #lastText = '';
  #sinkFailed = false;
  readonly #onError: (err: Error) => void;

  constructor(sink: LineSink | { path: string }, format: AccessLogFormat, onError: (err: Error) => void = () => {}) {
    this.format = format;
    this.#pid = process.pid;
    this.#onError = onError;
    if ('path' in sink) {
      const stream = createWriteStream(sink.path, { flags: 'a' });
      stream.on('error', (err) => this.#failed(err));
      this.#owned = stream;
      this.#sink = stream;
    } else {
      this.#owned = null;
      this.#sink = sink;
    }
  }

  #failed(err: Error): void {
    // Reported once; lines are dropped from then on rather than piling up in memory.
    if (this.#sinkFailed) return;
    this.#sinkFailed = true;
    this.#onError(err);
  }

  #time(now: number): string {
    if (now !== this.#lastMs) {
      this.#lastMs = now;
      this.#lastText = this.format === 'json' ? new Date(now).toISOString() : timeLocal(new Date(now));
    }
    return this.#lastText;
  }

  write(e: AccessEntry, now: number): void {
    if (this.#sinkFailed) return;
    let line: string;
    if (this.format === 'json') {
      line = `{"level":"info","time":"${this.#time(now)}","pid":${this.#pid},"type":"access","request_id":${q(e.requestId)},"method":${q(e.method)},"path":${q(e.path)},"status":${e.status},"latency_ms":${ms(e.latency)},"upstream_latency_ms":${e.upstreamLatency === null ? 'null' : ms(e.upstreamLatency)},"route":${q(e.route)},"service":${q(e.service)},"consumer":${q(e.consumer)},"client_ip":${q(e.clientIp)},"aborted":${e.aborted}}\n`;
    } else {
      line = `${e.clientIp} - - [${this.#time(now)}] "${e.method} ${noQuery(e.path)} HTTP/${e.httpVersion}" ${e.status} ${e.bytesSent} "${noQuery(e.referer)}" "${noQuery(e.userAgent)}" kong_request_id: "${noQuery(e.requestId)}"\n`;
    }
    this.#pending += line;
    if (this.#pending.length >= maxPending) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setTimeout(this.#flushLater, flushDelayMs).unref();
    }
  }

  readonly #flushLater = (): void => {
    this.#scheduled = false;
    this.flush();
  };

  flush(): void {
    if (this.#pending === '') return;
    const text = this.#pending;
    this.#pending = '';
    try {
      this.#sink.write(text);
    } catch (err) {
      this.#failed(err as Error);
    }
  }

  async close(): Promise<void> {
    this.flush();
    const s = this.#owned;
    if (s !== null && !s.destroyed) await new Promise<void>((r) => s.end(() => r()));
  }
}
