/** ACL groups of a consumer (Kong: the acl plugin's `acls` DAO). */
import type { EntityDescriptor } from '../entity.ts';
import { fkId } from '../entity.ts';
import { naturalKey } from '../ids.ts';
import { normalizeSimple } from '../normalize-kit.ts';
import { aclInputSchema } from '../schemas.ts';

export const acls: EntityDescriptor<'acls'> = {
  name: 'acls',
  singular: 'acl',
  adminPath: 'acls',
  // Groups are unique per consumer only: `/consumers/{c}/acls/{group}`.
  endpointKey: 'group',
  uniqueKeys: [],
  compositeKeys: [
    { name: 'consumer_group', fields: ['consumer', 'group'], nullable: false, issueField: 'group', duplicateMessage: (r) => `duplicate group '${String(r.group)}' for this consumer` },
  ],
  foreignKeys: [{ field: 'consumer', entity: 'consumers', onDelete: 'cascade', nested: true }],
  columnNames: { group: 'grp' },
  schema: aclInputSchema,
  naturalKey: { from: 'entity', key: (r) => naturalKey.acl(fkId(r.consumer) ?? '', String(r.group)) },
  dumpNestedUnder: 'consumer',
  label: (r, ref) => `${String(r.group)} for consumer ${ref(r.consumer)}`,
  normalize: (input, ctx) => normalizeSimple(acls, input, ctx),
};
