/**
 * The normalized entity model: what every store holds, what the Admin API returns and what a
 * Snapshot is built from. Field names are Kong's wire names (snake_case). Foreign keys have
 * Kong's shape `{ id }`. Timestamps are Unix seconds, as Kong's Admin API returns them.
 *
 * The declarative (decK) loader turns a file into a `ConfigData`; the stores persist it; the
 * kernel compiles it into a frozen Snapshot.
 */
import type { Target, Upstream } from './upstreams.ts';

export type { Target, Upstream };

export type Protocol = 'http' | 'https' | 'grpc' | 'grpcs' | 'ws' | 'wss' | 'tcp' | 'tls' | 'udp' | 'tls_passthrough';
export type HttpMethod = string;

export interface ForeignKey {
  id: string;
}

export interface Service {
  id: string;
  name: string | null;
  protocol: Protocol;
  host: string;
  port: number;
  path: string | null;
  retries: number;
  connect_timeout: number;
  write_timeout: number;
  read_timeout: number;
  tls_verify: boolean | null;
  tls_verify_depth: number | null;
  /** PEM bundles (our simplification of Kong's ca_certificates ids: PEM text or CA certificate ids). */
  ca_certificates: string[] | null;
  client_certificate: ForeignKey | null;
  enabled: boolean;
  tags: string[] | null;
  created_at: number;
  updated_at: number;
}

export interface Route {
  id: string;
  name: string | null;
  protocols: Protocol[];
  methods: string[] | null;
  hosts: string[] | null;
  paths: string[] | null;
  /** Header name (lower-case) → accepted values; a value `~*regex` is a regex (Kong). */
  headers: Record<string, string[]> | null;
  snis: string[] | null;
  sources: unknown[] | null;
  destinations: unknown[] | null;
  strip_path: boolean;
  preserve_host: boolean;
  regex_priority: number;
  path_handling: 'v0' | 'v1';
  https_redirect_status_code: 426 | 301 | 302 | 307 | 308;
  request_buffering: boolean;
  response_buffering: boolean;
  service: ForeignKey | null;
  tags: string[] | null;
  created_at: number;
  updated_at: number;
}

export interface Consumer {
  id: string;
  username: string | null;
  custom_id: string | null;
  tags: string[] | null;
  created_at: number;
  updated_at: number;
}

export interface Plugin {
  id: string;
  name: string;
  instance_name: string | null;
  /** Already validated and defaulted by the plugin's own schema. */
  config: Record<string, unknown>;
  protocols: Protocol[];
  enabled: boolean;
  route: ForeignKey | null;
  service: ForeignKey | null;
  consumer: ForeignKey | null;
  ordering: { before?: { access?: string[] }; after?: { access?: string[] } } | null;
  tags: string[] | null;
  created_at: number;
  updated_at: number;
}

export interface Acl {
  id: string;
  consumer: ForeignKey;
  group: string;
  tags: string[] | null;
  created_at: number;
}

/**
 * Row type of every entity kind, by name. Adding an entity: its interface above, a line here, its
 * name in `entityNames`, and a descriptor in `entities/` (see config/entity.ts).
 */
export interface EntityTypes {
  services: Service;
  routes: Route;
  consumers: Consumer;
  plugins: Plugin;
  acls: Acl;
  upstreams: Upstream;
  targets: Target;
}

export type EntityName = keyof EntityTypes;
export type EntityOf<E extends EntityName> = EntityTypes[E];

/**
 * Every entity kind in dependency order: a kind comes after every kind its foreign keys point at.
 * This is the order of stores' bulk writes, declarative normalization, dumps and `config sync`.
 */
export const entityNames = [
  'services', 'routes', 'consumers', 'plugins', 'acls',
  'upstreams', 'targets',
] as const satisfies readonly EntityName[];

/** Everything a gateway node needs to serve. Arrays in insertion order. */
export type ConfigData = { [E in EntityName]: EntityTypes[E][] };

export function emptyConfig(): ConfigData {
  const out = {} as Record<EntityName, unknown[]>;
  for (const e of entityNames) out[e] = [];
  return out as ConfigData;
}
