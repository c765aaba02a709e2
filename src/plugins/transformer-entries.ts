/**
 * The config entries Kong's request-transformer and response-transformer share
 * (kong/plugins/*-transformer/schema.lua): `name:value` / `old:new` strings, split and checked the
 * same way, with Kong's messages.
 */
import { isKongHeaderName } from '../config/fields.ts';

/** Kong's split of a config entry: the name up to the first colon, the colons, the rest. */
export function splitEntry(entry: string): { name: string; value: string } | null {
  const m = /^([^:]+):*([\s\S]*)$/.exec(entry);
  return m === null ? null : { name: m[1], value: m[2] };
}

/** Kong's `match = "^[^:]+:.*$"`: the message for an entry without its colon, or null. */
export function colonEntryProblem(entry: string): string | null {
  return /^[^:]+:[\s\S]*$/.test(entry) ? null : `invalid value: ${entry}`;
}

/**
 * Kong's validate_headers / validate_colon_headers: the name before the colon (and, for a rename,
 * the new name after it) is a header name. The message for the first that is not, or null.
 */
export function headerEntryProblem(entry: string, both: boolean): string | null {
  const parts = splitEntry(entry);
  const names = parts === null ? [undefined] : both ? [parts.name, parts.value] : [parts.name];
  for (const n of names) if (n === undefined || !isKongHeaderName(n)) return `'${n ?? 'nil'}' is not a valid header`;
  return null;
}
