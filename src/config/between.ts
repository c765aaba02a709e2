/**
 * Kong's `between = { min, max }` on a number field, with Kong's message on either side
 * ("value should be between 1 and 65535", kong/db/schema/init.lua): zod reports only the bound
 * that failed, so the message is set here. Shared by the entity schemas and, through
 * plugins/sdk.ts, the bundled plugins' config schemas.
 */
import type { z } from 'zod';

export function between<T extends z.ZodNumber>(n: T, min: number, max: number): T {
  const error = `value should be between ${min} and ${max}`;
  return n.min(min, { error }).max(max, { error }) as T;
}
