/**
 * acl — allow or deny by group, with Kong's semantics (see docs/plugins.md#acl):
 *
 * - groups are the consumer's ACL groups (`acls` entities), or the request's authenticated
 *   groups (set by an auth plugin, e.g. openid-connect `authenticated_groups_claim`) when there is
 *   no consumer, when no credential was set, or when `always_use_authenticated_groups` is on;
 * - `deny`: blocked when any group is listed; `allow`: blocked unless one is;
 * - blocked → 403 `{"message":"You cannot consume this service"}`; nobody identified → 401;
 * - allowed → upstream `X-Consumer-Groups` or `X-Authenticated-Groups` (", "-joined) unless
 *   `hide_groups_header`; with `X-Consumer-Groups`, the request's authenticated groups (if any)
 *   still go as `X-Authenticated-Groups`, as the authenticating plugin wrote them.
 *
 * Client-sent copies of both group headers are always removed: the upstream must be able to trust
 * that these headers come from the gateway.
 */
import { z } from 'zod';
import { definePlugin, PLUGIN_ENTITY_CHECK, HTTP_PROTOCOLS } from '../../sdk.ts';
import type { RequestContext, Reply } from '../../sdk.ts';
import { utf8HeaderValue } from '../../header-value.ts';

export const aclSchema = z
  .strictObject({
    allow: z.array(z.string()).nullable().default(null),
    deny: z.array(z.string()).nullable().default(null),
    hide_groups_header: z.boolean().default(false),
    always_use_authenticated_groups: z.boolean().default(false),
    /** Kong: the request's consumer-group names count as groups too (allow, deny, header). */
    include_consumer_groups: z.boolean().default(false),
  })
  .superRefine((conf, issues) => {
    // Kong's plugin-level entity checks, in its order and words: only_one_of, then at_least_one_of
    // (an empty list counts as not set). Neither set fails both.
    const allowSet = (conf.allow?.length ?? 0) > 0;
    const denySet = (conf.deny?.length ?? 0) > 0;
    if (allowSet === denySet) {
      issues.addIssue({ code: 'custom', path: [PLUGIN_ENTITY_CHECK], message: "exactly one of these fields must be non-empty: 'config.allow', 'config.deny'" });
    }
    if (!allowSet && !denySet) {
      issues.addIssue({ code: 'custom', path: [PLUGIN_ENTITY_CHECK], message: "at least one of these fields must be non-empty: 'config.allow', 'config.deny'" });
    }
  });

export type AclConfig = z.infer<typeof aclSchema>;

export const CONSUMER_GROUPS_HEADER = 'X-Consumer-Groups';
export const AUTHENTICATED_GROUPS_HEADER = 'X-Authenticated-Groups';
const BLOCKED_MESSAGE = 'You cannot consume this service';

/** ACL groups plus the request's consumer-group names, sorted, deduplicated. */
function withConsumerGroups(groups: readonly string[], ctx: RequestContext): readonly string[] {
  const cgs = ctx.consumerGroups;
  if (cgs.length === 0) return groups;
  return [...new Set([...groups, ...cgs.map((g) => g.name)])].sort();
}

export default definePlugin<AclConfig>({
  name: 'acl',
  version: '0.1.0',
  priority: 950,
  // Kong's schema: protocols_http.
  protocols: HTTP_PROTOCOLS,
  schema: aclSchema,
  // Kong: `no_consumer` — the consumer is what the ACL checks, it cannot also scope it.
  scopes: { consumer: false },
  // Kong: kong/plugins/acl/schema.lua (enforced by aclSchema above).
  kongEntityChecks: [
    { only_one_of: ['config.allow', 'config.deny'] },
    { at_least_one_of: ['config.allow', 'config.deny'] },
  ],
  create(config) {
    const mode = (config.deny?.length ?? 0) > 0 ? ('deny' as const) : ('allow' as const);
    const listed = new Set(mode === 'deny' ? config.deny : config.allow);

    const blocked = (groups: readonly string[]): boolean => {
      const inGroup = groups.some((g) => listed.has(g));
      return mode === 'deny' ? inGroup : !inGroup;
    };
    const forbidden = (ctx: RequestContext): Reply => ctx.reply(403, { message: BLOCKED_MESSAGE });
    const unauthorized = (ctx: RequestContext): Reply => ctx.reply(401, { message: 'Unauthorized' });
    const authGroups = (ctx: RequestContext): readonly string[] | null => {
      const g = ctx.authenticatedGroups;
      return g && g.length > 0 ? g : null;
    };

    return {
      access(ctx) {
        ctx.upstream.removeHeader(CONSUMER_GROUPS_HEADER);
        ctx.upstream.removeHeader(AUTHENTICATED_GROUPS_HEADER);

        const consumerId = ctx.consumer?.id ?? ctx.credential?.consumer?.id ?? null;
        let groups: readonly string[];
        let header: string;

        if (consumerId === null) {
          const authenticated = authGroups(ctx);
          // Someone authenticated (e.g. a virtual credential) but without groups: forbidden;
          // nobody authenticated at all: unauthorized.
          if (authenticated === null) return ctx.credential ? forbidden(ctx) : unauthorized(ctx);
          groups = authenticated;
          header = AUTHENTICATED_GROUPS_HEADER;
        } else {
          // Authenticated groups win over the consumer's own when no credential was set (an
          // anonymous consumer) or when configured to always prefer them.
          const authenticated = !ctx.credential || config.always_use_authenticated_groups ? authGroups(ctx) : null;
          if (authenticated !== null) {
            groups = authenticated;
            header = AUTHENTICATED_GROUPS_HEADER;
          } else {
            groups = ctx.entities.aclGroups(consumerId);
            if (config.include_consumer_groups) groups = withConsumerGroups(groups, ctx);
            header = CONSUMER_GROUPS_HEADER;
            // A consumer without any group passes a deny list but cannot be in an allow list.
            if (groups.length === 0 && mode === 'allow') return ctx.credential ? forbidden(ctx) : unauthorized(ctx);
          }
        }

        if (blocked(groups)) return forbidden(ctx);
        if (config.hide_groups_header) return;
        if (groups.length > 0) ctx.upstream.setHeader(header, utf8HeaderValue(groups.join(', ')));
        // Decided on the consumer's groups: the authenticated groups still reach the upstream as
        // the authenticating plugin sent them (Kong's acl leaves that header alone), rebuilt from
        // the request's groups so a client-sent copy never passes.
        const authenticated = header === CONSUMER_GROUPS_HEADER ? authGroups(ctx) : null;
        if (authenticated !== null) ctx.upstream.setHeader(AUTHENTICATED_GROUPS_HEADER, utf8HeaderValue(authenticated.join(', ')));
      },
    };
  },
});
