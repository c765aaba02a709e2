/**
 * `consumer_groups_claim` / `consumer_groups_optional` (Kong 3.12+): the claim's values (a list,
 * or a space-separated string) are matched to consumer-group names; the matched groups become
 * the request's consumer groups (consumer-group-scoped plugins, acl `include_consumer_groups`,
 * X-Consumer-Groups). No group matched → 403 (`insufficient_scope`, as for an unmatched
 * consumer), unless `consumer_groups_optional`. Self-contained so the access flow only has to
 * hand its result to `ctx.authenticate({ consumerGroups })`.
 */
import type { ConsumerGroup } from '../../../config/credentials.ts';
import type { EntityLookup } from '../../sdk.ts';
import { authError } from './errors.ts';

export interface ConsumerGroupSettings {
  readonly consumer_groups_claim: readonly string[] | null;
  readonly consumer_groups_optional: boolean;
}

/**
 * The consumer groups named by the claim's values (`names`, read from the first source that has
 * the claim), sorted by name; null when the feature is off, or nothing matched and that is
 * allowed. Throws a 403 auth error when nothing matched and it is not optional.
 */
export function mapConsumerGroups(cfg: ConsumerGroupSettings, names: readonly string[], entities: EntityLookup): ConsumerGroup[] | null {
  if (cfg.consumer_groups_claim === null || cfg.consumer_groups_claim.length === 0) return null;
  const found = new Map<string, ConsumerGroup>();
  for (const name of names) {
    const g = entities.consumerGroupByName(name);
    if (g !== null) found.set(g.id, g);
  }
  if (found.size === 0) {
    if (cfg.consumer_groups_optional) return null;
    throw authError('insufficient_scope', 'no consumer group matches the token');
  }
  return [...found.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
