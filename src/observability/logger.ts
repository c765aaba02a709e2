/**
 * pino logger with redaction of anything that may carry a credential. Access-log lines and
 * errors go through here; code must still never put tokens into messages.
 */
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

const redactPaths = [
  'authorization', '*.authorization', 'headers.authorization', 'headers.cookie', 'headers["set-cookie"]',
  'cookie', '*.cookie', 'password', '*.password', 'client_secret', '*.client_secret', 'token', '*.token',
  'access_token', '*.access_token', 'refresh_token', '*.refresh_token', 'id_token', '*.id_token',
  'session_secret', '*.session_secret', 'secret', '*.secret',
];

export interface LoggerSettings {
  level?: string;
  /** Where to write; defaults to stdout. */
  destination?: NodeJS.WritableStream | number;
}

export function createLogger(settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? 'info',
    base: { pid: process.pid },
    redact: { paths: redactPaths, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  const dest = settings.destination;
  if (dest === undefined) return pino(options, pino.destination({ dest: 1, sync: false }));
  if (typeof dest === 'number') return pino(options, pino.destination({ dest, sync: false }));
  return pino(options, dest);
}

/** A logger that writes nothing (tests, tools). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
