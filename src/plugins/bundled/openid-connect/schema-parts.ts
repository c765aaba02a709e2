/**
 * Building blocks of the openid-connect config schema: null-tolerant field helpers (decK exports
 * write `null` for unset fields) and the nested records of Kong 3.15 (`redis`, `token_exchange`,
 * `principals`, `proof_of_possession_mtls_from_header`, `client_jwk[]`, header mappings).
 */
import { z } from 'zod';
import { between } from '../../sdk.ts';

/** An issuer identifier as configs write it: without a `.well-known` suffix or trailing slash. */
export function issuerId(value: string): string {
  return value.replace(/\/\.well-known\/openid-configuration\/?$/, '').replace(/\/+$/, '');
}

const nullToUndefined = (v: unknown): unknown => (v === null ? undefined : v);

/** Optional field: absent or `null` → `null`. */
export function opt<T extends z.ZodType>(type: T) {
  return type.nullable().default(null);
}

/** Optional array field: absent or `null` → `null`. */
export function optArr<T extends z.ZodType>(item: T) {
  return z.array(item).nullable().default(null);
}

/** Field with a default: absent or `null` → the default (as Kong fills defaults on write). */
export function def<T extends z.ZodType>(type: T, value: z.output<T>) {
  return z.preprocess(nullToUndefined, type.default(value as never)) as unknown as z.ZodType<z.output<T>, unknown>;
}

/** Array field with a default: absent or `null` → the default. */
export function arr<T extends z.ZodType>(item: T, value: z.output<T>[]) {
  return z.preprocess(nullToUndefined, z.array(item).default(value as never)) as unknown as z.ZodType<z.output<T>[], unknown>;
}

/**
 * Kong writes a `cloud_authentication` it was not given as the record of its defaults
 * (`{"aws_is_serverless": true}`, the rest null): Kong Manager's form sends that, and Kong's dumps
 * hold it. It says no more than null, so it is read as null; one that sets anything stays as it is.
 */
function unsetCloudAuth(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  const onlyDefaults = Object.entries(v as Record<string, unknown>).every(([k, x]) => x === null || (k === 'aws_is_serverless' && x === true));
  return onlyDefaults ? null : v;
}

const redisFields = {
  cloud_authentication: z.preprocess(unsetCloudAuth, opt(
    z
      .object({
        auth_provider: opt(z.enum(['aws', 'azure', 'gcp'])),
        aws_access_key_id: opt(z.string()),
        aws_secret_access_key: opt(z.string()),
        aws_region: opt(z.string()),
        aws_cache_name: opt(z.string()),
        aws_is_serverless: def(z.boolean(), true),
        aws_assume_role_arn: opt(z.string()),
        aws_role_session_name: opt(z.string()),
        azure_client_id: opt(z.string()),
        azure_client_secret: opt(z.string()),
        azure_tenant_id: opt(z.string()),
        gcp_service_account_json: opt(z.string()),
      })
      .strict(),
  )),
  cluster_max_redirections: def(z.number().int(), 5),
  cluster_nodes: optArr(z.object({ ip: def(z.string(), '127.0.0.1'), port: def(between(z.number().int(), 0, 65535), 6379) }).strict()),
  connect_timeout: def(z.number().int(), 2000),
  connection_is_proxied: def(z.boolean(), false),
  database: def(z.number().int(), 0),
  host: def(z.string(), '127.0.0.1'),
  keepalive_backlog: opt(z.number().int()),
  keepalive_pool_size: def(z.number().int(), 256),
  password: opt(z.string()),
  port: def(between(z.number().int(), 0, 65535), 6379),
  read_timeout: def(z.number().int(), 2000),
  send_timeout: def(z.number().int(), 2000),
  sentinel_master: opt(z.string()),
  sentinel_nodes: optArr(z.object({ host: def(z.string(), '127.0.0.1'), port: def(z.number().int().min(0).max(65535), 26379) }).strict()),
  sentinel_password: opt(z.string()),
  sentinel_role: opt(z.enum(['any', 'master', 'slave'])),
  sentinel_username: opt(z.string()),
  server_name: opt(z.string()),
  ssl: def(z.boolean(), false),
  ssl_verify: def(z.boolean(), true),
  username: opt(z.string()),
};

/** `redis` (session storage). */
export const redisRecord = z.object({ ...redisFields, prefix: opt(z.string()), socket: opt(z.string()) }).strict();
/** `cluster_cache_redis`: the `redis` fields without `prefix` and `socket`. */
export const clusterRedisRecord = z.object(redisFields).strict();

export const principalsRecord = z
  .object({
    directory: def(z.string(), 'default'),
    enabled: def(z.boolean(), false),
    error_on_miss: def(z.boolean(), true),
    match_consumer: def(z.boolean(), true),
    match_consumer_groups: def(z.boolean(), true),
    principal_by: opt(z.string()),
    principal_claim: optArr(z.string()),
  })
  .strict();

export const mtlsFromHeaderRecord = z
  .object({
    allow_partial_chain: def(z.boolean(), false),
    ca_certificates: z.array(z.string()).min(1),
    // The revocation check (OCSP/CRL, revocation.ts) and its fetches; proxy host and port go together (mtls-config.ts).
    cert_cache_ttl: def(z.number().min(0), 60000),
    certificate_header_format: def(z.enum(['base64_encoded', 'url_encoded']), 'url_encoded'),
    certificate_header_name: z.string(),
    http_proxy_host: opt(z.string().min(1)),
    http_proxy_port: opt(between(z.number().int(), 0, 65535)),
    http_timeout: def(z.number().positive(), 30000),
    https_proxy_host: opt(z.string().min(1)),
    https_proxy_port: opt(between(z.number().int(), 0, 65535)),
    revocation_check_mode: def(z.enum(['IGNORE_CA_ERROR', 'SKIP', 'STRICT']), 'IGNORE_CA_ERROR'),
    secure_source: def(z.boolean(), true),
    ssl_verify: def(z.boolean(), true),
  })
  .strict();

export const tokenExchangeRecord = z
  .object({
    subject_token_issuers: z
      .array(
        z
          .object({
            issuer: z.string(),
            conditions: opt(
              z
                .object({
                  has_scopes: optArr(z.string()),
                  missing_scopes: optArr(z.string()),
                  has_audience: optArr(z.string()),
                  missing_audience: optArr(z.string()),
                })
                .strict(),
            ),
            verify_signature: def(z.boolean(), false),
            jwks_uri: opt(z.string()),
          })
          .strict(),
      )
      .min(1),
    request: opt(
      z
        .object({
          scopes: optArr(z.string()),
          audience: optArr(z.string()),
          empty_scopes: def(z.boolean(), false),
          empty_audience: def(z.boolean(), false),
        })
        .strict(),
    ),
    cache: opt(z.object({ enabled: def(z.boolean(), true), ttl: opt(z.number().int()) }).strict()),
  })
  .strict();

/** One `client_jwk[]` item: RFC 7517 members plus Kong's `issuer`. */
export const clientJwk = z
  .object({
    kid: opt(z.string()),
    kty: opt(z.string()),
    alg: opt(z.string()),
    use: opt(z.string()),
    key_ops: optArr(z.string()),
    x5c: optArr(z.string()),
    x5t: opt(z.string()),
    'x5t#S256': opt(z.string()),
    x5u: opt(z.string()),
    e: opt(z.string()),
    n: opt(z.string()),
    crv: opt(z.string()),
    x: opt(z.string()),
    y: opt(z.string()),
    d: opt(z.string()),
    p: opt(z.string()),
    q: opt(z.string()),
    dp: opt(z.string()),
    dq: opt(z.string()),
    qi: opt(z.string()),
    oth: opt(z.string()),
    r: opt(z.string()),
    t: opt(z.string()),
    k: opt(z.string()),
    issuer: opt(z.string()),
  })
  .strict();

/** `upstream_headers[]` / `downstream_headers[]` item (3.14): claim path → header. */
export const headerMapping = z.object({ header: z.string().min(1), path: z.array(z.string()).min(1) }).strict();

