/**
 * The set of plugins this build knows, by name, and validation of a plugin entity's `config`
 * against its plugin's schema (defaults filled in, unknown fields rejected).
 */
import type { ValidationIssue } from '../errors.ts';
import type { NodeFacts, PluginDefinition } from './sdk.ts';

export interface PluginRegistry {
  get(name: string): PluginDefinition | undefined;
  /** Names of every available plugin, sorted. */
  names(): string[];
  /**
   * Validate a plugin config. `config` may be undefined (all defaults). Issue paths are relative
   * to the config object (e.g. `issuer`, `client_id[0]`, `redis.host`); callers prefix them.
   */
  validateConfig(name: string, config: unknown): { ok: true; value: Record<string, unknown> } | { ok: false; issues: ValidationIssue[] };
  /** The node the configs will run on, for the plugins' `check` hooks. */
  readonly node: NodeFacts;
}

/** Render a zod issue path the way our error messages show paths: `a.b[0].c`. */
export function formatPath(path: readonly PropertyKey[], prefix = ''): string {
  let out = prefix;
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

/**
 * `node` describes where the configs will run (default: one worker); plugins' `check` hooks see it,
 * so the Admin API and declarative loads refuse what the workers could not build.
 */
export function createRegistry(definitions: readonly PluginDefinition[], node: NodeFacts = { workers: 1 }): PluginRegistry {
  const byName = new Map<string, PluginDefinition>();
  for (const def of definitions) {
    if (byName.has(def.name)) throw new Error(`plugin ${def.name} registered twice`);
    byName.set(def.name, def);
  }
  const sortedNames = [...byName.keys()].sort();
  return {
    node,
    get: (name) => byName.get(name),
    names: () => [...sortedNames],
    validateConfig(name, config) {
      const def = byName.get(name);
      if (!def) return { ok: false, issues: [{ path: 'name', message: `plugin '${name}' not enabled; add it to the 'plugins' configuration property` }] };
      const given = config ?? {};
      const parsed = def.schema.safeParse(def.shorthands && isPlainObject(given) ? def.shorthands(given) : given);
      if (parsed.success) {
        const issues = def.check?.(parsed.data, node) ?? [];
        if (issues.length === 0) return { ok: true, value: parsed.data as Record<string, unknown> };
        return { ok: false, issues: issues.map((i) => ({ path: i.path, message: i.message })) };
      }
      return {
        ok: false,
        issues: parsed.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message })),
      };
    },
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
