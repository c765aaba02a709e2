/**
 * What the plugin microbenchmarks (oidc-micro.ts, otel-micro.ts) share: a fresh kernel request
 * context per iteration, as the gateway makes one per request, and the cost of making it alone
 * (measured in the same run and subtracted from each plugin's).
 */
import type { IncomingMessage } from 'node:http';
import { pino } from 'pino';
import { Context, Incoming, Upstream } from '../src/kernel/context.ts';
import { upstreamHeadersFrom } from '../src/proxy/headers.ts';
import type { EntityLookup } from '../src/plugins/sdk.ts';

const log = pino({ level: 'silent' });

/** A GET /svc0/items request (upstream path /items) with `headers`, as the kernel builds it. */
export function makeContext(headers: Record<string, string>, entities: EntityLookup): Context {
  const hs = { host: 'gateway.test', 'user-agent': 'wrk', ...headers };
  const raw = { method: 'GET', headers: hs } as unknown as IncomingMessage;
  const request = new Incoming(raw, { scheme: 'http', host: 'gateway.test', port: 8000, path: '/svc0/items', rawQuery: '', clientIp: '127.0.0.1', trusted: false }, { maxBodySize: 0, bufferCap: 1 << 20, bodyTimeout: 60_000 });
  const upstream = new Upstream(upstreamHeadersFrom(hs), '/items', '', 'GET');
  return new Context({ id: 'req', startedAt: Date.now(), request, upstream, entities, log, now: Date.now });
}

/** Nanoseconds per context made (and read, so it is not optimised away), over `iterations`. */
export function contextAloneNs(iterations: number, headers: Record<string, string>, entities: EntityLookup): number {
  let sink = 0;
  const t = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) sink += makeContext(headers, entities).upstream.path.length;
  const ns = Number(process.hrtime.bigint() - t) / iterations;
  if (sink === 0) throw new Error('unreachable: every context has a path');
  return ns;
}
