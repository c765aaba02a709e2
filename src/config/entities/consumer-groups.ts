/**
 * Consumer groups and their members (Kong Gateway 3.4+, documented in Kong's public docs:
 * /gateway/entities/consumer-group/). A group has a unique `name`; membership rows
 * (`consumer_group_consumers`) tie a consumer to a group and go with either when it is deleted.
 * Kong's membership endpoints (`/consumer_groups/{g}/consumers`, `/consumers/{c}/consumer_groups`)
 * are admin/consumer-groups.ts; plugins scoped to a group are the plugins' `consumer_group`.
 */
import { z } from 'zod';
import type { EntityDescriptor } from '../entity.ts';
import { fkId } from '../entity.ts';
import { normalizeSimple } from '../normalize-kit.ts';
import { foreignRefSchema, tagsSchema, timestampSchema, uuidSchema } from '../schemas.ts';

export const consumerGroupInputSchema = z.strictObject({
  id: uuidSchema.optional(),
  name: z.string().min(1),
  tags: tagsSchema,
  created_at: timestampSchema,
  updated_at: timestampSchema,
});

export const consumer_groups: EntityDescriptor<'consumer_groups'> = {
  name: 'consumer_groups',
  singular: 'consumer_group',
  adminPath: 'consumer_groups',
  endpointKey: 'name',
  uniqueKeys: ['name'],
  compositeKeys: [],
  foreignKeys: [],
  schema: consumerGroupInputSchema,
  naturalKey: { from: 'input', key: (r, path) => (typeof r.name === 'string' ? `name:${r.name}` : `path:${path}`) },
  label: (r) => String(r.name),
  normalize: (input, ctx) => normalizeSimple(consumer_groups, input, ctx),
};

export const consumerGroupMemberInputSchema = z.strictObject({
  id: uuidSchema.optional(),
  consumer_group: foreignRefSchema,
  consumer: foreignRefSchema,
  created_at: timestampSchema,
});

export const consumer_group_consumers: EntityDescriptor<'consumer_group_consumers'> = {
  name: 'consumer_group_consumers',
  singular: 'consumer_group_consumer',
  adminPath: 'consumer_group_consumers',
  endpointKey: null,
  uniqueKeys: [],
  compositeKeys: [
    { name: 'membership', fields: ['consumer_group', 'consumer'], nullable: false, issueField: 'consumer', duplicateMessage: () => 'the consumer is already in this consumer group' },
  ],
  foreignKeys: [
    { field: 'consumer_group', entity: 'consumer_groups', onDelete: 'cascade', nested: false },
    { field: 'consumer', entity: 'consumers', onDelete: 'cascade', nested: false },
  ],
  schema: consumerGroupMemberInputSchema,
  // decK's two nested forms; dumps write `consumers[].groups`, as `deck gateway dump` does.
  nestedRefLists: [
    { under: 'consumer', key: 'groups', names: 'consumer_group', by: ['id', 'name'] },
    { under: 'consumer_group', key: 'consumers', names: 'consumer', by: ['id', 'username', 'custom_id'] },
  ],
  naturalKey: { from: 'entity', key: (r) => `${fkId(r.consumer_group) ?? ''}|${fkId(r.consumer) ?? ''}` },
  label: (r, ref) => `consumer ${ref(r.consumer)} in group ${ref(r.consumer_group)}`,
  normalize: (input, ctx) => normalizeSimple(consumer_group_consumers, input, ctx),
};
