/**
 * Zod schemas of the entities as they are *accepted* (Admin API bodies and declarative entries):
 * ids optional, foreign keys as `{ id }`, `{ name }` or a bare name/id string, Kong's defaults.
 * Entity-level rules that span several fields (service `url` vs `host`, a route's matching
 * fields, a consumer's identity) live in normalize.ts, next to the code that builds the entity.
 *
 * Field names and defaults: Kong's kong/db/schema/entities/{services,routes,consumers,plugins}.lua
 * and the acl plugin's daos.
 */
import { z } from 'zod';
import { between } from './between.ts';
import { checkIpOrCidr } from './ip-cidr.ts';
import { checkHeaderName, checkHostname, checkMethod, checkName, checkRouteHost, checkRoutePath, checkServicePath, checkTag, checkWildcardHost, uuidPattern } from './fields.ts';

/** Kong's protocol names, sorted as Kong's constants.PROTOCOLS (its messages and `one_of` list them in this order). */
export const protocols = ['grpc', 'grpcs', 'http', 'https', 'tcp', 'tls', 'tls_passthrough', 'udp', 'ws', 'wss'] as const;

/** A string schema with one of our `(value) => message | null` checks attached. */
export function checked(check: (v: string) => string | null) {
  return z.string().superRefine((v, ctx) => {
    const message = check(v);
    if (message !== null) ctx.addIssue({ code: 'custom', message });
  });
}


export const uuidSchema = z.string().regex(uuidPattern, { error: 'expected a valid UUID' });
const nameSchema = checked((v) => (v === '' ? 'length must be at least 1' : checkName(v)));
/** Kong's `typedefs.tags`, a set (`kongSet`: GET /schemas shows `"type": "set"`). */
export const tagsSchema = z.array(checked(checkTag)).meta({ kongSet: true }).nullable().default(null);
const protocolSchema = z.enum(protocols);
export const timestampSchema = z.int().min(0).optional();
/** Kong: timeouts are 1 .. 2^31 - 2 milliseconds. */
const timeoutSchema = between(z.int(), 1, 2 ** 31 - 2).default(60000);
const portSchema = between(z.int(), 0, 65535);

/**
 * A reference to another entity. Canonical form `{ id }`; we also accept `{ name }` (or
 * `{ username }` for consumers) and a bare string (an id or an endpoint key), as decK does.
 */
export const foreignRefSchema = z.union(
  [
    z.string().min(1),
    z.strictObject({ id: z.string().min(1) }),
    z.strictObject({ name: z.string().min(1) }),
    z.strictObject({ username: z.string().min(1) }),
  ],
  { error: 'expected a name, an id, or an object { id } / { name }' },
);
export type ForeignRefInput = z.infer<typeof foreignRefSchema>;

export const serviceInputSchema = z.strictObject({
  id: uuidSchema.optional(),
  name: nameSchema.nullable().default(null),
  /** Write-only shorthand for protocol, host, port and path. */
  url: z.string().min(1).optional(),
  // Kong: protocol and port are required with defaults `http` and 80 (80 whatever the protocol;
  // only `url` derives 443 from an https scheme); host is required, but `url` may supply it.
  protocol: protocolSchema.default('http'),
  host: checked(checkHostname).meta({ kongRequired: true }).optional(),
  port: portSchema.default(80),
  path: checked(checkServicePath).nullable().optional(),
  retries: between(z.int(), 0, 32767).default(5),
  connect_timeout: timeoutSchema,
  write_timeout: timeoutSchema,
  read_timeout: timeoutSchema,
  tls_verify: z.boolean().nullable().default(null),
  tls_verify_depth: between(z.int(), 0, 64).nullable().default(null),
  ca_certificates: z.array(z.string().min(1)).nullable().default(null),
  client_certificate: foreignRefSchema.nullable().default(null),
  enabled: z.boolean().default(true),
  tags: tagsSchema,
  created_at: timestampSchema,
  updated_at: timestampSchema,
});

/** Kong: a header value `~*regex` is a case-insensitive regex; it must compile. */
const headerValueSchema = checked((v) => {
  if (!v.startsWith('~*')) return null;
  try {
    new RegExp(v.slice(2), 'i');
    return null;
  } catch (err) {
    return `invalid regex '${v.slice(2)}': ${(err as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '')}`;
  }
});
const headerValuesSchema = z.union([headerValueSchema, z.array(headerValueSchema).min(1)]);

/**
 * Kong's `typedefs.sources` / `typedefs.destinations` element: an IP or CIDR range and/or a port
 * (at least one of them).
 */
const netSchema = () => z.strictObject({ ip: checked(checkIpOrCidr).optional(), port: portSchema.optional() }).superRefine((v, ctx) => {
  if (v.ip === undefined && v.port === undefined) ctx.addIssue({ code: 'custom', message: "at least one of these fields must be non-empty: 'ip', 'port'" });
});

export const routeInputSchema = z.strictObject({
  id: uuidSchema.optional(),
  name: nameSchema.nullable().default(null),
  // Kong's sets (type = "set"): protocols, methods, snis, sources, destinations.
  protocols: z.array(protocolSchema).min(1).meta({ kongSet: true }).default(['http', 'https']),
  methods: z.array(checked(checkMethod)).meta({ kongSet: true }).nullable().default(null),
  hosts: z.array(checked(checkRouteHost)).nullable().default(null),
  paths: z.array(checked(checkRoutePath)).nullable().default(null),
  headers: z.record(checked(checkHeaderName), headerValuesSchema).nullable().default(null),
  snis: z.array(checked(checkWildcardHost)).meta({ kongSet: true }).nullable().default(null),
  sources: z.array(netSchema()).meta({ kongSet: true }).nullable().default(null),
  destinations: z.array(netSchema()).meta({ kongSet: true }).nullable().default(null),
  strip_path: z.boolean().default(true),
  preserve_host: z.boolean().default(false),
  regex_priority: z.int().default(0),
  path_handling: z.enum(['v0', 'v1']).default('v0'),
  https_redirect_status_code: z.literal([426, 301, 302, 307, 308]).default(426),
  request_buffering: z.boolean().default(true),
  response_buffering: z.boolean().default(true),
  service: foreignRefSchema.nullable().default(null),
  tags: tagsSchema,
  created_at: timestampSchema,
  updated_at: timestampSchema,
});

export const consumerInputSchema = z.strictObject({
  id: uuidSchema.optional(),
  username: z.string().min(1).nullable().default(null),
  custom_id: z.string().min(1).nullable().default(null),
  tags: tagsSchema,
  created_at: timestampSchema,
  updated_at: timestampSchema,
});

const orderingListSchema = z.strictObject({ access: z.array(z.string().min(1)).optional() });

export const pluginInputSchema = z.strictObject({
  id: uuidSchema.optional(),
  name: z.string().min(1),
  instance_name: nameSchema.nullable().default(null),
  /** Checked by the plugin's own schema (see normalize.ts). */
  config: z.record(z.string(), z.unknown()).nullable().default(null),
  protocols: z.array(protocolSchema).min(1).meta({ kongSet: true }).default(['grpc', 'grpcs', 'http', 'https']),
  enabled: z.boolean().default(true),
  route: foreignRefSchema.nullable().default(null),
  service: foreignRefSchema.nullable().default(null),
  consumer: foreignRefSchema.nullable().default(null),
  consumer_group: foreignRefSchema.nullable().optional(),
  ordering: z.strictObject({ before: orderingListSchema.optional(), after: orderingListSchema.optional() }).nullable().default(null),
  tags: tagsSchema,
  created_at: timestampSchema,
  updated_at: timestampSchema,
});

export const aclInputSchema = z.strictObject({
  id: uuidSchema.optional(),
  consumer: foreignRefSchema,
  group: z.string().min(1),
  tags: tagsSchema,
  created_at: timestampSchema,
});

/** Kong's certificates: PEM text checked by the descriptor (tls/pem.ts). */
export const certificateInputSchema = z.strictObject({
  id: uuidSchema.optional(),
  cert: z.string().min(1),
  key: z.string().min(1),
  cert_alt: z.string().min(1).nullable().default(null),
  key_alt: z.string().min(1).nullable().default(null),
  tags: tagsSchema,
  created_at: timestampSchema,
  updated_at: timestampSchema,
});

/** Kong's snis: a wildcard host name (checked by the descriptor) and its certificate. */
export const sniInputSchema = z.strictObject({
  id: uuidSchema.optional(),
  name: z.string().min(1),
  certificate: foreignRefSchema,
  tags: tagsSchema,
  created_at: timestampSchema,
  updated_at: timestampSchema,
});

/** Kong's ca_certificates: cert_digest is computed on write (a given one is replaced). */
export const caCertificateInputSchema = z.strictObject({
  id: uuidSchema.optional(),
  cert: z.string().min(1),
  cert_digest: z.string().min(1).optional(),
  tags: tagsSchema,
  created_at: timestampSchema,
  updated_at: timestampSchema,
});

/** Input shapes per entity kind, as the Admin API and the declarative loader accept them. */
export const entityInputSchemas = {
  services: serviceInputSchema,
  routes: routeInputSchema,
  consumers: consumerInputSchema,
  plugins: pluginInputSchema,
  acls: aclInputSchema,
  certificates: certificateInputSchema,
  ca_certificates: caCertificateInputSchema,
  snis: sniInputSchema,
} as const;
