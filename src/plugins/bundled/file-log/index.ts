/**
 * file-log — appends Kong's log record (plugins/log-record.ts) as one JSON document and a newline
 * per request to `path`. Kong's fields: `path` (required; Kong's "valid filename" pattern: two
 * characters or more, no leading/trailing whitespace, none of `*`, `&`, `%`, backslash, backtick), `reopen` (false: the file stays open; true: it is opened for every
 * write, so rotation by renaming works), `custom_fields_by_lua` (refused: no Lua here).
 * Priority 9.
 *
 * Writes never hold up a request: lines are gathered and appended once per event-loop turn. A
 * file that cannot be written is reported once per minute (not per request) and its lines are
 * dropped and counted (`portcullis_log_queue_dropped_total{plugin="file-log"}`); at most 8 MiB
 * wait for the disk, beyond that lines are dropped too.
 */
import { appendFile } from 'node:fs/promises';
import { createWriteStream, type WriteStream } from 'node:fs';
import { z } from 'zod';
import { definePlugin, LOG_PROTOCOLS, type LogContext, type StreamLogContext } from '../../sdk.ts';
import { customFieldsByLua, serializeLogJson, serializeStreamLogJson } from '../../log-record.ts';
import { LogThrottle } from '../../../observability/log-throttle.ts';

export const fileLogSchema = z.strictObject({
  // Kong's pattern: at least two characters, none of `*`, `&`, `%`, backslash or backtick, and
  // no whitespace at either end.
  path: z.string().regex(/^[^\t\n\v\f\r *&%\\`][^*&%\\`]*[^\t\n\v\f\r *&%\\`]$/, { message: 'not a valid filename' }),
  reopen: z.boolean().default(false),
  custom_fields_by_lua: customFieldsByLua,
});

export type FileLogConfig = z.infer<typeof fileLogSchema>;

const maxWaitingBytes = 8 * 1024 * 1024;
const reportEveryMs = 60_000;

export default definePlugin<FileLogConfig>({
  name: 'file-log',
  version: '0.1.0',
  priority: 9,
  // Kong's schema: typedefs.protocols. Stream sessions get Kong's stream record (streamLog); udp
  // is refused (no udp route exists here).
  protocols: LOG_PROTOCOLS,
  schema: fileLogSchema,
  create(config, deps) {
    let pending = '';
    let scheduled = false;
    let stream: WriteStream | null = null;
    const reports = new LogThrottle(reportEveryMs);
    let droppedSinceReport = 0;
    let writing: Promise<void> = Promise.resolve();
    const dropped = (n: number, err: Error): void => {
      deps.metrics?.queueDropped.labels('file-log', 'write_failed').inc(n);
      droppedSinceReport += n;
      if (reports.admit() === null) return;
      deps.log.error({ path: config.path, err: { message: err.message, code: (err as NodeJS.ErrnoException).code }, dropped_lines: droppedSinceReport }, 'file-log cannot write its file; log lines are dropped');
      droppedSinceReport = 0;
    };
    const open = (): WriteStream => {
      const s = createWriteStream(config.path, { flags: 'a' });
      s.on('error', (err) => {
        dropped(0, err);
        if (stream === s) stream = null;
      });
      return s;
    };
    const flush = (): void => {
      scheduled = false;
      if (pending === '') return;
      const text = pending;
      pending = '';
      const lines = text.split('\n').length - 1;
      if (config.reopen) {
        writing = writing.then(() => appendFile(config.path, text)).catch((err: Error) => dropped(lines, err));
        return;
      }
      stream ??= open();
      if (stream.writableLength > maxWaitingBytes) {
        dropped(lines, new Error('the disk is not keeping up'));
        return;
      }
      stream.write(text);
    };
    const line = (text: string): void => {
      pending += `${text}\n`;
      if (pending.length > maxWaitingBytes) {
        dropped(1, new Error('too many lines waiting'));
        pending = '';
      }
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    };
    return {
      log(ctx: LogContext) {
        line(serializeLogJson(ctx));
      },
      streamLog(ctx: StreamLogContext) {
        line(serializeStreamLogJson(ctx));
      },
      async close() {
        flush();
        await writing;
        const s = stream;
        if (s !== null) await new Promise<void>((r) => s.end(() => r()));
      },
    };
  },
});
