/**
 * A tiny authentication plugin for end-to-end tests of consumer-aware plugins (acl,
 * rate-limiting): `X-Test-Consumer: <username>` authenticates as that consumer with a credential
 * `cred-<username>`; `X-Test-Groups: a,b` sets authenticated groups (with or without a consumer).
 * An unknown username is refused with 401. Runs at 1000 (between cors and acl), like Kong's
 * authentication plugins.
 */
import { z } from 'zod';
import { definePlugin } from '../../src/plugins/sdk.ts';

export const testAuthPlugin = definePlugin({
  name: 'test-header-auth',
  version: '0.0.0',
  priority: 1000,
  schema: z.strictObject({}),
  create() {
    return {
      access(ctx) {
        const username = ctx.request.header('x-test-consumer');
        const groupsHeader = ctx.request.header('x-test-groups');
        const groups = groupsHeader ? groupsHeader.split(',').map((g) => g.trim()).filter(Boolean) : null;
        if (username) {
          const consumer = ctx.entities.consumerByUsername(username);
          if (!consumer) return ctx.reply(401, { message: 'Unauthorized' });
          ctx.authenticate({ consumer, credential: { id: `cred-${username}`, consumer: { id: consumer.id } }, groups });
        } else if (groups) {
          ctx.authenticate({ consumer: null, credential: null, groups });
        }
      },
    };
  },
});
