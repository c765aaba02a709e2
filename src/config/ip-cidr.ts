/**
 * Kong's `typedefs.ip_or_cidr`: an IP address or a CIDR range, IPv4 or IPv6, as Kong validates
 * one (an address inet_pton accepts, IPv6 optionally in brackets; a prefix written as a plain
 * decimal 0–32 or 0–128). Shared by route `sources`/`destinations` and the ip-restriction plugin.
 */
import { isIPv4, isIPv6 } from 'node:net';

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

/**
 * A peer address as a family and an address node:net can check; an IPv4-mapped IPv6 address (a
 * dual-stack listener) counts as its IPv4 address. Null when it is not an IP at all.
 */
export function peerAddress(ip: string): { address: string; family: 'ipv4' | 'ipv6' } | null {
  if (isIPv4(ip)) return { address: ip, family: 'ipv4' };
  if (ip.startsWith('::ffff:') && isIPv4(ip.slice(7))) return { address: ip.slice(7), family: 'ipv4' };
  if (isIPv6(ip)) return { address: ip, family: 'ipv6' };
  return null;
}
