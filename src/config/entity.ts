/**
 * The entity descriptor: everything the gateway needs to know about one entity kind, in one
 * place (Kong keeps the same facts in `kong/db/schema/entities/*.lua`). The stores (memory,
 * SQLite, PostgreSQL), the Admin API (collections, nested collections, lookups by endpoint key,
 * unique checks, cascading deletes), the declarative loader, the dumper, the integrity checks and
 * `config sync` all read these descriptors instead of keeping their own per-entity tables.
 *
 * Adding an entity = its row type and name in `types.ts`, one descriptor file in `entities/`
 * (this shape), one line in `entities/index.ts`. See docs/architecture.md, "Adding an entity".
 */
import type { z } from 'zod';
import type { ValidationIssue } from '../errors.ts';
import type { PluginRegistry } from '../plugins/registry.ts';
import type { EntityName, EntityOf } from './types.ts';

/** Entity kinds a foreign key can point to. */
export type RefKind = EntityName;

/** A reference as written: by id or by endpoint key (service/route name, consumer username). */
export interface EntityRef {
  id?: string;
  name?: string;
}

export interface NormalizeContext<E extends EntityName> {
  registry: PluginRegistry;
  /** Milliseconds since epoch; timestamps are stored in seconds, as Kong does. */
  now: number;
  /** The stored entity this input updates (PUT/PATCH). Its id and created_at are kept. */
  existing?: EntityOf<E>;
  /** PATCH semantics: `input` holds only the fields to change; they are merged onto `existing`. */
  partial?: boolean;
  /** Id to use when the input has none (the declarative loader's deterministic ids). Default: random v4. */
  id?: string;
  /**
   * Turn a reference into an id. Return null when nothing matches. Without a resolver, only
   * references by id are accepted (as is, unchecked).
   */
  resolve?: (kind: RefKind, ref: EntityRef) => string | null;
}

export type NormalizeResult<T> = { ok: true; value: T } | { ok: false; issues: ValidationIssue[] };

/** A foreign key: the field (`service`), the entity it points at, what deleting that entity does. */
export interface ForeignKeyDescriptor {
  readonly field: string;
  readonly entity: EntityName;
  /**
   * Deleting the referenced entity: `cascade` deletes this row too (recursively), `restrict`
   * refuses the delete while a row still points at it (Kong's `on_delete`).
   */
  readonly onDelete: 'cascade' | 'restrict';
  /** decK: rows may be written nested under the referenced entity, under this entity's name. */
  readonly nested: boolean;
}

/**
 * A unique key over several fields (Kong's composite `unique` / `cache_key`). Null parts count as
 * values (two global `cors` plugins collide).
 */
export interface CompositeKeyDescriptor {
  readonly name: string;
  readonly fields: readonly string[];
  /**
   * True when a part may be null: SQL tables then keep the joined parts in one unique
   * `<name>_key` column (SQL's UNIQUE never compares nulls); else a UNIQUE over the part columns.
   */
  readonly nullable: boolean;
  /** Where a duplicate is reported (a field of the entity; '' = the entity as a whole). */
  readonly issueField: string;
  /** The message for a duplicate in a declarative file. */
  readonly duplicateMessage: (row: Record<string, unknown>) => string;
}

export interface EntityDescriptor<E extends EntityName = EntityName> {
  /** The entity's name: table name, decK top-level key, `/schemas/{name}`, `/tags` entity_name. */
  readonly name: E;
  /** The singular, as messages and Kong's `flattened_errors` entity_type say it (`service`). */
  readonly singular: string;
  /** Admin API collection, without the slash (`services`, Kong's `key-auths`). */
  readonly adminPath: string;
  /** Admin API collection under a parent (`/consumers/{c}/key-auth`); default adminPath. */
  readonly nestedAdminPath?: string;
  /**
   * False: no top-level collection (`/targets`, `/targets/{t}`, `/targets/{t}/upstream` answer
   * 404, as Kong's): the rows are reached under their parent only. Default true.
   */
  readonly adminTopLevel?: boolean;
  /** True: PUT on an entity updates an existing row only (404 when missing), as Kong's targets; default upsert. */
  readonly putUpdatesOnly?: boolean;
  /**
   * What a non-UUID path segment (`/services/{name}`) and a reference by name are matched
   * against. A key that is not itself unique (ACL `group`) is looked up under the parent only.
   */
  readonly endpointKey: string | null;
  /**
   * A non-UUID path segment that is not an endpoint key may name a row of another kind pointing
   * here (Kong's `/certificates/{sni name}`: `{ entity: 'snis', key: 'name', field: 'certificate' }`).
   */
  readonly keyAlias?: { readonly entity: EntityName; readonly key: string; readonly field: string };
  /**
   * A string in this kind's nested decK list stands for a row with this field (Kong's certificate
   * `snis: [a.example.com]` shorthand for `snis: [{name: a.example.com}]`).
   */
  readonly nestedStringField?: string;
  /** Fields unique on their own (null values do not collide). A foreign-key field compares ids. */
  readonly uniqueKeys: readonly string[];
  readonly compositeKeys: readonly CompositeKeyDescriptor[];
  /** In the order the fields appear in the entity. */
  readonly foreignKeys: readonly ForeignKeyDescriptor[];
  /**
   * Array fields holding ids of another kind (Kong's `services.ca_certificates`): every id must
   * exist, and deleting a row still listed is refused.
   */
  readonly idLists?: readonly { readonly field: string; readonly entity: EntityName }[];
  /** SQL column of a key field whose name cannot be one (ACL `group` → `grp`); default the field name. */
  readonly columnNames?: Readonly<Record<string, string>>;
  /** The accepted input shape (Admin API bodies, declarative entries): Kong's field names and defaults. */
  readonly schema: z.ZodObject;
  /**
   * Kong's `entity_checks` for this entity as Kong's `GET /schemas/{entity}` prints them
   * (kong/api/api_helpers.lua `schema_to_jsonable`): each check a single-key object
   * (`{ at_least_one_of: ['custom_id', 'username'] }`), in Kong's order, functions dropped
   * (a `custom_entity_check` keeps its `field_sources`), Lua's `ngx.null` as `null`. Plain data
   * for tools that read the schema; `normalize` is what enforces the checks. Default: none (`[]`).
   */
  readonly kongEntityChecks?: readonly Readonly<Record<string, unknown>>[];
  /**
   * Validates one input and fills defaults, resolving foreign keys through `ctx.resolve`.
   * Entities without rules beyond their schema use `normalizeSimple` (normalize-kit.ts).
   */
  normalize(input: Record<string, unknown>, ctx: NormalizeContext<E>): NormalizeResult<EntityOf<E>>;
  /** PATCH: lays `input` over the stored row (default: a shallow merge). */
  readonly mergePatch?: (existing: Record<string, unknown>, input: Record<string, unknown>) => Record<string, unknown>;
  /**
   * The natural key deterministic ids are derived from (declarative files without ids, so that
   * loading the same file twice gives the same ids). `path` is the entry's place in the document.
   * `from: 'input'` uses the raw entry (needed by kinds others refer to: their id must be known
   * before references are resolved); `'entity'` the normalized row (ids of what it points at).
   */
  readonly naturalKey: { readonly from: 'input' | 'entity'; readonly key: (row: Record<string, unknown>, path: string) => string };
  /** decK dumps write rows nested under the entity this foreign key points at (routes under services). */
  readonly dumpNestedUnder?: string;
  /**
   * decK dumps write a row nested under the entity this foreign key points at when that is its
   * only reference (plugins scoped to a consumer group alone, under `consumer_groups[].plugins`).
   */
  readonly dumpNestedUnderAlone?: string;
  /**
   * decK's nested reference lists standing for rows of this kind (a link between two entities,
   * such as consumer-group membership): under an entity of `under`'s kind, `key` lists
   * references to entities of `names`'s kind (`consumers[].groups: [{name: gold}]`). Each
   * reference is an object naming the entity by one of `by` (its `tags` may be repeated and must
   * then match). The first form is what dumps write.
   */
  readonly nestedRefLists?: readonly { readonly under: string; readonly key: string; readonly names: string; readonly by: readonly string[] }[];
  /** How `config diff/sync` names a row (`ref` turns a foreign key into the referenced row's name). */
  readonly label?: (row: Record<string, unknown>, ref: (v: unknown) => string) => string;
}

/** The id in a foreign key value `{ id }`, else null. */
export function fkId(v: unknown): string | null {
  return v && typeof v === 'object' && typeof (v as { id?: unknown }).id === 'string' ? (v as { id: string }).id : null;
}

function part(d: EntityDescriptor, row: Record<string, unknown>, field: string): string | null {
  const v = row[field];
  if (d.foreignKeys.some((f) => f.field === field)) return fkId(v);
  return v === undefined || v === null ? null : String(v);
}

/** The value of a single-field unique key (null: no value, never collides). */
export function uniqueValue(d: EntityDescriptor, row: Record<string, unknown>, field: string): string | null {
  return part(d, row, field);
}

/**
 * The value of a composite key: its parts joined by `|` (null → empty), each part with `\` and `|`
 * escaped so that different tuples never give the same text.
 */
export function compositeValue(d: EntityDescriptor, row: Record<string, unknown>, key: CompositeKeyDescriptor): string {
  return key.fields.map((f) => (part(d, row, f) ?? '').replaceAll('\\', '\\\\').replaceAll('|', '\\|')).join('|');
}

/** The label a unique violation names (`consumers.username`, `acls.consumer+group`). */
export function compositeLabel(key: CompositeKeyDescriptor): string {
  return key.fields.join('+');
}
