/**
 * `trusted_ips`: which peers may tell us the real client address, scheme and host through
 * X-Forwarded-* / X-Real-IP (Kong's `trusted_ips` + `real_ip_header`). Untrusted peers' values
 * are overwritten.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';

export interface TrustedIps {
  has(ip: string): boolean;
  /** The client address when the peer is trusted: X-Real-IP, else the right-most untrusted X-Forwarded-For entry. */
  clientIp(remote: string, headers: IncomingHttpHeaders): string;
}

function normalize(ip: string): string {
  return ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

/** Parses a comma-separated list of addresses and CIDRs (`0.0.0.0/0,::/0` trusts everyone). */
export function parseTrustedIps(spec: string | undefined): TrustedIps {
  const list = new BlockList();
  let any = false;
  for (const raw of (spec ?? '').split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const [addr, bits] = item.split('/');
    const type = isIPv6(addr) ? 'ipv6' : isIPv4(addr) ? 'ipv4' : null;
    if (type === null) throw new Error(`trusted_ips: '${item}' is not an IP address or CIDR`);
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
    any = true;
  }
  const has = (ip: string): boolean => {
    if (!any || ip === '') return false;
    const n = normalize(ip);
    return list.check(n, isIPv6(n) ? 'ipv6' : 'ipv4');
  };
  return {
    has,
    clientIp(remote, headers) {
      const real = headers['x-real-ip'];
      if (typeof real === 'string' && (isIPv4(real.trim()) || isIPv6(real.trim()))) return real.trim();
      const xff = headers['x-forwarded-for'];
      if (xff !== undefined) {
        const parts = (Array.isArray(xff) ? xff.join(',') : xff).split(',').map((p) => p.trim()).filter(Boolean);
        for (let i = parts.length - 1; i >= 0; i--) {
          if (!has(parts[i])) return parts[i];
        }
        if (parts.length > 0) return parts[0];
      }
      return normalize(remote);
    },
  };
}
