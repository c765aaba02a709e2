/**
 * The node's log level, changed at runtime as Kong's `PUT /debug/node/log-level/{level}` does:
 * every process of the node takes the new level (the workers through the primary), and after
 * `timeout` seconds (Kong's default 60; 0 keeps it) the level goes back to the configured one.
 *
 * Kong's levels are nginx's: debug, info, notice, warn, error, crit, alert, emerg. pino knows
 * debug, info, warn and error; `notice`, `crit`, `alert` and `emerg` are custom pino levels
 * between them (logger.ts), so each of Kong's thresholds means what it means in Kong.
 */
import type { Logger } from 'pino';

/** Kong's log levels (kong.constants LOG_LEVELS), least severe first. */
export const kongLogLevels: readonly string[] = ['debug', 'info', 'notice', 'warn', 'error', 'crit', 'alert', 'emerg'];

/** pino levels for Kong's names pino lacks (info 30 < notice < warn 40; error 50 < crit < alert < emerg < fatal 60). */
export const customLogLevels = { notice: 35, crit: 55, alert: 57, emerg: 59 } as const;

/** Every level a node can be configured with: pino's and Kong's. */
export const configurableLogLevels: readonly string[] = ['trace', 'debug', 'info', 'notice', 'warn', 'error', 'crit', 'alert', 'emerg', 'fatal', 'silent'];

/** Kong's default `timeout` of a dynamic log level, in seconds. */
export const defaultLogLevelTimeout = 60;

export class LiveLogLevel {
  readonly #log: Logger;
  readonly #configured: string;
  readonly #onChange: (level: string) => void;
  #revert: NodeJS.Timeout | null = null;

  /** `onChange`: the other processes of the node take `level` too (the primary's workers). */
  constructor(log: Logger, onChange: (level: string) => void = () => {}) {
    this.#log = log;
    this.#configured = log.level;
    this.#onChange = onChange;
  }

  /** The level in force now. */
  get level(): string {
    return this.#log.level;
  }

  /** The level the node started with (what a timeout goes back to). */
  get configured(): string {
    return this.#configured;
  }

  /**
   * Sets `level` for `timeoutSec` seconds (0: until changed again). 'same' when the node is at
   * that level already (nothing changes, as Kong: "log level is already ...").
   */
  set(level: string, timeoutSec: number): 'changed' | 'same' {
    if (!kongLogLevels.includes(level)) throw new RangeError(`unknown log level: ${level}`);
    if (this.#log.level === level) return 'same';
    this.#apply(level);
    if (this.#revert !== null) clearTimeout(this.#revert);
    this.#revert = null;
    if (timeoutSec > 0) {
      this.#revert = setTimeout(() => {
        this.#revert = null;
        this.#apply(this.#configured);
      }, timeoutSec * 1000);
      this.#revert.unref();
    }
    return 'changed';
  }

  #apply(level: string): void {
    const from = this.#log.level;
    this.#log.level = level;
    this.#onChange(level);
    // At info (Kong logs it at notice): seen at the default level, not once a stricter one is in force.
    this.#log.info({ from, to: level }, 'log level changed');
  }

  close(): void {
    if (this.#revert !== null) clearTimeout(this.#revert);
    this.#revert = null;
  }
}
