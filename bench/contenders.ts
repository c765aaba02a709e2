/**
 * The programs bench/run.ts measures, each started on a free 127.0.0.1 port from a config
 * generated into a temp dir: the bench upstream, the bare Node proxy, the gateway (real CLI),
 * nginx as a plain reverse proxy and Apache httpd + mod_auth_openidc as an OAuth 2.0 resource
 * server. Each `start*` resolves once the program answers, and returns a handle to stop it.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Child, Children } from './lib.ts';
import { freePort, statusOf, waitUntil } from './lib.ts';

const root = new URL('..', import.meta.url).pathname;
const node = process.execPath;
const isRoot = process.getuid?.() === 0;
/** The upstream's answer body, the same from bench/upstream.ts and from the nginx upstream. */
export const UPSTREAM_BODY = '{"ok":true,"message":"hello from the bench upstream"}';

export interface Running {
  readonly child: Child;
  readonly port: number;
  /** The TLS listener (same process), when started with one. */
  readonly tlsPort?: number;
  /** A gateway's Admin API port. */
  readonly adminPort?: number;
}

export interface Probe {
  path: string;
  headers?: Record<string, string>;
  /** Ready on any HTTP answer (not only 200), e.g. before logging in. */
  anyStatus?: boolean;
  /** A wrk Lua script (and its arguments) that varies each request, e.g. a fresh DPoP proof. */
  script?: { file: string; args: string[] };
}

async function ready(what: string, child: Child, port: number, probe: Probe): Promise<Running> {
  await waitUntil(what, async () => {
    const status = await statusOf(`http://127.0.0.1:${port}${probe.path}`, probe.headers);
    return probe.anyStatus === true ? status < 500 : status === 200;
  }, child);
  return { child, port };
}

export async function startUpstream(children: Children, cpus: string | null, processes: number): Promise<Running> {
  const port = await freePort();
  const child = children.start('upstream', node, [join(root, 'bench/upstream.ts'), String(port), String(processes)], { cpus });
  return ready('upstream', child, port, { path: '/' });
}

/**
 * Starts nginx in the foreground with `http { ... }` holding `httpBody`: one place for the
 * process-wide settings (workers, pid and temp files in `dir`, access log off, client connections
 * kept open however many requests they carry).
 */
async function runNginx(children: Children, name: string, dir: string, cpus: string | null, workers: number, httpBody: string): Promise<Child> {
  await mkdir(dir, { recursive: true });
  const conf = `
worker_processes ${workers};
${isRoot ? 'user www-data;' : ''}
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${httpBody}
}
`;
  await writeFile(join(dir, 'nginx.conf'), conf);
  return children.start(name, 'nginx', ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { cpus });
}

/**
 * The same upstream answer (200, the same 52-byte JSON body) served by nginx with `return`: it
 * costs a fraction of a node:http process per request, so on this 2-CPU machine less of the CPU
 * the contenders share goes to the upstream and more of what is measured is the proxy itself.
 */
export async function startNginxUpstream(children: Children, dir: string, cpus: string | null): Promise<Running> {
  const port = await freePort();
  const child = await runNginx(children, 'upstream (nginx)', dir, cpus, 1, `
  server {
    listen 127.0.0.1:${port};
    listen 127.0.0.2:${port};
    listen 127.0.0.3:${port};
    location / {
      default_type application/json;
      return 200 '${UPSTREAM_BODY}';
    }
  }`);
  return ready('upstream (nginx)', child, port, { path: '/' });
}

export async function startBareProxy(children: Children, cpus: string | null, upstreamPort: number, workers: number): Promise<Running> {
  const port = await freePort();
  const child = children.start(`bare-proxy x${workers}`, node, [join(root, 'bench/bare-proxy.ts'), String(port), `http://127.0.0.1:${upstreamPort}`, String(workers)], { cpus });
  return ready('bare proxy', child, port, { path: '/' });
}

/**
 * Declarative config: one service, `routes` prefix routes /svc0 … /svc{n-1}, optional plugins
 * and consumers (with their credentials, in decK's nesting).
 * `balanced`: the service's host is an upstream of three targets (127.0.0.1–3 on the upstream's
 * port, all the same upstream process), round-robin or consistent hashing on a header.
 */
export function gatewayConfig(upstreamPort: number, routes: number, plugins: Array<{ name: string; route?: string; config: Record<string, unknown> }> = [],
  consumers: Array<Record<string, unknown>> = [], balanced: 'round-robin' | 'hash-header' | null = null): string {
  const list = [];
  for (let i = 0; i < routes; i++) list.push({ name: `r${i}`, paths: [`/svc${i}`] });
  const doc = {
    _format_version: '3.0',
    services: [{ name: 'bench', url: balanced === null ? `http://127.0.0.1:${upstreamPort}` : 'http://bench-upstream', routes: list }],
    plugins,
    ...(consumers.length > 0 ? { consumers } : {}),
    ...(balanced === null ? {} : {
      upstreams: [{
        name: 'bench-upstream',
        ...(balanced === 'hash-header' ? { hash_on: 'header', hash_on_header: 'x-user' } : {}),
        targets: [1, 2, 3].map((i) => ({ target: `127.0.0.${i}:${upstreamPort}` })),
      }],
    }),
  };
  // YAML is a superset of JSON: the CLI reads this as it would any portcullis.yaml.
  return JSON.stringify(doc, null, 1);
}

export interface GatewayStart {
  dir: string;
  config: string;
  workers: number;
  cpus: string | null;
  probe: Probe;
  /** Write a V8 CPU profile into this directory when the process exits. */
  cpuProfDir?: string;
  /** Extra environment (e.g. PORTCULLIS_PROXY_ACCESS_LOG=stdout; the default is off). */
  env?: Record<string, string>;
  /** Send the gateway's stdout (where the default access log goes) to this file instead of a pipe. */
  stdoutFile?: string;
  /**
   * `sqlite`: the gateway runs on its embedded store (for plugins that need a database, such as
   * oauth2); `config` is loaded into it with `portcullis config sync` through the Admin API.
   */
  database?: 'sqlite';
  /** proxy_listen flags after the address (e.g. ' ssl'); with ssl the scenario checks readiness itself. */
  listenFlags?: string;
  /** Also listen with `ssl http2` on a second port (certificate: PORTCULLIS_SSL_CERT in `env`). */
  tls?: boolean;
}

export async function startGateway(children: Children, o: GatewayStart): Promise<Running> {
  await mkdir(o.dir, { recursive: true });
  const file = join(o.dir, 'portcullis.yaml');
  await writeFile(file, o.config);
  const port = await freePort();
  const admin = await freePort();
  const tlsPort = o.tls ? await freePort() : undefined;
  const first = `127.0.0.1:${port}${o.listenFlags ?? ''}`;
  const listen = tlsPort === undefined ? first : `${first}, 127.0.0.1:${tlsPort} ssl http2`;
  // BENCH_NODE_ARGS: extra Node flags for gateway processes (e.g. --perf-basic-prof for `perf`).
  const extra = process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ').filter(Boolean) : [];
  const prof = o.cpuProfDir ? ['--cpu-prof', '--cpu-prof-interval', process.env.BENCH_PROF_INTERVAL ?? '250', '--cpu-prof-dir', o.cpuProfDir] : [];
  const source = o.database === 'sqlite' ? ['--database', 'sqlite'] : ['-c', file];
  const child = children.start(`gateway x${o.workers}`, node, [...extra, ...prof, join(root, 'bin/portcullis.js'), 'start', ...source,
    '--workers', String(o.workers), '--proxy-listen', listen, '--admin-listen', `127.0.0.1:${admin}`], {
    cpus: o.cpus,
    cwd: o.dir,
    stdoutFile: o.stdoutFile,
    env: { PORTCULLIS_PROXY_ACCESS_LOG: 'off', PORTCULLIS_LOG_LEVEL: 'warn', PORTCULLIS_DRAIN_TIMEOUT: '2', PORTCULLIS_SQLITE_PATH: join(o.dir, 'portcullis.db'), ...o.env },
  });
  await waitUntil('gateway admin', async () => (await statusOf(`http://127.0.0.1:${admin}/status`)) === 200, child);
  if (o.database === 'sqlite') {
    const sync = spawnSync(node, [join(root, 'bin/portcullis.js'), 'config', 'sync', file], { env: { ...process.env, PORTCULLIS_ADMIN_URL: `http://127.0.0.1:${admin}` }, encoding: 'utf8' });
    if (sync.status !== 0) throw new Error(`config sync into the gateway's store failed: ${sync.stderr || sync.stdout}`);
  }
  if (o.listenFlags?.includes('ssl')) return { child, port, adminPort: admin };
  const running = { ...(await ready('gateway', child, port, o.probe)), adminPort: admin };
  return tlsPort === undefined ? running : { ...running, tlsPort };
}

/**
 * nginx terminating TLS (the same certificate as the gateway's, TLSv1.2/1.3, session cache and
 * tickets off so every connection is a full handshake, as for the gateway) and proxying to the
 * upstream with keep-alive; a plain listener beside it for the readiness probe.
 */
export async function startNginxTls(children: Children, dir: string, cpus: string | null, upstreamPort: number, workers: number, cert: { certFile: string; keyFile: string }): Promise<Running> {
  const port = await freePort();
  const tlsPort = await freePort();
  const child = await runNginx(children, `nginx tls x${workers}`, dir, cpus, workers, `
  upstream bench { server 127.0.0.1:${upstreamPort}; keepalive 128; keepalive_requests 100000000; }
  server {
    listen 127.0.0.1:${port} reuseport;
    listen 127.0.0.1:${tlsPort} ssl http2 reuseport;
    ssl_certificate ${cert.certFile};
    ssl_certificate_key ${cert.keyFile};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    location / {
      proxy_pass http://bench;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $remote_addr;
    }
  }`);
  const running = await ready('nginx tls', child, port, { path: '/svc0/' });
  return { ...running, tlsPort };
}

/** nginx as a plain reverse proxy with upstream keep-alive (its idiomatic setup), access log off. */
export async function startNginx(children: Children, dir: string, cpus: string | null, upstreamPort: number, workers: number): Promise<Running> {
  const port = await freePort();
  const child = await runNginx(children, `nginx x${workers}`, dir, cpus, workers, `
  upstream bench { server 127.0.0.1:${upstreamPort}; keepalive 128; keepalive_requests 100000000; }
  server {
    listen 127.0.0.1:${port} reuseport;
    location / {
      proxy_pass http://bench;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $remote_addr;
    }
  }`);
  return ready('nginx', child, port, { path: '/svc0/' });
}

/**
 * Apache httpd (event MPM, `processes` child processes) with mod_auth_openidc validating the
 * bearer JWT with the IdP's public key (`AuthType oauth20`, OAuth 2.0 resource server mode), then
 * mod_proxy to the same upstream. Logging: error log only, no access log.
 */
export async function startApache(children: Children, dir: string, cpus: string | null, upstreamPort: number, key: { kid: string; file: string }, processes: number, probe: Probe): Promise<Running> {
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const mod = (name: string, file: string): string => `LoadModule ${name} /usr/lib/apache2/modules/${file}`;
  const conf = `
ServerRoot ${dir}
ServerName 127.0.0.1
Listen 127.0.0.1:${port}
PidFile ${dir}/httpd.pid
DefaultRuntimeDir ${dir}
Mutex file:${dir} default
ErrorLog ${dir}/error.log
LogLevel warn
${isRoot ? 'User www-data\nGroup www-data' : ''}
${mod('mpm_event_module', 'mod_mpm_event.so')}
${mod('authn_core_module', 'mod_authn_core.so')}
${mod('authz_core_module', 'mod_authz_core.so')}
${mod('authz_user_module', 'mod_authz_user.so')}
${mod('proxy_module', 'mod_proxy.so')}
${mod('proxy_http_module', 'mod_proxy_http.so')}
${mod('auth_openidc_module', 'mod_auth_openidc.so')}
StartServers ${processes}
ServerLimit ${processes}
ThreadLimit 64
ThreadsPerChild 64
MinSpareThreads 1
MaxSpareThreads ${processes * 64}
MaxRequestWorkers ${processes * 64}
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 60
OIDCCryptoPassphrase portcullis-bench-not-a-secret
OIDCOAuthVerifyCertFiles ${key.kid}#${key.file}
OIDCOAuthRemoteUserClaim sub
OIDCOAuthAcceptTokenAs header
<Location />
  AuthType oauth20
  Require valid-user
</Location>
ProxyPass / http://127.0.0.1:${upstreamPort}/
`;
  await writeFile(join(dir, 'httpd.conf'), conf);
  const child = children.start(`apache x${processes}`, 'apache2', ['-f', join(dir, 'httpd.conf'), '-DFOREGROUND'], { cpus, cwd: dir });
  return ready('apache', child, port, probe);
}

/** A throwaway redis-server (no persistence) for `session_storage: redis`. */
export async function startRedis(children: Children, dir: string, cpus: string | null): Promise<Running> {
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const child = children.start('redis', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { cpus });
  await waitUntil('redis', async () => {
    const net = await import('node:net');
    return new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.write('PING\r\n'); });
      s.once('data', (d: Buffer) => { s.destroy(); resolve(d.toString().startsWith('+PONG')); });
      s.once('error', () => resolve(false));
    });
  }, child);
  return { child, port };
}
