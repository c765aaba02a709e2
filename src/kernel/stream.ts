/**
 * The stream proxy's view of a Snapshot (stream/proxy.ts StreamConfig): its stream router, the
 * balancers and upstream TLS material of its services, and the `preread` and `streamLog`
 * handlers of a stream route's plugin chain (no consumer on a stream connection: route, service
 * and global instances; only instances whose `protocols` contain the connection's). Built once
 * per Snapshot.
 */
import type { Service } from '../config/types.ts';
import type { BalancedService } from '../proxy/balanced.ts';
import type { StreamContext, StreamLogContext, StreamRefusal } from '../plugins/sdk.ts';
import type { StreamConfig } from '../stream/proxy.ts';
import type { StreamMatch } from '../stream/router.ts';
import { upstreamTlsResolver } from '../tls/index.ts';
import { resolveEntry } from './plugins.ts';
import type { Snapshot } from './snapshot.ts';

const built = new WeakMap<Snapshot, StreamConfig>();

export function streamConfigOf(snap: Snapshot): StreamConfig {
  let c = built.get(snap);
  if (c === undefined) built.set(snap, (c = build(snap)));
  return c;
}

function build(snap: Snapshot): StreamConfig {
  const tlsOf = upstreamTlsResolver(snap.data);
  return {
    router: snap.stream,
    balanced: (s: Service): BalancedService | null => snap.balanced.get(s.id) ?? null,
    upstreamTls: (s, balanced) => tlsOf(s, balanced?.balancer.upstream ?? null),
    preread: (match, ctx) => preread(snap, match, ctx),
    sessionLog: (match, ctx) => sessionLog(snap, match, ctx),
  };
}

function preread(snap: Snapshot, match: StreamMatch, ctx: StreamContext): StreamRefusal | null {
  for (const entry of snap.chains.forRoute(match.route)) {
    const inst = resolveEntry(entry, null);
    if (inst === null || inst.handlers.preread === undefined || !inst.entity.protocols.includes(ctx.protocol)) continue;
    try {
      const r = inst.handlers.preread(ctx);
      if (r !== undefined) return r;
    } catch (err) {
      // A failing check must not let the connection through.
      ctx.log.error({ plugin: inst.entity.name, err: { message: (err as Error).message } }, 'plugin failed in the preread phase; connection closed');
      return { status: 500, message: 'plugin failed' };
    }
  }
  return null;
}

/** The stream log phase: every `streamLog` handler of the route's chain whose protocols have the session's. */
function sessionLog(snap: Snapshot, match: StreamMatch, ctx: StreamLogContext): void {
  for (const entry of snap.chains.forRoute(match.route)) {
    const inst = resolveEntry(entry, null);
    if (inst === null || inst.handlers.streamLog === undefined || !inst.entity.protocols.includes(ctx.protocol)) continue;
    try {
      inst.handlers.streamLog(ctx);
    } catch (err) {
      ctx.log.error({ plugin: inst.entity.name, err: { message: (err as Error).message } }, 'plugin failed in the stream log phase');
    }
  }
}
