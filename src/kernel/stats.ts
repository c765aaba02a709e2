/**
 * Connection and request counters of one process's proxy listeners, for `GET /status` in Kong's
 * shape (nginx stub_status names: connections_accepted/active/handled/reading/writing/waiting,
 * total_requests).
 */
import type http from 'node:http';

export interface ServerStats {
  connections_accepted: number;
  connections_active: number;
  connections_handled: number;
  connections_reading: number;
  connections_writing: number;
  connections_waiting: number;
  total_requests: number;
}

/** Counters for one process; `track` wires a server to it. */
export class ConnectionStats {
  #accepted = 0;
  #active = 0;
  #requests = 0;
  #inFlight = 0;

  /** Counts `server`'s connections from now on (requests are counted by the request handler). */
  track(server: http.Server): void {
    server.on('connection', (socket: { once(event: 'close', fn: () => void): unknown }) => {
      this.#accepted++;
      this.#active++;
      socket.once('close', () => this.#active--);
    });
  }

  /** A request arrived (called by the request handler, which already watches its end). */
  requestStarted(): void {
    this.#requests++;
    this.#inFlight++;
  }

  requestEnded(): void {
    this.#inFlight--;
  }

  /**
   * Reading (a request whose head is still arriving) is not observable in node:http, so it is
   * reported as 0; writing is requests in flight; waiting is idle keep-alive connections.
   */
  snapshot(): ServerStats {
    return {
      connections_accepted: this.#accepted,
      connections_active: this.#active,
      connections_handled: this.#accepted,
      connections_reading: 0,
      connections_writing: this.#inFlight,
      connections_waiting: Math.max(0, this.#active - this.#inFlight),
      total_requests: this.#requests,
    };
  }
}

/** Adds up the counters of several processes. */
export function sumStats(all: readonly ServerStats[]): ServerStats {
  const out: ServerStats = { connections_accepted: 0, connections_active: 0, connections_handled: 0, connections_reading: 0, connections_writing: 0, connections_waiting: 0, total_requests: 0 };
  for (const s of all) for (const k of Object.keys(out) as (keyof ServerStats)[]) out[k] += s[k] ?? 0;
  return out;
}

/** Kong's `memory.workers_lua_vms` item for this process (heap in use, as Kong's "12.34 MiB"). */
export function processMemory(): { pid: number; http_allocated_gc: string } {
  return { pid: process.pid, http_allocated_gc: `${(process.memoryUsage().heapUsed / 1024 / 1024).toFixed(2)} MiB` };
}
