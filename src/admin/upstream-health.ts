/**
 * Kong's balancer health endpoints (kong/api/routes/upstreams.lua):
 *
 * - `GET /upstreams/{u}/health` — every target with `health` (HEALTHY, UNHEALTHY, DNS_ERROR,
 *   HEALTHCHECKS_OFF) and its addresses; `?balancer_health=1` — the balancer as a whole;
 * - `PUT|POST /upstreams/{u}/targets/{t}/healthy|unhealthy` and
 *   `/upstreams/{u}/targets/{t}/{address}/healthy|unhealthy` — manual override, 204; 400
 *   `no healthchecker found for <name>` when the upstream has no checks.
 *
 * The states are this node's (health is per node, as in Kong).
 */
import type { FastifyInstance } from 'fastify';
import { isIP } from 'node:net';
import type { LocalBalancing } from '../balancer/balancing.ts';
import { checksEnabled } from '../balancer/health-checker.ts';
import { addressKey } from '../balancer/address.ts';
import { addressHealth } from '../balancer/target-health.ts';
import type { Target, Upstream } from '../config/upstreams.ts';
import { AdminError, notFound } from './errors.ts';

export interface HealthRouteDeps {
  balancing: LocalBalancing | undefined;
  nodeId: () => string;
  findUpstream(idOrName: string): Promise<Upstream | null>;
  findTarget(upstream: Upstream, idOrTarget: string): Promise<Target | null>;
  /** The upstream's targets (newest row per address). */
  targetsOf(upstream: Upstream): Promise<Target[]>;
}

type TargetHealth = 'HEALTHY' | 'UNHEALTHY' | 'DNS_ERROR' | 'HEALTHCHECKS_OFF';

function targetHealth(deps: HealthRouteDeps, u: Upstream, t: Target) {
  const b = deps.balancing?.balancers.get(u.name);
  const state = b?.targets.find((x) => x.target.id === t.id || x.target.target === t.target);
  const checks = checksEnabled(u);
  const states = deps.balancing?.states;
  const addresses = addressHealth(states, u, t, state);
  let health: TargetHealth;
  if (state !== undefined && state.resolution.error !== null && addresses.length === 0) health = 'DNS_ERROR';
  else if (!checks) health = 'HEALTHCHECKS_OFF';
  else health = addresses.some((a) => a.health === 'HEALTHY') && t.weight > 0 ? 'HEALTHY' : 'UNHEALTHY';
  let total = 0, available = 0;
  for (const a of addresses) {
    total += a.weight;
    if (a.health === 'HEALTHY') available += a.weight;
  }
  const host = state?.host ?? t.target.replace(/:\d+$/, '');
  return {
    health,
    data: {
      host,
      port: state?.port ?? Number(/:(\d+)$/.exec(t.target)?.[1] ?? 8000),
      dns: isIP(host.replace(/^\[|\]$/g, '')) !== 0 ? 'A' : host.startsWith('_') ? 'SRV' : state?.resolution.error ? 'DNS_ERROR' : 'A',
      nodeWeight: total,
      weight: { total, available, unavailable: total - available },
      addresses,
    },
  };
}

export function registerUpstreamHealthRoutes(app: FastifyInstance, deps: HealthRouteDeps): void {
  const upstreamOr404 = async (id: string): Promise<Upstream> => {
    const u = await deps.findUpstream(id);
    if (u === null) throw notFound();
    return u;
  };

  app.get('/upstreams/:upstream/targets/all', async (req) => {
    const u = await upstreamOr404((req.params as { upstream: string }).upstream);
    return { data: await deps.targetsOf(u), next: null };
  });

  app.get('/upstreams/:upstream/health', async (req) => {
    const { upstream } = req.params as { upstream: string };
    const query = req.query as Record<string, string | undefined>;
    const u = await upstreamOr404(upstream);
    const targets = await deps.targetsOf(u);
    if (query.balancer_health !== undefined && query.balancer_health !== '0' && query.balancer_health !== 'false') {
      const b = deps.balancing?.balancers.get(u.name);
      const checks = checksEnabled(u);
      const healthy = b?.healthy ?? false;
      const weights = b?.weights ?? { total: 0, available: 0, unavailable: 0 };
      return {
        data: {
          id: u.id,
          health: checks ? (healthy ? 'HEALTHY' : 'UNHEALTHY') : 'HEALTHCHECKS_OFF',
          balancer_health: healthy ? 'HEALTHY' : 'UNHEALTHY',
          details: {
            healthy,
            weight: weights,
            hosts: targets.map((t) => {
              const h = targetHealth(deps, u, t);
              return { host: h.data.host, port: h.data.port, dns: h.data.dns, nodeWeight: h.data.nodeWeight, weight: h.data.weight, addresses: h.data.addresses };
            }),
          },
        },
        next: null,
        node_id: deps.nodeId(),
      };
    }
    return {
      data: targets.map((t) => ({ ...t, ...targetHealth(deps, u, t) })),
      offset: null,
      next: null,
      node_id: deps.nodeId(),
    };
  });

  const manual = (healthy: boolean, withAddress: boolean) => async (req: { params: unknown }, reply: { code(n: number): { send(): unknown } }) => {
    const p = req.params as { upstream: string; target: string; address?: string };
    const u = await upstreamOr404(p.upstream);
    const t = await deps.findTarget(u, p.target);
    if (t === null) throw notFound();
    let address: string | null = null;
    if (withAddress) {
      // `ip[:port]` (default port 8000), as Kong.
      const m = /^(\[[^\]]+\]|[^:]+|[0-9a-fA-F:]+)(?::(\d+))?$/.exec(p.address ?? '');
      if (m === null) throw notFound();
      const ip = m[1].replace(/^\[|\]$/g, '');
      if (isIP(ip) === 0) throw notFound();
      address = addressKey(ip, m[2] === undefined ? 8000 : Number(m[2]));
    }
    if (deps.balancing === undefined || !deps.balancing.checker.setManual(u.name, t.target, address, healthy)) {
      throw new AdminError(400, { message: `no healthchecker found for ${u.name}` });
    }
    return reply.code(204).send();
  };
  for (const [suffix, healthy] of [['healthy', true], ['unhealthy', false]] as const) {
    for (const method of ['PUT', 'POST'] as const) {
      app.route({ method, url: `/upstreams/:upstream/targets/:target/${suffix}`, handler: manual(healthy, false) });
      app.route({ method, url: `/upstreams/:upstream/targets/:target/:address/${suffix}`, handler: manual(healthy, true) });
    }
  }
}
