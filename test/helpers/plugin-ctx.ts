/**
 * Test adapter: builds a `RequestContext` / `ResponseContext` from plain data so plugin handlers
 * can be unit-tested without a gateway (the one fake request context of the tests; the browser
 * harness of fake-ctx.ts builds its contexts with it too). It is not the kernel's context; it only honours the
 * contract in `src/plugins/sdk.ts` closely enough for handler tests.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { pino } from 'pino';
import type { Consumer } from '../../src/config/types.ts';
import type { BasicAuthCredential, ConsumerGroup, JwtSecret, KeyAuthCredential, OAuth2Credential } from '../../src/config/credentials.ts';
import type { Credential, PluginDeps, Reply, RequestContext, ResponseContext, UriCaptures } from '../../src/plugins/sdk.ts';
import type { KeyValueStore } from '../../src/storage/ports.ts';

export interface FakeRequest {
  method?: string;
  path?: string;
  rawQuery?: string;
  host?: string;
  port?: number;
  scheme?: 'http' | 'https';
  headers?: Record<string, string | string[] | undefined>;
  clientIp?: string;
  body?: string | Buffer;
  consumer?: Consumer | null;
  credential?: Credential | null;
  authenticatedGroups?: readonly string[] | null;
  /** consumer id → ACL groups */
  acls?: Record<string, readonly string[]>;
  consumers?: Consumer[];
  keyAuths?: KeyAuthCredential[];
  basicAuths?: BasicAuthCredential[];
  jwtSecrets?: JwtSecret[];
  oauth2?: OAuth2Credential[];
  consumerGroups?: ConsumerGroup[];
  /** consumer id → consumer group names */
  memberships?: Record<string, readonly string[]>;
  cookies?: Record<string, string>;
  route?: { id: string } | null;
  service?: { id: string } | null;
  /** The matched route's regex captures (RequestContext.uriCaptures); null when omitted. */
  uriCaptures?: UriCaptures | null;
  now?: () => number;
}

/** Case-insensitive header bag used for upstream and response headers. */
export class HeaderBag {
  readonly map = new Map<string, string | string[]>();
  get(name: string): string | string[] | undefined {
    return this.map.get(name.toLowerCase());
  }
  set(name: string, value: string | string[]): void {
    this.map.set(name.toLowerCase(), value);
  }
  add(name: string, value: string): void {
    const prev = this.get(name);
    if (prev === undefined) this.set(name, value);
    else this.set(name, [...(Array.isArray(prev) ? prev : [prev]), value]);
  }
  remove(name: string): void {
    this.map.delete(name.toLowerCase());
  }
}

export interface FakeContext extends ResponseContext {
  readonly upstreamHeaders: HeaderBag;
  /** What `upstream.setBody` last set (null: untouched). */
  readonly upstreamBody: string | null;
  readonly responseHeaders: HeaderBag;
  /** A plugin called `response.bufferBody()`. */
  readonly bodyBuffered: boolean;
  readonly downstream: HeaderBag;
  /** Switch the response the `response` phase sees (status, local). */
  setResponse(status: number, local: boolean, headers?: Record<string, string>): void;
}

export function silentLogger(): pino.Logger {
  return pino({ level: 'silent' });
}

export function makeConsumer(id: string, username: string | null = null, customId: string | null = null): Consumer {
  return { id, username, custom_id: customId, tags: null, created_at: 0, updated_at: 0 };
}

/** The Cookie header as a name → value map (the first of a repeated name wins). */
function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const name = part.slice(0, i).trim();
    if (!out.has(name)) out.set(name, part.slice(i + 1).trim());
  }
  return out;
}

export function makeCtx(req: FakeRequest = {}): FakeContext {
  const headers: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(req.headers ?? {})) if (v !== undefined) headers[k.toLowerCase()] = v;
  const upstreamHeaders = new HeaderBag();
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) upstreamHeaders.set(k, v);
  const responseHeaders = new HeaderBag();
  const downstream = new HeaderBag();
  let response = { status: 200, local: false };
  let bodyBuffered = false;
  let serializeValues: Map<string, unknown> | null = null;
  let consumer = req.consumer ?? null;
  let credential = req.credential ?? null;
  let groups = req.authenticatedGroups ?? null;
  let givenGroups: readonly ConsumerGroup[] | null = null;
  const consumers = [...(req.consumers ?? []), ...(consumer ? [consumer] : [])];
  const rawQuery = req.rawQuery ?? '';
  const body = Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body ?? '');
  let upstreamBody: string | null = null;
  const ctx: FakeContext = {
    id: 'test-request-id',
    startedAt: (req.now ?? Date.now)(),
    trace: null,
    startedPerf: performance.now(),
    request: {
      method: req.method ?? 'GET',
      scheme: req.scheme ?? 'http',
      host: req.host ?? 'gateway.test',
      port: req.port ?? 8000,
      path: req.path ?? '/',
      rawQuery,
      query: new URLSearchParams(rawQuery),
      headers,
      header: (name) => {
        const v = headers[name.toLowerCase()];
        return Array.isArray(v) ? v[0] : v;
      },
      cookies: req.cookies ? new Map(Object.entries(req.cookies)) : parseCookies(headers.cookie),
      clientIp: req.clientIp ?? '127.0.0.1',
      trusted: false,
      peerCertificate: null,
      tls: null,
      clientCertificate: null,
      body: async () => body,
      bodySize: async (stopAbove = Infinity) => Math.min(body.length, stopAbove + 1),
      form: async () => (String(headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded') ? new URLSearchParams(body.toString()) : null),
      json: async () => {
        if (!String(headers['content-type'] ?? '').includes('json')) return undefined;
        try { return JSON.parse(body.toString()); } catch { return undefined; }
      },
    },
    upstream: {
      method: req.method ?? 'GET',
      getHeader: (n) => upstreamHeaders.get(n),
      setHeader: (n, v) => upstreamHeaders.set(n, v),
      // The SDK's rule: a request has one Host, addHeader('host') replaces it.
      addHeader: (n, v) => (n.toLowerCase() === 'host' ? upstreamHeaders.set(n, v) : upstreamHeaders.add(n, v)),
      removeHeader: (n) => upstreamHeaders.remove(n),
      removeLowerHeaders: (names) => {
        for (const n of names) upstreamHeaders.remove(n);
      },
      setLowerHeader: (n, v) => upstreamHeaders.set(n, v),
      setLowerHeaders: (list) => {
        for (const h of list) upstreamHeaders.set(h.name, h.value);
      },
      path: req.path ?? '/',
      query: new URLSearchParams(rawQuery),
      setBody: (b) => { upstreamBody = String(b); },
    },
    route: (req.route ?? { id: 'route-1' }) as RequestContext['route'],
    service: (req.service ?? { id: 'service-1' }) as RequestContext['service'],
    uriCaptures: req.uriCaptures ?? null,
    get consumer() { return consumer; },
    get credential() { return credential; },
    get authenticatedGroups() { return groups; },
    authenticate(who) {
      consumer = who.consumer;
      credential = who.credential;
      if (who.groups !== undefined) groups = who.groups;
      givenGroups = who.consumerGroups ?? null;
    },
    get consumerGroups() {
      return givenGroups ?? (consumer === null ? [] : this.entities.consumerGroups(consumer.id));
    },
    entities: {
      consumerById: (id) => consumers.find((c) => c.id === id) ?? null,
      consumerByUsername: (u) => consumers.find((c) => c.username === u) ?? null,
      consumerByCustomId: (c) => consumers.find((x) => x.custom_id === c) ?? null,
      aclGroups: (id) => [...new Set(req.acls?.[id] ?? [])].sort(),
      keyAuthByKey: (k) => req.keyAuths?.find((c) => c.key === k) ?? null,
      basicAuthByUsername: (u) => req.basicAuths?.find((c) => c.username === u) ?? null,
      jwtSecretByKey: (k) => req.jwtSecrets?.find((c) => c.key === k) ?? null,
      oauth2ByClientId: (k) => req.oauth2?.find((c) => c.client_id === k) ?? null,
      oauth2ById: (k) => req.oauth2?.find((c) => c.id === k) ?? null,
      consumerGroups: (id) => (req.consumerGroups ?? []).filter((g) => req.memberships?.[id]?.includes(g.name)).sort((a, b) => (a.name < b.name ? -1 : 1)),
      consumerGroupByName: (n) => req.consumerGroups?.find((g) => g.name === n) ?? null,
      certificateById: () => null,
      caCertificateById: () => null,
    },
    state: new Map(),
    signal: new AbortController().signal,
    log: silentLogger(),
    now: req.now ?? (() => Date.now()),
    reply(status, replyBody, replyHeaders): Reply {
      return { kind: 'reply', status, body: replyBody, headers: replyHeaders };
    },
    downstreamHeaders: { set: (n, v) => downstream.set(n, v), add: (n, v) => downstream.add(n, v) },
    get serializeValues() { return serializeValues; },
    setSerializeValue(key: string, value: unknown) {
      (serializeValues ??= new Map()).set(key, value);
    },
    response: {
      get status() { return response.status; },
      get local() { return response.local; },
      get headers() { return Object.fromEntries(responseHeaders.map); },
      getHeader: (n) => responseHeaders.get(n),
      setHeader: (n, v) => responseHeaders.set(n, v),
      addHeader: (n, v) => responseHeaders.add(n, v),
      removeHeader: (n) => responseHeaders.remove(n),
      bufferBody: () => { bodyBuffered = true; },
    },
    get bodyBuffered() { return bodyBuffered; },
    upstreamHeaders,
    get upstreamBody() { return upstreamBody; },
    responseHeaders,
    downstream,
    setResponse(status, local, hs) {
      response = { status, local };
      for (const [k, v] of Object.entries(hs ?? {})) responseHeaders.set(k, v);
    },
  };
  return ctx;
}

/** In-memory KeyValueStore good enough for plugin unit tests that never touch it. */
function unusedKv(): KeyValueStore {
  const fail = async (): Promise<never> => { throw new Error('sharedKv not available in unit tests'); };
  return { get: fail, set: fail, add: fail, take: fail, delete: fail, close: async () => {} };
}

export function makeDeps(name: string, now: () => number = () => Date.now()): PluginDeps {
  return {
    entity: {
      id: `${name}-plugin-id`, name, instance_name: null, config: {}, protocols: ['http', 'https'], enabled: true,
      route: null, service: null, consumer: null, ordering: null, tags: null, created_at: 0, updated_at: 0,
    },
    log: silentLogger(),
    sharedKv: unusedKv(),
    workers: 1,
    now,
  };
}
