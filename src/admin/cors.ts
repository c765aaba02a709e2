/**
 * CORS on the Admin API, for the admin UI only.
 *
 * Kong answers every origin when `admin_gui_url` is unset (it echoes `Origin`, or `*`); we answer
 * only the UI's origins: Kong's `admin_gui_url` (PORTCULLIS_ADMIN_GUI_URL, comma-separated, each
 * entry's scheme://host:port), or, when unset, the origins of the GUI listener. A request from any
 * other origin gets no CORS header at all, so a page elsewhere cannot read the Admin API (plugin
 * configurations carry client secrets). With an allowed origin: `Access-Control-Allow-Origin`
 * echoes it, `Access-Control-Allow-Credentials: true`, `Vary: Origin`; a preflight (`OPTIONS` with
 * `Access-Control-Request-Method`) is answered 204 before the admin token is checked (browsers
 * never send credentials on a preflight) with the methods and the requested headers
 * (`Kong-Admin-Token`, `Content-Type`, ...).
 */
import type { FastifyInstance } from 'fastify';

/** The origin (scheme://host[:port], default ports dropped, lower case) of a URL; null if it has none. */
export function originOf(url: string): string | null {
  try {
    const u = new URL(url.trim());
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
    return u.origin;
  } catch {
    return null;
  }
}

/**
 * `admin_gui_url` → the allowed origins. Throws naming the setting when an entry is not an
 * http(s) URL (a typo would otherwise leave the UI blank without a word).
 */
export function parseAdminGuiUrl(value: string | undefined, setting = 'PORTCULLIS_ADMIN_GUI_URL'): string[] {
  if (value === undefined || value.trim() === '') return [];
  const out: string[] = [];
  for (const entry of value.split(',')) {
    if (entry.trim() === '') continue;
    const origin = originOf(entry);
    if (origin === null) throw new Error(`${setting}: '${entry.trim()}' is not an http(s) URL`);
    if (!out.includes(origin)) out.push(origin);
  }
  return out;
}

/**
 * The origins a browser shows for a GUI listener: `http(s)://host:port`; a wildcard or loopback
 * address also as `localhost` and `127.0.0.1` (and `[::1]`), the names a browser on the same
 * machine uses. Other machines reach a wildcard listener under names we cannot know: they need
 * PORTCULLIS_ADMIN_GUI_URL.
 */
export function listenerOrigins(host: string, port: number, ssl: boolean): string[] {
  const scheme = ssl ? 'https' : 'http';
  const bare = host.replace(/^\[|\]$/g, '');
  const local = ['0.0.0.0', '::', '127.0.0.1', '::1', 'localhost'].includes(bare);
  const hosts = local ? ['localhost', '127.0.0.1', '[::1]'] : [bare.includes(':') ? `[${bare}]` : bare];
  const out = hosts.map((h) => originOf(`${scheme}://${h}:${port}`)).filter((o): o is string => o !== null);
  return [...new Set(out)];
}

const methods = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';
/** Header names a preflight may ask for: tokens only (RFC 9110 field names), comma-separated. */
const headerList = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(\s*,\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$/;

/** Adds the CORS hooks; `origins()` is read per request (the GUI listener binds after the Admin API). */
export function registerAdminCors(app: FastifyInstance, origins: () => readonly string[]): void {
  app.addHook('onRequest', async (req, reply) => {
    const origin = req.headers.origin;
    if (typeof origin !== 'string' || !origins().includes(origin)) return;
    reply.header('access-control-allow-origin', origin);
    reply.header('access-control-allow-credentials', 'true');
    reply.header('vary', 'Origin');
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      const asked = req.headers['access-control-request-headers'];
      const allowHeaders = typeof asked === 'string' && headerList.test(asked.trim()) ? asked.trim() : 'Content-Type, Kong-Admin-Token';
      reply.header('access-control-allow-methods', methods);
      reply.header('access-control-allow-headers', allowHeaders);
      reply.header('access-control-max-age', '600');
      return reply.code(204).send();
    }
  });
}
