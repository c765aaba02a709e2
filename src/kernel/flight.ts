/**
 * One request's record on its way through the kernel's phases: what every phase and the proxy
 * need, in one object instead of a list of parameters handed from phase to phase.
 */
import type { ServerResponse } from 'node:http';
import type { ClientUpgrade } from '../proxy/tunnel.ts';
import type { RouteMatch } from '../router/index.ts';
import type { Context } from './context.ts';
import type { ChainEntry, Instance } from './plugins.ts';
import type { Snapshot } from './snapshot.ts';

const noChain: readonly ChainEntry[] = [];

export class Flight {
  readonly ctx: Context;
  readonly res: ServerResponse;
  /** The Snapshot the request started on (it keeps it to the end, whatever reloads happen). */
  readonly snap: Snapshot;
  /** Set for an HTTP/1.1 Upgrade (WebSocket) request: the client socket to tunnel. */
  readonly upgrade: ClientUpgrade | null;
  /** performance.now() at the start (latencies). */
  readonly t0: number;
  /**
   * The plugins collected for this request, in run order: every instance that applies to it
   * (its access handler ran, or a local reply cut the access phase short). The response and log
   * phases run these.
   */
  readonly plugins: Instance[] = [];
  /** The router's answer, once routed. */
  match: RouteMatch | null = null;
  /** The route's plugin chain (the access phase walks it). */
  chain: readonly ChainEntry[] = noChain;

  constructor(ctx: Context, res: ServerResponse, snap: Snapshot, upgrade: ClientUpgrade | null, t0: number) {
    this.ctx = ctx;
    this.res = res;
    this.snap = snap;
    this.upgrade = upgrade;
    this.t0 = t0;
  }
}
