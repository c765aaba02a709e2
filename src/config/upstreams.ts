/**
 * Kong's `upstreams` and `targets` entities: types, input schemas (zod, Kong's defaults and
 * ranges) and the rules that span several fields (hash_on companions, hash_fallback limits,
 * the algorithm/hash_on write-time shorthands, target normalisation).
 *
 * Field names, defaults and ranges: Kong 3.x kong/db/schema/entities/{upstreams,targets}.lua.
 * Messages: Kong's, where Kong's schema has them (the entity checks, typedef validators).
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import type { ValidationIssue } from '../errors.ts';
import { checkHostname, checkKongHeaderName, checkKongPath, checkWildcardHost, checkTag } from './fields.ts';
import { between } from './between.ts';
import { checked, foreignRefSchema, uuidSchema } from './schemas.ts';
import type { ActiveHealthcheck, Algorithm, HashOn, Healthchecks, PassiveHealthcheck } from './types.ts';

export const algorithms = ['round-robin', 'consistent-hashing', 'least-connections', 'latency'] as const;
export const hashOns = ['none', 'consumer', 'ip', 'header', 'cookie', 'path', 'query_arg', 'uri_capture'] as const;
export const checkTypes = ['tcp', 'http', 'https', 'grpc', 'grpcs'] as const;
export type { ActiveHealthcheck, Algorithm, HashOn, Healthchecks, PassiveHealthcheck, Target, Upstream } from './types.ts';

const seconds = between(z.number(), 0, 65535);
const counter = between(z.int(), 0, 255);
const statuses = z.array(between(z.int(), 100, 999));
const checkType = z.enum(checkTypes).default('http');

const activeDefaults = (): ActiveHealthcheck => ({
  type: 'http', timeout: 1, concurrency: 10, http_path: '/', https_sni: null, https_verify_certificate: true, headers: null,
  healthy: { interval: 0, http_statuses: [200, 302], successes: 0 },
  unhealthy: { interval: 0, http_statuses: [429, 404, 500, 501, 502, 503, 504, 505], tcp_failures: 0, timeouts: 0, http_failures: 0 },
});
const passiveDefaults = (): PassiveHealthcheck => ({
  type: 'http',
  healthy: { http_statuses: [200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 306, 307, 308], successes: 0 },
  unhealthy: { http_statuses: [429, 500, 503], tcp_failures: 0, timeouts: 0, http_failures: 0 },
});

const activeSchema = z.strictObject({
  type: checkType,
  timeout: seconds.default(1),
  concurrency: between(z.int(), 1, 2 ** 31).default(10),
  http_path: checked(checkKongPath).default('/'),
  https_sni: checked(checkSni).nullable().default(null),
  https_verify_certificate: z.boolean().default(true),
  headers: z.record(checked(checkKongHeaderName), z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v : [v]))).nullable().default(null),
  healthy: z.strictObject({
    interval: seconds.default(0),
    http_statuses: statuses.default([200, 302]),
    successes: counter.default(0),
  }).default(activeDefaults().healthy),
  unhealthy: z.strictObject({
    interval: seconds.default(0),
    http_statuses: statuses.default([429, 404, 500, 501, 502, 503, 504, 505]),
    tcp_failures: counter.default(0),
    timeouts: counter.default(0),
    http_failures: counter.default(0),
  }).default(activeDefaults().unhealthy),
}).default(activeDefaults());

const passiveSchema = z.strictObject({
  type: checkType,
  healthy: z.strictObject({
    http_statuses: statuses.default(passiveDefaults().healthy.http_statuses),
    successes: counter.default(0),
  }).default(passiveDefaults().healthy),
  unhealthy: z.strictObject({
    http_statuses: statuses.default([429, 500, 503]),
    tcp_failures: counter.default(0),
    timeouts: counter.default(0),
    http_failures: counter.default(0),
  }).default(passiveDefaults().unhealthy),
}).default(passiveDefaults());

export const healthchecksSchema = z.strictObject({
  threshold: between(z.number(), 0, 100).default(0),
  active: activeSchema,
  passive: passiveSchema,
}).default({ threshold: 0, active: activeDefaults(), passive: passiveDefaults() });

export function defaultHealthchecks(): Healthchecks {
  return { threshold: 0, active: activeDefaults(), passive: passiveDefaults() };
}

/** Kong: an upstream name is a hostname — no IP address, no port. */
export function checkUpstreamName(v: string): string | null {
  if (isIP(v) !== 0 || (v.startsWith('[') && v.endsWith(']'))) return `Invalid name ('${v}'); no ip addresses allowed`;
  if (/^[^:]+:\d+$/.test(v)) return `Invalid name ('${v}'); no port allowed`;
  if (checkHostname(v) !== null) return `Invalid name ('${v}'); must be a valid hostname`;
  return null;
}

/**
 * `host[:port]` of a `host_header` (Kong's typedefs.host_with_optional_port), with the messages of
 * Kong's tools.ip.normalize_ip: an IPv6 address may stand bare or in brackets (then with a port).
 */
function checkHostWithPort(v: string): string | null {
  if (isIP(v) === 6) return null;
  if (v.startsWith('[')) {
    const m = /^\[([^\]]*)\](?::(\d+))?$/.exec(v);
    if (m === null || isIP(m[1]!) !== 6) return m === null ? 'invalid ipv6 address' : `invalid ipv6 address: ${v}`;
    return m[2] !== undefined && Number(m[2]) > 65535 ? 'invalid port number' : null;
  }
  const m = /^(.*?)(?::(\d+))?$/.exec(v)!;
  const host = m[1]!;
  if (host.includes(':')) return `invalid ipv6 address: ${v}`;
  if (m[2] !== undefined && Number(m[2]) > 65535) return 'invalid port number';
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) return isIP(host) === 4 ? null : `invalid ipv4 address: ${v}`;
  return host !== '' && checkHostname(host) === null ? null : `invalid hostname: ${v}`;
}

/** Kong's sni typedef (an active check's https_sni): a name — no IP, no port, no wildcard. */
function checkSni(v: string): string | null {
  return v.includes('*') ? `invalid value: ${v}` : checkWildcardHost(v);
}

/** Kong's cookie_name typedef (an HTTP token, tools.http.validate_http_token), with Kong's message. */
function checkCookieName(v: string): string | null {
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(v) ? null
    : 'contains one or more invalid characters. ASCII control characters (0-31;127), space, tab and the characters ()<>@,;:\\"/?={}[] are not allowed.';
}
const tagsSchema = z.array(checked(checkTag)).meta({ kongSet: true }).nullable().default(null);
const timestampSchema = z.number().min(0).optional();
const stringMin1 = z.string().min(1);

/** What the Admin API and decK files accept for an upstream (before the cross-field rules). */
export const upstreamInputSchema = z.strictObject({
  id: uuidSchema.optional(),
  name: checked(checkUpstreamName),
  // Kong's defaults (GET /schemas/upstreams shows them; decK fills them in). Whether the request
  // named algorithm or hash_on (the shorthands) is read from the raw input, not from these.
  algorithm: z.enum(algorithms).default('round-robin'),
  hash_on: z.enum(hashOns).default('none'),
  hash_fallback: z.enum(hashOns).default('none'),
  hash_on_header: checked(checkKongHeaderName).nullable().default(null),
  hash_fallback_header: checked(checkKongHeaderName).nullable().default(null),
  hash_on_cookie: checked(checkCookieName).nullable().default(null),
  hash_on_cookie_path: checked(checkKongPath).default('/'),
  hash_on_query_arg: stringMin1.nullable().default(null),
  hash_fallback_query_arg: stringMin1.nullable().default(null),
  hash_on_uri_capture: stringMin1.nullable().default(null),
  hash_fallback_uri_capture: stringMin1.nullable().default(null),
  slots: between(z.int(), 10, 65536).default(10000),
  healthchecks: healthchecksSchema,
  host_header: checked(checkHostWithPort).nullable().default(null),
  // Kong: a foreign key to a certificate, presented to every target for mTLS when the service has
  // no client_certificate of its own (and by HTTPS health checks).
  client_certificate: foreignRefSchema.nullable().default(null),
  use_srv_name: z.boolean().default(false),
  tags: tagsSchema,
  created_at: timestampSchema,
  updated_at: timestampSchema,
});
export type UpstreamInput = z.output<typeof upstreamInputSchema>;

/**
 * Kong's write-time shorthands and entity checks. `algorithm` runs first (least-connections and
 * latency reset hash_on), then `hash_on` picks the algorithm when it was given. Returns the
 * issues found (field-named), the input completed in place.
 */
export function upstreamRules(u: UpstreamInput, given: { algorithm: boolean; hash_on: boolean }): ValidationIssue[] {
  let algorithm: Algorithm = u.algorithm ?? 'round-robin';
  let hashOn: HashOn = u.hash_on ?? 'none';
  if (given.algorithm && (algorithm === 'least-connections' || algorithm === 'latency')) hashOn = 'none';
  if (given.hash_on) algorithm = hashOn === 'none' ? (algorithm === 'consistent-hashing' ? 'round-robin' : algorithm) : 'consistent-hashing';
  else if (hashOn !== 'none' && algorithm !== 'consistent-hashing') algorithm = 'consistent-hashing';
  u.algorithm = algorithm;
  u.hash_on = hashOn;
  // Kong's entity_checks, in Kong's order: a failed `conditional` puts Kong's message on the
  // entity and the reason on the field it constrains (a later check on the same field replaces
  // the earlier reason, as Kong's set_field does); `distinct` reports on the entity only.
  const entity: ValidationIssue[] = [];
  const onField = new Map<string, string>();
  const modeOf = (which: 'hash_on' | 'hash_fallback'): HashOn => (which === 'hash_on' ? u.hash_on : u.hash_fallback);
  const fail = (ifField: 'hash_on' | 'hash_fallback', thenField: string, message: string): void => {
    entity.push({ path: '', message: `failed conditional validation given value of field '${ifField}'` });
    onField.set(thenField, message);
  };
  const required = (ifField: 'hash_on' | 'hash_fallback', mode: HashOn, thenField: keyof UpstreamInput): void => {
    if (modeOf(ifField) === mode && (u[thenField] === null || u[thenField] === undefined)) fail(ifField, thenField, 'required field missing');
  };
  const fallbackOneOf = (mode: HashOn, allowed: readonly HashOn[]): void => {
    if (u.hash_on === mode && !allowed.includes(u.hash_fallback)) fail('hash_on', 'hash_fallback', `expected one of: ${allowed.join(', ')}`);
  };
  const distinct = (a: keyof UpstreamInput, b: keyof UpstreamInput): void => {
    // Kong compares the values as given (so 'X-User' and 'x-user' are distinct), whatever hash_on says.
    if (typeof u[a] === 'string' && u[a] !== '' && u[a] === u[b]) entity.push({ path: '', message: `values of these fields must be distinct: '${String(a)}', '${String(b)}'` });
  };
  required('hash_on', 'header', 'hash_on_header');
  required('hash_fallback', 'header', 'hash_fallback_header');
  required('hash_on', 'cookie', 'hash_on_cookie');
  required('hash_fallback', 'cookie', 'hash_on_cookie');
  fallbackOneOf('none', ['none']);
  fallbackOneOf('cookie', ['none']);
  fallbackOneOf('consumer', ['none', 'ip', 'header', 'cookie', 'path', 'query_arg', 'uri_capture']);
  fallbackOneOf('ip', ['none', 'consumer', 'header', 'cookie', 'path', 'query_arg', 'uri_capture']);
  fallbackOneOf('path', ['none', 'consumer', 'header', 'cookie', 'query_arg', 'ip', 'uri_capture']);
  distinct('hash_on_header', 'hash_fallback_header');
  required('hash_on', 'query_arg', 'hash_on_query_arg');
  required('hash_fallback', 'query_arg', 'hash_fallback_query_arg');
  distinct('hash_on_query_arg', 'hash_fallback_query_arg');
  required('hash_on', 'uri_capture', 'hash_on_uri_capture');
  required('hash_fallback', 'uri_capture', 'hash_fallback_uri_capture');
  distinct('hash_on_uri_capture', 'hash_fallback_uri_capture');
  const issues: ValidationIssue[] = [...entity, ...[...onField].map(([path, message]) => ({ path, message }))];
  const activeType = u.healthchecks.active.type;
  if (activeType === 'grpc' || activeType === 'grpcs') {
    issues.push({ path: 'healthchecks.active.type', message: `'${activeType}' active health checks are not supported; use 'http', 'https' or 'tcp'` });
  }
  return issues;
}

/**
 * Parses `host[:port]`; null when not a valid hostname/IP with an optional port 1..65535.
 * `normalized` is the target as Kong stores it: port 8000 when none, IPv6 expanded in brackets.
 */
export function parseTarget(value: string): { host: string; port: number; normalized: string; ip: boolean } | null {
  let host: string, portText: string | undefined;
  if (value.startsWith('[')) {
    const end = value.indexOf(']');
    if (end < 0) return null;
    host = value.slice(1, end);
    const rest = value.slice(end + 1);
    if (rest !== '' && !/^:\d+$/.test(rest)) return null;
    portText = rest === '' ? undefined : rest.slice(1);
    if (isIP(host) !== 6) return null;
  } else if (isIP(value) === 6) {
    host = value;
  } else {
    const colon = value.lastIndexOf(':');
    if (colon >= 0) {
      host = value.slice(0, colon);
      portText = value.slice(colon + 1);
      if (!/^\d+$/.test(portText)) return null;
    } else host = value;
  }
  if (host === '') return null;
  const port = portText === undefined ? 8000 : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  const kind = isIP(host);
  if (kind === 0 && checkHostname(host) !== null) return null;
  if (kind === 6 && host.includes('%')) return null; // Kong: no zone id
  // Kong (tools.ip.format_host): an IPv6 address fully expanded and lower-cased, a name as written.
  const h = kind === 6 ? expandIPv6(host) : host;
  return { host: h, port, normalized: kind === 6 ? `[${h}]:${port}` : `${h}:${port}`, ip: kind !== 0 };
}

/** `::1` → `0000:0000:0000:0000:0000:0000:0000:0001` (a valid IPv6 address, without brackets). */
export function expandIPv6(address: string): string {
  let text = address.toLowerCase();
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.map((g) => g.padStart(4, '0')).join(':');
}

export function invalidTargetMessage(value: string): string {
  return `Invalid target ('${value}'); not a valid hostname or ip address`;
}

export const targetInputSchema = z.strictObject({
  id: uuidSchema.optional(),
  upstream: z.union([z.string().min(1), z.strictObject({ id: z.string().min(1) }), z.strictObject({ name: z.string().min(1) })]).optional(),
  target: z.string().transform((v, ctx) => {
    const p = parseTarget(v.trim());
    if (p === null) {
      ctx.addIssue({ code: 'custom', message: invalidTargetMessage(v) });
      return z.NEVER;
    }
    return p.normalized;
  }),
  weight: between(z.int(), 0, 65535).default(100),
  tags: tagsSchema,
  created_at: timestampSchema,
  updated_at: timestampSchema,
});
export type TargetInput = z.output<typeof targetInputSchema>;

/**
 * Services whose host looks like an upstream name (one label, not an IP, not localhost) while no
 * upstream has that name, in a configuration that has upstreams: Kong resolves such a host through DNS, which is rarely what was meant.
 * `config validate` prints these as warnings; they do not stop a load.
 */
export function missingUpstreamWarnings(services: readonly { name: string | null; id: string; host: string }[], upstreams: readonly { name: string }[]): string[] {
  // Only a file that uses upstreams at all: single-label hosts (container names) are common otherwise.
  if (upstreams.length === 0) return [];
  const names = new Set(upstreams.map((u) => u.name.toLowerCase()));
  const out: string[] = [];
  for (const s of services) {
    const host = s.host.toLowerCase();
    if (names.has(host) || host.includes('.') || host.includes(':') || host === 'localhost' || isIP(host) !== 0) continue;
    out.push(`service '${s.name ?? s.id}': host '${s.host}' names no upstream; it will be resolved as a DNS name`);
  }
  return out;
}
