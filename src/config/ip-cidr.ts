/**
 * Kong's `typedefs.ip_or_cidr`: an IP address or a CIDR range, IPv4 or IPv6, as Kong validates
 * one (an address inet_pton accepts, IPv6 optionally in brackets; a prefix written as a plain
 * decimal 0–32 or 0–128), and the matcher built from such entries. Shared by route
 * `sources`/`destinations` (the stream router) and the ip-restriction plugin.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** An entry split into its address (brackets removed) and prefix length (null for a single address). */
export interface ParsedIpOrCidr {
  readonly address: string;
  readonly family: 'ipv4' | 'ipv6';
  readonly prefix: number | null;
}

/** Kong's prefix tables: exactly the decimal strings "0".."32" / "0".."128". */
const prefixPattern = /^(?:0|[1-9][0-9]{0,2})$/;

function parseAddress(text: string): { address: string; family: 'ipv4' | 'ipv6' } | null {
  if (isIPv4(text)) return { address: text, family: 'ipv4' };
  // resty.ipmatcher strips the brackets of an IPv6 literal before inet_pton.
  const bare = text.length > 2 && text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  // node:net accepts a zone id (`fe80::1%eth0`); inet_pton, and so Kong, does not.
  if (!bare.includes('%') && isIPv6(bare)) return { address: bare, family: 'ipv6' };
  return null;
}

/** An IP or a CIDR range as Kong's `typedefs.ip_or_cidr` accepts it, else null. */
export function parseIpOrCidr(entry: string): ParsedIpOrCidr | null {
  const slash = entry.indexOf('/');
  if (slash < 0) {
    const a = parseAddress(entry);
    return a === null ? null : { ...a, prefix: null };
  }
  const a = parseAddress(entry.slice(0, slash));
  const bits = entry.slice(slash + 1);
  if (a === null || !prefixPattern.test(bits)) return null;
  const prefix = Number(bits);
  if (prefix > (a.family === 'ipv4' ? 32 : 128)) return null;
  return { ...a, prefix };
}

/** Kong's message for a value that is not an IP or CIDR range. */
export function checkIpOrCidr(v: string): string | null {
  return parseIpOrCidr(v) === null ? `invalid ip or cidr range: '${v}'` : null;
}

/** An address as node:net checks one. */
export interface PeerAddress {
  readonly address: string;
  readonly family: 'ipv4' | 'ipv6';
}

/**
 * IP and CIDR entries to check peer addresses against: node:net's BlockList, one per family, so
 * an IPv4 peer is compared with the IPv4 entries only (as resty.ipmatcher). Entries are validated
 * with the config (`checkIpOrCidr`); one that is not an IP or CIDR is skipped here.
 */
export class IpMatcher {
  readonly #v4 = new BlockList();
  readonly #v6 = new BlockList();

  constructor(entries: readonly string[]) {
    for (const e of entries) {
      const p = parseIpOrCidr(e);
      if (p === null) continue;
      const list = p.family === 'ipv4' ? this.#v4 : this.#v6;
      if (p.prefix === null) list.addAddress(p.address, p.family);
      else list.addSubnet(p.address, p.prefix, p.family);
    }
  }

  has(a: PeerAddress): boolean {
    return a.family === 'ipv4' ? this.#v4.check(a.address, 'ipv4') : this.#v6.check(a.address, 'ipv6');
  }
}

/**
 * A peer address as a family and an address node:net can check; an IPv4-mapped IPv6 address (a
 * dual-stack listener) counts as its IPv4 address. Null when it is not an IP at all.
 */
export function peerAddress(ip: string): PeerAddress | null {
  if (isIPv4(ip)) return { address: ip, family: 'ipv4' };
  if (ip.startsWith('::ffff:') && isIPv4(ip.slice(7))) return { address: ip.slice(7), family: 'ipv4' };
  if (isIPv6(ip)) return { address: ip, family: 'ipv6' };
  return null;
}
