/**
 * The config module's only door: entity schemas, per-entity normalization (Admin API and
 * declarative), the decK loader and dumper, integrity checks and secret references.
 */
export type * from './types.ts';
export { emptyConfig, entityNames } from './types.ts';
export { entityInputSchemas, foreignRefSchema, protocols } from './schemas.ts';
export { normalizeEntity, scopeAllowed, toEntityRef } from './normalize.ts';
export { descriptorOf, entities, isEntityName, referencesTo } from './entities/index.ts';
export type { EntityDescriptor, ForeignKeyDescriptor, CompositeKeyDescriptor } from './entity.ts';
export type { EntityRef, NormalizeContext, NormalizeResult, RefKind } from './normalize.ts';
export { parseDeclarative, loadDeclarativeFile } from './declarative.ts';
export type { DeclarativeOptions } from './declarative.ts';
export { toDeclarative } from './dump.ts';
export { checkIntegrity } from './integrity.ts';
export type { IntegrityOptions } from './integrity.ts';
export { resolveVaultRefs, substituteDeckEnv, envVaultVariable } from './vault.ts';
export { readableErrorMap, zodIssues } from './issues.ts';
export { deterministicId, uuidV5 } from './ids.ts';
