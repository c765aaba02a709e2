/**
 * Deterministic ids for declarative entities that do not carry one, so that loading the same
 * file twice yields the same ids (plugin instances and caches keyed by id survive a reload).
 */
import { createHash } from 'node:crypto';
import type { EntityName } from './types.ts';

/** Our fixed namespace for name-based UUIDs (random, chosen once). */
const namespace = Buffer.from('7d0c3c52a4b84e8f9a1d3f6c2b5e8a17', 'hex');

/** Name-based UUID, version 5 (RFC 9562 §5.5: SHA-1 of namespace + name). */
export function uuidV5(name: string): string {
  const h = createHash('sha1').update(namespace).update(name, 'utf8').digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x50;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The id an entity of `kind` gets from its natural key (name, username, scope, ...). */
export function deterministicId(kind: EntityName, key: string): string {
  return uuidV5(`${kind}\u0000${key}`);
}

/** Natural keys, shared by the loader (to assign ids) and the dumper (to know when to keep one). */
export const naturalKey = {
  service: (name: string | null, docPath: string) => (name ? `name:${name}` : `path:${docPath}`),
  route: (name: string | null, docPath: string) => (name ? `name:${name}` : `path:${docPath}`),
  consumer: (username: string | null, customId: string | null, docPath: string) =>
    username ? `username:${username}` : customId ? `custom_id:${customId}` : `path:${docPath}`,
  plugin: (name: string, route: string | null, service: string | null, consumer: string | null, instanceName: string | null) =>
    `${name}|${route ?? ''}|${service ?? ''}|${consumer ?? ''}|${instanceName ?? ''}`,
  acl: (consumer: string, group: string) => `${consumer}|${group}`,
};
