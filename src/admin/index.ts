/**
 * The Admin API: Kong's paths, statuses and error shapes on its own Fastify listener.
 *
 * Protection: the kernel binds it to 127.0.0.1 unless told otherwise; with a token configured
 * every request must carry it in `Kong-Admin-Token` (compared in constant time) or get 401; TLS
 * when a certificate is given.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { descriptorOf, isEntityName } from '../config/entities/index.ts';
import { isGatewayError } from '../errors.ts';
import type { PluginRegistry } from '../plugins/registry.ts';
import type { ConfigStore, KeyValueStore } from '../storage/ports.ts';
import { createMemoryKv } from '../storage/kv.ts';
import { checkJsonBody, isFormBody, jsonSchemaOf, nestForm, parseMultipart, type FormBody } from './body.ts';
import { AdminError, badRequest, isAdminError, notFound } from './errors.ts';
import { endpoint, entityBody, registerEntityRoutes, type RouteDeps } from './routes.ts';
import { registerCertificateRoutes } from './certificates.ts';
import { registerExtraRoutes } from './extras.ts';
import { consumerGroupViews, registerConsumerGroupRoutes } from './consumer-groups.ts';
import { registerKongClientRoutes, stripDefaultWorkspace } from './kong-clients.ts';
import { registerAdminCors } from './cors.ts';
import { kongEntitySchema, kongFields, kongPluginSchema, type JsonSchema as KongJsonSchema } from './kong-schema.ts';
import type { EntityName } from '../config/types.ts';
import { configHash, registerConfigRoutes } from './config-endpoint.ts';
import { createEntityService } from './service.ts';
import { registerUpstreamHealthRoutes } from './upstream-health.ts';
import { pendingTimers, registerDebugRoutes, type LogLevelControl } from './debug.ts';
import type { LocalBalancing } from '../balancer/balancing.ts';
import { parseTarget, type Target, type Upstream } from '../config/upstreams.ts';

export interface AdminOptions {
  store: ConfigStore;
  registry: PluginRegistry;
  log: Logger;
  /** When set, every request needs `Kong-Admin-Token: <token>`. */
  token?: string;
  tls?: { cert: string; key: string };
  nodeInfo(): Record<string, unknown>;
  /** This node's balancers and health checker (upstream health endpoints). */
  balancing?: LocalBalancing;
  status(): Record<string, unknown> | Promise<Record<string, unknown>>;
  /** Handed to plugins' admin routes (e.g. to purge caches). Default: a private in-memory store. */
  sharedKv?: KeyValueStore;
  /** Environment for `POST /config` substitutions (`${{ env "DECK_X" }}`, vault refs). Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Clock (ms since epoch) for timestamps. */
  now?: () => number;
  /** `Server` header on every answer (Kong: `server_tokens`); none when unset. */
  serverHeader?: string | null;
  /** GET /metrics: the node's Prometheus exposition. */
  metrics?(): Promise<string>;
  /** Kong's X-Kong-Admin-Latency header (headers: latency_tokens). */
  adminLatencyHeader?: boolean;
  /** Largest request body in bytes (PORTCULLIS_ADMIN_CLIENT_MAX_BODY_SIZE); larger → 413. */
  maxBodySize?: number;
  /**
   * The admin UI's origins, the only ones answered with CORS headers (cors.ts): admin_gui_url's,
   * or the GUI listener's. None (the default): no CORS at all.
   */
  guiOrigins?: () => readonly string[];
  /** The node's live log level (Kong's /debug/{node,cluster}/log-level); absent = no such endpoints. */
  logLevel?: LogLevelControl;
  /** Worker processes of the node (`GET /timers`); default 1. */
  workers?: number;
}

/** Default Admin API body limit: far above any entity, enough for a large `POST /config`. */
export const defaultAdminMaxBodySize = 1024 * 1024;

/** GET /status body (Admin API and Status API): the node's counters, datastore reachability, DB-less config hash. */
export async function statusDocument(store: ConfigStore, status: () => Record<string, unknown> | Promise<Record<string, unknown>>): Promise<Record<string, unknown>> {
  let reachable = true;
  try {
    await store.version();
  } catch {
    reachable = false;
  }
  const out: Record<string, unknown> = { ...(await status()), database: { reachable } };
  // Kong reports the hash of the running declarative configuration in DB-less mode.
  if (store.kind === 'off') out.configuration_hash = configHash(await store.load());
  return out;
}

/** The entity type and id an Admin API path names: the innermost collection, and its id when the path has one. */
export function auditTarget(path: string): { entity: string | null; id: string | null } {
  const parts = path.split('/').filter(Boolean);
  if (parts.length === 0) return { entity: null, id: null };
  if (parts.length % 2 === 0) return { entity: parts[parts.length - 2], id: safeDecode(parts[parts.length - 1]) };
  return { entity: parts[parts.length - 1], id: null };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}


export interface AdminServer {
  listen(host: string, port: number): Promise<{ port: number }>;
  close(): Promise<void>;
  app: FastifyInstance;
}

/** Header Kong's RBAC uses for the admin token; we accept the same name. */
export const adminTokenHeader = 'kong-admin-token';

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant-time token check: comparing fixed-length digests hides the token's length too. */
export function tokenMatches(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  return timingSafeEqual(digest(expected), digest(given));
}

export async function createAdminServer(opts: AdminOptions): Promise<AdminServer> {
  // One type for both branches: the HTTPS instance differs only in its server type.
  // Kong's Admin API answers `/services/` as `/services` (api_helpers default_route); so do we.
  // The UI packages prefix paths with the workspace (`/default/services`): only the default
  // workspace exists, so that prefix is dropped before routing (kong-clients.ts).
  const common = {
    logger: false, bodyLimit: opts.maxBodySize ?? defaultAdminMaxBodySize, routerOptions: { ignoreTrailingSlash: true },
    rewriteUrl: (req: { url?: string }) => stripDefaultWorkspace(req.url ?? '/'),
  } as const;
  const app = (opts.tls
    ? Fastify({ ...common, https: { cert: opts.tls.cert, key: opts.tls.key } })
    : Fastify(common)) as unknown as FastifyInstance;
  // Every path the Admin API serves, for Kong's `GET /endpoints`.
  const paths = new Set<string>();
  app.addHook('onRoute', (route) => {
    if (!route.url.includes('*')) paths.add(route.url);
  });
  const { store, registry, log } = opts;
  const sharedKv = opts.sharedKv ?? createMemoryKv({ maxEntries: 1000 });
  const ownsKv = !opts.sharedKv;
  const service = createEntityService({ store, registry, now: opts.now });
  const deps: RouteDeps = { store, registry, service, schemaCache: new Map(), views: {} };
  deps.views.consumer_groups = consumerGroupViews(deps);

  // --- body parsers: JSON (empty allowed), form-urlencoded, multipart, YAML/text for POST /config
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return done(badRequest('Cannot parse JSON body'), undefined);
    }
    try {
      checkJsonBody(parsed);
    } catch (err) {
      return done(err as Error, undefined);
    }
    done(null, parsed);
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, { kind: 'form', entries: [...new URLSearchParams(String(body)).entries()] } satisfies FormBody);
  });
  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer' }, (req, body, done) => {
    parseMultipart(body as Buffer, String(req.headers['content-type'])).then(
      (entries) => done(null, { kind: 'form', entries } satisfies FormBody),
      () => done(badRequest('Cannot parse multipart body'), undefined),
    );
  });
  app.addContentTypeParser(['application/yaml', 'application/x-yaml', 'text/yaml', 'text/plain'], { parseAs: 'string' }, (_req, body, done) => {
    done(null, { kind: 'text', text: String(body) });
  });

  if (opts.serverHeader) {
    const value = opts.serverHeader;
    app.addHook('onSend', async (_req, reply) => {
      reply.header('server', value);
    });
  }

  if (opts.adminLatencyHeader) {
    app.addHook('onSend', async (_req, reply) => {
      reply.header('x-kong-admin-latency', String(Math.round(reply.elapsedTime)));
    });
  }

  // --- access log (path only: query strings may carry values that belong in no log). Every
  // write also gets an audit line at info: client address, method, path, entity type and id,
  // outcome. Bodies are never logged, so no secret they carry reaches the log.
  app.addHook('onResponse', async (req, reply) => {
    const path = req.url.split('?')[0];
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') {
      log.debug({ method: req.method, path, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'admin request');
      return;
    }
    const target = auditTarget(path);
    const createdId = (reply as unknown as { auditId?: string }).auditId;
    log.info({
      type: 'audit', method: req.method, path, entity: target.entity, entity_id: target.id ?? createdId ?? null,
      status: reply.statusCode, outcome: reply.statusCode < 400 ? 'success' : 'failure', client_ip: req.ip,
    }, 'admin write');
  });
  // The id of an entity created by POST is in the reply body: remember it for the audit line.
  app.addHook('onSend', async (req, reply, payload) => {
    if (req.method === 'POST' && reply.statusCode === 201 && typeof payload === 'string') {
      try {
        const id = (JSON.parse(payload) as { id?: unknown }).id;
        if (typeof id === 'string') (reply as unknown as { auditId?: string }).auditId = id;
      } catch {
        // not JSON: no id to name
      }
    }
    return payload;
  });

  // --- CORS for the admin UI's origins only; preflights are answered before the token check
  if (opts.guiOrigins) registerAdminCors(app, opts.guiOrigins);

  // --- authentication
  if (opts.token) {
    const token = opts.token;
    app.addHook('onRequest', async (req) => {
      const given = req.headers[adminTokenHeader];
      if (!tokenMatches(token, Array.isArray(given) ? given[0] : given)) {
        throw new AdminError(401, { message: 'Invalid credentials. Token or User credentials required' });
      }
    });
  }

  // --- errors: Kong's shapes; internals are logged, never sent
  app.setNotFoundHandler(async (_req, reply) => reply.code(404).send({ message: 'Not found' }));
  app.setErrorHandler(async (err: FastifyError | Error, req, reply) => {
    if (isAdminError(err)) return reply.code(err.status).headers(err.headers ?? {}).send(err.body);
    if (isGatewayError(err) && err.expose && err.status < 500) return reply.code(err.status).send({ message: err.message });
    if (isGatewayError(err) && err.code === 'GW_STORE_UNAVAILABLE') {
      log.warn({ method: req.method, url: req.url.split('?')[0] }, 'admin request failed: database unavailable');
      return reply.code(503).send({ message: 'database unavailable' });
    }
    const fe = err as FastifyError;
    if (fe.statusCode === 415) return reply.code(415).send({ message: `Unsupported Content-Type: ${String(req.headers['content-type'] ?? '')}`.trim() });
    if (fe.statusCode === 413) return reply.code(413).send({ message: 'Request body too large' });
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) return reply.code(fe.statusCode).send({ message: fe.message });
    log.error({ err: { message: err.message, stack: err.stack }, method: req.method, url: req.url.split('?')[0] }, 'admin request failed');
    return reply.code(500).send({ message: 'An unexpected error occurred' });
  });

  // --- node information
  // `GET /` runs on every UI navigation: the distinct plugin names are read from the plugins
  // alone (not the whole configuration) and kept until the store's version changes.
  let enabled: { version: string; names: Promise<string[]> } | null = null;
  const distinctPluginNames = async (): Promise<string[]> => {
    const names = new Set<string>();
    let offset: string | null = null;
    do {
      const page: { data: { name: string }[]; offset: string | null } = await store.list('plugins', { size: 1000, offset });
      for (const p of page.data) names.add(p.name);
      offset = page.offset;
    } while (offset);
    return [...names].sort();
  };
  const enabledInCluster = async (): Promise<string[]> => {
    const version = await store.version();
    if (enabled === null || enabled.version !== version) {
      const names = distinctPluginNames();
      enabled = { version, names };
      names.catch(() => {
        if (enabled?.names === names) enabled = null;
      });
    }
    return enabled.names;
  };
  const root = {
    GET: async () => {
      const available: Record<string, { version: string; priority: number }> = {};
      for (const name of registry.names()) {
        const def = registry.get(name)!;
        available[name] = { version: def.version, priority: def.priority };
      }
      const info = opts.nodeInfo();
      const extra = typeof info.configuration === 'object' && info.configuration !== null ? info.configuration : {};
      return {
        ...info,
        plugins: { available_on_server: available, enabled_in_cluster: await enabledInCluster() },
        // Kong: the timers of the worker that answers (here, the process serving the Admin API).
        timers: { running: 0, pending: pendingTimers() },
        // Kong lists its whole configuration here; we list the settings a client may act on.
        configuration: { ...extra, database: store.kind === 'off' ? 'off' : store.kind, admin_token_required: Boolean(opts.token) },
      };
    },
  };
  endpoint(app, '/', root);
  // Kong Enterprise's per-workspace copy of `GET /` (`/{workspace}/kong`), which the plugins UI
  // package and go-kong call when a workspace is configured.
  endpoint(app, '/kong', root);
  endpoint(app, '/status', { GET: async () => statusDocument(store, opts.status) });
  if (opts.metrics) {
    const metrics = opts.metrics;
    endpoint(app, '/metrics', {
      GET: async (_req, reply) => {
        reply.type('text/plain; charset=UTF-8');
        return metrics();
      },
    });
  }
  endpoint(app, '/plugins/enabled', { GET: async () => ({ enabled_plugins: registry.names() }) });
  // Kong's route templates: `{name}` for each parameter, sorted segment by segment.
  endpoint(app, '/endpoints', {
    GET: async () => {
      const templates = [...paths].map((p) => p.replace(/:([^/:]+)/g, '{$1}'));
      const key = (p: string) => p.replaceAll('/', '\u0000');
      return { data: templates.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0)) };
    },
  });

  // --- schemas (JSON Schema of what the endpoints accept)
  const entitySchema = (name: string) => {
    if (!isEntityName(name)) throw new AdminError(404, { message: `No entity named '${name}'` });
    return jsonSchemaOf(descriptorOf(name).schema) ?? {};
  };
  const pluginDef = (name: string) => {
    const def = registry.get(name);
    if (!def) throw new AdminError(404, { message: `No plugin named '${name}'` });
    return def;
  };
  // Kong's format (`{"fields": [...]}`), which decK, go-kong and the UI packages read;
  // `?format=json-schema` answers the JSON Schema of what the endpoints accept instead.
  const wantsJsonSchema = (req: { query: unknown }) => {
    const format = (req.query as Record<string, unknown>).format;
    if (format === undefined) return false;
    if (format !== 'json-schema') throw badRequest("invalid option (format: only 'json-schema' is known; leave it out for Kong's format)");
    return true;
  };
  endpoint(app, '/schemas/:entity', {
    GET: async (req) => {
      const name = (req.params as { entity: string }).entity;
      const schema = entitySchema(name);
      return wantsJsonSchema(req) ? schema : kongEntitySchema(name as EntityName);
    },
  });
  endpoint(app, '/schemas/plugins/:name', {
    GET: async (req) => {
      const def = pluginDef((req.params as { name: string }).name);
      if (wantsJsonSchema(req)) return { name: def.name, version: def.version, priority: def.priority, config: jsonSchemaOf(def.schema) ?? {} };
      return kongPluginSchema(def);
    },
  });
  // Kong's older path, deprecated since 1.2 but still served by Kong 3.x (removal planned for 4.0):
  // the plugin's `config` record alone.
  endpoint(app, '/plugins/schema/:name', {
    GET: async (req) => {
      const def = pluginDef((req.params as { name: string }).name);
      return { type: 'record', required: true, fields: kongFields((jsonSchemaOf(def.schema) ?? {}) as KongJsonSchema) };
    },
  });
  const validated = { message: 'schema validation successful' };
  endpoint(app, '/schemas/plugins/validate', {
    POST: async (req) => {
      await service.validate('plugins', await entityBody(deps, 'plugins', req.body));
      return validated;
    },
  });
  endpoint(app, '/schemas/:entity/validate', {
    POST: async (req) => {
      const entity = (req.params as { entity: string }).entity;
      if (!isEntityName(entity)) throw new AdminError(404, { message: `No entity named '${entity}'` });
      await service.validate(entity, await entityBody(deps, entity, req.body));
      return validated;
    },
  });

  // --- whole configuration (config-endpoint.ts)
  registerConfigRoutes(app, { store, registry, env: opts.env ?? process.env, now: opts.now ?? Date.now });

  // Before the generic ones: `/upstreams/{u}/targets/all` and the health endpoints (upstream-health.ts).
  const targetsOf = async (u: Upstream): Promise<Target[]> => {
    const out: Target[] = [];
    let offset: string | undefined;
    do {
      const page = await store.list('targets', { foreign: { field: 'upstream', id: u.id }, size: 1000, offset });
      out.push(...page.data);
      offset = page.offset ?? undefined;
    } while (offset !== undefined);
    return out;
  };
  registerDebugRoutes(app, { store, logLevel: opts.logLevel, workers: opts.workers ?? 1 });
  registerUpstreamHealthRoutes(app, {
    balancing: opts.balancing,
    nodeId: () => String(opts.nodeInfo().node_id ?? ''),
    findUpstream: async (idOrName) => (await service.find('upstreams', idOrName)) as Upstream | null,
    // `host` alone means `host:8000`, as a target is stored.
    findTarget: async (u, t) => (await service.find('targets', parseTarget(t)?.normalized ?? t, { field: 'upstream', idOrKey: u.id })) as Target | null,
    targetsOf,
  });
  // Before the generic ones: certificates with their `snis` shorthand and SNI-name paths.
  registerCertificateRoutes(app, deps);
  registerKongClientRoutes(app, deps, opts.now ?? Date.now);
  registerEntityRoutes(app, deps);
  registerExtraRoutes(app, deps);
  registerConsumerGroupRoutes(app, deps);

  // --- plugins' own endpoints (e.g. GET /openid-connect/jwks)
  for (const name of registry.names()) {
    for (const r of registry.get(name)!.adminRoutes ?? []) {
      try {
        app.route({
          method: r.method,
          url: r.path,
          handler: async (req, reply) => {
            const res = await r.handler(
              {
                params: req.params as Record<string, string>,
                query: req.query as Record<string, string>,
                body: isFormBody(req.body) ? nestForm(req.body.entries) : req.body,
              },
              { sharedKv, log: log.child({ plugin: name }) },
            );
            reply.code(res.status).headers(res.headers ?? {});
            return res.body === undefined ? reply.send() : reply.send(res.body);
          },
        });
      } catch (err) {
        log.error({ plugin: name, path: r.path, err: { message: (err as Error).message } }, 'plugin admin route not registered');
      }
    }
  }

  return {
    app,
    async listen(host, port) {
      await app.listen({ host, port });
      const addr = app.server.address();
      return { port: typeof addr === 'object' && addr !== null ? addr.port : port };
    },
    async close() {
      await app.close();
      if (ownsKv) await sharedKv.close();
    },
  };
}

export { notFound };
