/**
 * Kong's Status API (`status_listen`): a small read-only listener for health checks and scrapes,
 * apart from the Admin API. GET /status (the Admin API's body), GET /status/ready (200 once the
 * node serves a configuration and its datastore answers, else 503), GET /metrics (Prometheus
 * text, the whole node). Nothing else; no request body is read.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { prometheusContentType } from './metrics.ts';

export interface StatusApiOptions {
  status(): Promise<Record<string, unknown>>;
  ready(): Promise<{ ready: boolean; message: string }>;
  metrics(): Promise<string>;
  /** `Server` header value (Kong's server_tokens), or null. */
  serverHeader: string | null;
  onError(err: unknown, path: string): void;
}

export interface StatusApi {
  port(): number;
  close(): Promise<void>;
}

function send(res: http.ServerResponse, status: number, type: string, body: string, server: string | null): void {
  const headers: http.OutgoingHttpHeaders = { 'content-type': type, 'content-length': Buffer.byteLength(body) };
  if (server !== null) headers.server = server;
  res.writeHead(status, headers);
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

export async function startStatusApi(host: string, port: number, o: StatusApiOptions): Promise<StatusApi> {
  const json = 'application/json; charset=utf-8';
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q >= 0 ? url.slice(0, q) : url;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, json, JSON.stringify({ message: 'Method not allowed' }), o.serverHeader);
      return;
    }
    const answer = async (): Promise<void> => {
      if (path === '/status' || path === '/status/') {
        send(res, 200, json, JSON.stringify(await o.status()), o.serverHeader);
      } else if (path === '/status/ready') {
        const r = await o.ready();
        send(res, r.ready ? 200 : 503, json, JSON.stringify({ message: r.message }), o.serverHeader);
      } else if (path === '/metrics') {
        send(res, 200, prometheusContentType, await o.metrics(), o.serverHeader);
      } else {
        send(res, 404, json, JSON.stringify({ message: 'Not found' }), o.serverHeader);
      }
    };
    answer().catch((err: unknown) => {
      o.onError(err, path);
      if (!res.headersSent) send(res, 500, json, JSON.stringify({ message: 'An unexpected error occurred' }), o.serverHeader);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
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
