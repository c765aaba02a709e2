/**
 * Kong's `admin_gui_listen`: the web admin UI (ui/, built into ui/dist by `npm install`) served by
 * the gateway. Static files with their content types (precompressed `.gz` siblings when the client
 * takes gzip), `/kconfig.js` (the runtime settings Kong Manager reads: where the Admin API is, the
 * path the UI lives under, where the proxy answers), and index.html for every other path under
 * `admin_gui_path` (the UI routes in the browser). index.html gets a `<base href>` naming the path,
 * so one build serves under any `admin_gui_path`.
 */
import http from 'node:http';
import { readFileSync, statSync, existsSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';

/** Where the build puts the UI. */
export const defaultGuiDist = fileURLToPath(new URL('../../ui/dist/', import.meta.url));

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
};

export interface GuiOptions {
  /** `admin_gui_path`: '' for the root, else '/manager' (no trailing slash). */
  path: string;
  /** ui/dist (tests may point elsewhere). */
  dist?: string;
  /** The K_CONFIG values, computed per request (ports bound to 0 are known only after start). */
  kconfig(req: http.IncomingMessage): Record<string, string>;
  serverHeader: string | null;
  onError(err: unknown, path: string): void;
  /** admin_gui_listen's `reuseport` and `backlog=N` flags. */
  reusePort?: boolean;
  backlog?: number | null;
}

export interface GuiServer {
  port(): number;
  close(): Promise<void>;
}

const securityHeaders: http.OutgoingHttpHeaders = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'SAMEORIGIN',
  'referrer-policy': 'no-referrer',
};

function escapeHtmlAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

export async function startGuiServer(host: string, port: number, o: GuiOptions): Promise<GuiServer> {
  const dist = o.dist ?? defaultGuiDist;
  const built = existsSync(join(dist, 'index.html'));
  const indexHtml = built
    ? readFileSync(join(dist, 'index.html'), 'utf8').replace('<head>', `<head>\n    <base href="${escapeHtmlAttr(o.path)}/">`)
    : null;

  const send = (res: http.ServerResponse, status: number, headers: http.OutgoingHttpHeaders, body: string | Buffer): void => {
    const h: http.OutgoingHttpHeaders = { ...securityHeaders, ...headers, 'content-length': Buffer.byteLength(body) };
    if (o.serverHeader !== null) h.server = o.serverHeader;
    res.writeHead(status, h);
    res.end(res.req.method === 'HEAD' ? undefined : body);
  };

  // Files read once: a build does not change under a running gateway (a rebuild needs a restart).
  const files = new Map<string, { body: Buffer; gz: Buffer | null } | null>();
  const load = (file: string): { body: Buffer; gz: Buffer | null } | null => {
    if (files.has(file)) return files.get(file)!;
    let found: { body: Buffer; gz: Buffer | null } | null = null;
    try {
      if (statSync(file).isFile()) found = { body: readFileSync(file), gz: existsSync(`${file}.gz`) ? readFileSync(`${file}.gz`) : null };
    } catch {
      found = null;
    }
    files.set(file, found);
    return found;
  };

  const serveFile = (req: http.IncomingMessage, res: http.ServerResponse, rel: string): boolean => {
    const file = normalize(join(dist, rel));
    if (!file.startsWith(dist.endsWith(sep) ? dist : dist + sep)) return false;
    const found = load(file);
    if (found === null) return false;
    const type = contentTypes[extname(file).toLowerCase()] ?? 'application/octet-stream';
    // Vite names built assets by content hash: they never change under one name.
    const cache = rel.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache';
    if (found.gz !== null && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
      send(res, 200, { 'content-type': type, 'cache-control': cache, 'content-encoding': 'gzip', vary: 'Accept-Encoding' }, found.gz);
    } else {
      send(res, 200, { 'content-type': type, 'cache-control': cache, vary: 'Accept-Encoding' }, found.body);
    }
    return true;
  };

  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    let path: string;
    try {
      path = decodeURIComponent(q >= 0 ? url.slice(0, q) : url);
    } catch {
      send(res, 400, { 'content-type': 'text/plain; charset=utf-8' }, 'Bad request\n');
      return;
    }
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        send(res, 405, { 'content-type': 'text/plain; charset=utf-8', allow: 'GET, HEAD' }, 'Method not allowed\n');
        return;
      }
      if (o.path !== '' && (path === '/' || path === '')) {
        send(res, 302, { location: `${o.path}/`, 'content-type': 'text/plain; charset=utf-8' }, '');
        return;
      }
      if (path !== o.path && !path.startsWith(`${o.path}/`)) {
        send(res, 404, { 'content-type': 'text/plain; charset=utf-8' }, 'Not found\n');
        return;
      }
      const rel = path.slice(o.path.length).replace(/^\/+/, '');
      if (rel === 'kconfig.js') {
        const body = `window.K_CONFIG = ${JSON.stringify(o.kconfig(req), null, 2).replace(/</g, '\\u003c')};\n`;
        send(res, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' }, body);
        return;
      }
      if (indexHtml === null) {
        send(res, 503, { 'content-type': 'text/plain; charset=utf-8' }, 'The admin UI is not built. Run `npm install` (or `npm run build:ui`) in the Portcullis directory.\n');
        return;
      }
      if (rel !== '' && rel !== 'index.html' && serveFile(req, res, rel)) return;
      // A missing asset is a 404; any other path is a page of the UI.
      if (rel.startsWith('assets/') || /\.[a-z0-9]+$/i.test(rel) && extname(rel) !== '.html') {
        send(res, 404, { 'content-type': 'text/plain; charset=utf-8' }, 'Not found\n');
        return;
      }
      send(res, 200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' }, indexHtml);
    } catch (err) {
      o.onError(err, path);
      if (!res.headersSent) send(res, 500, { 'content-type': 'text/plain; charset=utf-8' }, 'An unexpected error occurred\n');
      else res.destroy();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, ...(o.reusePort ? { reusePort: true } : {}), ...(o.backlog ? { backlog: o.backlog } : {}) }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: () => (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

/** The built UI exists (ui/dist/index.html). */
export function guiBuilt(dist = defaultGuiDist): boolean {
  return existsSync(join(dist, 'index.html'));
}
