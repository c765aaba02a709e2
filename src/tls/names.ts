/**
 * SNI names (Kong's `wildcard_host` typedef) and the handshake lookup order of
 * kong/runloop/certificate.lua: exact name, prefix wildcard (`*.b.example.com` for
 * `a.b.example.com`, at least three labels), suffix wildcard (`api.example.*`), then `*`.
 */
import { checkWildcardHost } from '../config/fields.ts';

/**
 * Null when `name` is a valid SNI name, else Kong's message: an SNI entity's name is Kong's
 * `wildcard_host` typedef, the rule (and wording) a route's `snis` follow too — one `*`, as the
 * first or the last character; no IP address, no port.
 */
export function sniNameProblem(name: unknown): string | null {
  if (typeof name !== 'string' || name === '') return 'expected a string';
  return checkWildcardHost(name);
}

/**
 * Candidate SNI entries for a requested server name, in lookup order (without the final `*`).
 * Allocates only for names the exact lookup missed.
 */
export function wildcardCandidates(servername: string): [prefix: string | null, suffix: string | null] {
  const firstDot = servername.indexOf('.');
  if (firstDot <= 0) return [null, null];
  const lastDot = servername.lastIndexOf('.');
  // A prefix wildcard replaces exactly one label and needs at least three labels.
  const prefix = lastDot > firstDot ? `*${servername.slice(firstDot)}` : null;
  const suffix = `${servername.slice(0, lastDot)}.*`;
  return [prefix, suffix];
}
