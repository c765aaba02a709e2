/** Every field path of a zod schema (objects nested through optional/nullable/default/pipe/array/union/record). */
import type { z } from 'zod';

type Def = { type: string; shape?: Record<string, z.ZodType>; innerType?: z.ZodType; in?: z.ZodType; out?: z.ZodType; element?: z.ZodType; options?: z.ZodType[]; valueType?: z.ZodType; getter?: () => z.ZodType };

function defOf(s: z.ZodType): Def {
  return (s as unknown as { _zod: { def: Def } })._zod.def;
}

export function fieldPaths(schema: z.ZodType, prefix = '', seen = new Set<z.ZodType>()): string[] {
  if (seen.has(schema)) return [];
  seen.add(schema);
  const d = defOf(schema);
  switch (d.type) {
    case 'object': {
      const out: string[] = [];
      for (const [k, v] of Object.entries(d.shape ?? {})) {
        const path = prefix ? `${prefix}.${k}` : k;
        out.push(path, ...fieldPaths(v, path, seen));
      }
      return out;
    }
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'catch':
    case 'readonly':
      return fieldPaths(d.innerType!, prefix, seen);
    case 'pipe':
      return [...new Set([...fieldPaths(d.in!, prefix, seen), ...fieldPaths(d.out!, prefix, seen)])];
    case 'array':
      return fieldPaths(d.element!, prefix, seen);
    case 'record':
      return fieldPaths(d.valueType!, prefix, seen);
    case 'union':
      return [...new Set((d.options ?? []).flatMap((o) => fieldPaths(o, prefix, seen)))];
    case 'lazy':
      return fieldPaths(d.getter!(), prefix, seen);
    default:
      return [];
  }
}

/**
 * Whether a test file's text can be the one that exercises a field (`services.name`,
 * `plugins:http-log.config.keepalive`): it names the field and also its owner (the plugin, or the
 * entity, in singular or plural, with `_` or `-` or a space), or the file is named after the owner.
 * A file that merely happens to use the same word for something else does not count.
 */
export function namesField(file: string, text: string, path: string): boolean {
  const name = path.split('.').pop()!;
  if (!new RegExp(`\\b${name.replace(/[#$]/g, '\\$&')}\\b`).test(text)) return false;
  const owner = path.startsWith('plugins:') ? path.slice('plugins:'.length, path.indexOf('.')) : path.slice(0, path.indexOf('.'));
  const stem = owner.replace(/s$/, '');
  const pattern = stem.replace(/[-_]/g, '[-_ ]?');
  const fileStems = [stem.replace(/_/g, '-'), ...(ownerAliases[owner] ?? [])];
  return fileStems.some((f) => file.includes(f)) || new RegExp(pattern, 'i').test(text);
}

/** Short names test files use for an owner (`test/oidc-*.test.ts` are the openid-connect plugin's). */
const ownerAliases: Readonly<Record<string, readonly string[]>> = { 'openid-connect': ['oidc'] };
