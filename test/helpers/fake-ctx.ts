/**
 * Test harness for the openid-connect browser flows: a node:http server on port 0 that turns each
 * request into a plugin context (plugin-ctx.ts `makeCtx`, the one fake context of the tests) and
 * hands it to a handler, plus a cookie jar and a tiny "browser" (fetch that keeps cookies, follows
 * redirects and can post the IdP's login form). It is not a mock of the IdP.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import type { Reply, RequestContext } from '../../src/plugins/sdk.ts';
import type { KeyValueStore } from '../../src/storage/ports.ts';
import { makeCtx, type FakeContext } from './plugin-ctx.ts';

/** What the echoing "upstream" reports when the handler lets a request through. */
export interface UpstreamEcho {
  upstream: true;
  path: string;
  query: string;
  headers: Record<string, string | string[]>;
  extra?: unknown;
}

export type Handler = (ctx: RequestContext) => Promise<Reply | { upstream: true; extra?: unknown }>;

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The plugin context of a request the harness received (plugin-ctx.ts `makeCtx`). */
export function buildContext(req: IncomingMessage, body: Buffer, now: () => number): FakeContext {
  const url = new URL(req.url ?? '/', 'http://placeholder');
  const hostHeader = String(req.headers.host ?? '127.0.0.1');
  return makeCtx({
    method: req.method ?? 'GET',
    scheme: 'http',
    host: hostHeader.replace(/:\d+$/, '').toLowerCase(),
    port: Number(/:(\d+)$/.exec(hostHeader)?.[1] ?? 80),
    path: url.pathname,
    rawQuery: url.search.slice(1),
    headers: req.headers,
    clientIp: req.socket.remoteAddress ?? '127.0.0.1',
    body,
    now,
  });
}

export interface Harness {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Serve `handler` on 127.0.0.1:0. A thrown error becomes a 500 whose body names it (for assertions). */
export async function startHarness(handler: Handler, opts: { now?: () => number } = {}): Promise<Harness> {
  const now = opts.now ?? (() => Date.now());
  const server = createServer(async (req, res) => {
    const body = await readBody(req);
    const ctx = buildContext(req, body, now);
    let status = 200;
    let out: unknown;
    let headers: Record<string, string | string[]> = {};
    try {
      const r = await handler(ctx);
      if ('kind' in r && r.kind === 'reply') {
        status = r.status;
        out = r.body;
        headers = r.headers ?? {};
      } else {
        const echo: UpstreamEcho = {
          upstream: true,
          path: ctx.upstream.path,
          query: ctx.upstream.query.toString(),
          headers: Object.fromEntries(ctx.upstreamHeaders.map),
          extra: (r as { extra?: unknown }).extra,
        };
        out = echo;
      }
    } catch (err) {
      status = 500;
      out = { message: 'An unexpected error occurred', error: err instanceof Error ? err.message : String(err) };
    }
    for (const [n, v] of ctx.downstream.map) res.setHeader(n, v);
    for (const [n, v] of Object.entries(headers)) res.setHeader(n, v);
    if (out === undefined) res.writeHead(status).end();
    else if (typeof out === 'string' || Buffer.isBuffer(out)) res.writeHead(status).end(out);
    else res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(out));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A browser-like cookie jar (keyed by host without port, as browsers do; path ignored). */
export class CookieJar {
  readonly cookies = new Map<string, Map<string, string>>();

  store(url: string, setCookies: string[]): void {
    const host = new URL(url).hostname;
    let jar = this.cookies.get(host);
    if (!jar) this.cookies.set(host, (jar = new Map()));
    for (const sc of setCookies) {
      const [pair, ...attrs] = sc.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
  }

  header(url: string): string {
    const jar = this.cookies.get(new URL(url).hostname);
    return jar ? [...jar].map(([n, v]) => `${n}=${v}`).join('; ') : '';
  }

  get(url: string, name: string): string | undefined {
    return this.cookies.get(new URL(url).hostname)?.get(name);
  }

  names(url: string): string[] {
    return [...(this.cookies.get(new URL(url).hostname)?.keys() ?? [])];
  }
}

export interface SendInit {
  method?: string;
  body?: string;
  headers?: Record<string, string>;
}

export interface Step {
  url: string;
  status: number;
  location: string | null;
  setCookies: string[];
  body: string;
  headers: Headers;
}

/**
 * One request with the jar's cookies; stores the response cookies. Uses undici.request rather than
 * fetch: fetch forces `Sec-Fetch-Mode: cors`, and these tests need to look like navigations.
 */
export async function send(jar: CookieJar, url: string, init: SendInit = {}): Promise<Step> {
  const headers: Record<string, string> = { ...init.headers };
  const cookie = jar.header(url);
  if (cookie) headers.cookie = cookie;
  const res = await request(url, { method: (init.method ?? 'GET') as 'GET', body: init.body, headers, headersTimeout: 10_000, bodyTimeout: 10_000 });
  const raw = res.headers['set-cookie'];
  const setCookies = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  jar.store(url, setCookies);
  const h = new Headers();
  for (const [k, v] of Object.entries(res.headers)) {
    if (v === undefined) continue;
    for (const x of Array.isArray(v) ? v : [v]) h.append(k, x);
  }
  const location = h.get('location');
  return {
    url,
    status: res.statusCode,
    location: location ? new URL(location, url).href : null,
    setCookies,
    body: await res.body.text(),
    headers: h,
  };
}

/**
 * Navigate like a browser: follow redirects (GET), and when the IdP shows its sign-in form, post
 * the credentials. Returns every step; the last one is where the navigation ended.
 */
export async function navigate(
  jar: CookieJar,
  url: string,
  opts: {
    credentials?: { login: string; password: string };
    init?: SendInit;
    maxSteps?: number;
    /** Headers added to every request to this origin (the gateway), redirects and the callback included. */
    originHeaders?: { origin: string; headers: Record<string, string> };
  } = {},
): Promise<Step[]> {
  const steps: Step[] = [];
  let next: { url: string; init: SendInit } | null = {
    url,
    init: { ...opts.init, headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate', ...opts.init?.headers } },
  };
  while (next) {
    if (steps.length >= (opts.maxSteps ?? 15)) throw new Error(`too many steps: ${steps.map((s) => `${s.status} ${s.url}`).join(' → ')}`);
    const extra = opts.originHeaders && new URL(next.url).origin === new URL(opts.originHeaders.origin).origin ? opts.originHeaders.headers : null;
    const step = await send(jar, next.url, extra ? { ...next.init, headers: { ...next.init.headers, ...extra } } : next.init);
    steps.push(step);
    const nav = { accept: 'text/html', 'sec-fetch-mode': 'navigate' };
    if (step.status >= 300 && step.status < 400 && step.location) {
      next = { url: step.location, init: { headers: nav } };
      continue;
    }
    const form = /<form[^>]*method="post"[^>]*action="([^"]+\/login)"/i.exec(step.body);
    if (step.status === 200 && form && opts.credentials) {
      const body = new URLSearchParams({ login: opts.credentials.login, password: opts.credentials.password });
      next = {
        url: new URL(form[1], step.url).href,
        init: { method: 'POST', body: body.toString(), headers: { ...nav, 'content-type': 'application/x-www-form-urlencoded' } },
      };
      opts = { ...opts, credentials: undefined };
      continue;
    }
    // oidc-provider's form_post response: an auto-submitting form back to the client
    const post = /<form[^>]*method="post"[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/i.exec(step.body);
    if (step.status === 200 && post && /name="(state|response)"/.test(post[2])) {
      const fields = new URLSearchParams();
      for (const m of post[2].matchAll(/<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) fields.append(m[1], decodeEntities(m[2]));
      next = {
        url: decodeEntities(post[1]),
        init: { method: 'POST', body: fields.toString(), headers: { ...nav, 'content-type': 'application/x-www-form-urlencoded' } },
      };
      continue;
    }
    next = null;
  }
  return steps;
}

function decodeEntities(s: string): string {
  return s
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCharCode(Number(d)))
    .replace(/&#x([0-9a-f]+);/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** In-memory KeyValueStore for tests (TTL honoured, atomic add/take within the process). */
export class MemoryKv implements KeyValueStore {
  readonly #data = new Map<string, { value: string; expires: number | null }>();
  readonly #now: () => number;
  constructor(now: () => number = () => Date.now()) {
    this.#now = now;
  }
  #live(key: string): string | null {
    const e = this.#data.get(key);
    if (!e) return null;
    if (e.expires !== null && e.expires <= this.#now()) {
      this.#data.delete(key);
      return null;
    }
    return e.value;
  }
  async get(key: string): Promise<string | null> {
    return this.#live(key);
  }
  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    this.#data.set(key, { value, expires: ttlMs === undefined ? null : this.#now() + ttlMs });
  }
  async add(key: string, value: string, ttlMs?: number): Promise<boolean> {
    if (this.#live(key) !== null) return false;
    await this.set(key, value, ttlMs);
    return true;
  }
  async incr(key: string, by: number, ttlMs: number): Promise<number> {
    const v = this.#live(key);
    if (v === null) {
      await this.set(key, String(by), ttlMs);
      return by;
    }
    if (!/^-?\d+$/.test(v)) throw new Error(`incr: the value at ${JSON.stringify(key)} is not an integer`);
    const n = Number(v) + by;
    this.#data.get(key)!.value = String(n);
    return n;
  }
  async take(key: string): Promise<string | null> {
    const v = this.#live(key);
    this.#data.delete(key);
    return v;
  }
  async delete(key: string): Promise<void> {
    this.#data.delete(key);
  }
  async close(): Promise<void> {}
}
