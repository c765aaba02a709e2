/**
 * Kong's shared field types (kong/db/schema/typedefs.lua) as zod types for bundled plugin schemas.
 * The rules and Kong's messages live in config/fields.ts, which entity schemas use too.
 */
import { z } from 'zod';
import { checkKongHeaderName, checkKongPath } from '../config/fields.ts';

function checked(check: (v: string) => string | null) {
  return z.string().superRefine((v, ctx) => {
    const err = check(v);
    if (err !== null) ctx.addIssue({ code: 'custom', message: err, input: v });
  });
}

/** `typedefs.header_name`. */
export const kongHeaderName = checked(checkKongHeaderName);

/** `typedefs.path`. */
export const kongPath = checked(checkKongPath);
