/**
 * The consumer credential entities (Kong's `keyauth_credentials`, `basicauth_credentials`,
 * `jwt_secrets`, `oauth2_credentials`) and consumer groups, as stored and as the Admin API
 * returns them. Field names are Kong's.
 */
import type { ForeignKey } from './types.ts';

export interface KeyAuthCredential {
  id: string;
  consumer: ForeignKey;
  key: string;
  /**
   * Kong's `ttl`: seconds the key lives after it was written (null = forever). Stored with
   * `expires_at` (Unix seconds), which is what requests are checked against.
   */
  ttl: number | null;
  expires_at: number | null;
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
