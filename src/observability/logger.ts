/**
 * pino logger with redaction of anything that may carry a credential. Access-log lines and
 * errors go through here; code must still never put tokens into messages.
 */
import { pino, type Logger, type LoggerOptions } from 'pino';
import { customLogLevels } from './log-level.ts';

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
  const options: LoggerOptions<keyof typeof customLogLevels> = {
    level: settings.level ?? 'info',
    // Kong's notice, crit, alert and emerg (log-level.ts).
    customLevels: customLogLevels,
    base: { pid: process.pid },
    redact: { paths: redactPaths, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  const dest = settings.destination;
  const logger = dest === undefined ? pino(options, pino.destination({ dest: 1, sync: false }))
    : typeof dest === 'number' ? pino(options, pino.destination({ dest, sync: false }))
    : pino(options, dest);
  // The custom levels are thresholds only (no code logs at them): the plain Logger type serves.
  return logger as unknown as Logger;
}

/** A logger that writes nothing (tests, tools). */
export function silentLogger(): Logger {
  return pino({ level: 'silent', customLevels: customLogLevels }) as unknown as Logger;
}
