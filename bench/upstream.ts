/**
 * The benchmark upstream: answers every request with the same small JSON body, as cheaply as
 * node:http allows, so the proxies in front of it are what the benchmark measures.
 * Run: node bench/upstream.ts PORT [PROCESSES]  (several processes share the port, SO_REUSEPORT).
 */
import cluster from 'node:cluster';
import http from 'node:http';

const port = Number(process.argv[2] ?? 0);
const processes = Number(process.argv[3] ?? 1);
const body = Buffer.from('{"ok":true,"message":"hello from the bench upstream"}');
const headers = { 'content-type': 'application/json', 'content-length': String(body.length) };

if (cluster.isPrimary && processes > 1) {
  for (let i = 0; i < processes; i++) cluster.fork();
  process.on('SIGTERM', () => { for (const w of Object.values(cluster.workers ?? {})) w?.kill(); process.exit(0); });
} else {
  const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    // Drain any request body before answering so keep-alive connections stay usable.
    req.resume();
    req.on('end', () => {
      res.writeHead(200, headers);
      res.end(body);
    });
  });
  // 127.0.0.2 and .3 too: the load-balancing scenarios use them as three targets (one process).
  for (const extra of ['127.0.0.2', '127.0.0.3']) http.createServer(server.listeners('request')[0] as http.RequestListener).listen({ host: extra, port, reusePort: processes > 1, exclusive: processes > 1 });
  server.listen({ host: '127.0.0.1', port, reusePort: processes > 1, exclusive: processes > 1 }, () => process.send?.('ready') ?? console.log('ready'));
  process.on('SIGTERM', () => process.exit(0));
}
