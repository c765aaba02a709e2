/**
 * Shared types of the plugin's steps: the per-instance runtime (config, issuer, clients, caches)
 * and the per-request state that flows through the access pipeline (access.ts). This module
 * depends on no step and not on the top of the plugin (no import circle).
 */
import type { JWK } from 'jose';
import type { Credential, Logger, RequestContext } from '../../sdk.ts';
import type { KeyValueStore } from '../../../storage/ports.ts';
import type { Consumer } from '../../../config/types.ts';
import type { ConsumerGroup } from '../../../config/credentials.ts';
import type { OidcConfig, AuthMethod } from './schema.ts';
import type { IssuerCache } from './issuer.ts';
import type { Clients, OidcClient } from './clients.ts';
import type { IdpHttp } from './http.ts';
import type { SingleFlight, TtlCache } from './caches.ts';
import type { BodyFields } from './body-fields.ts';
import type { BrowserFlows, SessionData } from './browser/index.ts';
import type { ClusterCache } from './cluster-cache.ts';
import type { DpopState } from './dpop-state.ts';

/** A step's answer: the value itself when it is known at once, a Promise when I/O is needed. */
export type Sync<T> = T | Promise<T>;

export type Location = 'header' | 'query' | 'body' | 'cookie';

/** Where a credential was found, so `hide_credentials` can remove exactly that. */
export interface Source {
  location: Location;
  /** Header, parameter or cookie name (lower-case for headers). */
  name: string;
}

export interface FoundToken extends Source {
  token: string;
  /** The token's live cached verification (a JWT verified before), found while reading it. */
  verified?: VerifiedToken;
  /** Sent as `Authorization: DPoP <token>` (RFC 9449 §7.1) rather than with the Bearer scheme. */
  scheme?: 'dpop';
}

/** One header the plugin writes. */
export interface HeaderWrite {
  name: string;
  value: string;
}

/** What the plugin leaves in `ctx.state` for later phases and plugins (Kong 3.14: the token). */
export interface OidcRequestState {
  method: AuthMethod;
  accessToken: string | null;
  downstream: HeaderWrite[];
}

/** `ctx.state` key of {@link OidcRequestState}. */
export const STATE_KEY = 'openid-connect';

/** JSON object claims (token payload, introspection or user info response). */
export type Claims = Record<string, unknown>;

/** Tokens the request ended up with (from the client or from a token endpoint). */
export interface TokenSet {
  access_token?: string;
  id_token?: string;
  refresh_token?: string;
  token_type?: string;
  expires_in?: number;
}

export interface TokenEndpointResult {
  tokens: TokenSet;
  /** Unix seconds when the access token expires, when known. */
  expiresAt: number | null;
  /** Token endpoint response headers named in `token_headers_replay` (prefixed), for the client. */
  replay?: HeaderWrite[];
}

/** An introspection or user info answer: its claims and, when the IdP answered with a JWT, that JWT. */
export interface IdpAnswer {
  claims: Claims;
  jwt: string | null;
}

/** A verified JWT access token, as the verified-token cache keeps it. */
export interface VerifiedToken {
  readonly token: string;
  readonly claims: Claims;
  /**
   * The `bearer` step's Outcome for this token, made once and shared by every request that sends
   * it in the same place (the later steps memoize what they derive from it per Outcome).
   */
  outcome: Outcome | null;
  /** Where the token was last found (shared by the requests that send it there: no allocation). */
  found: FoundToken | null;
  /** The public JWK that verified it, when `*_access_token_jwk_header` asks for it. */
  jwk?: JWK | null;
}

/** Per-instance state built once by `create()`. */
export interface Runtime {
  readonly cfg: OidcConfig;
  readonly issuer: IssuerCache;
  readonly clients: Clients;
  readonly http: IdpHttp;
  readonly log: Logger;
  readonly sharedKv: KeyValueStore;
  readonly salt: string;
  readonly enabled: ReadonlySet<AuthMethod>;
  /** The browser flows (sessions, authorization code, logout), when a browser method is enabled. */
  readonly browser: BrowserFlows | null;
  /** DPoP replay cache and nonces, when `proof_of_possession_dpop` is not `off`. */
  readonly dpop: DpopState | null;
  readonly caches: {
    /** By `memoKey` of the token. */
    readonly verified: TtlCache<VerifiedToken>;
    readonly introspection: TtlCache<IdpAnswer>;
    readonly userinfo: TtlCache<IdpAnswer>;
    readonly tokens: TtlCache<TokenEndpointResult>;
  };
  /** Introspection results / token responses shared through Redis (`cluster_cache_*`), or null. */
  readonly cluster: ClusterCache | null;
  /** Concurrent identical IdP calls share one request. */
  readonly flights: {
    readonly introspection: SingleFlight<IdpAnswer>;
    readonly userinfo: SingleFlight<IdpAnswer>;
    readonly tokens: SingleFlight<TokenEndpointResult>;
  };
  now(): number;
}

/**
 * What a successful authentication step produces. Outcomes of a cached token or of an opened
 * session are shared between requests: never changed once made.
 */
export interface Outcome {
  method: AuthMethod;
  tokens: TokenSet;
  /** Verified (or, for opaque tokens, IdP-vouched) access token claims, when a JWT. */
  accessClaims: Claims | null;
  idClaims: Claims | null;
  introspection: Claims | null;
  userinfo: Claims | null;
  /** Where the client's credential was, for `hide_credentials`. */
  used: Source[];
  /** Who the request is, when the method itself decides it (`kong_oauth2`) instead of the claims. */
  identity?: MappingResult;
  /** The JWKs that verified the access token and the ID token (`*_jwk_header`). */
  accessJwk?: JWK | null;
  idJwk?: JWK | null;
  /** The JWT-formatted introspection / user info responses (`*_introspection_jwt_header`, `*_user_info_jwt_header`). */
  introspectionJwt?: string | null;
  userinfoJwt?: string | null;
  /** Token endpoint response headers replayed to the client (`token_headers_replay`). */
  replay?: readonly HeaderWrite[];
}

/** Who a request is: the consumer mapping (steps/authorize.ts) or a method's own (`kong_oauth2`). */
export interface MappingResult {
  consumer: Consumer | null;
  credential: Credential | null;
  groups: string[] | null;
  /** `consumer_groups_claim` matches (consumer-groups.ts); null = the consumer's memberships. */
  consumerGroups: ConsumerGroup[] | null;
}

/** Per-request state; credential lookups are memoized so each location is read once. */
export interface RequestState {
  readonly ctx: RequestContext;
  /**
   * When the request arrived, on the gateway's clock (`ctx.startedAt`): what a cached token's
   * expiry is checked against, as Kong checks against its cached `ngx.now()`. A clock read costs
   * about as much as the rest of a cached bearer request's search.
   */
  readonly nowMs: number;
  readonly body: BodyFields;
  /** The plugin's own client selected by `client_arg` (null when none is configured). */
  client: OidcClient | null;
  bearer(): Sync<FoundToken | null>;
  /** The session of this request: loaded, made by the callback, or saved after another method. */
  session: SessionData | null;
  /** Set when `bearer` or `introspection` has decided about the bearer token (success or not). */
  bearerHandled: boolean;
}
