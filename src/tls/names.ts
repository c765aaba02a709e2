/**
 * SNI names (Kong's `wildcard_host` typedef) and the handshake lookup order of
 * kong/runloop/certificate.lua: exact name, prefix wildcard (`*.b.example.com` for
 * `a.b.example.com`, at least three labels), suffix wildcard (`api.example.*`), then `*`.
 */
import { isIP } from 'node:net';

const label = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)$/;

/** Null when `name` is a valid SNI name, else Kong's message. */
export function sniNameProblem(name: unknown): string | null {
  if (typeof name !== 'string' || name === '') return 'expected a string';
  if (name === '*') return null;
  const host = name.toLowerCase();
  if (isIP(host) !== 0 || isIP(host.replace(/^\[|\]$/g, '')) !== 0) return 'must not be an IP';
  if (/:\d*$/.test(host)) return 'must not have a port';
  const stars = host.split('*').length - 1;
  if (stars > 1) return 'invalid wildcard: must have at most one wildcard';
  const labels = host.split('.');
  if (stars === 1) {
    const first = labels[0] === '*';
    const last = labels[labels.length - 1] === '*';
    if (!first && !last) return 'invalid wildcard: must be placed at leftmost or rightmost label';
    if (labels.length < 2) return 'invalid wildcard: must be placed at leftmost or rightmost label';
  }
  for (const l of labels) {
    if (l === '*') continue;
    if (!label.test(l)) return `invalid value: ${name}`;
  }
  return null;
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
