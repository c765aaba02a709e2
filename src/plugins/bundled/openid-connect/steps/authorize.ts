/**
 * Claims-based authorization (Kong's `*_required` / `*_claim` pairs and `claims_forbidden`) and
 * `max_age`, and consumer mapping (`consumer_claims`, `consumer_by`, `credential_claim`,
 * `authenticated_groups_claim`). Both take plain claim objects so the browser flows can reuse them.
 */
import type { Consumer } from '../../../../config/types.ts';
import type { Credential, EntityLookup } from '../../../sdk.ts';
import type { OidcConfig } from '../schema.ts';
import { authError } from '../errors.ts';
import type { Claims, Outcome } from '../runtime.ts';

/** Follow a claim path (`["realm_access","roles"]`) through nested objects. */
export function claimAt(claims: Claims | null, path: readonly string[]): unknown {
  let cur: unknown = claims;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/** A claim value as a list of strings: arrays as is, strings split on spaces (RFC 6749 §3.3 scope). */
export function claimValues(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((v) => typeof v === 'string' || typeof v === 'number').map(String);
  if (typeof value === 'string') return value.split(' ').filter(Boolean);
  if (typeof value === 'number' || typeof value === 'boolean') return [String(value)];
  return [];
}

/**
 * Does `have` satisfy `required`? Each entry is an alternative (OR); space-separated values inside
 * one entry are all required (AND).
 */
export function satisfies(required: readonly string[], have: readonly string[]): boolean {
  const set = new Set(have);
  return required.some((entry) => entry.split(' ').filter(Boolean).every((v) => set.has(v)));
}

/**
 * Check the `*_required` settings and `claims_forbidden` against `claims` (the introspection
 * result when there is one, else the access token). Unmet → 403 `insufficient_scope` (RFC 6750 §3.1).
 */
export function authorizeClaims(cfg: OidcConfig, claims: Claims | null): void {
  const checks: Array<[readonly string[] | null, readonly string[], string]> = [
    [cfg.scopes_required, cfg.scopes_claim, 'scopes'],
    [cfg.audience_required, cfg.audience_claim, 'audience'],
    [cfg.groups_required, cfg.groups_claim, 'groups'],
    [cfg.roles_required, cfg.roles_claim, 'roles'],
  ];
  for (const [required, path, what] of checks) {
    if (!required || required.length === 0) continue;
    if (!satisfies(required, claimValues(claimAt(claims, path)))) throw authError('insufficient_scope', `required ${what} not present`);
  }
  for (const name of cfg.claims_forbidden ?? []) {
    if (claims && Object.hasOwn(claims, name)) throw authError('insufficient_scope', `forbidden claim ${name} present`);
  }
}

/**
 * Equal but for letter case (`by_username_ignore_case`). Each pair of differing characters must be
 * each other's lower and upper case: `toLowerCase` alone would let look-alikes such as the Kelvin
 * sign (U+212A, lower-cases to "k") or the dotted capital I stand for ASCII letters.
 */
export function equalsIgnoringCase(a: string, b: string): boolean {
  const x = [...a];
  const y = [...b];
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) {
    const c = x[i]!;
    const d = y[i]!;
    if (c === d) continue;
    if (c.toLowerCase() !== d.toLowerCase() || c.toUpperCase() !== d.toUpperCase()) return false;
  }
  return true;
}

export interface MappingResult {
  consumer: Consumer | null;
  credential: Credential | null;
  groups: string[] | null;
}

/**
 * Map the claims to a consumer (`consumer_claims`/`consumer_claim` paths tried in order, each
 * value looked up by the `consumer_by` fields in order), else a virtual credential from
 * `credential_claim`; plus `authenticated_groups_claim`. No consumer found and
 * `consumer_optional` off → 403.
 */
export function mapConsumer(cfg: OidcConfig, sources: readonly (Claims | null)[], entities: EntityLookup): MappingResult {
  const find = (path: readonly string[]): unknown => {
    for (const s of sources) {
      const v = claimAt(s, path);
      if (v !== undefined && v !== null) return v;
    }
    return undefined;
  };
  const paths = cfg.consumer_claims ?? (cfg.consumer_claim ? [cfg.consumer_claim] : []);
  let consumer: Consumer | null = null;
  if (paths.length > 0) {
    for (const path of paths) {
      const value = find(path);
      if (typeof value !== 'string' && typeof value !== 'number') continue;
      const s = String(value);
      for (const by of cfg.consumer_by) {
        consumer = by === 'id' ? entities.consumerById(s) : by === 'custom_id' ? entities.consumerByCustomId(s) : entities.consumerByUsername(s, cfg.by_username_ignore_case);
        // A case-insensitive match must differ by case only, never by a look-alike letter.
        if (consumer && by === 'username' && consumer.username !== s && !equalsIgnoringCase(consumer.username ?? '', s)) consumer = null;
        if (consumer) break;
      }
      if (consumer) break;
    }
    if (!consumer && !cfg.consumer_optional) throw authError('insufficient_scope', 'no consumer matches the token');
  }
  let credential: Credential | null = null;
  if (consumer) credential = { id: consumer.id, identifier: consumer.username ?? consumer.custom_id ?? consumer.id, consumer: { id: consumer.id } };
  else {
    const v = find(cfg.credential_claim);
    if (typeof v === 'string' || typeof v === 'number') credential = { id: String(v), identifier: String(v), consumer: null };
  }
  const groups = cfg.authenticated_groups_claim ? claimValues(find(cfg.authenticated_groups_claim)) : null;
  return { consumer, credential, groups: groups && groups.length > 0 ? groups : null };
}

/**
 * `max_age` (OpenID Connect Core §3.1.2.1 / §3.1.3.7 item 11): the end user must have
 * authenticated no longer than `max_age` seconds ago, per the `auth_time` claim. The problem
 * (a 401 `invalid_token`), or null.
 */
export function maxAgeProblem(cfg: OidcConfig, o: Outcome, nowMs: number): string | null {
  if (cfg.max_age === null) return null;
  const authTime = o.idClaims?.auth_time ?? o.accessClaims?.auth_time ?? o.introspection?.auth_time;
  if (typeof authTime !== 'number') return 'auth_time claim missing while max_age is set';
  if (authTime + cfg.max_age + cfg.leeway < nowMs / 1000) return 'authentication too old (max_age)';
  return null;
}
