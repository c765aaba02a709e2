/**
 * The discovery cache as the Admin API shows it (reference §7.3): `GET/DELETE
 * /openid-connect/issuers[/{id or issuer}]`. Plugin instances publish what they discovered
 * (document and keys) into the node's shared key-value store under one key; the Admin API reads
 * and deletes there. Objects look like Kong's: `{id, issuer, created_at, configuration, keys}`,
 * with no secret in them (our session secrets are never auto-stored with the issuer).
 *
 * One record per discovery cache, not per issuer URL: instances of the same issuer that trust
 * different keys (`jwks_endpoint`, `extra_jwks_uris`) keep one record each, so that neither
 * overwrites the other's keys (Kong's FAQ has users clear the cache after changing
 * `extra_jwks_uris`; here a changed list simply gets its own record). The `configuration` is the
 * document as discovered, without an instance's endpoint overrides, so it is the same for all.
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
  /** When the discovery document was last fetched (seconds since epoch; the admin UI's issuer page). */
  configuration_fetched_at?: number;
  /** When the keys were last fetched (seconds since epoch). */
  keys_fetched_at?: number;
}

export function issuerId(issuer: string): string {
  return uuidShaped(issuer);
}

/** What a discovery cache is made of: the issuer and where its keys come from. */
export interface DiscoveryCacheSource {
  issuer: string;
  jwksEndpoint: string | null;
  extraJwksUris: readonly string[];
}

/**
 * The record id of one discovery cache: the issuer's own id when its keys come from discovery
 * alone (so it stays what it always was), else a hash of the issuer and its key sources.
 */
export function discoveryCacheId(source: DiscoveryCacheSource): string {
  if (!source.jwksEndpoint && source.extraJwksUris.length === 0) return issuerId(source.issuer);
  return uuidShaped(JSON.stringify([source.issuer, source.jwksEndpoint ?? null, source.extraJwksUris]));
}

function uuidShaped(text: string): string {
  const h = createHash('sha256').update(text).digest('hex');
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

/** Record (or update) what was discovered for one discovery cache: the document and/or the keys. */
export async function publishIssuer(kv: KeyValueStore, source: DiscoveryCacheSource, update: { configuration?: Record<string, unknown>; keys?: unknown[] }, nowMs: number): Promise<void> {
  const all = await readAll(kv);
  const id = discoveryCacheId(source);
  const issuer = source.issuer;
  let rec = all.find((r) => r.id === id);
  if (!rec) {
    rec = { id, issuer, created_at: Math.floor(nowMs / 1000), configuration: null, keys: [] };
    all.push(rec);
  }
  const at = Math.floor(nowMs / 1000);
  if (update.configuration) {
    rec.configuration = update.configuration;
    rec.configuration_fetched_at = at;
  }
  if (update.keys) {
    rec.keys = update.keys;
    rec.keys_fetched_at = at;
  }
  await kv.set(ISSUERS_KEY, JSON.stringify(all));
}

/** The record of one discovery cache, if any (an instance's fallback while the IdP is down). */
export async function recordedIssuer(kv: KeyValueStore, source: DiscoveryCacheSource): Promise<IssuerRecord | null> {
  const id = discoveryCacheId(source);
  return (await readAll(kv)).find((r) => r.id === id) ?? null;
}

export async function listIssuers(kv: KeyValueStore): Promise<IssuerRecord[]> {
  return readAll(kv);
}

/** The record with this id, else every record of this issuer URL (the issuer's own keys first). */
function matching(all: IssuerRecord[], idOrIssuer: string): IssuerRecord[] {
  const byId = all.filter((r) => r.id === idOrIssuer);
  if (byId.length > 0) return byId;
  const norm = (s: string) => s.replace(/\/\.well-known\/openid-configuration$/, '').replace(/\/+$/, '');
  const want = norm(idOrIssuer);
  const found = all.filter((r) => norm(r.issuer) === want || norm(String(r.configuration?.issuer ?? '')) === want);
  // Several records of one issuer (different key sources): the one of discovery alone first.
  return found.sort((a, b) => Number(b.id === issuerId(b.issuer)) - Number(a.id === issuerId(a.issuer)));
}

/** By id, or by the issuer URL (with or without a trailing slash, or as the discovery URL). */
export async function findIssuer(kv: KeyValueStore, idOrIssuer: string): Promise<IssuerRecord | null> {
  return matching(await readAll(kv), idOrIssuer)[0] ?? null;
}

/**
 * Delete the record with this id, or every record of this issuer URL (each plugin instance that
 * uses the issuer then rediscovers); false when none is known.
 */
export async function deleteIssuer(kv: KeyValueStore, idOrIssuer: string): Promise<boolean> {
  const found = matching(await readAll(kv), idOrIssuer);
  if (found.length === 0) return false;
  const gone = new Set(found.map((r) => r.id));
  const rest = (await readAll(kv)).filter((r) => !gone.has(r.id));
  await kv.set(ISSUERS_KEY, JSON.stringify(rest));
  const at = String(Date.now());
  for (const id of gone) await kv.set(purgedKey(id), at);
  return true;
}

export async function deleteAllIssuers(kv: KeyValueStore): Promise<void> {
  await kv.delete(ISSUERS_KEY);
  await kv.set(PURGED_ALL_KEY, String(Date.now()));
}

/** The latest purge of a discovery cache by the Admin API (one by one or all), ms since epoch; null if never. */
export async function issuerPurgedAt(kv: KeyValueStore, source: DiscoveryCacheSource): Promise<number | null> {
  const marks = [await kv.get(PURGED_ALL_KEY), await kv.get(purgedKey(discoveryCacheId(source)))].filter((v): v is string => v !== null).map(Number);
  return marks.length > 0 ? Math.max(...marks) : null;
}
