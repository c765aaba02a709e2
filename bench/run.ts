/**
 * `npm run bench`: load scenarios measured with wrk in one run — the upstream direct, a bare Node
 * proxy, the gateway (no plugins: 1 and 1,000 routes; openid-connect bearer with a warm and with
 * no verified-token cache; session cookie in cookie and in Redis storage) at 1 and 2 workers,
 * nginx as a plain reverse proxy and Apache httpd + mod_auth_openidc as an OAuth 2.0 resource
 * server — and the ratios against the targets, written to bench/RESULTS.md.
 *
 * Environment: BENCH_QUICK=1 (short runs), BENCH_ONLY=<regex on scenario ids> (subset, prints
 * only), BENCH_PIN=0 (no taskset), BENCH_CPU_PROF=<dir> (V8 CPU profiles of gateway processes),
 * BENCH_DURATION / BENCH_CONNECTIONS / BENCH_THREADS (wrk settings), BENCH_NODE_ARGS (extra Node flags
 * for gateway processes, e.g. --perf-basic-prof).
 */
import { createHash, createPublicKey, randomUUID, type JsonWebKey } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidcClient from 'openid-client';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { startIdp } from '../demo/idp.ts';
import { execFileSync } from 'node:child_process';
import { startMtlsBench, type MtlsBench } from './mtls.ts';
import { Children, clockTicks, describeMachine, ensureDebianPackages, groupCpuSeconds, h2load, hasCommand, statusOf, waitUntil, wrk, type Pinning, type WrkOptions, type WrkResult } from './lib.ts';
import {
  gatewayConfig, startApache, startBareProxy, startGateway, startNginx, startNginxTls, startRedis, startUpstream, startNginxUpstream, type Probe, type Running,
} from './contenders.ts';

const here = new URL('.', import.meta.url).pathname;
const quick = process.env.BENCH_QUICK === '1';
const only = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : null;
const cpuProfDir = process.env.BENCH_CPU_PROF || undefined;
const wrkOpts: Omit<WrkOptions, 'cpus'> = {
  threads: Number(process.env.BENCH_THREADS ?? 2),
  connections: Number(process.env.BENCH_CONNECTIONS ?? 64),
  durationSec: Number(process.env.BENCH_DURATION ?? (quick ? 3 : 6)),
};
const warmupSec = quick ? 1 : 2;
/** The upstream behind every contender: nginx `return 200` when nginx is installed (cheapest), else bench/upstream.ts. */
let upstreamKind: 'nginx' | 'node' = 'node';
const rounds = Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 5));

function median(values: readonly number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

function currentLoad(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'n/a';
  }
}

function pinning(): Pinning {
  const n = describeMachine().cpus;
  if (process.env.BENCH_PIN === '0' || n < 2 || !hasCommand('taskset')) return { load: null, single: null, multi: null };
  if (n < 4) return { load: '0', single: '1', multi: '0-1' };
  const half = Math.floor(n / 2);
  return { load: `0-${half - 1}`, single: String(half), multi: `${half}-${half + 1}` };
}

interface Scenario {
  id: string;
  label: string;
  group: 'core' | 'oidc' | 'reference';
  workers: number;
  /** Starts the contender; resolves with where to send load. */
  start(): Promise<{ running: Running; probe: Probe }>;
  /** Extra work once ready (e.g. log in) that may change the headers wrk sends. */
  prepare?(running: Running, probe: Probe): Promise<Probe>;
  /** Load over TLS to the contender's `tlsPort` (wrk over https, or h2load over h2). */
  tls?: 'https' | 'h2';
  /** The contender's main listener is TLS: load goes to https:// on its port (with `load`). */
  tlsMain?: boolean;
  /**
   * A log plugin's queue: the share of requests whose log entry was dropped during each run
   * (portcullis_log_queue_dropped_total against kong_nginx_requests_total, from the Admin API's
   * /metrics), reported beside the throughput.
   */
  logDrops?: boolean;
  /** Measures instead of wrk (the mTLS scenarios: a load client with a client certificate). */
  load?(url: string, headers: Record<string, string>, o: WrkOptions): Promise<WrkResult>;
}

type Outcome = { result: WrkResult; note?: string } | { error: string };

const sessionSecret = 'portcullis-bench-session-secret-not-for-production';

async function main(): Promise<void> {
  ensureDebianPackages();
  const wanted = process.env.BENCH_UPSTREAM ?? (hasCommand('nginx') ? 'nginx' : 'node');
  if (wanted !== 'nginx' && wanted !== 'node') throw new Error(`BENCH_UPSTREAM must be nginx or node, not ${wanted}`);
  upstreamKind = wanted;
  const machine = describeMachine();
  const pin = pinning();
  const children = new Children();
  const work = await mkdtemp(join(tmpdir(), 'portcullis-bench-'));
  const stopAll = (): void => {
    void children.closeAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', stopAll);
  process.once('SIGTERM', stopAll);
  const idp = await startIdp({ accessTokenTtl: 3600 });
  const outcomes = new Map<string, Outcome>();
  const samples = new Map<string, Array<WrkResult | undefined>>();
  const loadAvg: string[] = [];
  const ticks = clockTicks();
  const scenarios: Scenario[] = [];
  let mtlsBench: MtlsBench | null = null;
  let dirs = 0;
  const nextDir = (name: string): string => join(work, `${++dirs}-${name}`);
  /** Lets every stopped contender run again (set once they are known). */
  let continueAll = (): void => {};
  try {
    if (!hasCommand('wrk')) throw new Error('wrk is not installed (Debian package "wrk")');
    const upstream = upstreamKind === 'nginx' ? await startNginxUpstream(children, nextDir('upstream'), pin.load) : await startUpstream(children, pin.load, 1);
    const up = upstream.port;

    const tokenRes = await fetch(`${idp.issuer}/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'password', username: 'alex', password: 'doe', client_id: 'kong', client_secret: 'kong-secret', scope: 'openid' }),
      signal: AbortSignal.timeout(10_000),
    });
    if (!tokenRes.ok) throw new Error(`password grant failed: ${tokenRes.status} ${await tokenRes.text()}`);
    const accessToken = ((await tokenRes.json()) as { access_token: string }).access_token;
    const bearer = { authorization: `Bearer ${accessToken}` };
    // mod_auth_openidc 2.4 fetches a JWKS only over https: it gets the IdP's RS256 public key as
    // a PEM file instead (OIDCOAuthVerifyCertFiles kid#file), the same key the JWKS publishes.
    const rsaJwk = idp.jwks.keys.find((k) => k.kty === 'RSA')!;
    const rsaKey = { kid: rsaJwk.kid!, file: join(work, 'idp-rsa.pem') };
    await writeFile(rsaKey.file, createPublicKey({ key: rsaJwk as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' }));

    const oidcBase = {
      issuer: `${idp.issuer}/.well-known/openid-configuration`,
      client_id: ['kong'],
      client_secret: ['kong-secret'],
      client_auth: ['client_secret_post'],
    };
    const cpusFor = (w: number): string | null => (w === 1 ? pin.single : pin.multi);
    const gateway = (id: string, label: string, group: Scenario['group'], workers: number, routes: number, probe: Probe,
      plugins: Array<{ name: string; route?: string; config: Record<string, unknown> }> = [], prepare?: Scenario['prepare'], env?: Record<string, string>, consumers: Array<Record<string, unknown>> = [],
      balanced: Parameters<typeof gatewayConfig>[4] = null): Scenario => ({
      id, label, group, workers, prepare,
      start: async () => {
        const dir = nextDir(id);
        return {
        running: await startGateway(children, {
          dir, config: gatewayConfig(up, routes, plugins, consumers, balanced), workers, cpus: cpusFor(workers), cpuProfDir, env,
          // An access log on stdout goes to a file, as a log collector takes it; a pipe read by
          // this process would charge the reading to the contender.
          stdoutFile: env?.PORTCULLIS_PROXY_ACCESS_LOG === 'stdout' ? join(dir, 'stdout.log') : undefined,
          // A session scenario answers 401 until logged in: ready on any answer.
          probe: prepare ? { path: probe.path, anyStatus: true } : probe,
        }),
        probe,
        };
      },
    });

    // The request path: the last of the routes, so a linear matcher would pay full price.
    const p1 = { path: '/svc0/items' };
    const p1000 = { path: '/svc999/items' };

    scenarios.push({
      id: 'upstream', label: 'upstream direct', group: 'reference', workers: 1,
      start: async () => ({ running: upstream, probe: p1 }),
    });
    for (const w of [1, 2]) {
      scenarios.push({
        id: `bare-w${w}`, label: 'bare Node proxy (node:http + undici)', group: 'core', workers: w,
        start: async () => ({ running: await startBareProxy(children, cpusFor(w), up, w), probe: p1 }),
      });
      scenarios.push(gateway(`gw-1r-w${w}`, 'gateway, no plugins, 1 route', 'core', w, 1, p1));
      scenarios.push(gateway(`gw-1000r-w${w}`, 'gateway, no plugins, 1,000 routes', 'core', w, 1000, p1000));
    }
    // TLS (issue 15): one gateway with a plain and an `ssl http2` listener, measured on each:
    // HTTP/1.1 keep-alive over TLS against plain HTTP, a new TLS handshake per request
    // (`Connection: close`) beside nginx on the same RSA certificate, and h2 with 100 streams per
    // connection (h2load) beside HTTP/1.1 over TLS.
    const tlsCert = { certFile: join(work, 'bench-tls.crt'), keyFile: join(work, 'bench-tls.key') };
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', tlsCert.keyFile, '-out', tlsCert.certFile, '-days', '2',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
    let tlsGateway: Promise<Running> | null = null;
    const sharedTlsGateway = (): Promise<Running> => (tlsGateway ??= startGateway(children, {
      dir: nextDir('tls'), config: gatewayConfig(up, 1), workers: 1, cpus: cpusFor(1), cpuProfDir, tls: true,
      env: { PORTCULLIS_SSL_CERT: tlsCert.certFile, PORTCULLIS_SSL_CERT_KEY: tlsCert.keyFile }, probe: p1,
    }));
    const closeProbe = { path: '/svc0/items', headers: { connection: 'close' } };
    scenarios.push({ id: 'tls-plain-w1', label: 'gateway, plain HTTP listener of the TLS gateway (keep-alive)', group: 'core', workers: 1, start: async () => ({ running: await sharedTlsGateway(), probe: p1 }) });
    scenarios.push({ id: 'tls-keepalive-w1', label: 'gateway, HTTP/1.1 over TLS, keep-alive', group: 'core', workers: 1, tls: 'https', start: async () => ({ running: await sharedTlsGateway(), probe: p1 }) });
    scenarios.push({ id: 'tls-handshake-w1', label: 'gateway, a new TLS handshake per request (Connection: close)', group: 'core', workers: 1, tls: 'https', start: async () => ({ running: await sharedTlsGateway(), probe: closeProbe }) });
    scenarios.push({ id: 'tls-h2-100s-w1', label: 'gateway, h2 over TLS, 100 streams per connection (h2load)', group: 'core', workers: 1, tls: 'h2', start: async () => ({ running: await sharedTlsGateway(), probe: p1 }) });
    let tlsNginx: Promise<Running> | null = null;
    const sharedTlsNginx = (): Promise<Running> => (tlsNginx ??= startNginxTls(children, nextDir('nginx-tls'), cpusFor(1), up, 1, tlsCert));
    scenarios.push({ id: 'nginx-tls-handshake-w1', label: 'nginx, a new TLS handshake per request (reference)', group: 'reference', workers: 1, tls: 'https', start: async () => ({ running: await sharedTlsNginx(), probe: { ...closeProbe, path: '/svc0/' } }) });
    scenarios.push({ id: 'nginx-tls-h2-100s-w1', label: 'nginx, h2 over TLS, 100 streams per connection (reference)', group: 'reference', workers: 1, tls: 'h2', start: async () => ({ running: await sharedTlsNginx(), probe: { path: '/svc0/' } }) });
    // Load balancing: the same service on an upstream of 3 targets (the same upstream process on
    // 3 addresses), round-robin, and consistent hashing on a header (the same X-User on every
    // request of the run, as a client session would send).
    scenarios.push(gateway('lb-rr-w1', 'gateway, service on an upstream of 3 targets (round-robin)', 'core', 1, 1, p1, [], undefined, undefined, [], 'round-robin'));
    const hashProbe = { path: '/svc0/items', headers: { 'x-user': 'user-42' } };
    scenarios.push(gateway('lb-hash-w1', 'gateway, upstream of 3 targets, consistent hashing on a header', 'core', 1, 1, hashProbe, [], undefined, undefined, [], 'hash-header'));
    scenarios.push(gateway('gw-1r-userhdr-w1', 'gateway, no plugins, 1 route, same X-User header as the hashing scenario', 'core', 1, 1, hashProbe));
    // A path with an encoded slash takes the path-safety check (its other readings are routed too).
    scenarios.push(gateway('gw-1r-escpath-w1', 'gateway, no plugins, 1 route, path with %2F', 'core', 1, 1, { path: '/svc0/group%2Fproject/items' }));
    // Observability (2 workers, as the issue measured): the default access log (JSON to stdout,
    // read by the bench runner as a container platform would), and the log/metrics/trace plugins
    // enabled globally. The upstream doubles as the log and OTLP collector (it answers 200 to anything).
    scenarios.push(gateway('gw-1r-accesslog-w2', 'gateway, no plugins, default access log (JSON, stdout)', 'core', 2, 1, p1, [], undefined, { PORTCULLIS_PROXY_ACCESS_LOG: 'stdout' }));
    scenarios.push(gateway('prometheus-w2', 'gateway + prometheus (global; status code, latency, bandwidth metrics)', 'core', 2, 1, p1,
      [{ name: 'prometheus', config: { status_code_metrics: true, latency_metrics: true, bandwidth_metrics: true } }]));
    for (const [id, rate] of [['otel-100-w2', 1], ['otel-1-w2', 0.01], ['otel-0-w2', 0]] as const) {
      scenarios.push(gateway(id, `gateway + opentelemetry (global, sampling_rate ${rate})`, 'core', 2, 1, p1,
        [{ name: 'opentelemetry', config: { traces_endpoint: `http://127.0.0.1:${up}/v1/traces`, sampling_rate: rate } }]));
    }
    scenarios.push(gateway('otel-100-req-w2', 'gateway + opentelemetry (global, sampling_rate 1, tracing_instrumentations request: the root span only)', 'core', 2, 1, p1,
      [{ name: 'opentelemetry', config: { traces_endpoint: `http://127.0.0.1:${up}/v1/traces`, sampling_rate: 1 } }], undefined, { PORTCULLIS_TRACING_INSTRUMENTATIONS: 'request' }));
    scenarios.push(gateway('http-log-w2', 'gateway + http-log (global, Kong\'s default queue: one POST per request)', 'core', 2, 1, p1,
      [{ name: 'http-log', config: { http_endpoint: `http://127.0.0.1:${up}/log` } }]));
    scenarios.push(gateway('http-log-batch-w2', 'gateway + http-log (global, queue.max_batch_size 100)', 'core', 2, 1, p1,
      [{ name: 'http-log', config: { http_endpoint: `http://127.0.0.1:${up}/log`, queue: { max_batch_size: 100 } } }]));
    for (const s of scenarios) if (s.id.startsWith('http-log')) s.logDrops = true;
    for (const w of [1, 2]) {
      scenarios.push({
        id: `nginx-w${w}`, label: 'nginx reverse proxy (reference)', group: 'reference', workers: w,
        start: async () => ({ running: await startNginx(children, nextDir('nginx'), cpusFor(w), up, w), probe: p1 }),
      });
    }
    const bearerProbe = { path: '/svc0/items', headers: bearer };
    const oidcBearer = { name: 'openid-connect', config: { ...oidcBase, auth_methods: ['bearer'] } };
    // cache_ttl_max: 0 caps every cached item's lifetime at zero, so the verified-token cache
    // stores nothing and each request checks the RS256 signature (JWKS stays cached).
    const oidcUncached = { name: 'openid-connect', config: { ...oidcBase, auth_methods: ['bearer'], cache_ttl_max: 0 } };
    // The plugin's own cost: the no-plugin gateway forwarding the very same request (the 800-byte
    // Authorization header costs parsing, validation and bytes in any gateway, plugin or not).
    // Each pair is measured back to back (rounds run the list in order, then reversed), so the
    // two sides of the ratio see the same background load.
    for (const w of [1, 2]) {
      scenarios.push(gateway(`oidc-bearer-w${w}`, 'gateway + openid-connect bearer JWT (warm cache)', 'oidc', w, 1, bearerProbe, [oidcBearer]));
      scenarios.push(gateway(`gw-1r-bearerhdr-w${w}`, 'gateway, no plugins, 1 route, same Authorization header as bearer', 'core', w, 1, bearerProbe));
    }
    // Credential plugins (issue 16), each against the no-plugin gateway sent the same request.
    // The consumer and its credentials come from the decK file; every request presents them.
    const jwtSecret = 'bench-jwt-secret-bench-jwt-secret-32b';
    const jwtToken = await new SignJWT({ iss: 'bench-jwt-key' }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(jwtSecret));
    const benchConsumer = {
      username: 'bench-user',
      keyauth_credentials: [{ key: 'bench-api-key-0123456789' }],
      basicauth_credentials: [{ username: 'bench-basic', password: 'bench-password' }],
      jwt_secrets: [{ key: 'bench-jwt-key', secret: jwtSecret, algorithm: 'HS256' }],
    };
    const credProbes = {
      key: { path: '/svc0/items', headers: { apikey: 'bench-api-key-0123456789' } },
      basic: { path: '/svc0/items', headers: { authorization: `Basic ${Buffer.from('bench-basic:bench-password').toString('base64')}` } },
      jwt: { path: '/svc0/items', headers: { authorization: `Bearer ${jwtToken}` } },
    };
    scenarios.push(gateway('keyauth-w1', 'gateway + key-auth', 'oidc', 1, 1, credProbes.key, [{ name: 'key-auth', config: {} }], undefined, undefined, [benchConsumer]));
    scenarios.push(gateway('gw-1r-keyhdr-w1', 'gateway, no plugins, same apikey header as key-auth', 'core', 1, 1, credProbes.key));
    scenarios.push(gateway('basicauth-w1', 'gateway + basic-auth (after the first verification)', 'oidc', 1, 1, credProbes.basic, [{ name: 'basic-auth', config: {} }], undefined, undefined, [benchConsumer]));
    scenarios.push(gateway('gw-1r-basichdr-w1', 'gateway, no plugins, same Authorization header as basic-auth', 'core', 1, 1, credProbes.basic));
    scenarios.push(gateway('jwt-hs256-w1', 'gateway + jwt HS256 (cached)', 'oidc', 1, 1, credProbes.jwt, [{ name: 'jwt', config: {} }], undefined, undefined, [benchConsumer]));
    scenarios.push(gateway('gw-1r-jwthdr-w1', 'gateway, no plugins, same Authorization header as jwt', 'core', 1, 1, credProbes.jwt));
    // openid-connect `kong_oauth2`: tokens issued by Kong's oauth2 plugin (which needs a database:
    // this gateway runs on its embedded SQLite store) on /svc1, accepted on /svc0. The token is
    // fetched once it is up; the no-plugin gateway then gets the same Authorization header.
    let kongToken: string | null = null;
    const oauth2Consumer = { username: 'bench-oauth2', oauth2_credentials: [{ name: 'bench-app', client_id: 'bench-client', client_secret: 'bench-secret', redirect_uris: ['https://app.example/cb'] }] };
    // Both contenders run the same gateway (embedded SQLite store, trusted 127.0.0.1, the oauth2
    // plugin on /svc1): the baseline only lacks openid-connect on /svc0.
    const kongOAuth2Gateway = async (withOidc: boolean, dir: string): Promise<Running> => startGateway(children, {
      dir, workers: 1, cpus: pin.single, cpuProfDir, database: 'sqlite',
      config: gatewayConfig(up, 2, [
        { name: 'oauth2', route: 'r1', config: { provision_key: 'bench-provision-key', enable_client_credentials: true, global_credentials: true, accept_http_if_already_terminated: true } },
        ...(withOidc ? [{ name: 'openid-connect', route: 'r0', config: { ...oidcBase, auth_methods: ['kong_oauth2'], bearer_token_param_type: ['header'] } }] : []),
      ], [oauth2Consumer]),
      env: { PORTCULLIS_TRUSTED_IPS: '127.0.0.1' }, probe: { path: '/svc0/items', anyStatus: true },
    });
    scenarios.push({
      id: 'oidc-kongoauth2-w1', label: 'gateway + openid-connect kong_oauth2 (token cached)', group: 'oidc', workers: 1,
      start: async () => ({ running: await kongOAuth2Gateway(true, nextDir('kong-oauth2')), probe: { path: '/svc0/items' } }),
      prepare: async (running, probe) => {
        const r = await fetch(`http://127.0.0.1:${running.port}/svc1/oauth2/token`, {
          method: 'POST', headers: { 'x-forwarded-proto': 'https' }, signal: AbortSignal.timeout(10_000),
          body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'bench-client', client_secret: 'bench-secret' }),
        });
        const body = (await r.json()) as { access_token?: string };
        if (r.status !== 200 || !body.access_token) throw new Error(`oauth2 token endpoint answered ${r.status}: ${JSON.stringify(body)}`);
        kongToken = body.access_token;
        const headers = { authorization: `Bearer ${kongToken}` };
        const check = await fetch(`http://127.0.0.1:${running.port}${probe.path}`, { headers, signal: AbortSignal.timeout(10_000) });
        await check.arrayBuffer();
        if (check.status !== 200) throw new Error(`request with the Kong token answered ${check.status}`);
        return { path: probe.path, headers };
      },
    });
    scenarios.push({
      id: 'gw-1r-kongtokenhdr-w1', label: 'gateway, same setup without openid-connect (SQLite store, oauth2 on another route), same Authorization header as kong_oauth2', group: 'core', workers: 1,
      start: async () => ({ running: await kongOAuth2Gateway(false, nextDir('kong-oauth2-base')), probe: { path: '/svc0/items' } }),
      prepare: async (_running, probe) => {
        if (kongToken === null) throw new Error('no Kong token yet (the kong_oauth2 scenario fetches it first)');
        return { path: probe.path, headers: { authorization: `Bearer ${kongToken}` } };
      },
    });

    // DPoP (RFC 9449): a token bound to a client key, and a fresh proof per request (a new jti,
    // signature and thumbprint to check, a replay-cache entry to write) as real DPoP clients send.
    // wrk sends the proofs from a file written just before each run (bench/dpop-proofs.lua).
    const dpopKey = await generateKeyPair('ES256', { extractable: true });
    const dpopJwk = await exportJWK(dpopKey.publicKey);
    const dpopIdp = await oidcClient.discovery(new URL(idp.issuer), 'service-client', 'service-secret', undefined, { execute: [oidcClient.allowInsecureRequests] });
    const dpopToken = (await oidcClient.clientCredentialsGrant(dpopIdp, {}, { DPoP: oidcClient.getDPoPHandle(dpopIdp, dpopKey) })).access_token;
    const dpopAth = createHash('sha256').update(dpopToken).digest('base64url');
    // Enough proofs for a run at up to BENCH_DPOP_RPS requests/s (a thread that runs out replays, counted as errors).
    const dpopProofs = Math.ceil(Number(process.env.BENCH_DPOP_RPS ?? 12_000) * (wrkOpts.durationSec + 1));
    const dpopPrepare = async (running: Running, probe: Probe): Promise<Probe> => {
      const htu = `http://127.0.0.1:${running.port}${probe.path}`;
      const iat = Math.floor(Date.now() / 1000);
      const lines: string[] = [];
      for (let i = 0; i < dpopProofs; i++) {
        lines.push(await new SignJWT({ htm: 'GET', htu, iat, jti: randomUUID(), ath: dpopAth })
          .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: dpopJwk }).sign(dpopKey.privateKey));
      }
      const file = join(work, 'dpop-proofs.txt');
      await writeFile(file, `${lines.join('\n')}\n`);
      return { path: probe.path, headers: { authorization: `DPoP ${dpopToken}` }, script: { file: join(here, 'dpop-proofs.lua'), args: [file, String(wrkOpts.threads)] } };
    };
    // One worker keeps used proofs in its own memory; two share them through the node's SQLite key-value file.
    for (const w of [1, 2]) {
      scenarios.push(gateway(`oidc-dpop-w${w}`, 'gateway + openid-connect DPoP-bound bearer JWT, a fresh proof per request (warm token cache)', 'oidc', w, 1,
        { path: '/svc0/items' }, [{ name: 'openid-connect', config: { ...oidcBase, auth_methods: ['bearer'], proof_of_possession_dpop: 'strict' } }], dpopPrepare));
    }

    scenarios.push(gateway('oidc-bearer-nocache-w1', 'gateway + openid-connect bearer JWT (no verified-token cache)', 'oidc', 1, 1, bearerProbe, [oidcUncached]));

    let lastSessionCookie: string | null = null;
    const login = async (running: Running, probe: Probe): Promise<Probe> => {
      const r = await fetch(`http://127.0.0.1:${running.port}${probe.path}`, {
        headers: { authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}` },
        signal: AbortSignal.timeout(10_000),
      });
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`password login answered ${r.status}`);
      const cookie = r.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
      if (cookie === '') throw new Error('password login set no session cookie');
      const check = await fetch(`http://127.0.0.1:${running.port}${probe.path}`, { headers: { cookie }, signal: AbortSignal.timeout(10_000) });
      await check.arrayBuffer();
      if (check.status !== 200) throw new Error(`request with the session cookie answered ${check.status}`);
      lastSessionCookie = cookie;
      return { path: probe.path, headers: { cookie } };
    };
    const sessionConfig = { ...oidcBase, auth_methods: ['password', 'session'], session_secret: sessionSecret };
    scenarios.push(gateway('oidc-session-cookie-w1', 'gateway + openid-connect session (cookie storage)', 'oidc', 1, 1,
      { path: '/svc0/items' }, [{ name: 'openid-connect', config: sessionConfig }], login));
    // Same idea for sessions: the no-plugin gateway sent the cookie the session scenario just got.
    scenarios.push({
      ...gateway('gw-1r-cookiehdr-w1', 'gateway, no plugins, 1 route, same Cookie header as session', 'core', 1, 1, { path: '/svc0/items' }),
      prepare: async (_running, probe) => {
        if (lastSessionCookie === null) throw new Error('no session cookie yet (the session scenario logs in first)');
        return { path: probe.path, headers: { cookie: lastSessionCookie } };
      },
    });
    let redis: Running | null = null;
    scenarios.push({
      ...gateway('oidc-session-redis-w1', 'gateway + openid-connect session (redis storage)', 'oidc', 1, 1, { path: '/svc0/items' }, [], login),
      start: async () => {
        redis ??= await startRedis(children, nextDir('redis'), pin.load);
        const config = gatewayConfig(up, 1, [{ name: 'openid-connect', config: { ...sessionConfig, session_storage: 'redis', redis: { host: '127.0.0.1', port: redis.port } } }]);
        const running = await startGateway(children, { dir: nextDir('session-redis'), config, workers: 1, cpus: pin.single, cpuProfDir, probe: { path: '/svc0/items', anyStatus: true } });
        return { running, probe: { path: '/svc0/items' } };
      },
    });
    // mTLS-bound bearer (RFC 8705) vs the same bearer without the check, over the same kind of TLS
    // listener asking for client certificates; measured with bench/mtls-load.ts (see bench/mtls.ts).
    const mtlsScenario = (id: string, label: string, pop: boolean): Scenario => ({
      id, label, group: 'oidc', workers: 1, tlsMain: true,
      load: (url, headers, o) => mtlsBench!.load(url, headers, o),
      start: async () => {
        mtlsBench ??= await startMtlsBench(work, pin.load);
        const b = mtlsBench;
        const plugin = { name: 'openid-connect', config: { issuer: b.idp.issuer, ssl_verify: false, auth_methods: ['bearer'], ...(pop ? { proof_of_possession_mtls: 'strict' } : {}) } };
        const running = await startGateway(children, {
          dir: nextDir(id), config: b.config(gatewayConfig(up, 1, [plugin])), workers: 1, cpus: pin.single, cpuProfDir,
          env: { PORTCULLIS_SSL_VERIFY_CLIENT: 'optional' }, listenFlags: ' ssl', probe: p1,
        });
        return { running, probe: { path: '/svc0/items', headers: { authorization: `Bearer ${b.token}` } } };
      },
      // Ready with the certificate; refused without it (mTLS) or without the token (both).
      prepare: async (running, probe) => {
        const url = `https://127.0.0.1:${running.port}${probe.path}`;
        const b = mtlsBench!;
        await waitUntil(`${id} proxy`, async () => (await b.status(url, probe.headers ?? {}, true).catch(() => 0)) === 200);
        if ((await b.status(url, {}, true)) !== 401) throw new Error('answered without a token');
        if (pop && (await b.status(url, probe.headers ?? {}, false)) !== 401) throw new Error('answered without the client certificate');
        return probe;
      },
    });
    scenarios.push(mtlsScenario('oidc-mtls-w1', 'gateway + openid-connect bearer JWT bound to the client certificate (mTLS PoP strict, TLS listener)', true));
    scenarios.push(mtlsScenario('oidc-bearer-tls-w1', 'gateway + openid-connect bearer JWT, same TLS listener with a client certificate, no PoP', false));
    for (const w of [1, 2]) {
      scenarios.push({
        id: `apache-oidc-w${w}`, label: 'Apache httpd + mod_auth_openidc (OAuth 2.0 RS, JWKS)', group: 'oidc', workers: w,
        start: async () => ({ running: await startApache(children, nextDir('apache'), cpusFor(w), up, rsaKey, w, bearerProbe), probe: bearerProbe }),
      });
    }

    // Start every contender first and keep them all up: the measurements are then interleaved
    // (round after round over all scenarios) so that a change in background load on a shared
    // machine hits every scenario alike instead of whichever ran at that moment.
    const live: Array<{ s: Scenario; url: string; headers: Record<string, string>; script?: Probe['script']; pgid: number; running: Running; probe: Probe }> = [];
    for (const s of scenarios) {
      if (only && !only.test(s.id)) continue;
      try {
        const started = await s.start();
        const probe = s.prepare ? await s.prepare(started.running, started.probe) : started.probe;
        const tlsPort = started.running.tlsPort;
        if (s.tls !== undefined && tlsPort === undefined) throw new Error('no TLS listener');
        const url = s.tlsMain ? `https://127.0.0.1:${started.running.port}${probe.path}`
          : s.tls === undefined ? `http://127.0.0.1:${started.running.port}${probe.path}` : `https://127.0.0.1:${tlsPort}${probe.path}`;
        // A contender that authenticates must refuse the same request without the credential
        // (the mTLS scenarios check it in `prepare`, with their client certificate).
        if (s.group === 'oidc' && !s.tlsMain) {
          const anonymous = await statusOf(url);
          if (anonymous !== 401) throw new Error(`answered ${anonymous} without a credential (expected 401)`);
        }
        live.push({ s, url, headers: probe.headers ?? {}, script: probe.script, pgid: started.running.child.proc.pid!, running: started.running, probe: started.probe });
      } catch (err) {
        const msg = (err instanceof Error ? err.message : String(err)).split('\n').slice(0, 6).join(' | ');
        outcomes.set(s.id, { error: msg });
        console.log(`${s.id.padEnd(26)} FAILED to start: ${msg}`);
      }
    }
    loadAvg.push(currentLoad());
    // Only the contender being measured runs: every other one is stopped (SIGSTOP to its process
    // group), so its timers, GC and idle threads take nothing from the CPU the measured one is
    // pinned to. The upstream, the IdP and Redis are shared and always run.
    const contenders = live.filter((l) => l.running !== upstream);
    const load = (l: (typeof live)[number], durationSec?: number): Promise<WrkResult> => (l.s.tls === 'h2'
      ? h2load(l.url, l.headers, { clients: 4, streams: 100, durationSec: durationSec ?? wrkOpts.durationSec, cpus: pin.load })
      : (l.s.load ?? wrk)(l.url, l.headers, { ...wrkOpts, ...(durationSec === undefined ? {} : { durationSec }), cpus: pin.load, script: l.script }));
    const signal = (pgid: number, sig: NodeJS.Signals): void => {
      try {
        process.kill(-pgid, sig);
      } catch {
        // already gone
      }
    };
    const runOnly = async (l: (typeof live)[number]): Promise<void> => {
      for (const o of contenders) if (o !== l) signal(o.pgid, 'SIGSTOP');
      signal(l.pgid, 'SIGCONT');
      await new Promise((r) => setTimeout(r, 200));
    };
    continueAll = () => {
      for (const o of contenders) signal(o.pgid, 'SIGCONT');
    };
    for (const l of live) {
      await runOnly(l);
      await load(l, warmupSec).catch(() => null);
    }
    for (let round = 0; round < rounds; round++) {
      // Alternate the order so no scenario always follows the same neighbour.
      const order = round % 2 === 0 ? live : [...live].reverse();
      for (const l of order) {
        process.stdout.write(`round ${round + 1}/${rounds} ${l.s.id.padEnd(26)} `);
        try {
          await runOnly(l);
          // A fresh login per round: wrk keeps sending one cookie, and a session cookie older than
          // a minute makes every response an idle "touch" (a new sealed Set-Cookie), which a real
          // browser would have stored. Each round must run with a cookie younger than that.
          if (l.s.prepare) {
            const prepared = await l.s.prepare(l.running, l.probe);
            l.headers = prepared.headers ?? {};
            l.script = prepared.script;
          }
          const countsBefore = l.s.logDrops ? await logCounts(l.running) : null;
          const cpuBefore = groupCpuSeconds(l.pgid, ticks);
          const result = await load(l);
          const cpu = groupCpuSeconds(l.pgid, ticks) - cpuBefore;
          if (countsBefore !== null) {
            const after = await logCounts(l.running);
            const requests = after.requests - countsBefore.requests;
            if (requests > 0) result.droppedShare = (after.dropped - countsBefore.dropped) / requests;
          }
          // wrk counts the requests it completed; a handful more may be in flight at the end.
          if (cpu > 0 && result.requests > 0) result.cpuUsPerReq = (cpu / result.requests) * 1e6;
          const list = samples.get(l.s.id) ?? [];
          list[round] = result;
          samples.set(l.s.id, list);
          const bad = result.non2xx + result.socketErrors;
          const drops = result.droppedShare === undefined ? '' : `  log entries dropped ${(100 * result.droppedShare).toFixed(1)} %`;
          console.log(`${fmt(result.rps).padStart(8)} req/s  p99 ${result.p99Ms.toFixed(2).padStart(7)} ms  cpu ${result.cpuUsPerReq?.toFixed(0) ?? '?'} µs/req${drops}${bad > 0 ? `  (${bad} errors!)` : ''}`);
        } catch (err) {
          console.log(`FAILED: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
        }
      }
    }
    loadAvg.push(currentLoad());
    for (const [id, list] of samples) {
      const ok = list.filter((r): r is WrkResult => r !== undefined);
      if (ok.length === 0) continue;
      const bad = ok.reduce((a, r) => a + r.non2xx + r.socketErrors, 0);
      const rpsAll = ok.map((r) => r.rps);
      const drops = ok.map((r) => r.droppedShare).filter((d): d is number => d !== undefined);
      const note = [ok.length > 1 ? `runs: ${rpsAll.map(fmt).join(' / ')}` : '', bad > 0 ? `${bad} non-2xx or socket errors` : '',
        drops.length > 0 ? `log entries dropped by the full queue: ${drops.map((d) => `${(100 * d).toFixed(1)} %`).join(' / ')} of requests` : ''].filter(Boolean).join('; ');
      const cpus = ok.map((r) => r.cpuUsPerReq).filter((c): c is number => c !== undefined);
      outcomes.set(id, {
        result: {
          ...ok[0], rps: median(rpsAll), p50Ms: median(ok.map((r) => r.p50Ms)), p99Ms: median(ok.map((r) => r.p99Ms)),
          cpuUsPerReq: cpus.length > 0 ? median(cpus) : undefined,
        },
        note,
      });
    }
  } finally {
    continueAll();
    await children.closeAll();
    await idp.close();
    await (mtlsBench as MtlsBench | null)?.close();
    await rm(work, { recursive: true, force: true });
  }
  const report = await render(scenarios.filter((s) => !only || only.test(s.id)), outcomes, samples, machine, pin, loadAvg);
  console.log(`\n${report}`);
  if (only === null) {
    await writeFile(join(here, 'RESULTS.md'), report);
    console.log('written to bench/RESULTS.md');
  }
}

/** The gateway's dropped log entries and requests so far (its Admin API /metrics, all workers). */
async function logCounts(running: Running): Promise<{ dropped: number; requests: number }> {
  const r = await fetch(`http://127.0.0.1:${running.adminPort}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await r.text();
  let dropped = 0;
  let requests = 0;
  for (const line of text.split('\n')) {
    const m = /^(portcullis_log_queue_dropped_total|kong_nginx_requests_total)\{([^}]*)\} ([0-9.e+]+)$/.exec(line);
    if (m === null) continue;
    if (m[1] === 'kong_nginx_requests_total') requests += Number(m[3]);
    else if (m[2].includes('plugin="http-log"')) dropped += Number(m[3]);
  }
  return { dropped, requests };
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

interface Target {
  what: string;
  num: string;
  den: string;
  min: number | null;
}

const targets: Target[] = [
  { what: 'gateway (1 route) / bare proxy, 1 worker', num: 'gw-1r-w1', den: 'bare-w1', min: 0.95 },
  { what: 'gateway (1 route) / bare proxy, 2 workers', num: 'gw-1r-w2', den: 'bare-w2', min: 0.95 },
  { what: '1,000 routes / 1 route, 1 worker', num: 'gw-1000r-w1', den: 'gw-1r-w1', min: 0.95 },
  { what: 'service on an upstream of 3 targets (round-robin) / plain host, 1 worker', num: 'lb-rr-w1', den: 'gw-1r-w1', min: 0.95 },
  { what: 'consistent hashing on a header / plain host (same request), 1 worker', num: 'lb-hash-w1', den: 'gw-1r-userhdr-w1', min: 0.93 },
  { what: '1,000 routes / 1 route, 2 workers', num: 'gw-1000r-w2', den: 'gw-1r-w2', min: 0.95 },
  { what: 'bearer JWT, warm cache / no-plugin gateway (same request: with the Authorization header), 1 worker', num: 'oidc-bearer-w1', den: 'gw-1r-bearerhdr-w1', min: 0.9 },
  { what: 'bearer JWT, warm cache / no-plugin gateway (same request: with the Authorization header), 2 workers', num: 'oidc-bearer-w2', den: 'gw-1r-bearerhdr-w2', min: 0.9 },
  { what: 'bearer JWT, warm cache / no-plugin gateway (plain request without the header), 1 worker', num: 'oidc-bearer-w1', den: 'gw-1r-w1', min: null },
  { what: 'bearer JWT, warm cache / no-plugin gateway (plain request without the header), 2 workers', num: 'oidc-bearer-w2', den: 'gw-1r-w2', min: null },
  { what: 'no-plugin gateway: request with the Authorization header / plain request, 1 worker', num: 'gw-1r-bearerhdr-w1', den: 'gw-1r-w1', min: null },
  { what: 'DPoP-bound bearer JWT, a fresh proof per request / plain bearer JWT (warm cache), 1 worker', num: 'oidc-dpop-w1', den: 'oidc-bearer-w1', min: null },
  { what: 'DPoP-bound bearer JWT, a fresh proof per request / plain bearer JWT (warm cache), 2 workers (replay cache in the node\'s SQLite file)', num: 'oidc-dpop-w2', den: 'oidc-bearer-w2', min: null },
  { what: 'bearer JWT, no verified-token cache / no-plugin gateway, 1 worker', num: 'oidc-bearer-nocache-w1', den: 'gw-1r-w1', min: null },
  { what: 'session cookie (cookie storage) / no-plugin gateway (same request: with the Cookie header), 1 worker', num: 'oidc-session-cookie-w1', den: 'gw-1r-cookiehdr-w1', min: 0.85 },
  { what: 'session cookie (cookie storage) / no-plugin gateway (plain request without the header), 1 worker', num: 'oidc-session-cookie-w1', den: 'gw-1r-w1', min: null },
  { what: 'session cookie (redis storage) / no-plugin gateway, 1 worker', num: 'oidc-session-redis-w1', den: 'gw-1r-w1', min: null },
  { what: 'key-auth / no-plugin gateway (same request), 1 worker', num: 'keyauth-w1', den: 'gw-1r-keyhdr-w1', min: 0.95 },
  { what: 'basic-auth, verified before / no-plugin gateway (same request), 1 worker', num: 'basicauth-w1', den: 'gw-1r-basichdr-w1', min: 0.9 },
  { what: 'jwt HS256, cached / no-plugin gateway (same request), 1 worker', num: 'jwt-hs256-w1', den: 'gw-1r-jwthdr-w1', min: 0.9 },
  { what: 'openid-connect kong_oauth2, token cached / the same gateway without openid-connect (same request), 1 worker', num: 'oidc-kongoauth2-w1', den: 'gw-1r-kongtokenhdr-w1', min: 0.9 },
  { what: 'gateway bearer JWT / Apache + mod_auth_openidc, 1 worker each', num: 'oidc-bearer-w1', den: 'apache-oidc-w1', min: 2.0 },
  { what: 'gateway bearer JWT / Apache + mod_auth_openidc, 2 workers each', num: 'oidc-bearer-w2', den: 'apache-oidc-w2', min: 2.0 },
  { what: 'default access log on / off, 2 workers', num: 'gw-1r-accesslog-w2', den: 'gw-1r-w2', min: 0.9 },
  { what: 'prometheus (global) / no-plugin gateway, 2 workers', num: 'prometheus-w2', den: 'gw-1r-w2', min: 0.95 },
  { what: 'opentelemetry sampling_rate 1.0 / no-plugin gateway, 2 workers', num: 'otel-100-w2', den: 'gw-1r-w2', min: 0.85 },
  { what: 'opentelemetry sampling_rate 1.0, tracing_instrumentations request (root span only) / no-plugin gateway, 2 workers', num: 'otel-100-req-w2', den: 'gw-1r-w2', min: null },
  { what: 'opentelemetry sampling_rate 0.01 / no-plugin gateway, 2 workers', num: 'otel-1-w2', den: 'gw-1r-w2', min: 0.97 },
  { what: 'opentelemetry sampling_rate 0 (propagation only, nothing recorded) / no-plugin gateway, 2 workers', num: 'otel-0-w2', den: 'gw-1r-w2', min: null },
  { what: 'http-log (Kong default queue, a POST per request) / no-plugin gateway, 2 workers', num: 'http-log-w2', den: 'gw-1r-w2', min: 0.9 },
  { what: 'http-log (batches of 100) / no-plugin gateway, 2 workers', num: 'http-log-batch-w2', den: 'gw-1r-w2', min: null },
  { what: 'openid-connect mTLS-bound bearer / plain bearer, same TLS listener with a client certificate, 1 worker (both measured with bench/mtls-load.ts, an undici client: wrk cannot present a certificate)', num: 'oidc-mtls-w1', den: 'oidc-bearer-tls-w1', min: 0.9 },
  { what: 'HTTP/1.1 over TLS, keep-alive / plain HTTP, the same gateway, 1 worker', num: 'tls-keepalive-w1', den: 'tls-plain-w1', min: 0.85 },
  { what: 'new TLS handshakes per second: gateway / nginx, same RSA certificate, 1 worker', num: 'tls-handshake-w1', den: 'nginx-tls-handshake-w1', min: null },
  { what: 'h2, 100 streams per connection / HTTP/1.1 over TLS keep-alive, the same gateway, 1 worker', num: 'tls-h2-100s-w1', den: 'tls-keepalive-w1', min: null },
  { what: 'h2, 100 streams per connection: gateway / nginx, 1 worker (reference)', num: 'tls-h2-100s-w1', den: 'nginx-tls-h2-100s-w1', min: null },
  { what: 'gateway (1 route) / nginx, 1 worker (reference)', num: 'gw-1r-w1', den: 'nginx-w1', min: null },
  { what: 'gateway (1 route) / nginx, 2 workers (reference)', num: 'gw-1r-w2', den: 'nginx-w2', min: null },
];

/**
 * Ratio of two scenarios: the median of the per-round ratios (each pair measured in the same
 * round, close in time), which cancels slow drifts in background load better than a ratio of
 * medians; falls back to the ratio of the medians when the rounds do not pair up.
 */
function ratioOf(a: WrkResult, b: WrkResult, sa: Array<WrkResult | undefined> | undefined, sb: Array<WrkResult | undefined> | undefined,
  pick: (x: WrkResult, y: WrkResult) => number | undefined): number | undefined {
  const paired: number[] = [];
  for (let i = 0; i < Math.min(sa?.length ?? 0, sb?.length ?? 0); i++) {
    const x = sa![i];
    const y = sb![i];
    const r = x && y ? pick(x, y) : undefined;
    if (r !== undefined && Number.isFinite(r)) paired.push(r);
  }
  return paired.length > 0 ? median(paired) : pick(a, b);
}

/** Throughput ratio a/b. */
const byRps = (x: WrkResult, y: WrkResult): number | undefined => (y.rps > 0 ? x.rps / y.rps : undefined);
/** The same ratio estimated from CPU cost: b's CPU per request / a's (what a/b would be if both were CPU-bound on equal CPU). */
const byCpu = (x: WrkResult, y: WrkResult): number | undefined =>
  x.cpuUsPerReq !== undefined && y.cpuUsPerReq !== undefined && x.cpuUsPerReq > 0 ? y.cpuUsPerReq / x.cpuUsPerReq : undefined;

async function render(scenarios: Scenario[], outcomes: Map<string, Outcome>, samples: Map<string, Array<WrkResult | undefined>>,
  machine: ReturnType<typeof describeMachine>, pin: Pinning, loadAvg: string[]): Promise<string> {
  const lines: string[] = [];
  lines.push('# Benchmark results', '');
  lines.push('Generated by `npm run bench` (bench/run.ts); overwritten on every run.', '');
  lines.push(`- Date: ${new Date().toISOString()}`);
  lines.push(`- Machine: ${machine.cpus} CPUs (${machine.model}), ${machine.memoryGiB} GiB RAM, ${machine.kernel}`);
  lines.push(`- Node ${machine.node}; ${machine.wrk}`);
  lines.push(`- Load: \`wrk -t${wrkOpts.threads} -c${wrkOpts.connections} -d${wrkOpts.durationSec}s --latency\` after a ${warmupSec} s warm-up run, same for every scenario; everything on 127.0.0.1${quick ? ' (BENCH_QUICK: short runs, noisy)' : ''}.`);
  lines.push(`- Method: all contenders are started first and stay up; then ${rounds} round(s), each running wrk once against every scenario (order reversed on every other round). While one contender is measured, every other one is stopped (SIGSTOP to its process group; the upstream, the IdP and Redis keep running), so idle contenders' timers and threads take no CPU from it. Requests/s, p50 and p99 are medians over the rounds; a ratio is the median of the per-round ratios. Load average (1/5/15 min) before/after the measurements: ${loadAvg.join(' → ')} — the machine is shared with other work, so absolute numbers move between runs.`);
  lines.push(pin.load === null
    ? '- CPU pinning: off (all processes share all CPUs).'
    : `- CPU pinning (taskset): wrk, the upstream and Redis on CPU ${pin.load}; 1-worker contenders on CPU ${pin.single}; 2-worker contenders on CPUs ${pin.multi} (so they share a CPU with the load generator and the upstream).`);
  lines.push('- Access logs off for every contender: `PORTCULLIS_PROXY_ACCESS_LOG=off` (gateway log level warn), `access_log off` (nginx), no CustomLog (Apache); except `gw-1r-accesslog-w2` (the default JSON access log on stdout, with stdout redirected to a file as a log collector would take it).');
  lines.push(upstreamKind === 'nginx'
    ? '- Upstream: one nginx worker answering every request with `return 200` and a fixed 52-byte JSON body (BENCH_UPSTREAM=node uses bench/upstream.ts, a node:http process, instead). The upstream shares CPU with the load generator, and with 2-worker contenders; the cheaper it is, the more of each measurement is the contender.'
    : '- Upstream: bench/upstream.ts, one node:http process answering a fixed 52-byte JSON body (BENCH_UPSTREAM=node, or nginx is not installed).');
  lines.push('- The bearer token is an RS256 JWT from the demo IdP (password grant, alex/doe, client `kong`). "No verified-token cache" = plugin config `cache_ttl_max: 0`, which stops the verified-token cache from storing anything; the JWKS stays cached, so every request verifies the signature locally.');
  lines.push('- Apache: event MPM, N processes × 64 threads, mod_auth_openidc `AuthType oauth20` verifying the JWT with the IdP\'s RS256 public key (`OIDCOAuthVerifyCertFiles`; 2.4.12 accepts a JWKS URI only over https), mod_proxy to the same upstream (connection reuse on).');
  lines.push('');
  lines.push('| Scenario | Workers | Requests/s | p50 ms | p99 ms | CPU µs/req | Notes |', '|---|---:|---:|---:|---:|---:|---|');
  for (const s of scenarios) {
    const o = outcomes.get(s.id);
    if (!o) continue;
    if ('error' in o) lines.push(`| ${s.label} (\`${s.id}\`) | ${s.workers} | — | — | — | — | failed: ${o.error.replace(/\|/g, '/')} |`);
    else lines.push(`| ${s.label} (\`${s.id}\`) | ${s.workers} | ${fmt(o.result.rps)} | ${o.result.p50Ms.toFixed(2)} | ${o.result.p99Ms.toFixed(2)} | ${o.result.cpuUsPerReq?.toFixed(0) ?? '—'} | ${o.note ?? ''} |`);
  }
  lines.push('', '## Ratios', '');
  lines.push('"Throughput" is the ratio of requests/s as the targets define it. "CPU cost" is the same ratio estimated from the CPU time each contender spent per request (inverse ratio of CPU µs/request), which does not depend on how much CPU the contender got from a busy machine; when both agree the verdict is firm.', '');
  lines.push('| Comparison | Throughput ratio | CPU-cost ratio | Target | Result (throughput / CPU cost) |', '|---|---:|---:|---:|---|');
  for (const t of targets) {
    const a = outcomes.get(t.num);
    const b = outcomes.get(t.den);
    if (!a || !b) continue;
    const target = t.min === null ? 'report' : `≥ ${t.min.toFixed(2)}`;
    if ('error' in a || 'error' in b) {
      lines.push(`| ${t.what} | — | — | ${target} | not measured |`);
      continue;
    }
    const r = ratioOf(a.result, b.result, samples.get(t.num), samples.get(t.den), byRps);
    const c = ratioOf(a.result, b.result, samples.get(t.num), samples.get(t.den), byCpu);
    const verdict = (x: number | undefined): string => (x === undefined ? 'n/a' : t.min === null ? 'reported' : x >= t.min ? 'PASS' : 'FAIL');
    lines.push(`| ${t.what} | ${r?.toFixed(3) ?? '—'} | ${c?.toFixed(3) ?? '—'} | ${target} | ${t.min === null ? 'reported' : `${verdict(r)} / ${verdict(c)}`} |`);
  }
  const notes = join(here, 'NOTES.md');
  if (existsSync(notes)) lines.push('', (await readFile(notes, 'utf8')).trim());
  return `${lines.join('\n')}\n`;
}

await main();
