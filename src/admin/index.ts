/**
 * PLACEHOLDER from the lead (to be replaced by the Admin API): only GET /status and GET /.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { PluginRegistry } from '../plugins/registry.ts';
import type { ConfigStore } from '../storage/ports.ts';

export interface AdminOptions {
  store: ConfigStore;
  registry: PluginRegistry;
  log: Logger;
  token?: string;
  tls?: { cert: string; key: string };
  nodeInfo(): Record<string, unknown>;
  status(): Record<string, unknown>;
}

export async function createAdminServer(opts: AdminOptions): Promise<{ listen(host: string, port: number): Promise<{ port: number }>; close(): Promise<void>; app: FastifyInstance }> {
  const app = Fastify({ logger: false });
  app.get('/status', async () => opts.status());
  app.get('/', async () => opts.nodeInfo());
  return {
    app,
    async listen(host, port) {
      await app.listen({ host, port });
      const addr = app.server.address();
      return { port: typeof addr === 'object' && addr !== null ? addr.port : port };
    },
    close: () => app.close(),
  };
}
