/**
 * jwt — Kong's JWT authentication (priority 1450) against the consumers' `jwt_secrets`.
 *
 * Tokens are collected from the query (`uri_param_names`), cookies (`cookie_names`) and
 * `Bearer` headers (`header_names`); several distinct tokens → 401 `Multiple tokens provided`.
 * The credential is found by the claim `key_claim_name` (payload first, then the JOSE header);
 * the header's `alg` must be the credential's `algorithm`; the signature is checked with jose
 * (HMAC secret, or the credential's `rsa_public_key` PEM for RS/PS/ES/EdDSA); then
 * `claims_to_verify` (exp, nbf) and `maximum_expiration`. Kong's messages and bodies throughout
 * (claim failures answer with the claim errors as the whole body).
 *
 * A token whose signature verified is remembered (bounded, per instance) with the credential it
 * verified against: a repeated token costs a Map lookup and the time checks, which always run.
 */
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { compactVerify } from 'jose';
import { z } from 'zod';
import { definePlugin, PLUGIN_ENTITY_CHECK, type RequestContext, HTTP_PROTOCOLS, between } from '../../sdk.ts';
import { authAccess, ownerOf, setIdentity, type AttemptResult, type AuthFailure } from '../../auth.ts';
import { TailMemo } from '../../../tail-memo.ts';
import type { JwtSecret } from '../../../config/credentials.ts';

/** Kong's `set` of strings: duplicates dropped (first kept), shown as `set` in the schema. */
function stringSet<T extends string>(element: z.ZodType<T>, fallback: T[]) {
  return z.array(element).default(fallback).transform((v) => [...new Set(v)]).meta({ uniqueItems: true });
}

export const jwtSchema = z
  .strictObject({
    uri_param_names: stringSet(z.string(), ['jwt']),
    cookie_names: stringSet(z.string(), []),
    key_claim_name: z.string().min(1).default('iss'),
    secret_is_base64: z.boolean().default(false),
    claims_to_verify: z.array(z.enum(['exp', 'nbf'])).meta({ uniqueItems: true }).nullable().default(null).transform((v) => (v === null ? v : [...new Set(v)])),
    anonymous: z.string().min(1).nullable().default(null),
    run_on_preflight: z.boolean().default(true),
    maximum_expiration: between(z.number(), 0, 31536000).default(0),
    header_names: stringSet(z.string(), ['authorization']),
    realm: z.string().nullable().default(null),
  })
  .superRefine((c, issues) => {
    // Kong's plugin-level `conditional` check: the field's own error, and the check's under @entity.
    // As in Kong, an unset (null) claims_to_verify passes it: `contains` is not run on null.
    if (c.maximum_expiration > 0 && c.claims_to_verify !== null && !c.claims_to_verify.includes('exp')) {
      issues.addIssue({ code: 'custom', path: ['claims_to_verify'], message: 'expected to contain: exp' });
      issues.addIssue({ code: 'custom', path: [PLUGIN_ENTITY_CHECK], message: "failed conditional validation given value of field 'config.maximum_expiration'" });
    }
  });

export type JwtConfig = z.infer<typeof jwtSchema>;

/** The algorithms Kong's jwt plugin verifies. */
export const JWT_ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'EdDSA'] as const;
const knownAlg = new Set<string>(JWT_ALGORITHMS);

const VERIFIED_MAX = 10_000;
const BEARER = /^\s*[Bb]earer\s+(.+)/;

interface Decoded {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
}

function decodePart(part: string | undefined): unknown {
  if (part === undefined) throw new Error('missing part');
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

/** Kong's jwt_parser: header and claims as JSON objects, a known `alg`. Throws Kong's reason. */
export function decodeJwt(token: string): Decoded {
  const parts = token.split('.');
  let header: unknown, claims: unknown;
  try {
    header = decodePart(parts[0]);
    claims = decodePart(parts[1]);
  } catch {
    throw new Error('invalid JSON');
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new Error('invalid JSON');
  const alg = (header as Record<string, unknown>).alg;
  if (typeof alg !== 'string' || !knownAlg.has(alg)) throw new Error('invalid alg');
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) throw new Error('invalid claims');
  if (parts.length !== 3 || parts[2] === '') throw new Error('invalid signature');
  return { header: header as Record<string, unknown>, claims: claims as Record<string, unknown> };
}

/** The tokens of a request per Kong's retrieve_tokens (deduplicated, empty values ignored). */
function collectTokens(conf: JwtConfig, ctx: RequestContext): Set<string> {
  const found = new Set<string>();
  if (conf.uri_param_names.length > 0 && ctx.request.rawQuery !== '') {
    const q = ctx.request.query;
    for (const name of conf.uri_param_names) for (const v of q.getAll(name)) if (v !== '') found.add(v);
  }
  for (const name of conf.cookie_names) {
    const v = ctx.request.cookies.get(name);
    if (v !== undefined && v !== '') found.add(v);
  }
  for (const name of conf.header_names) {
    const v = ctx.request.header(name);
    if (v === undefined) continue;
    const m = BEARER.exec(v);
    if (m !== null && m[1] !== '') found.add(m[1]);
  }
  return found;
}

export default definePlugin<JwtConfig>({
  name: 'jwt',
  version: '0.1.0',
  priority: 1450,
  // Kong's schema: protocols_http.
  protocols: HTTP_PROTOCOLS,
  schema: jwtSchema,
  scopes: { consumer: false },
  // Kong: kong/plugins/jwt/schema.lua (enforced by jwtSchema above).
  kongEntityChecks: [
    { conditional: { if_field: 'config.maximum_expiration', if_match: { gt: 0 }, then_field: 'config.claims_to_verify', then_match: { contains: 'exp' } } },
  ],
  create(conf) {
    const base = conf.realm !== null ? `Bearer realm="${conf.realm}"` : 'Bearer';
    const withError = conf.realm !== null ? `${base}, error="invalid_token"` : 'Bearer error="invalid_token"';
    const fail = (message: string): AuthFailure => ({ status: 401, body: { message }, headers: { 'www-authenticate': withError } });
    const noToken: AuthFailure = { status: 401, body: { message: 'Unauthorized' }, headers: { 'www-authenticate': base } };
    const claimName = conf.key_claim_name;
    // Kong's `set`s: duplicates count once.
    const claimsToVerify = [...new Set(conf.claims_to_verify ?? [])];

    /** Keys derived from a credential, per credential object (a new Snapshot has new objects). */
    const keys = new WeakMap<JwtSecret, KeyObject | null>();
    const keyFor = (cred: JwtSecret): KeyObject | null => {
      let k = keys.get(cred);
      if (k !== undefined) return k;
      try {
        if (cred.algorithm.startsWith('HS')) {
          const raw = conf.secret_is_base64 ? Buffer.from(cred.secret, 'base64') : Buffer.from(cred.secret, 'utf8');
          k = raw.length > 0 ? createSecretKey(raw) : null;
        } else {
          k = cred.rsa_public_key ? createPublicKey(cred.rsa_public_key) : null;
        }
      } catch {
        k = null;
      }
      keys.set(cred, k);
      return k;
    };
    /** token → the credential it verified against and its claims. */
    const verified = new TailMemo<{ cred: JwtSecret; claims: Record<string, unknown> }>(VERIFIED_MAX);

    /** The time checks and the consumer, after the signature is known good. */
    const finish = (ctx: RequestContext, cred: JwtSecret, claims: Record<string, unknown>): AttemptResult => {
      const now = Math.floor(ctx.now() / 1000);
      let errors: Record<string, string> | null = null;
      for (const claim of claimsToVerify) {
        const v = claims[claim];
        if (typeof v !== 'number') (errors ??= {})[claim] = 'must be a number';
        else if (claim === 'exp' && v <= now) (errors ??= {}).exp = 'token expired';
        else if (claim === 'nbf' && v > now) (errors ??= {}).nbf = 'token not valid yet';
      }
      if (errors !== null) return { status: 401, body: errors, headers: { 'www-authenticate': withError } };
      if (conf.maximum_expiration > 0) {
        const exp = claims.exp;
        if (typeof exp !== 'number' || exp - now > conf.maximum_expiration) {
          return { status: 401, body: { exp: 'exceeds maximum allowed expiration' }, headers: { 'www-authenticate': withError } };
        }
      }
      const consumer = ownerOf(ctx, cred);
      if (consumer === null) return fail(`Could not find consumer for '${claimName}=${cred.key}'`);
      setIdentity(ctx, consumer, { id: cred.id, identifier: cred.key, consumer: cred.consumer });
      return null;
    };

    const attempt = (ctx: RequestContext): AttemptResult | Promise<AttemptResult> => {
      const tokens = collectTokens(conf, ctx);
      if (tokens.size === 0) return noToken;
      if (tokens.size > 1) return fail('Multiple tokens provided');
      const token: string = tokens.values().next().value!;

      const hit = verified.get(token);
      if (hit !== undefined) {
        const key = hit.claims[claimName];
        if (typeof key === 'string' && ctx.entities.jwtSecretByKey(key) === hit.cred) return finish(ctx, hit.cred, hit.claims);
      }

      let decoded: Decoded;
      try {
        decoded = decodeJwt(token);
      } catch (err) {
        return fail(`Bad token; ${(err as Error).message}`);
      }
      const keyValue = decoded.claims[claimName] ?? decoded.header[claimName];
      if (keyValue === undefined || keyValue === null || keyValue === false) return fail(`No mandatory '${claimName}' in claims`);
      if (keyValue === '') return fail(`Invalid '${claimName}' in claims`);
      const cred = typeof keyValue === 'string' ? ctx.entities.jwtSecretByKey(keyValue) : null;
      if (cred === null) return fail(`No credentials found for given '${claimName}'`);
      if (decoded.header.alg !== cred.algorithm) return fail('Invalid algorithm');
      const key = keyFor(cred);
      if (key === null) return fail('Invalid key/secret');
      return compactVerify(token, key, { algorithms: [cred.algorithm] }).then(
        () => {
          // Only tokens whose key is in the payload are remembered (the hit check reads it there).
          if (typeof decoded.claims[claimName] === 'string') verified.set(token, { cred, claims: decoded.claims });
          return finish(ctx, cred, decoded.claims);
        },
        () => fail('Invalid signature'),
      );
    };

    return { access: authAccess(conf, 'jwt', attempt) };
  },
});
