/**
 * CORS of the Admin API for the web admin UI (Kong's `admin_gui_url`): a browser page served from
 * an allowed origin may call the Admin API (with its Kong-Admin-Token header); no other origin
 * gets an Access-Control-Allow-Origin. Preflights (OPTIONS with Access-Control-Request-Method)
 * from an allowed origin are answered before authentication, as browsers send them without the
 * token; preflights from other origins get no CORS headers and so fail in the browser.
 */
import type { FastifyInstance } from 'fastify';

export function registerAdminCors(app: FastifyInstance, allowedOrigins: () => readonly string[]): void {
  app.addHook('onRequest', async (req, reply) => {
    const origin = req.headers.origin;
    if (typeof origin !== 'string') return;
    reply.header('vary', 'Origin');
    if (!allowedOrigins().includes(origin)) return;
    reply.header('access-control-allow-origin', origin);
    reply.header('access-control-allow-credentials', 'true');
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      const asked = req.headers['access-control-request-headers'];
      reply.header('access-control-allow-methods', 'GET, HEAD, PUT, PATCH, POST, DELETE');
      reply.header('access-control-allow-headers', typeof asked === 'string' && asked !== '' ? asked : 'Content-Type, Kong-Admin-Token');
      reply.header('access-control-max-age', '3600');
      return reply.code(204).send();
    }
  });
}
