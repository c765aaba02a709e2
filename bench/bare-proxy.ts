/**
 * The baseline the gateway is measured against: an idiomatic bare reverse proxy (node:http in,
 * undici Pool#stream out, the same API the gateway uses), with only the header hygiene any proxy
 * needs (RFC 9110 §7.6.1 hop-by-hop fields dropped both ways, X-Forwarded-For added).
 * Run: node bench/bare-proxy.ts PORT UPSTREAM_ORIGIN [WORKERS]  (workers share the port, SO_REUSEPORT).
 */
import cluster from 'node:cluster';
import http from 'node:http';
import { Pool } from 'undici';

const [port, origin, workers] = [Number(process.argv[2]), process.argv[3]!, Number(process.argv[4] ?? 1)];
const hop = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);
const clean = (h: Record<string, string | string[] | undefined>) => {
  const out: Record<string, string | string[]> = {};
  for (const k in h) if (!hop.has(k) && h[k] !== undefined) out[k] = h[k]!;
  return out;
};

if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork();
  process.on('SIGTERM', () => { for (const w of Object.values(cluster.workers ?? {})) w?.kill(); process.exit(0); });
} else {
  const pool = new Pool(origin, { connections: 128, pipelining: 1, keepAliveTimeout: 60_000 });
  http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const headers = clean(req.headers);
    headers['x-forwarded-for'] = req.socket.remoteAddress ?? '';
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    pool.stream({ path: req.url!, method: req.method!, headers, body: hasBody ? req : null, headersTimeout: 60_000, bodyTimeout: 60_000 },
      ({ statusCode, headers: up }) => { res.writeHead(statusCode, clean(up)); return res; },
    ).catch(() => { if (!res.headersSent) res.writeHead(502).end(); else res.destroy(); });
  }).listen({ host: '127.0.0.1', port, reusePort: workers > 1, exclusive: workers > 1 }, () => process.send?.('ready') ?? console.log('ready'));
  process.on('SIGTERM', () => process.exit(0));
}
