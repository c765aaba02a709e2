/**
 * Kong's log record (`kong.log.serialize()`, kong/pdk/log.lua) for the log plugins (file-log,
 * http-log): `request`, `upstream_uri`, `upstream_status`, `response`, `latencies`, `tries`,
 * `authenticated_entity`, `route`, `service`, `consumer`, `client_ip`, `started_at`, `source`,
 * `workspace`, `workspace_name`.
 *
 * Credentials are redacted by default, beyond Kong (which redacts Authorization and
 * Proxy-Authorization): Cookie and Set-Cookie values, and query parameters that carry tokens or
 * secrets (in `request.uri`, `request.url`, `request.querystring` and `upstream_uri`).
 *
 * Kong's `custom_fields_by_lua` (Lua snippets) has no equivalent here and is refused by the
 * plugins' schemas (`customFieldsByLua`).
 */
import { z } from 'zod';
import type { LogContext, StreamLogContext, UpstreamTry } from './sdk.ts';

export const REDACTED = 'REDACTED';

const redactedHeaders = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);
/** Query parameter names whose values are credentials (compared lower-case). */
const redactedParams = new Set([
  'access_token', 'id_token', 'refresh_token', 'token', 'code', 'client_secret', 'password', 'apikey', 'api_key',
  'api-key', 'key', 'secret', 'jwt', 'assertion', 'client_assertion', 'session', 'logout_token', 'subject_token',
]);

/** The schema field every log plugin carries: only empty (null or {}) is accepted. */
export const customFieldsByLua = z.record(z.string(), z.string()).nullable().default(null).refine(
  (v) => v === null || Object.keys(v).length === 0,
  { message: 'custom_fields_by_lua runs Lua code, which this gateway does not run; remove it (the record already redacts credentials)' },
);

function redactHeaders(h: Readonly<Record<string, string | string[] | number | undefined>>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k in h) {
    const v = h[k];
    if (v === undefined) continue;
    out[k] = redactedHeaders.has(k) ? REDACTED : typeof v === 'number' ? String(v) : v;
  }
  return out;
}

/** The query string with credential parameters' values replaced ('' stays ''). */
export function redactQuery(raw: string): string {
  if (raw === '') return raw;
  let changed = false;
  const parts = raw.split('&').map((p) => {
    const eq = p.indexOf('=');
    const name = eq >= 0 ? p.slice(0, eq) : p;
    let decoded = name;
    try {
      decoded = decodeURIComponent(name.replace(/\+/g, ' '));
    } catch {
      // keep the raw name
    }
    if (eq >= 0 && redactedParams.has(decoded.toLowerCase())) {
      changed = true;
      return `${name}=${REDACTED}`;
    }
    return p;
  });
  return changed ? parts.join('&') : raw;
}

/** Kong's `querystring` table: repeated names become arrays, a name without `=` is `true`. */
function queryTable(raw: string): Record<string, string | boolean | Array<string | boolean>> {
  const out: Record<string, string | boolean | Array<string | boolean>> = {};
  if (raw === '') return out;
  for (const p of raw.split('&')) {
    if (p === '') continue;
    const eq = p.indexOf('=');
    let name: string;
    let value: string | boolean;
    try {
      name = decodeURIComponent((eq >= 0 ? p.slice(0, eq) : p).replace(/\+/g, ' '));
      value = eq >= 0 ? decodeURIComponent(p.slice(eq + 1).replace(/\+/g, ' ')) : true;
    } catch {
      name = eq >= 0 ? p.slice(0, eq) : p;
      value = eq >= 0 ? p.slice(eq + 1) : true;
    }
    const prev = out[name];
    out[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

function withQuery(path: string, rawQuery: string): string {
  return rawQuery === '' ? path : `${path}?${rawQuery}`;
}

export type LogRecord = Record<string, unknown>;

/** Builds Kong's record for a finished request, with the values plugins set (setSerializeValue). */
export function serializeLog(ctx: LogContext): LogRecord {
  const record = baseRecord(ctx);
  const values = ctx.serializeValues;
  // Values outside the entities first, so the keys come in the order serializeLogJson writes them.
  if (values !== null) applySerializeValues(record, values, false);
  if (ctx.route !== null) record.route = ctx.route;
  if (ctx.service !== null) record.service = ctx.service;
  if (ctx.consumer !== null) record.consumer = ctx.consumer;
  if (ctx.credential !== null) record.authenticated_entity = authenticatedEntity(ctx);
  if (values !== null) applySerializeValues(record, values, true);
  return record;
}

/**
 * Kong's `edit_result` for `kong.log.set_serialize_value`: each dotted key sets (or, with
 * `undefined`, removes) a value, creating the tables on its way; a frozen object on the way (an
 * entity of the configuration snapshot) is copied first, never changed.
 */
function applySerializeValues(record: LogRecord, values: ReadonlyMap<string, unknown>, entities: boolean): void {
  for (const [key, value] of values) {
    const parts = key.split('.');
    if (entityKeys.has(parts[0]) !== entities) continue;
    let obj: Record<string, unknown> = record;
    for (let i = 0; i < parts.length - 1; i++) {
      const p = parts[i];
      let next = obj[p];
      if (next === null || typeof next !== 'object' || Array.isArray(next)) next = {};
      else if (Object.isFrozen(next)) next = { ...(next as Record<string, unknown>) };
      obj[p] = next;
      obj = next as Record<string, unknown>;
    }
    const last = parts[parts.length - 1];
    if (value === undefined) delete obj[last];
    else obj[last] = value;
  }
}

/** The record's keys whose text is kept per snapshot version (serializeLogJson). */
const entityKeys = new Set(['route', 'service', 'consumer', 'authenticated_entity']);

/**
 * The same record as one JSON text, equal to `JSON.stringify(serializeLog(ctx))`. The route,
 * service and consumer are frozen snapshot objects (kernel/snapshot.ts): each is serialized once
 * per version and the text reused, which is most of the record's bytes.
 */
export function serializeLogJson(ctx: LogContext): string {
  const values = ctx.serializeValues;
  let record: LogRecord;
  if (values === null) record = baseRecord(ctx);
  else {
    // A value set inside an entity: the whole record, edited (the entity copied, not changed).
    for (const key of values.keys()) if (entityKeys.has(key.split('.')[0])) return JSON.stringify(serializeLog(ctx));
    record = baseRecord(ctx);
    applySerializeValues(record, values, false);
  }
  const base = JSON.stringify(record);
  let out = base.slice(0, -1);
  if (ctx.route !== null) out += `,"route":${entityJson(ctx.route)}`;
  if (ctx.service !== null) out += `,"service":${entityJson(ctx.service)}`;
  if (ctx.consumer !== null) out += `,"consumer":${entityJson(ctx.consumer)}`;
  if (ctx.credential !== null) out += `,"authenticated_entity":${JSON.stringify(authenticatedEntity(ctx))}`;
  return `${out}}`;
}

const jsonByEntity = new WeakMap<object, string>();

function entityJson(entity: object): string {
  let s = jsonByEntity.get(entity);
  if (s === undefined) {
    s = JSON.stringify(entity);
    // Only a frozen object cannot change under the remembered text.
    if (Object.isFrozen(entity)) jsonByEntity.set(entity, s);
  }
  return s;
}

function authenticatedEntity(ctx: LogContext): { id: string; consumer_id: string | null } {
  return { id: ctx.credential!.id, consumer_id: ctx.credential!.consumer?.id ?? ctx.consumer?.id ?? null };
}

/**
 * One of Kong's `tries[]` entries: the address and start of an attempt (`balancer_start` in ms,
 * `balancer_start_ns`), the time the balancer took to pick it (`balancer_latency`: the peer is
 * picked before the attempt starts here, so 0), and for an attempt that failed before a retry,
 * `state` "failed" and its `code`.
 */
function kongTry(t: UpstreamTry): Record<string, string | number> {
  const entry: Record<string, string | number> = {
    balancer_start: t.startMs, balancer_start_ns: t.startMs * 1_000_000, balancer_latency: 0, balancer_latency_ns: 0, ip: t.ip, port: t.port,
  };
  if (t.failed !== null) {
    entry.state = 'failed';
    entry.code = t.failed;
  }
  return entry;
}

/** Everything but the entities (`route`, `service`, `consumer`, `authenticated_entity`). */
function baseRecord(ctx: LogContext): LogRecord {
  const req = ctx.request;
  const query = redactQuery(req.rawQuery);
  const uri = withQuery(req.path, query);
  // Kong: scheme://host:server_port/uri, the port always written.
  const url = `${req.scheme}://${req.host}:${req.port}${uri}`;
  const proxied = !ctx.response.local;
  const upstreamTarget = ctx.upstream as unknown as { target?: () => string };
  let upstreamUri = ctx.upstream.path;
  if (typeof upstreamTarget.target === 'function') {
    const t = upstreamTarget.target();
    const q = t.indexOf('?');
    upstreamUri = q >= 0 ? withQuery(t.slice(0, q), redactQuery(t.slice(q + 1))) : t;
  }
  const record: LogRecord = {
    request: {
      id: ctx.id,
      uri,
      url,
      querystring: queryTable(query),
      method: req.method,
      headers: redactHeaders(req.headers),
      size: ctx.bytes.received,
    },
    upstream_uri: upstreamUri,
    upstream_status: proxied ? String(ctx.response.status) : '',
    response: {
      status: ctx.response.status,
      headers: redactHeaders(ctx.response.headers),
      size: ctx.bytes.sent,
    },
    latencies: {
      kong: Math.round(ctx.latencies.kong),
      proxy: ctx.latencies.upstream === null ? -1 : Math.round(ctx.latencies.upstream),
      request: Math.round(ctx.latencies.total),
      receive: 0,
    },
    tries: ctx.upstreamTries.map(kongTry),
    client_ip: req.clientIp,
    started_at: ctx.startedAt,
    source: proxied ? 'upstream' : 'kong',
    workspace: null,
    workspace_name: 'default',
  };
  const tls = req.tls;
  if (tls !== null) (record.request as Record<string, unknown>).tls = { version: tls.version, cipher: tls.cipher, client_verify: tls.clientVerify };
  return record;
}

/**
 * Kong's stream record (kong.log.serialize in the stream subsystem) for a finished tcp, tls or
 * tls_passthrough session: `session` {`tls` (terminated TLS only), `received`, `sent`, `status`,
 * `server_port`}, `upstream` {`received`, `sent`}, `latencies` {`kong`, `session`}, `tries`,
 * `route`, `service`, `client_ip`, `started_at`, `workspace`, `workspace_name`.
 */
export function serializeStreamLogJson(ctx: StreamLogContext): string {
  const session: Record<string, unknown> = {};
  if (ctx.tls !== null) session.tls = { version: ctx.tls.version, cipher: ctx.tls.cipher, client_verify: ctx.tls.clientVerify };
  session.received = ctx.bytes.received;
  session.sent = ctx.bytes.sent;
  session.status = ctx.status;
  session.server_port = ctx.serverPort;
  const base = JSON.stringify({
    session,
    upstream: { received: ctx.upstreamBytes.received, sent: ctx.upstreamBytes.sent },
    latencies: { kong: Math.round(ctx.latencies.kong), session: Math.round(ctx.latencies.session) },
    tries: ctx.upstreamTries.map(kongTry),
    client_ip: ctx.clientIp,
    started_at: ctx.startedAt,
    workspace: null,
    workspace_name: 'default',
  });
  let out = `${base.slice(0, -1)},"route":${entityJson(ctx.route)}`;
  if (ctx.service !== null) out += `,"service":${entityJson(ctx.service)}`;
  return `${out}}`;
}
