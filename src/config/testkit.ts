/**
 * Stand-in plugins for the config tests (the real plugins live elsewhere and are tested there).
 */
import { z } from 'zod';
import { createRegistry, type PluginRegistry } from '../plugins/registry.ts';
import { definePlugin } from '../plugins/sdk.ts';

export function testRegistry(): PluginRegistry {
  return createRegistry([
    definePlugin({ name: 'tiny', version: '1.0.0', priority: 10, schema: z.strictObject({ a: z.string().default('x'), n: z.int().min(1).default(3) }), create: () => ({}) }),
    definePlugin({ name: 'route-only', version: '1.0.0', priority: 5, scopes: { route: true }, schema: z.strictObject({}), create: () => ({}) }),
    definePlugin({ name: 'no-consumer', version: '1.0.0', priority: 5, scopes: { consumer: false }, schema: z.strictObject({}), create: () => ({}) }),
    // Shaped like the how-to configs of openid-connect, just enough to check they load.
    definePlugin({
      name: 'openid-connect',
      version: '0.0.0-test',
      priority: 1050,
      scopes: { consumer: false },
      schema: z.strictObject({
        issuer: z.url(),
        client_id: z.array(z.string()).optional(),
        client_secret: z.array(z.string()).optional(),
        client_auth: z.array(z.string()).optional(),
        auth_methods: z.array(z.string()).default(['password']),
        bearer_token_param_type: z.array(z.string()).default(['header']),
        consumer_claims: z.array(z.array(z.string())).optional(),
        consumer_by: z.array(z.string()).optional(),
        cache_tokens_salt: z.string().optional(),
      }),
      create: () => ({}),
    }),
  ]);
}
