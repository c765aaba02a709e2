/**
 * The normalized entity model: what every store holds, what the Admin API returns and what a
 * Snapshot is built from. Field names are Kong's wire names (snake_case). Foreign keys have
 * Kong's shape `{ id }`. Timestamps are Unix seconds, as Kong's Admin API returns them.
 *
 * The declarative (decK) loader turns a file into a `ConfigData`; the stores persist it; the
 * kernel compiles it into a frozen Snapshot.
 */
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
  /** Ids of CA certificate entities trusted for the upstream's certificate (Kong's ca_certificates). */
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
  /** Kong's consumer-group scope; present only on plugins scoped to a consumer group. */
  consumer_group?: ForeignKey | null;
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

/** Kong's certificates: a cert/key pair and an optional alternative pair of the other key type. */
export interface Certificate {
  id: string;
  cert: string;
  key: string;
  cert_alt: string | null;
  key_alt: string | null;
  tags: string[] | null;
  created_at: number;
  updated_at: number;
}

/** Kong's snis: a server name (exact or with one leading/trailing `*` label) served with a certificate. */
export interface Sni {
  id: string;
  name: string;
  certificate: ForeignKey;
  tags: string[] | null;
  created_at: number;
  updated_at: number;
}

/*
 * Consumers' credentials (Kong: the key-auth, basic-auth, jwt and oauth2 plugins' daos) and
 * consumer groups. Descriptors: entities/credentials.ts, entities/consumer-groups.ts.
 */
export interface KeyAuthCredential {
  id: string;
  consumer: ForeignKey;
  key: string;
  /** Kong's `ttl`: seconds the key lives after it was written (`created_at`); null = forever. */
  ttl: number | null;
  tags: string[] | null;
  created_at: number;
}

export interface BasicAuthCredential {
  id: string;
  consumer: ForeignKey;
  username: string;
  /** Never the password itself: a salted scrypt hash (`$scrypt$…`, see plugins/basic-auth/hash.ts). */
  password: string;
  tags: string[] | null;
  created_at: number;
}

export type JwtAlgorithm =
  | 'HS256' | 'HS384' | 'HS512'
  | 'RS256' | 'RS384' | 'RS512'
  | 'ES256' | 'ES384' | 'ES512'
  | 'PS256' | 'PS384' | 'PS512'
  | 'EdDSA';

export interface JwtSecret {
  id: string;
  consumer: ForeignKey;
  key: string;
  secret: string;
  rsa_public_key: string | null;
  algorithm: JwtAlgorithm;
  tags: string[] | null;
  created_at: number;
}

export interface ConsumerGroup {
  id: string;
  name: string;
  tags: string[] | null;
  created_at: number;
  updated_at: number;
}

/** Kong's ca_certificates: one trusted CA (upstream TLS verification, client certificates). */
export interface CaCertificate {
  id: string;
  cert: string;
  /** SHA-256 of the DER, hex; computed on write. */
  cert_digest: string;
  tags: string[] | null;
  created_at: number;
  updated_at: number;
}

/** Membership of a consumer in a consumer group (Kong's `consumer_group_consumers`). */
export interface ConsumerGroupMember {
  id: string;
  consumer_group: ForeignKey;
  consumer: ForeignKey;
  created_at: number;
}

export interface OAuth2Credential {
  id: string;
  consumer: ForeignKey;
  name: string;
  client_id: string;
  /** In clear, or with `hash_secret` a PBKDF2 hash (`$pbkdf2-sha512$…`, password-hash.ts). */
  client_secret: string;
  hash_secret: boolean;
  redirect_uris: string[] | null;
  client_type: 'confidential' | 'public';
  tags: string[] | null;
  created_at: number;
}

/** Kong's balancing algorithms and hash inputs (config/upstreams.ts has the rules). */
export type Algorithm = 'round-robin' | 'consistent-hashing' | 'least-connections' | 'latency';
export type HashOn = 'none' | 'consumer' | 'ip' | 'header' | 'cookie' | 'path' | 'query_arg' | 'uri_capture';

export interface ActiveHealthcheck {
  type: 'tcp' | 'http' | 'https' | 'grpc' | 'grpcs';
  timeout: number;
  concurrency: number;
  http_path: string;
  https_sni: string | null;
  https_verify_certificate: boolean;
  headers: Record<string, string[]> | null;
  healthy: { interval: number; http_statuses: number[]; successes: number };
  unhealthy: { interval: number; http_statuses: number[]; tcp_failures: number; timeouts: number; http_failures: number };
}

export interface PassiveHealthcheck {
  type: 'tcp' | 'http' | 'https' | 'grpc' | 'grpcs';
  healthy: { http_statuses: number[]; successes: number };
  unhealthy: { http_statuses: number[]; tcp_failures: number; timeouts: number; http_failures: number };
}

export interface Healthchecks {
  threshold: number;
  active: ActiveHealthcheck;
  passive: PassiveHealthcheck;
}

export interface Upstream {
  id: string;
  name: string;
  algorithm: Algorithm;
  hash_on: HashOn;
  hash_fallback: HashOn;
  hash_on_header: string | null;
  hash_fallback_header: string | null;
  hash_on_cookie: string | null;
  hash_on_cookie_path: string;
  hash_on_query_arg: string | null;
  hash_fallback_query_arg: string | null;
  hash_on_uri_capture: string | null;
  hash_fallback_uri_capture: string | null;
  slots: number;
  healthchecks: Healthchecks;
  host_header: string | null;
  client_certificate: { id: string } | null;
  use_srv_name: boolean;
  tags: string[] | null;
  created_at: number;
  updated_at: number;
}

export interface Target {
  id: string;
  upstream: { id: string };
  /** Normalised `host:port` (IPv6 as `[addr]:port`). */
  target: string;
  weight: number;
  tags: string[] | null;
  /** Kong: milliseconds with a fraction for targets (seconds elsewhere). */
  created_at: number;
  updated_at: number;
}

/**
 * Row type of every entity kind, by name. Adding an entity: its interface above, a line here, its
 * name in `entityNames`, and a descriptor in `entities/` (see config/entity.ts).
 */
export interface EntityTypes {
  certificates: Certificate;
  ca_certificates: CaCertificate;
  snis: Sni;
  services: Service;
  routes: Route;
  consumers: Consumer;
  plugins: Plugin;
  acls: Acl;
  keyauth_credentials: KeyAuthCredential;
  basicauth_credentials: BasicAuthCredential;
  jwt_secrets: JwtSecret;
  oauth2_credentials: OAuth2Credential;
  consumer_groups: ConsumerGroup;
  consumer_group_consumers: ConsumerGroupMember;
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
  'certificates', 'ca_certificates', 'snis',
  'services',
  'routes',
  'consumers',
  'consumer_groups',
  'plugins',
  'acls',
  'keyauth_credentials',
  'basicauth_credentials',
  'jwt_secrets',
  'oauth2_credentials',
  'consumer_group_consumers',
  'upstreams', 'targets',
] as const satisfies readonly EntityName[];

/** Everything a gateway node needs to serve. Arrays in insertion order. */
export type ConfigData = { [E in EntityName]: EntityTypes[E][] };

export function emptyConfig(): ConfigData {
  const out = {} as Record<EntityName, unknown[]>;
  for (const e of entityNames) out[e] = [];
  return out as ConfigData;
}
