/**
 * The contract between the kernel and every plugin. A bundled plugin imports only this module,
 * `storage/ports.ts`, `errors.ts` and small utilities — never the kernel or another plugin.
 *
 * Life cycle: `create(config, deps)` runs once per (plugin entity, config) when a Snapshot is
 * built; the handlers it returns serve every request of that Snapshot; `close()` runs when the
 * instance is retired (a later Snapshot no longer uses it, or shutdown). Instances whose plugin
 * entity is unchanged are carried over to the next Snapshot, so caches stay warm across reloads.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { z } from 'zod';
import type { Logger } from 'pino';
import type { CaCertificate, Certificate, Consumer, Plugin, Protocol, Route, Service } from '../config/types.ts';
import type { BasicAuthCredential, ConsumerGroup, JwtSecret, KeyAuthCredential, OAuth2Credential } from '../config/credentials.ts';
import type { KeyValueStore } from '../storage/ports.ts';
import type { ValidationIssue } from '../errors.ts';
import type { ProcessMetrics } from '../observability/metrics.ts';
import type { RequestTrace, TracingSetting } from '../observability/trace-scope.ts';
import type { UriCaptures } from '../router/types.ts';

/** Kong's `between = { min, max }` with Kong's message, for config schemas. */
export { between } from '../config/between.ts';
export { traceScope, allInstrumentations, unrecordedTrace, type Instrumentations, type RequestEnd, type RequestTrace, type SpanAttributes, type TracingSetting } from '../observability/trace-scope.ts';

export type { Logger, UriCaptures };

/**
 * The methods the upstream request may be given (Kong's `kong.service.request.set_method`
 * accepts these and raises an error for any other).
 */
export const UPSTREAM_METHODS: readonly string[] = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'OPTIONS', 'MKCOL', 'COPY', 'MOVE', 'PROPFIND', 'PROPPATCH', 'LOCK', 'UNLOCK', 'PATCH', 'TRACE'];

/** A local reply that ends the request before it is proxied. Build with `ctx.reply()`. */
export interface Reply {
  readonly kind: 'reply';
  status: number;
  /** A string or Buffer is sent as is; anything else is sent as JSON. */
  body?: unknown;
  headers?: Record<string, string | string[]>;
}

export type MaybeReply = void | Reply | Promise<void | Reply>;

/** A client certificate verified at the TLS handshake (mTLS). */
export interface ClientCertificate {
  /** The chain as the handshake verified it, leaf first, each certificate in DER. */
  readonly chain: readonly Buffer[];
  /** The leaf in PEM. */
  readonly pem: string;
  /** RFC 8705 `x5t#S256` of the leaf: SHA-256 of its DER, base64url without padding. */
  readonly thumbprint: string;
}

/** Read-only view of the client request. Parsing is lazy: nothing is parsed unless asked for. */
export interface IncomingView {
  readonly method: string;
  /** 'https' when the listener is TLS (or X-Forwarded-Proto from a trusted IP says so). */
  readonly scheme: 'http' | 'https';
  /** Host without port, lower-case. */
  readonly host: string;
  readonly port: number;
  /** Raw (not decoded) path, without the query string. */
  readonly path: string;
  /** Raw query string without the leading `?` ('' when none). */
  readonly rawQuery: string;
  /** Parsed query (lazy, cached). */
  readonly query: URLSearchParams;
  /** Lower-case header names, as node:http gives them. */
  readonly headers: IncomingHttpHeaders;
  /** First value of a header (name is case-insensitive). */
  header(name: string): string | undefined;
  /** Cookies sent by the client (lazy, cached). */
  readonly cookies: ReadonlyMap<string, string>;
  /** Client address after `trusted_ips` processing of X-Forwarded-For / X-Real-IP. */
  readonly clientIp: string;
  /** The peer (the TCP connection's address) is in the gateway's `trusted_ips`. */
  readonly trusted: boolean;
  /** The TLS peer certificate in PEM/DER form when the client presented one (mTLS), else null. */
  readonly peerCertificate: Buffer | null;
  /**
   * The client connection's TLS (null over plain TCP), as Kong's log record `request.tls`:
   * `version` (TLSv1.2, TLSv1.3), `cipher` (OpenSSL's name, as nginx's $ssl_cipher) and
   * `clientVerify` as nginx's $ssl_client_verify: NONE (no certificate), SUCCESS, or
   * FAILED:<reason>.
   */
  readonly tls: { readonly version: string; readonly cipher: string; readonly clientVerify: string } | null;
  /**
   * The client certificate verified at the handshake against the `ca_certificates` entities
   * (listeners with PORTCULLIS_SSL_VERIFY_CLIENT optional/on), else null. Computed once per
   * connection, on first use.
   */
  readonly clientCertificate: ClientCertificate | null;
  /**
   * The whole request body, buffered (bounded by the body size limit; larger → 413).
   * Once a plugin has read it, the buffered bytes (or `upstream.setBody`) are what is proxied.
   */
  body(): Promise<Buffer>;
  /**
   * Reads the whole body without holding it all in memory and answers its size in bytes: the
   * body is held as request_buffering holds one (in memory up to client_body_buffer_size, in a
   * temporary file beyond) and the proxy then sends it as held. Reading stops once `stopAbove`
   * bytes are passed: the answer is then larger than `stopAbove`, the rest of the body is left
   * unread and the request cannot be proxied (reply, and close the connection). Past
   * client_max_body_size it fails as `body()` does (413). After `body()`, its length. The body is
   * read once: later calls answer what the first call found, under the first call's bound.
   */
  bodySize(stopAbove?: number): Promise<number>;
  /** The body parsed as `application/x-www-form-urlencoded` (null for another content type). */
  form(): Promise<URLSearchParams | null>;
  /** The body parsed as JSON (undefined for another content type; a parse error → undefined). */
  json(): Promise<unknown>;
}

/**
 * What will be sent upstream. Changes made in rewrite/access phases apply to the proxied request.
 *
 * Host: a plugin that sets `host` (setHeader, addHeader, setLowerHeader or setLowerHeaders) sets the Host the
 * upstream receives, over the route's `preserve_host` and the service host, as Kong's
 * `kong.service.request.set_header("Host", v)` sets `upstream_host` (a value given to addHeader
 * replaces the Host: a request has one). Removing `host` gives the proxy's Host back.
 */
export interface UpstreamRequest {
  /**
   * The method sent upstream (Kong's `kong.service.request.set_method`); the client's method
   * until a plugin sets it. Only the upstream request changes: `request.method` stays the
   * client's. Give one of {@link UPSTREAM_METHODS} (upper-case).
   */
  method: string;
  getHeader(name: string): string | string[] | undefined;
  /** Sets a header; `host` sets the upstream Host (see above). */
  setHeader(name: string, value: string | string[]): void;
  /** Adds a value, keeping existing ones (for `host`: replaces it, see above). */
  addHeader(name: string, value: string): void;
  removeHeader(name: string): void;
  /**
   * `removeHeader` for a list of names that are already lower-case (a list a plugin builds once
   * from its config): no case folding per request.
   */
  removeLowerHeaders(names: readonly string[]): void;
  /** `setHeader` for a name that is already lower-case (see `removeLowerHeaders`). */
  setLowerHeader(name: string, value: string | string[]): void;
  /** `setHeader` for each entry; names already lower-case (see `removeLowerHeaders`). */
  setLowerHeaders(list: readonly { readonly name: string; readonly value: string }[]): void;
  /** Upstream path (service path already joined, strip_path applied). */
  path: string;
  /** Mutable query. Untouched, the client's raw query is forwarded byte for byte. */
  readonly query: URLSearchParams;
  /** Replace the request body sent upstream (Content-Length is recomputed). */
  setBody(body: Buffer | string, contentType?: string): void;
}

/** Headers of the response on its way to the client (response phase). */
export interface DownstreamResponse {
  readonly status: number;
  /** True when the response is a local reply (plugin, router 404, proxy error), not from upstream. */
  readonly local: boolean;
  /** The response's headers as they stand (lower-case names; read-only: change them with the methods below). */
  readonly headers: Readonly<Record<string, string | string[] | number>>;
  getHeader(name: string): string | string[] | undefined;
  setHeader(name: string, value: string | string[]): void;
  addHeader(name: string, value: string): void;
  removeHeader(name: string): void;
  /**
   * Asks for the whole response body (Kong's body_filter on a buffered body): called from a
   * `response` handler; the kernel then holds the body and calls every collected plugin's
   * `body` handler with it before anything is sent to the client.
   *
   * It does nothing where there is no body to hold or it cannot be held: gRPC requests and
   * responses, upgrades (101), HTTP/2 trailers (gRPC), 1xx/204/304 responses and a HEAD request
   * answered by the upstream (a local reply to HEAD is held: its body sets the Content-Length).
   * A body larger than the node's buffer cap (PORTCULLIS_CLIENT_BODY_BUFFER_SIZE) is sent on
   * unchanged, the `body` handlers not called, and a warning logged (at most once a minute).
   */
  bufferBody(): void;
}

/** Credential that authenticated the request (Kong's `kong.client.authenticate`). */
export interface Credential {
  id: string;
  /** Value for X-Credential-Identifier. */
  identifier?: string | null;
  consumer?: { id: string } | null;
}

/** Read access to the entities of the Snapshot serving this request (pre-indexed). */
export interface EntityLookup {
  consumerById(id: string): Consumer | null;
  consumerByUsername(username: string, ignoreCase?: boolean): Consumer | null;
  consumerByCustomId(customId: string): Consumer | null;
  /** ACL groups of a consumer (from its `acls` entities), sorted, deduplicated. */
  aclGroups(consumerId: string): readonly string[];
  /**
   * Credential lookups, served from the Snapshot's indexes. Only credentials whose consumer
   * exists are found; expiry (`ttl`) is for the caller to check against its clock.
   */
  keyAuthByKey(key: string): KeyAuthCredential | null;
  basicAuthByUsername(username: string): BasicAuthCredential | null;
  jwtSecretByKey(key: string): JwtSecret | null;
  oauth2ByClientId(clientId: string): OAuth2Credential | null;
  oauth2ById(id: string): OAuth2Credential | null;
  /** The consumer groups a consumer belongs to, sorted by name (empty when none). */
  consumerGroups(consumerId: string): readonly ConsumerGroup[];
  consumerGroupByName(name: string): ConsumerGroup | null;
  /** A `certificates` entity (cert and key) by id, e.g. a plugin's client certificate to present. */
  certificateById(id: string): Certificate | null;
  /** A `ca_certificates` entity by id (trust anchors a plugin verifies certificates against). */
  caCertificateById(id: string): CaCertificate | null;
}

export interface RequestContext {
  /** The request id (X-Request-Id): propagated from the client or generated. */
  readonly id: string;
  /** Milliseconds since epoch when the request arrived. */
  readonly startedAt: number;
  readonly request: IncomingView;
  readonly upstream: UpstreamRequest;
  /** Null only in the rewrite phase. */
  readonly route: Route | null;
  /**
   * The regex captures of the matched route's `~` path, in Kong's `kong.request.get_uri_captures()`
   * shape (`unnamed`: group 1 first, named groups included; `named`: by name). Null in the
   * rewrite phase and when the route matched on a prefix path. Read-only: shared with the router's match.
   */
  readonly uriCaptures: UriCaptures | null;
  readonly service: Service | null;
  /** The authenticated consumer, if any. */
  readonly consumer: Consumer | null;
  readonly credential: Credential | null;
  /** Groups set by an authentication plugin (e.g. openid-connect `authenticated_groups_claim`). */
  readonly authenticatedGroups: readonly string[] | null;
  /**
   * The consumer groups of the request, sorted by name: those the authenticating plugin gave
   * (openid-connect `consumer_groups_claim`), else the consumer's memberships.
   */
  readonly consumerGroups: readonly ConsumerGroup[];
  /**
   * Record who the caller is. Consumer- and consumer-group-scoped plugin configs are resolved
   * against them for every plugin that runs after this call.
   */
  authenticate(who: { consumer: Consumer | null; credential: Credential | null; groups?: readonly string[] | null; consumerGroups?: readonly ConsumerGroup[] | null }): void;
  readonly entities: EntityLookup;
  /** Per-request state shared between phases and plugins; key by your plugin name. */
  readonly state: Map<string, unknown>;
  /** Aborted when the client goes away or the request times out. Pass it to every outbound call. */
  readonly signal: AbortSignal;
  /** Child logger with the request id bound. Never log tokens, secrets or cookies. */
  readonly log: Logger;
  /** Injectable clock (ms since epoch). */
  now(): number;
  /**
   * The request's trace when it is traced (sampled), else null. A tracing plugin sets it (in
   * `rewrite` to cover routing and every plugin); the kernel then records the router, each
   * plugin's access phase and the upstream exchange into it.
   */
  trace: RequestTrace | null;
  /** performance.now() when the request arrived (for span and latency arithmetic). */
  readonly startedPerf: number;
  /** Build a local reply; return it from `access`/`rewrite` to end the request. */
  reply(status: number, body?: unknown, headers?: Record<string, string | string[]>): Reply;
  /**
   * Headers to put on the client response whatever it turns out to be (upstream or local reply),
   * e.g. Set-Cookie. Applied just before the response phase runs.
   */
  readonly downstreamHeaders: {
    set(name: string, value: string | string[]): void;
    add(name: string, value: string): void;
  };
  /**
   * Kong's `kong.log.set_serialize_value(key, value)` (mode `set`): the log record the log plugins
   * write gets `value` at `key`, a dotted path (`trace_id`, `request.headers.x-extra`), replacing
   * what was there. `undefined` removes the key. Correlation-id sets `correlation_id`, a tracing
   * plugin `trace_id`.
   */
  setSerializeValue(key: string, value: unknown): void;
  /** The values set so far, in order (null: none). */
  readonly serializeValues: ReadonlyMap<string, unknown> | null;
}

export interface ResponseContext extends RequestContext {
  readonly response: DownstreamResponse;
}

/**
 * One upstream attempt (Kong's `tries[]` entry): the address tried, when (epoch ms), and for an
 * attempt that failed before another one, how (Kong's `state` "failed" with `code` 502, or 504
 * for a timeout).
 */
export interface UpstreamTry {
  readonly ip: string;
  readonly port: number;
  readonly startMs: number;
  failed: 502 | 504 | null;
}

export interface LogContext extends RequestContext {
  /** `headers`: what went to the client (lower-case names). */
  readonly response: { readonly status: number; readonly local: boolean; readonly headers: Readonly<Record<string, string | string[] | number>> };
  /**
   * Milliseconds: `total` (request received → response finished), `upstream` (request sent →
   * upstream response headers; null when not proxied), `kong` (Kong's `latencies.kong`: until
   * the upstream request went out when proxied, else until the gateway's own response started).
   */
  readonly latencies: { readonly total: number; readonly upstream: number | null; readonly kong: number };
  /** Upstream attempts made (0 when the gateway answered itself). */
  readonly tries: number;
  /** Those attempts: address, start, and how an attempt before the last one failed. */
  readonly upstreamTries: readonly UpstreamTry[];
  /** Bytes received from the client (request line, headers, body) and sent to it (head + body). */
  readonly bytes: { readonly received: number; readonly sent: number };
}

export interface PluginHandlers {
  /** Runs before routing; only for global plugin instances. */
  rewrite?(ctx: RequestContext): MaybeReply;
  access?(ctx: RequestContext): MaybeReply;
  /** Runs once response headers are known, for upstream responses and local replies alike. */
  response?(ctx: ResponseContext): void | Promise<void>;
  /**
   * Runs once the whole response body is known, only for responses on which some plugin called
   * `ctx.response.bufferBody()` in the response phase. Handlers run in the plugins' order
   * (priority, higher first), each seeing the previous one's result. Return a Buffer to replace
   * the body, or undefined to keep it. Status and headers may still be changed here.
   *
   * The kernel then sends the final body with its Content-Length (Transfer-Encoding dropped). A
   * handler that throws or rejects is logged as the response phase logs a plugin failure
   * (`plugin failed`, phase `body`) and the body stays as it was before it.
   */
  body?(ctx: ResponseContext, body: Buffer): Buffer | undefined | Promise<Buffer | undefined>;
  /** Runs after the response is finished; must not affect the client. */
  log?(ctx: LogContext): void;
  /**
   * Kong's stream `preread` phase: runs for a TCP/TLS connection of a stream route (src/stream/)
   * once the route is known, before the service is connected. Return a refusal to close the
   * connection (Kong: `ngx.exit(status)`, nothing is written to the client). Runs only when the
   * instance's `protocols` contain the connection's (`tcp`, or `tls` for a terminated TLS one).
   */
  preread?(ctx: StreamContext): StreamRefusal | void;
  /** A stream session ended (tcp, tls, tls_passthrough routes): Kong's stream log phase. */
  streamLog?(ctx: StreamLogContext): void;
  close?(): void | Promise<void>;
}

/** What a `preread` handler knows about a stream connection. */
export interface StreamContext {
  /** The client's address (the PROXY protocol source on proxy_protocol listeners, from trusted_ips). */
  readonly clientIp: string;
  readonly clientPort: number;
  /** The listener address the connection reached. */
  readonly serverIp: string;
  readonly serverPort: number;
  /** `tcp` (plain) or `tls` (terminated by the gateway). */
  readonly protocol: 'tcp' | 'tls';
  /** The TLS server name, null on plain connections or without one. */
  readonly sni: string | null;
  readonly route: Route;
  readonly service: Service | null;
  readonly log: Logger;
}

/**
 * A finished stream session (Kong's log phase in the stream subsystem): what file-log, http-log
 * and prometheus record of tcp, tls and tls_passthrough connections.
 */
export interface StreamLogContext {
  readonly protocol: 'tcp' | 'tls' | 'tls_passthrough';
  readonly clientIp: string;
  readonly serverPort: number;
  readonly route: Route;
  readonly service: Service | null;
  /** Epoch ms when the connection was accepted. */
  readonly startedAt: number;
  /**
   * Kong's stream status: 200 (the session was relayed), the refusal's status (403 from
   * ip-restriction), 502 (the service could not be connected), 500 (a plugin failed).
   */
  readonly status: number;
  /** `service` when the service was connected, else `kong`. */
  readonly source: 'service' | 'kong';
  /** The client connection's TLS when the gateway terminated it (as IncomingView.tls), else null. */
  readonly tls: { readonly version: string; readonly cipher: string; readonly clientVerify: string } | null;
  /** Bytes from and to the client (Kong's session.received / session.sent). */
  readonly bytes: { readonly received: number; readonly sent: number };
  /** Bytes from and to the service (Kong's upstream.received / upstream.sent). */
  readonly upstreamBytes: { readonly received: number; readonly sent: number };
  /** Milliseconds: `kong` until the service connection was started, `session` the whole session. */
  readonly latencies: { readonly kong: number; readonly session: number };
  readonly upstreamTries: readonly UpstreamTry[];
  readonly log: Logger;
}

/** A `preread` refusal: the connection is closed; `status` and `message` are logged. */
export interface StreamRefusal {
  readonly status: number;
  readonly message: string;
}

export interface PluginDeps {
  /** The plugin entity this instance serves (id, scope, name). */
  readonly entity: Readonly<Plugin>;
  readonly log: Logger;
  /** Key-value store shared by all workers of the node (and nodes, on PostgreSQL); TTL-capable. */
  readonly sharedKv: KeyValueStore;
  /** Number of worker processes on this node (>1 means per-process secrets will not work). */
  readonly workers: number;
  /**
   * Where the node keeps its configuration (Kong's `database`). With a database, `sharedKv` is
   * stored there and shared by every worker and node, so a generated secret can be shared too.
   * Omitted = `off`.
   */
  readonly database?: 'off' | 'sqlite' | 'postgres';
  /** This process's Prometheus metrics (the prometheus plugin records into it; openid-connect counts into `metrics.oidc`). */
  readonly metrics?: ProcessMetrics;
  /**
   * Kong's tracing_instrumentations / tracing_sampling_rate node settings (the opentelemetry
   * plugin reads them). Omitted = every instrumentation, sampling rate 0.01.
   */
  readonly tracing?: TracingSetting;
  now(): number;
}

/** An Admin API route a plugin adds (e.g. GET /openid-connect/jwks). */
export interface PluginAdminRoute {
  method: 'GET' | 'POST' | 'DELETE';
  /** Fastify-style path, e.g. `/openid-connect/jwks`. */
  path: string;
  handler(req: { params: Record<string, string>; query: Record<string, string>; body: unknown }, deps: {
    sharedKv: KeyValueStore;
    log: Logger;
  }): Promise<{ status: number; body?: unknown; headers?: Record<string, string> }>;
}

export interface PluginDefinition<C = any> {
  readonly name: string;
  readonly version: string;
  /** Higher runs first (Kong's static priorities: openid-connect 1050, acl 950, cors 2000, ...). */
  readonly priority: number;
  /** Zod schema of the `config` object; parsing fills defaults. Unknown fields must be rejected (strict object). */
  readonly schema: z.ZodType<C>;
  /** Where the plugin may be attached. Omitted = everywhere. */
  readonly scopes?: { readonly consumer?: boolean; readonly route?: boolean; readonly service?: boolean; readonly global?: boolean; readonly consumer_group?: boolean };
  /**
   * The protocols an instance may be configured for (Kong's plugin schema `protocols` field:
   * `typedefs.protocols_http` is {@link HTTP_PROTOCOLS}). Omitted = every protocol.
   */
  readonly protocols?: readonly Protocol[];
  /**
   * Kong's default of the plugin schema's `protocols` when it is not typedefs.protocols' own
   * (grpc, grpcs, http, https): the protocols an instance created without `protocols` gets
   * (ip-restriction: those plus tcp and tls). Omitted = the entity's default.
   */
  readonly defaultProtocols?: readonly Protocol[];
  /**
   * Checks that depend on the node as well as the config (e.g. a setting required with several
   * workers). Run after the schema, wherever a config is validated (Admin API writes, declarative
   * files, `config validate`), so that what is accepted there is what `create` can build.
   * Paths are relative to the config object.
   */
  check?(config: C, node: NodeFacts): ValidationIssue[];
  /**
   * Kong's `shorthand_fields`: old field names still accepted in a config, rewritten to the current
   * ones before the schema runs (the stored config has only the current names).
   */
  shorthands?(config: Record<string, unknown>): Record<string, unknown>;
  create(config: C, deps: PluginDeps): PluginHandlers | Promise<PluginHandlers>;
  readonly adminRoutes?: readonly PluginAdminRoute[];
  /**
   * Kong's `entity_checks` of the plugin schema (the top-level list in the plugin's schema.lua,
   * across `config.*` fields), as Kong's `GET /schemas/plugins/{name}` prints them
   * (kong/api/api_helpers.lua `schema_to_jsonable`): each check a single-key object
   * (`{ only_one_of: ['config.allow', 'config.deny'] }`), in Kong's order, functions dropped (a
   * `custom_entity_check` keeps its `field_sources`), Lua's `ngx.null` as `null`. Plain data for
   * tools that read the schema; the config schema is what enforces the checks (reporting under
   * {@link PLUGIN_ENTITY_CHECK}). Checks Kong declares inside the `config` record are not these.
   * Omitted = none (`[]`).
   */
  readonly kongEntityChecks?: readonly Readonly<Record<string, unknown>>[];
}

/** What a plugin's `check` may know about the node its config will run on. */
export interface NodeFacts {
  /** Worker processes serving the proxy (PluginDeps.workers). */
  readonly workers: number;
  /** PluginDeps.database (omitted = `off`). */
  readonly database?: 'off' | 'sqlite' | 'postgres';
}

/**
 * The issue path a config schema gives a check across the plugin's fields that Kong declares in
 * the plugin schema's own `entity_checks` (`only_one_of = { "config.allow", "config.deny" }`):
 * reported as Kong does, under the plugin's `@entity`, not under `config`.
 */
export const PLUGIN_ENTITY_CHECK = '@entity';

/**
 * Kong's `typedefs.protocols_http`: the HTTP-subsystem protocols (ws and wss are HTTP here too,
 * as routes accept them), for a plugin that runs only on HTTP requests.
 */
export const HTTP_PROTOCOLS: readonly Protocol[] = ['grpc', 'grpcs', 'http', 'https', 'ws', 'wss'];

/**
 * The stream protocols a plugin with a `preread` handler may add to {@link HTTP_PROTOCOLS}
 * (Kong's `typedefs.protocols` default of such plugins has tcp and tls; tls_passthrough
 * connections are never terminated, udp is not proxied).
 */
export const STREAM_PLUGIN_PROTOCOLS: readonly Protocol[] = ['tcp', 'tls'];

/** The handlers `create` may return, in phase order. */
export const handlerNames = ['rewrite', 'access', 'response', 'body', 'log', 'preread', 'streamLog', 'close'] as const;

/**
 * Every protocol a route can have here: what a log plugin (a `log` and a `streamLog` handler)
 * may be configured for. udp is refused (no udp route exists to log).
 */
export const LOG_PROTOCOLS: readonly Protocol[] = ['grpc', 'grpcs', 'http', 'https', 'ws', 'wss', 'tcp', 'tls', 'tls_passthrough'];

const definitionFields = new Set(['name', 'version', 'priority', 'schema', 'scopes', 'protocols', 'defaultProtocols', 'check', 'shorthands', 'create', 'adminRoutes', 'kongEntityChecks']);
const scopeNames = new Set(['consumer', 'route', 'service', 'global', 'consumer_group']);
const adminMethods = new Set(['GET', 'POST', 'DELETE']);
/** Kong's plugin names: lower-case words joined by dashes (`openid-connect`, `rate-limiting`). */
const kebabCase = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;

const isFunction = (v: unknown): boolean => typeof v === 'function';

/**
 * Checks a plugin definition at registration and returns it (keeping the config type). A
 * mistake (a non-integer priority, a name that is not kebab-case, a handler given here instead
 * of returned by `create`, a missing schema) throws at once, naming the plugin and the field.
 */
export function definePlugin<C>(def: PluginDefinition<C>): PluginDefinition<C> {
  const problems: string[] = [];
  const d = def as unknown as Record<string, unknown>;
  if (typeof d.name !== 'string' || !kebabCase.test(d.name)) problems.push(`name: must be a kebab-case string (e.g. 'rate-limiting'), got ${JSON.stringify(d.name)}`);
  if (typeof d.version !== 'string' || d.version === '') problems.push('version: must be a non-empty string');
  if (typeof d.priority !== 'number' || !Number.isSafeInteger(d.priority)) problems.push(`priority: must be an integer, got ${String(d.priority)}`);
  const schema = d.schema as { safeParse?: unknown } | undefined;
  if (!schema || typeof schema !== 'object' || !isFunction(schema.safeParse)) problems.push('schema: must be a zod schema of the config');
  if (!isFunction(d.create)) problems.push('create: must be a function returning the handlers');
  for (const k of ['check', 'shorthands'] as const) if (d[k] !== undefined && !isFunction(d[k])) problems.push(`${k}: must be a function`);
  if (d.scopes !== undefined) {
    if (!d.scopes || typeof d.scopes !== 'object') problems.push('scopes: must be an object');
    else {
      for (const [k, v] of Object.entries(d.scopes)) {
        if (!scopeNames.has(k)) problems.push(`scopes.${k}: unknown scope (known: ${[...scopeNames].join(', ')})`);
        else if (typeof v !== 'boolean') problems.push(`scopes.${k}: must be a boolean`);
      }
    }
  }
  const allowed = Array.isArray(d.protocols) ? (d.protocols as unknown[]) : null;
  if (d.defaultProtocols !== undefined && (!Array.isArray(d.defaultProtocols) || d.defaultProtocols.length === 0 || (allowed !== null && d.defaultProtocols.some((x: unknown) => !allowed.includes(x))))) {
    problems.push('defaultProtocols: must be a non-empty array of protocols the plugin allows');
  }
  if (d.protocols !== undefined && (!Array.isArray(d.protocols) || d.protocols.length === 0 || d.protocols.some((x) => typeof x !== 'string'))) {
    problems.push('protocols: must be a non-empty array of protocol names');
  }
  if (d.kongEntityChecks !== undefined) {
    if (!Array.isArray(d.kongEntityChecks)) problems.push('kongEntityChecks: must be an array');
    else {
      d.kongEntityChecks.forEach((c: unknown, i: number) => {
        if (!c || typeof c !== 'object' || Array.isArray(c) || Object.keys(c).length !== 1) problems.push(`kongEntityChecks[${i}]: must be an object with a single key (the check's name, e.g. { only_one_of: [...] })`);
      });
    }
  }
  if (d.adminRoutes !== undefined) {
    if (!Array.isArray(d.adminRoutes)) problems.push('adminRoutes: must be an array');
    else {
      d.adminRoutes.forEach((r: Partial<PluginAdminRoute> | null, i: number) => {
        if (!r || !adminMethods.has(String(r.method))) problems.push(`adminRoutes[${i}].method: must be one of ${[...adminMethods].join(', ')}`);
        if (!r || typeof r.path !== 'string' || !r.path.startsWith('/')) problems.push(`adminRoutes[${i}].path: must start with '/'`);
        if (!r || !isFunction(r.handler)) problems.push(`adminRoutes[${i}].handler: must be a function`);
      });
    }
  }
  for (const k of Object.keys(d)) {
    if (definitionFields.has(k)) continue;
    if ((handlerNames as readonly string[]).includes(k)) problems.push(`${k}: handlers are returned by create(config, deps), not given to definePlugin`);
    else problems.push(`${k}: unknown field (known: ${[...definitionFields].join(', ')})`);
  }
  if (problems.length > 0) throw new Error(`definePlugin(${typeof d.name === 'string' ? d.name : '?'}): ${problems.join('; ')}`);
  return def;
}

/**
 * Checks what a plugin's `create` returned: only known handler names, each a function. The
 * kernel calls it on every new instance, so a misspelled `acess` fails loudly instead of never
 * running.
 */
export function checkHandlers(pluginName: string, handlers: unknown): PluginHandlers {
  if (!handlers || typeof handlers !== 'object') throw new Error(`plugin ${pluginName}: create() must return an object of handlers`);
  for (const [k, v] of Object.entries(handlers)) {
    if (!(handlerNames as readonly string[]).includes(k)) throw new Error(`plugin ${pluginName}: create() returned an unknown handler '${k}' (known: ${handlerNames.join(', ')})`);
    if (v !== undefined && typeof v !== 'function') throw new Error(`plugin ${pluginName}: handler '${k}' must be a function`);
  }
  return handlers as PluginHandlers;
}
