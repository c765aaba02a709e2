/**
 * Consumers' credentials (Kong: the daos of the key-auth, basic-auth, jwt and oauth2 plugins).
 * Each belongs to a consumer (deleted with it), is written nested under it in decK files and
 * dumps (`consumers[].keyauth_credentials`, ...), and is served at Kong's Admin API paths:
 * `/consumers/{c}/key-auth` + `/key-auths`, `/consumers/{c}/basic-auth` + `/basic-auths`,
 * `/consumers/{c}/jwt` + `/jwts`, `/consumers/{c}/oauth2` + `/oauth2`.
 *
 * Secrets at rest: basic-auth passwords are stored only as salted scrypt hashes, oauth2 client
 * secrets with `hash_secret` as Kong's PBKDF2 hashes (src/password-hash.ts); a value that already
 * is such a hash (a dump loaded back) is kept as is.
 */
import { createPublicKey, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { between } from '../between.ts';
import type { EntityDescriptor, NormalizeContext } from '../entity.ts';
import { readableErrorMap, zodIssues } from '../issues.ts';
import { entityId, refField, timestamps } from '../normalize-kit.ts';
import { foreignRefSchema, tagsSchema, timestampSchema, uuidSchema } from '../schemas.ts';
import type { EntityName, EntityOf } from '../types.ts';
import type { ValidationIssue } from '../../errors.ts';
import { hashClientSecret, hashPassword, isPasswordHash, isSecretHash } from '../../password-hash.ts';

/** Kong's random_string: 32 hex characters. */
const randomString = (): string => randomBytes(16).toString('hex');

const consumerFk = [{ field: 'consumer', entity: 'consumers' as const, onDelete: 'cascade' as const, nested: true }];

/** Parse, resolve the consumer, and hand the parsed input to `build` (or report every issue). */
function normalizeCredential<E extends EntityName, S extends z.ZodObject>(
  schema: S,
  input: Record<string, unknown>,
  ctx: NormalizeContext<E>,
  build: (v: z.infer<S>, issues: ValidationIssue[]) => Record<string, unknown>,
): { ok: true; value: EntityOf<E> } | { ok: false; issues: ValidationIssue[] } {
  const parsed = schema.safeParse(input, { error: readableErrorMap });
  const issues = parsed.success ? [] : zodIssues(parsed.error);
  const consumer = refField('consumers', input, 'consumer', ctx, issues);
  if (!parsed.success) return { ok: false, issues };
  const v = parsed.data as z.infer<S> & { id?: string; created_at?: number };
  const fields = build(v, issues);
  if (issues.length > 0) return { ok: false, issues };
  const { created_at } = timestamps(v, ctx.existing as { created_at: number } | undefined, ctx.now);
  return { ok: true, value: { id: entityId(v.id, ctx), consumer, ...fields, created_at } as unknown as EntityOf<E> };
}

// --- key-auth -------------------------------------------------------------------------------

export const keyAuthInputSchema = z.strictObject({
  id: uuidSchema.optional(),
  consumer: foreignRefSchema,
  key: z.string().min(1).optional(),
  /** Kong's `ttl` (seconds from the write; 0 or null = no expiry). */
  ttl: between(z.int(), 0, 100000000).nullable().optional(),
  tags: tagsSchema,
  created_at: timestampSchema,
});

export const keyauth_credentials: EntityDescriptor<'keyauth_credentials'> = {
  name: 'keyauth_credentials',
  singular: 'keyauth_credential',
  adminPath: 'key-auths',
  nestedAdminPath: 'key-auth',
  endpointKey: 'key',
  uniqueKeys: ['key'],
  compositeKeys: [],
  foreignKeys: consumerFk,
  schema: keyAuthInputSchema,
  naturalKey: { from: 'entity', key: (r) => `keyauth|${String(r.key)}` },
  dumpNestedUnder: 'consumer',
  label: (r, ref) => `key-auth credential of consumer ${ref(r.consumer)}`,
  normalize(input, ctx) {
    return normalizeCredential(keyAuthInputSchema, input, ctx, (v) => {
      const existing = ctx.existing;
      // The ttl counts from `created_at` (a PATCH of `ttl` does not restart the clock, unlike Kong).
      const ttl = v.ttl === undefined ? existing?.ttl ?? null : v.ttl === null || v.ttl === 0 ? null : v.ttl;
      return { key: v.key ?? existing?.key ?? randomString(), ttl, tags: v.tags };
    });
  },
};

// --- basic-auth -----------------------------------------------------------------------------

export const basicAuthInputSchema = z.strictObject({
  id: uuidSchema.optional(),
  consumer: foreignRefSchema,
  username: z.string().min(1),
  password: z.string().min(1),
  tags: tagsSchema,
  created_at: timestampSchema,
});

export const basicauth_credentials: EntityDescriptor<'basicauth_credentials'> = {
  name: 'basicauth_credentials',
  singular: 'basicauth_credential',
  adminPath: 'basic-auths',
  nestedAdminPath: 'basic-auth',
  endpointKey: 'username',
  uniqueKeys: ['username'],
  compositeKeys: [],
  foreignKeys: consumerFk,
  schema: basicAuthInputSchema,
  naturalKey: { from: 'entity', key: (r) => `basicauth|${String(r.username)}` },
  dumpNestedUnder: 'consumer',
  label: (r) => `basic-auth credential ${String(r.username)}`,
  normalize(input, ctx) {
    return normalizeCredential(basicAuthInputSchema, input, ctx, (v) => ({
      username: v.username,
      password: isPasswordHash(v.password) ? v.password : hashPassword(v.password),
      tags: v.tags,
    }));
  },
};

// --- jwt ------------------------------------------------------------------------------------

export const jwtAlgorithms = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'EdDSA'] as const;

/** The algorithms whose secret Kong requires an `rsa_public_key` for (not ES*). */
const keyRequired = /^(RS256|RS384|RS512|PS256|PS384|PS512|EdDSA)$/;

export const jwtSecretInputSchema = z.strictObject({
  id: uuidSchema.optional(),
  consumer: foreignRefSchema,
  key: z.string().min(1).optional(),
  secret: z.string().min(1).optional(),
  rsa_public_key: z.string().min(1).nullable().default(null),
  algorithm: z.enum(jwtAlgorithms).default('HS256'),
  tags: tagsSchema,
  created_at: timestampSchema,
});

export const jwt_secrets: EntityDescriptor<'jwt_secrets'> = {
  name: 'jwt_secrets',
  singular: 'jwt_secret',
  adminPath: 'jwts',
  nestedAdminPath: 'jwt',
  endpointKey: 'key',
  uniqueKeys: ['key'],
  compositeKeys: [],
  foreignKeys: consumerFk,
  schema: jwtSecretInputSchema,
  // Kong: kong/plugins/jwt/daos.lua (then_match's custom_validator, a function, is not shown).
  kongEntityChecks: [
    {
      conditional: {
        if_field: 'algorithm',
        if_match: { match_any: { patterns: ['^RS256$', '^RS384$', '^RS512$', '^PS256$', '^PS384$', '^PS512$', '^EdDSA$'] } },
        then_field: 'rsa_public_key',
        then_match: { required: true },
      },
    },
  ],
  naturalKey: { from: 'entity', key: (r) => `jwt|${String(r.key)}` },
  dumpNestedUnder: 'consumer',
  label: (r) => `jwt credential ${String(r.key)}`,
  normalize(input, ctx) {
    return normalizeCredential(jwtSecretInputSchema, input, ctx, (v, issues) => {
      // Kong's conditional check: RS*, PS* and EdDSA need a key that parses; ES* does not (Kong
      // accepts such a secret as is, and a token for it then fails with `Invalid key/secret`).
      if (keyRequired.test(v.algorithm)) {
        let problem: string | null = null;
        if (v.rsa_public_key === null) problem = 'required field missing';
        else {
          try {
            if (createPublicKey(v.rsa_public_key).type !== 'public') problem = 'invalid key';
          } catch {
            problem = 'invalid key';
          }
        }
        if (problem !== null) {
          issues.push({ path: 'rsa_public_key', message: problem });
          issues.push({ path: '', message: "failed conditional validation given value of field 'algorithm'" });
        }
      }
      const existing = ctx.existing;
      return { key: v.key ?? existing?.key ?? randomString(), secret: v.secret ?? existing?.secret ?? randomString(), rsa_public_key: v.rsa_public_key, algorithm: v.algorithm, tags: v.tags };
    });
  },
};

// --- oauth2 ---------------------------------------------------------------------------------

/** Kong: each redirect URI needs a scheme and a host, and no fragment. */
function redirectUriProblem(uri: string): string | null {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return `cannot parse '${uri}'`;
  }
  if (u.host === '' || !/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) return `cannot parse '${uri}'`;
  if (uri.includes('#')) return `fragment not allowed in '${uri}'`;
  return null;
}

export const oauth2CredentialInputSchema = z.strictObject({
  id: uuidSchema.optional(),
  consumer: foreignRefSchema,
  name: z.string().min(1),
  client_id: z.string().min(1).optional(),
  client_secret: z.string().min(1).optional(),
  hash_secret: z.boolean().default(false),
  redirect_uris: z.array(z.string().min(1)).nullable().default(null),
  client_type: z.enum(['confidential', 'public']).default('confidential'),
  tags: tagsSchema,
  created_at: timestampSchema,
});

export const oauth2_credentials: EntityDescriptor<'oauth2_credentials'> = {
  name: 'oauth2_credentials',
  singular: 'oauth2_credential',
  adminPath: 'oauth2',
  nestedAdminPath: 'oauth2',
  endpointKey: 'client_id',
  uniqueKeys: ['client_id'],
  compositeKeys: [],
  foreignKeys: consumerFk,
  schema: oauth2CredentialInputSchema,
  naturalKey: { from: 'entity', key: (r) => `oauth2|${String(r.client_id)}` },
  dumpNestedUnder: 'consumer',
  label: (r, ref) => `oauth2 credential ${String(r.client_id)} of consumer ${ref(r.consumer)}`,
  normalize(input, ctx) {
    return normalizeCredential(oauth2CredentialInputSchema, input, ctx, (v, issues) => {
      (v.redirect_uris ?? []).forEach((u, i) => {
        const p = redirectUriProblem(u);
        if (p !== null) issues.push({ path: `redirect_uris[${i}]`, message: p });
      });
      const existing = ctx.existing;
      const given = v.client_secret ?? existing?.client_secret ?? randomString();
      const secret = v.hash_secret && !isSecretHash(given) ? hashClientSecret(given) : given;
      return {
        name: v.name,
        client_id: v.client_id ?? existing?.client_id ?? randomString(),
        client_secret: secret,
        hash_secret: v.hash_secret,
        redirect_uris: v.redirect_uris,
        client_type: v.client_type,
        tags: v.tags,
      };
    });
  },
};
