/**
 * ip-restriction — lets a request through or refuses it by the client's address, as Kong's
 * plugin does (see docs/plugins.md#ip-restriction):
 *
 * - the address is `ctx.request.clientIp`, i.e. after `trusted_ips` / real-IP processing (Kong's
 *   `ngx.var.remote_addr` after the realip module);
 * - `deny` is looked at first: an address it lists is refused even when `allow` lists it too;
 * - then, when `allow` has entries, an address it does not list is refused;
 * - refused → `status` (403) with `{"message": message}`, the message defaulting to
 *   `IP address not allowed: <ip>`;
 * - on stream routes (tcp, tls: the `preread` handler) the same check closes the connection,
 *   as Kong's plugin does with `ngx.exit(status)` in the stream subsystem.
 *
 * Entries are IPs or CIDR ranges, IPv4 or IPv6, validated as Kong's `typedefs.ip_or_cidr` does
 * (an address inet_pton accepts, IPv6 optionally in brackets; a prefix written as a plain decimal
 * 0–32 or 0–128). Matching is node:net's BlockList, one per address family, so an IPv4 client is
 * compared with IPv4 entries only and an IPv6 client with IPv6 entries only, like Kong's
 * resty.ipmatcher.
 */
import { IpMatcher, parseIpOrCidr, peerAddress, type PeerAddress } from '../../../config/ip-cidr.ts';
import { z } from 'zod';
import { between, definePlugin, HTTP_PROTOCOLS, PLUGIN_ENTITY_CHECK, STREAM_PLUGIN_PROTOCOLS } from '../../sdk.ts';
import type { Logger, StreamRefusal } from '../../sdk.ts';

/** Kong's `typedefs.ip_or_cidr` (shared with route sources/destinations: config/ip-cidr.ts). */
export { parseIpOrCidr };

const ipOrCidr = z.string().refine((s) => parseIpOrCidr(s) !== null, { error: (iss) => `invalid ip or cidr range: '${String(iss.input)}'` });

// Kong's strings are at least one character long unless a schema says otherwise.
const nonEmpty = z.string().min(1, { message: 'length must be at least 1' });

export const ipRestrictionSchema = z
  .strictObject({
    allow: z.array(ipOrCidr).nullable().default(null),
    deny: z.array(ipOrCidr).nullable().default(null),
    // Kong's schema takes any number here, but kong.response.error fails at request time outside
    // 400–599: refused when the config is written instead.
    status: between(z.int(), 400, 599).nullable().default(null),
    message: nonEmpty.nullable().default(null),
  })
  .superRefine((conf, issues) => {
    // Kong's plugin-level entity check (an empty list counts as not set).
    if ((conf.allow?.length ?? 0) === 0 && (conf.deny?.length ?? 0) === 0) {
      issues.addIssue({ code: 'custom', path: [PLUGIN_ENTITY_CHECK], message: "at least one of these fields must be non-empty: 'config.allow', 'config.deny'" });
    }
  });

export type IpRestrictionConfig = z.infer<typeof ipRestrictionSchema>;

/** A list's matcher; null when the list is unset or empty (it then decides nothing). */
function matcherOf(entries: readonly string[] | null): IpMatcher | null {
  return entries === null || entries.length === 0 ? null : new IpMatcher(entries);
}

/** Kong's answer to a client without an IP address (a unix-socket client), whatever `status` says. */
const NO_ADDRESS = 'Cannot identify the client IP address, unix domain sockets are not supported.';

export default definePlugin<IpRestrictionConfig>({
  name: 'ip-restriction',
  version: '0.1.0',
  priority: 990,
  // Kong's default protocols: the HTTP ones plus tcp and tls (stream connections: `preread`).
  protocols: [...HTTP_PROTOCOLS, ...STREAM_PLUGIN_PROTOCOLS],
  // Kong's schema default: an instance created without `protocols` also guards stream connections.
  defaultProtocols: ['grpc', 'grpcs', 'http', 'https', 'tcp', 'tls'],
  schema: ipRestrictionSchema,
  // Kong: scoped to anything, consumer groups included.
  scopes: { consumer_group: true },
  // Kong: kong/plugins/ip-restriction/schema.lua (enforced by ipRestrictionSchema above).
  kongEntityChecks: [{ at_least_one_of: ['config.allow', 'config.deny'] }],
  create(config) {
    const deny = matcherOf(config.deny);
    const allow = matcherOf(config.allow);
    const status = config.status ?? 403;
    const blocked = (a: PeerAddress): boolean => (deny !== null && deny.has(a)) || (allow !== null && !allow.has(a));

    /** The refusal for a client address (logged), or undefined to let it through. */
    const verdict = (ip: string, log: Logger): StreamRefusal | undefined => {
      const a = peerAddress(ip);
      const refusal = a === null ? { status: 403, message: NO_ADDRESS }
        : blocked(a) ? { status, message: config.message ?? `IP address not allowed: ${ip}` } : undefined;
      if (refusal !== undefined) log.warn({ plugin: 'ip-restriction', client_ip: ip }, refusal.message);
      return refusal;
    };

    return {
      access(ctx) {
        const r = verdict(ctx.request.clientIp, ctx.log);
        if (r !== undefined) return ctx.reply(r.status, { message: r.message });
      },
      // Kong's stream branch: the same check, and a refusal closes the connection (ngx.exit).
      preread: (ctx) => verdict(ctx.clientIp, ctx.log),
    };
  },
});
