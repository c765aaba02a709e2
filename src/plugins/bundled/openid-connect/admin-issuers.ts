/**
 * The discovery cache as the Admin API shows it (reference §7.3): `GET/DELETE
 * /openid-connect/issuers[/{id or issuer}]`. Plugin instances publish what they discovered
 * (document and keys) into the node's shared key-value store under one key; the Admin API reads
 * and deletes there. Objects look like Kong's: `{id, issuer, created_at, configuration, keys}`,
 * with no secret in them (our session secrets are never auto-stored with the issuer).
 *
 * Why one key holding every issuer: the KeyValueStore port has no listing, and a node has few
 * issuers. Two instances publishing at once may lose one update; the next discovery writes again.
 */
import { createHash } from 'node:crypto';
import type { KeyValueStore } from '../../../storage/ports.ts';

export const ISSUERS_KEY = 'openid-connect:issuers';
/** Purge markers (ms since epoch): plugin instances rediscover when theirs is newer than their copy. */
const PURGED_ALL_KEY = 'openid-connect:issuers-purged';
const purgedKey = (id: string): string => `openid-connect:issuers-purged:${id}`;

export interface IssuerRecord {
  /** Stable per issuer URL (UUID-shaped hash), so the same issuer keeps its id across nodes. */
  id: string;
  issuer: string;
  /** seconds since epoch (Kong's entity convention) */
  created_at: number;
  configuration: Record<string, unknown> | null;
  keys: unknown[];
}

export function issuerId(issuer: string): string {
  const h = createHash('sha256').update(issuer).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

async function readAll(kv: KeyValueStore): Promise<IssuerRecord[]> {
  const raw = await kv.get(ISSUERS_KEY);
  if (raw === null) return [];
  try {
    const parsed = JSON.parse(raw) as unknown;
    return Array.isArray(parsed) ? (parsed as IssuerRecord[]) : [];
  } catch {
    return [];
  }
}

/** Record (or update) what was discovered for `issuer`: the document and/or the keys. */
export async function publishIssuer(kv: KeyValueStore, issuer: string, update: { configuration?: Record<string, unknown>; keys?: unknown[] }, nowMs: number): Promise<void> {
  const all = await readAll(kv);
  const id = issuerId(issuer);
  let rec = all.find((r) => r.id === id);
  if (!rec) {
    rec = { id, issuer, created_at: Math.floor(nowMs / 1000), configuration: null, keys: [] };
    all.push(rec);
  }
  if (update.configuration) rec.configuration = update.configuration;
  if (update.keys) rec.keys = update.keys;
  await kv.set(ISSUERS_KEY, JSON.stringify(all));
}

export async function listIssuers(kv: KeyValueStore): Promise<IssuerRecord[]> {
  return readAll(kv);
}

/** By id, or by the issuer URL (with or without a trailing slash, or as the discovery URL). */
export async function findIssuer(kv: KeyValueStore, idOrIssuer: string): Promise<IssuerRecord | null> {
  const all = await readAll(kv);
  const norm = (s: string) => s.replace(/\/\.well-known\/openid-configuration$/, '').replace(/\/+$/, '');
  return all.find((r) => r.id === idOrIssuer || norm(r.issuer) === norm(idOrIssuer) || norm(String(r.configuration?.issuer ?? '')) === norm(idOrIssuer)) ?? null;
}

/** Delete one issuer's record; false when unknown. */
export async function deleteIssuer(kv: KeyValueStore, idOrIssuer: string): Promise<boolean> {
  const found = await findIssuer(kv, idOrIssuer);
  if (!found) return false;
  const rest = (await readAll(kv)).filter((r) => r.id !== found.id);
  await kv.set(ISSUERS_KEY, JSON.stringify(rest));
  await kv.set(purgedKey(found.id), String(Date.now()));
  return true;
}

export async function deleteAllIssuers(kv: KeyValueStore): Promise<void> {
  await kv.delete(ISSUERS_KEY);
  await kv.set(PURGED_ALL_KEY, String(Date.now()));
}

/** The latest purge of `issuer` by the Admin API (one by one or all), ms since epoch; null if never. */
export async function issuerPurgedAt(kv: KeyValueStore, issuer: string): Promise<number | null> {
  const marks = [await kv.get(PURGED_ALL_KEY), await kv.get(purgedKey(issuerId(issuer)))].filter((v): v is string => v !== null).map(Number);
  return marks.length > 0 ? Math.max(...marks) : null;
}
