/**
 * What this node knows of a target's health, in Kong's terms: read by the Admin API
 * (`GET /upstreams/{u}/health`) and by the prometheus exposition (`kong_upstream_target_health`),
 * so both always agree.
 */
import type { Target, Upstream } from '../config/upstreams.ts';
import { addressKey } from './address.ts';
import type { TargetState, Balancers } from './balancer.ts';
import type { HealthStates } from './health-states.ts';
import { checksEnabled } from './health-checker.ts';

export interface AddressHealth {
  ip: string;
  port: number;
  weight: number;
  health: 'HEALTHY' | 'UNHEALTHY';
}

/** The addresses a target resolved to, each healthy or not by this node's health checks. */
export function addressHealth(states: HealthStates | undefined, u: Upstream, t: Target, state: TargetState | undefined): AddressHealth[] {
  return (state?.resolution.addresses ?? []).map((r) => {
    const port = r.port ?? state!.port;
    const healthy = states?.isHealthy(u.name, `${t.target}|${addressKey(r.ip, port)}`) ?? true;
    return { ip: r.ip, port, weight: r.weight ?? t.weight, health: healthy ? 'HEALTHY' : 'UNHEALTHY' };
  });
}

/** One `kong_upstream_target_health` subject: its labels and the state it is in. */
export interface TargetHealthSeries {
  upstream: string;
  target: string;
  address: string;
  state: 'healthchecks_off' | 'healthy' | 'unhealthy' | 'dns_error';
}

/**
 * Every address of every upstream's targets as Kong's prometheus exporter reports it: the
 * address's state (`healthchecks_off` when the upstream has no checks), or, for a target that
 * resolved to no address, `dns_error` with an empty address.
 */
export function targetHealthSeries(balancers: Balancers, states: HealthStates): TargetHealthSeries[] {
  const out: TargetHealthSeries[] = [];
  for (const b of balancers.all()) {
    const u = b.upstream;
    const checks = checksEnabled(u);
    for (const ts of b.targets) {
      const addresses = addressHealth(states, u, ts.target, ts);
      if (addresses.length === 0) {
        out.push({ upstream: u.name, target: ts.target.target, address: '', state: 'dns_error' });
        continue;
      }
      for (const a of addresses) {
        out.push({ upstream: u.name, target: ts.target.target, address: addressKey(a.ip, a.port), state: checks ? (a.health === 'HEALTHY' ? 'healthy' : 'unhealthy') : 'healthchecks_off' });
      }
    }
  }
  return out;
}
