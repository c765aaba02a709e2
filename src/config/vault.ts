/**
 * Secrets and environment values in config files:
 * - Kong vault references `{vault://env/NAME}` (Kong's `env` vault: the name is upper-cased and
 *   `-` becomes `_`), resolved per string value after parsing;
 * - decK placeholders `${{ env "DECK_NAME" }}`, substituted in the raw text before parsing, as
 *   decK does (it only reads variables prefixed `DECK_`).
 * Values are never echoed into messages: only variable names are.
 */
import type { ValidationIssue } from '../errors.ts';
import { joinPath } from './issues.ts';

const vaultRefPattern = /^\{vault:\/\/([A-Za-z0-9_-]+)\/([^/}]+)(?:\/([^}]*))?\}$/;

/** Kong's env vault turns `my-secret` into `MY_SECRET`. */
export function envVaultVariable(name: string): string {
  return name.toUpperCase().replace(/-/g, '_');
}

/**
 * Replace every string that is a whole `{vault://env/NAME}` reference by the environment
 * variable's value, recursively through arrays and objects. Unknown vaults and missing variables
 * become issues (at the string's path), and the reference is left in place.
 */
export function resolveVaultRefs(value: unknown, env: NodeJS.ProcessEnv, path = ''): { value: unknown; issues: ValidationIssue[] } {
  const issues: ValidationIssue[] = [];
  const walk = (v: unknown, p: string): unknown => {
    if (typeof v === 'string') {
      if (!v.startsWith('{vault://')) return v;
      const m = vaultRefPattern.exec(v);
      if (!m) {
        issues.push({ path: p, message: 'invalid vault reference: expected {vault://env/NAME}' });
        return v;
      }
      if (m[1] !== 'env') {
        issues.push({ path: p, message: `vault '${m[1]}' is not supported yet (only 'env')` });
        return v;
      }
      const variable = envVaultVariable(m[2] ?? '');
      const resolved = env[variable];
      if (resolved === undefined) {
        issues.push({ path: p, message: `environment variable '${variable}' referenced by the vault reference is not set` });
        return v;
      }
      if (m[3] !== undefined && m[3] !== '') {
        // `{vault://env/NAME/key}`: the variable holds a JSON object and `key` selects a field.
        try {
          const obj: unknown = JSON.parse(resolved);
          const field = typeof obj === 'object' && obj !== null ? (obj as Record<string, unknown>)[m[3]] : undefined;
          if (typeof field === 'string') return field;
        } catch {
          // fall through to the issue below
        }
        issues.push({ path: p, message: `environment variable '${variable}' has no JSON string field '${m[3]}'` });
        return v;
      }
      return resolved;
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, `${p}[${i}]`));
    if (typeof v === 'object' && v !== null) {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = walk(x, joinPath(p, k));
      return out;
    }
    return v;
  };
  return { value: walk(value, path), issues };
}

// Inside a JSON string the quotes around the name are escaped (`\"`); accept both forms.
const deckPlaceholder = /\$\{\{\s*env\s+\\?"([^"\\]*)\\?"\s*\}\}/g;

/**
 * Substitute decK's `${{ env "DECK_NAME" }}` placeholders in the document text. Issue paths name
 * the line (`line 12`), as the document is not parsed yet.
 */
export function substituteDeckEnv(text: string, env: NodeJS.ProcessEnv): { text: string; issues: ValidationIssue[] } {
  const issues: ValidationIssue[] = [];
  const out = text.replace(deckPlaceholder, (whole, name: string, offset: number) => {
    const line = text.slice(0, offset).split('\n').length;
    if (!name.startsWith('DECK_')) {
      issues.push({ path: `line ${line}`, message: `environment variable '${name}' must be prefixed with 'DECK_' to be used in a placeholder` });
      return whole;
    }
    const value = env[name];
    if (value === undefined) {
      issues.push({ path: `line ${line}`, message: `environment variable '${name}' is not set` });
      return whole;
    }
    return value;
  });
  return { text: out, issues };
}
