/**
 * The plugin's own OAuth clients at the IdP (`client_id[]` with the per-client arrays) and the
 * openid-client `Configuration` used for one call: selected client, client authentication method
 * for the endpoint (RFC 6749 §2.3, OpenID Connect Core §9, RFC 7523), timeout and signal.
 */
import { randomUUID } from 'node:crypto';
import { ClientSecretBasic, ClientSecretJwt, ClientSecretPost, Configuration, None, PrivateKeyJwt, TlsClientAuth, allowInsecureRequests, customFetch, modifyAssertion } from 'openid-client';
import type { ClientAuth, ModifyAssertionOptions, PrivateKey, ServerMetadata } from 'openid-client';
import { SignJWT, exportJWK, generateKeyPair, importJWK } from 'jose';
import type { CryptoKey as JoseCryptoKey, JWK } from 'jose';
import { GatewayError } from '../../../errors.ts';
import type { KeyValueStore } from '../../../storage/ports.ts';
import type { IncomingView } from '../../sdk.ts';
import type { OidcConfig } from './schema.ts';
import type { CallExtras, IdpHttp } from './http.ts';
import { describe } from './errors.ts';
import { MtlsClient, type MtlsCall } from './mtls-client.ts';

/** Where a call goes; picks the `*_endpoint_auth_method` override. */
export type Purpose = 'token' | 'introspection' | 'revocation' | 'par' | 'userinfo';

/** Key in the shared key-value store of the plugin-generated `private_key_jwt` keys. */
export const GENERATED_JWKS_KEY = 'openid-connect:jwks';

/**
 * Algorithms the plugin can generate a `private_key_jwt` key for (`client_alg`, default RS256).
 * One key per algorithm, each under its own store key (RS256 under {@link GENERATED_JWKS_KEY},
 * as before), so that adding one is an atomic `add` and never rewrites another.
 */
export const generatedKeyAlgs = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
type GeneratedAlg = (typeof generatedKeyAlgs)[number];

/** Store key of the generated key for `alg`. */
export function generatedKeyName(alg: GeneratedAlg): string {
  return alg === 'RS256' ? GENERATED_JWKS_KEY : `${GENERATED_JWKS_KEY}:${alg}`;
}

const hmacAlgs = new Set(['HS256', 'HS384', 'HS512']);

/** How often the plugin-generated private_key_jwt key is re-read from the shared store. */
const GENERATED_KEY_RECHECK_MS = 60_000;

const supportedMethods = new Set(['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none']);

/** A private key of the client with the options its JWS header needs (openid-client's shapes). */
export interface SigningKey {
  key: PrivateKey;
  options: ModifyAssertionOptions;
}

/** One configured client (index into the per-client arrays). */
export interface OidcClient {
  index: number;
  id: string;
  secret: string | null;
}

/** A per-client array entry, falling back to the first entry when the array is shorter. */
export function perClient<T>(values: readonly T[] | null, index: number): T | null {
  if (!values || values.length === 0) return null;
  return values[index] ?? values[0] ?? null;
}

/** The configured clients, made once per plugin instance (selection then allocates nothing). */
export function configuredClients(cfg: OidcConfig): readonly OidcClient[] {
  return (cfg.client_id ?? []).map((id, index) => ({ index, id, secret: perClient(cfg.client_secret, index) }));
}

/** The client `wanted` names, by id or by 1-based index; the first client otherwise. */
function clientNamed(clients: readonly OidcClient[], wanted: string | null): OidcClient {
  if (wanted !== null) {
    const byId = clients.findIndex((c) => c.id === wanted);
    if (byId >= 0) return clients[byId];
    const n = Number(wanted);
    if (Number.isInteger(n) && n >= 1 && n <= clients.length) return clients[n - 1];
  }
  return clients[0];
}

/**
 * Pick the client for a request: the `client_arg` parameter (header, then query, then, when
 * `body` allows, the body) names a client by id or by 1-based index; no match → the first
 * client; null without any client. Synchronous unless the body has to be read.
 */
export function selectClient(cfg: OidcConfig, clients: readonly OidcClient[], request: IncomingView, body = true): OidcClient | null | Promise<OidcClient> {
  if (clients.length <= 1) return clients[0] ?? null;
  const wanted = request.header(cfg.client_arg) ?? (request.rawQuery === '' ? null : request.query.get(cfg.client_arg));
  if (wanted != null || !body || request.method === 'GET' || request.method === 'HEAD') return clientNamed(clients, wanted ?? null);
  return clientInBody(cfg, request).then((w) => clientNamed(clients, w));
}

async function clientInBody(cfg: OidcConfig, request: IncomingView): Promise<string | null> {
  const form = await request.form();
  const wanted = form?.get(cfg.client_arg) ?? null;
  if (wanted !== null) return wanted;
  const json = await request.json();
  const v = json && typeof json === 'object' ? (json as Record<string, unknown>)[cfg.client_arg] : undefined;
  return typeof v === 'string' || typeof v === 'number' ? String(v) : null;
}

export interface ClientsOptions {
  cfg: OidcConfig;
  http: IdpHttp;
  sharedKv: KeyValueStore;
  insecure: boolean;
}

/** Builds `Configuration`s and caches the (possibly expensive) client-auth objects. */
export class Clients {
  readonly #o: ClientsOptions;
  readonly #auth = new Map<string, Promise<ClientAuth>>();
  readonly #loadedAt = new Map<string, number>();
  /** `tls_client_auth` / `self_signed_tls_client_auth`: certificate, pool, endpoint aliases. */
  readonly mtls: MtlsClient;
  readonly #keys = new Map<string, Promise<SigningKey>>();

  constructor(options: ClientsOptions) {
    this.#o = options;
    this.mtls = new MtlsClient(options.cfg, options.http);
  }

  /**
   * The mTLS part of a call by `client` to the `purpose` endpoint when its method presents a
   * client certificate (user info is a bearer call: never), else null.
   */
  mtlsCall(client: OidcClient, purpose: Purpose, meta: ServerMetadata): MtlsCall | null {
    if (purpose === 'userinfo') return null;
    return this.mtls.call(this.authMethod(client, purpose, meta), meta);
  }

  /** The client authentication method for `purpose`: endpoint override, `client_auth`, discovery, basic. */
  authMethod(client: OidcClient, purpose: Purpose, meta: ServerMetadata): string {
    const cfg = this.#o.cfg;
    const override =
      purpose === 'token' ? cfg.token_endpoint_auth_method
      : purpose === 'introspection' ? cfg.introspection_endpoint_auth_method
      : purpose === 'revocation' ? cfg.revocation_endpoint_auth_method
      // PAR authenticates as the token endpoint does (RFC 9126 §2) unless told otherwise.
      : purpose === 'par' ? (cfg.pushed_authorization_request_endpoint_auth_method ?? cfg.token_endpoint_auth_method)
      : null;
    const configured = override ?? perClient(cfg.client_auth, client.index);
    if (configured) return configured;
    const advertised =
      purpose === 'introspection' ? meta.introspection_endpoint_auth_methods_supported
      : purpose === 'revocation' ? meta.revocation_endpoint_auth_methods_supported
      : meta.token_endpoint_auth_methods_supported;
    // The first advertised method the configured credentials allow (reference §4.13): a secret
    // for client_secret_*, a client_jwk for private_key_jwt; without either, a generated key or
    // none. A configured credential is never passed over for one the IdP cannot know.
    const hasJwk = !!perClient(cfg.client_jwk, client.index);
    const bare = !client.secret && !hasJwk;
    const allowed = (m: string): boolean =>
      m === 'private_key_jwt' ? hasJwk || bare : m === 'none' ? bare : client.secret !== null && client.secret !== '';
    const usable = (advertised ?? []).find((m) => supportedMethods.has(m) && allowed(m));
    return usable ?? 'client_secret_basic';
  }

  /**
   * An openid-client Configuration for one call by `client` to the `purpose` endpoint, with the
   * request's signal and any extra headers bound to its fetch.
   */
  async configuration(meta: ServerMetadata, client: OidcClient, purpose: Purpose, extras: CallExtras = {}): Promise<Configuration> {
    const method = this.authMethod(client, purpose, meta);
    const mtls = purpose === 'userinfo' ? null : this.mtls.call(method, meta);
    if (mtls !== null) return this.build(mtls.meta, client.id, client.secret, TlsClientAuth(), { ...extras, pools: mtls.pools }, true);
    let auth: ClientAuth;
    try {
      auth = await this.#clientAuth(client, method);
    } catch (err) {
      // A key that cannot sign (client_jwk, client_alg) is the gateway's misconfiguration, not
      // the IdP's verdict on the caller's credentials: 500, with the reason in the log.
      throw new GatewayError('GW_PLUGIN_FAILED', 'The client authentication to the identity provider is misconfigured', {
        status: 500,
        detail: `${method} for client ${client.index + 1}: ${describe(err)}`,
        cause: err,
      });
    }
    return this.build(meta, client.id, client.secret, auth, extras);
  }

  /**
   * A Configuration for arbitrary client credentials (the client credentials grant's caller).
   * `mtlsAliases`: the calls go to the mTLS endpoint aliases (RFC 8705 §5).
   */
  build(meta: ServerMetadata, clientId: string, secret: string | null, auth: ClientAuth, extras: CallExtras = {}, mtlsAliases = false): Configuration {
    const metadata = { ...(secret ? { client_secret: secret } : {}), ...(mtlsAliases ? { use_mtls_endpoint_aliases: true } : {}) };
    const config = new Configuration(meta, clientId, Object.keys(metadata).length > 0 ? metadata : undefined, auth);
    config[customFetch] = this.#o.http.fetchFor(extras);
    if (this.#o.insecure) allowInsecureRequests(config);
    return config;
  }

  #clientAuth(client: OidcClient, method: string): Promise<ClientAuth> {
    const key = `${client.index}:${method}`;
    let auth = this.#auth.get(key);
    // The generated key can be rotated through the Admin API (DELETE /openid-connect/jwks):
    // re-read it now and then instead of signing with a deleted key until the next reload.
    const generated = method === 'private_key_jwt' && !perClient(this.#o.cfg.client_jwk, client.index);
    if (auth && generated && Date.now() - (this.#loadedAt.get(key) ?? 0) > GENERATED_KEY_RECHECK_MS) auth = undefined;
    if (!auth) {
      this.#loadedAt.set(key, Date.now());
      auth = this.#makeAuth(client, method);
      auth.catch(() => this.#auth.delete(key));
      this.#auth.set(key, auth);
    }
    return auth;
  }

  /**
   * The client's private signing key: its `client_jwk`, else the plugin-generated key for
   * `client_alg` (default RS256). Signs `private_key_jwt` assertions and JAR request objects
   * (RFC 9101 §4: the client's own key). The generated key is re-read now and then (rotation).
   */
  signingKey(client: OidcClient): Promise<SigningKey> {
    const key = `${client.index}:signing`;
    let found = this.#keys.get(key);
    const generated = !perClient(this.#o.cfg.client_jwk, client.index);
    if (found && generated && Date.now() - (this.#loadedAt.get(key) ?? 0) > GENERATED_KEY_RECHECK_MS) found = undefined;
    if (!found) {
      this.#loadedAt.set(key, Date.now());
      found = this.#privateKey(client);
      found.catch(() => this.#keys.delete(key));
      this.#keys.set(key, found);
    }
    return found;
  }

  async #privateKey(client: OidcClient): Promise<SigningKey> {
    const cfg = this.#o.cfg;
    const jwk = perClient(cfg.client_jwk, client.index);
    const configured = perClient(cfg.client_alg, client.index);
    const wanted = configured && !hmacAlgs.has(configured) ? configured : null;
    if (jwk) {
      const clean = Object.fromEntries(Object.entries(jwk).filter(([, v]) => v !== null)) as JWK;
      const alg = wanted ?? clean.alg ?? keyAlg(clean);
      const key = await importJWK(clean, alg);
      return { key: { key: key as JoseCryptoKey, kid: clean.kid }, options: headerAlg(alg) };
    }
    const alg = (generatedKeyAlgs as readonly string[]).includes(wanted ?? '') ? (wanted as GeneratedAlg) : 'RS256';
    const generated = await loadOrCreateGeneratedKey(this.#o.sharedKv, alg);
    const key = await importJWK(generated, alg);
    return { key: { key: key as JoseCryptoKey, kid: generated.kid }, options: headerAlg(alg) };
  }

  async #makeAuth(client: OidcClient, method: string): Promise<ClientAuth> {
    const cfg = this.#o.cfg;
    const secret = client.secret ?? undefined;
    switch (method) {
      case 'client_secret_post':
        return ClientSecretPost(secret);
      case 'client_secret_jwt': {
        // `client_alg` (HS* only for this method; default HS256). An entry that is not HS* is
        // meant for another client's private_key_jwt (per-client arrays fall back to the first).
        const configured = perClient(cfg.client_alg, client.index);
        const alg = configured && hmacAlgs.has(configured) ? configured : 'HS256';
        return alg === 'HS256' ? ClientSecretJwt(secret) : clientSecretJwt(secret ?? '', alg);
      }
      case 'none':
        return None();
      case 'private_key_jwt': {
        const { key, options } = await this.#privateKey(client);
        return PrivateKeyJwt(key, options);
      }
      default:
        return ClientSecretBasic(secret);
    }
  }
}

/**
 * The algorithm of a `client_jwk` that names none (RFC 7517 §4.4 makes `alg` optional): RS256 for
 * RSA keys (Kong's default), and the one algorithm an EC curve (RFC 7518 §3.4) or an Ed25519 key
 * (RFC 8037) can sign with.
 */
function keyAlg(jwk: JWK): string {
  if (jwk.kty === 'EC') return jwk.crv === 'P-384' ? 'ES384' : jwk.crv === 'P-521' ? 'ES512' : 'ES256';
  if (jwk.kty === 'OKP') return 'EdDSA';
  return 'RS256';
}

/**
 * openid-client derives an assertion's `alg` from the key; for Ed25519 keys that is the fully
 * specified `Ed25519` (RFC 9864), which IdPs that only know `EdDSA` (RFC 8037) refuse: keep the
 * configured name.
 */
function headerAlg(alg: string): ModifyAssertionOptions {
  return alg === 'EdDSA' ? { [modifyAssertion]: (header) => void (header.alg = 'EdDSA') } : {};
}

/**
 * `client_secret_jwt` with HS384/HS512 (openid-client's ClientSecretJwt signs HS256 only): the
 * same assertion (OpenID Connect Core §9, RFC 7523 §3: iss = sub = client_id, aud = the issuer,
 * jti, iat/nbf, exp one minute later), signed by jose with the configured algorithm.
 */
function clientSecretJwt(secret: string, alg: string): ClientAuth {
  const key = new TextEncoder().encode(secret);
  return async (as, client, body) => {
    const now = Math.floor(Date.now() / 1000);
    const assertion = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg })
      .setIssuer(client.client_id)
      .setSubject(client.client_id)
      .setAudience(as.issuer)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + 60)
      .sign(key);
    body.set('client_id', client.client_id);
    body.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    body.set('client_assertion', assertion);
  };
}

/**
 * The plugin-managed `private_key_jwt` key for `alg` (default RS256), stored in the shared
 * key-value store so that every worker signs with the same key and the Admin API can publish its
 * public part.
 */
export async function loadOrCreateGeneratedKey(kv: KeyValueStore, alg: GeneratedAlg = 'RS256'): Promise<JWK> {
  const name = generatedKeyName(alg);
  const existing = await kv.get(name);
  if (existing) return (JSON.parse(existing) as { keys: JWK[] }).keys[0];
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  const jwk = await exportJWK(privateKey);
  jwk.alg = alg;
  jwk.use = 'sig';
  jwk.kid = randomUUID();
  // add() is atomic: when two workers race, both end up using the winner's key.
  await kv.add(name, JSON.stringify({ keys: [jwk] }));
  return loadOrCreateGeneratedKey(kv, alg);
}

/** The public JWK set of the generated keys (private members removed), or null when none exists. */
export async function publicGeneratedJwks(kv: KeyValueStore): Promise<{ keys: JWK[] } | null> {
  const keys: JWK[] = [];
  for (const alg of generatedKeyAlgs) {
    const raw = await kv.get(generatedKeyName(alg));
    if (raw) keys.push(...(JSON.parse(raw) as { keys: JWK[] }).keys);
  }
  if (keys.length === 0) return null;
  const privateMembers = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'r', 't']);
  return { keys: keys.map((k) => Object.fromEntries(Object.entries(k).filter(([name]) => !privateMembers.has(name))) as JWK) };
}

/** Delete every generated key (the Admin API's DELETE /openid-connect/jwks: a rotation). */
export async function deleteGeneratedKeys(kv: KeyValueStore): Promise<void> {
  for (const alg of generatedKeyAlgs) await kv.delete(generatedKeyName(alg));
}
