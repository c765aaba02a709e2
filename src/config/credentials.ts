/**
 * The consumer credential entities and consumer groups (row types live in types.ts with every
 * other entity; re-exported here for the plugins' convenience).
 */
export type { BasicAuthCredential, ConsumerGroup, ConsumerGroupMember, JwtAlgorithm, JwtSecret, KeyAuthCredential, OAuth2Credential } from './types.ts';
