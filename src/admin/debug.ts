/**
 * Kong's debug endpoints (kong/api/routes/debug.lua) and `GET /timers` (kong/api/routes/kong.lua):
 *
 * - `GET /debug/node/log-level` — `{"message": "log level: <level>"}`;
 * - `PUT /debug/node/log-level/{level}` — this node's processes take `level` (Kong's names: debug,
 *   info, notice, warn, error, crit, alert, emerg) for `timeout` seconds (query or body; Kong's
 *   default 60, rounded up; 0 keeps it), then go back to the configured level. 200 "log level
 *   changed", or "log level is already <level>"; 400 "unknown log level: <x>" and "timeout must be
 *   greater than or equal to 0"; 405 "cannot change log level when not using a database" in
 *   DB-less mode, as Kong;
 * - `PUT /debug/cluster/log-level/{level}` — the same for every node sharing the database;
 * - `GET /timers` — this process's timers: Node keeps no per-timer statistics, so `stats.sys`
 *   counts the pending ones (`process.getActiveResourcesInfo()`) and `stats.timers` is empty.
 */
import type { FastifyInstance } from 'fastify';
import type { ConfigStore } from '../storage/ports.ts';
import { defaultLogLevelTimeout, kongLogLevels } from '../observability/log-level.ts';
import { AdminError } from './errors.ts';
import { endpoint } from './routes.ts';

/** What the debug endpoints act on (kernel/control.ts). */
export interface LogLevelControl {
  current(): string;
  /** This node's processes; 'same' when the node is at that level already. */
  setNode(level: string, timeoutSec: number): 'changed' | 'same';
  /** Every node sharing the database (this one at once, the others within seconds). */
  setCluster(level: string, timeoutSec: number): Promise<'changed' | 'same'>;
}

export interface DebugRouteDeps {
  store: ConfigStore;
  logLevel: LogLevelControl | undefined;
  /** Worker processes of the node (Kong's `worker.count`). */
  workers: number;
}

/** Timers waiting in this process (Node's active Timeout and Immediate handles). */
export function pendingTimers(): number {
  let n = 0;
  for (const r of process.getActiveResourcesInfo()) if (r === 'Timeout' || r === 'Immediate') n++;
  return n;
}

export function registerDebugRoutes(app: FastifyInstance, deps: DebugRouteDeps): void {
  endpoint(app, '/timers', {
    GET: async () => {
      const pending = pendingTimers();
      return {
        worker: { id: 0, count: deps.workers },
        stats: {
          sys: { running: 0, pending, waiting: pending, total: pending },
          timers: {},
          flamegraph: { running: '', pending: '', elapsed_time: '' },
        },
      };
    },
  });
  const control = deps.logLevel;
  if (control === undefined) return;
  endpoint(app, '/debug/node/log-level', { GET: async () => ({ message: `log level: ${control.current()}` }) });
  const put = (cluster: boolean) => async (req: { params: unknown; query: unknown; body: unknown }) => {
    if (deps.store.kind === 'off') throw new AdminError(405, { message: 'cannot change log level when not using a database' });
    const level = (req.params as { log_level: string }).log_level;
    // Kong reads `timeout` from the query or the body; anything not a number is the default.
    const body = req.body !== null && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {};
    const raw = (req.query as Record<string, unknown>).timeout ?? body.timeout;
    const asNumber = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
    const timeout = Number.isFinite(asNumber) ? Math.ceil(asNumber) : defaultLogLevelTimeout;
    if (!kongLogLevels.includes(level)) throw new AdminError(400, { message: `unknown log level: ${level}` });
    if (timeout < 0) throw new AdminError(400, { message: 'timeout must be greater than or equal to 0' });
    const result = cluster ? await control.setCluster(level, timeout) : control.setNode(level, timeout);
    return { message: result === 'same' ? `log level is already ${level}` : 'log level changed' };
  };
  endpoint(app, '/debug/node/log-level/:log_level', { PUT: put(false) });
  endpoint(app, '/debug/cluster/log-level/:log_level', { PUT: put(true) });
}
