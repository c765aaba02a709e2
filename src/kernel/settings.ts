/**
 * Process configuration: command-line flags and PORTCULLIS_* environment variables, named after
 * Kong's KONG_* settings (proxy_listen, admin_listen, database, declarative_config, ...).
 * Flags win over the environment.
 */
import os from 'node:os';
import { escapedSlashesModes, type EscapedSlashes } from '../router/index.ts';
import { parseAccessLogSetting, AccessLogSettingError, type AccessLogSetting } from '../observability/access-log.ts';
import { parseAdminGuiUrl } from '../admin/cors.ts';
import { allInstrumentations, type Instrumentations, type TracingSetting } from '../observability/trace-scope.ts';
import { configurableLogLevels } from '../observability/log-level.ts';
import { parseTrustedCertificates, type TrustedCertificates } from '../tls/trust-store.ts';

export interface ListenSpec {
  host: string;
  port: number;
  ssl: boolean;
  /** h2 by ALPN on a TLS listener, h2c with prior knowledge on a plain one; HTTP/1.1 still served. */
  http2: boolean;
  /** SO_REUSEPORT (Kong's `reuseport`). */
  reuseport: boolean;
  /** listen(2) backlog (Kong's `backlog=N`); null = Node's default. */
  backlog: number | null;
  /** Kong's `proxy_protocol`: every connection starts with a PROXY protocol v1 or v2 header. */
  proxyProtocol: boolean;
  /**
   * `ssl_verify_client=off|optional|on` on an `ssl` listener: whether this listener asks for a
   * client certificate; null = PORTCULLIS_SSL_VERIFY_CLIENT.
   */
  sslVerifyClient: 'off' | 'optional' | 'on' | null;
}

export interface Settings {
  proxyListen: ListenSpec[];
  /** Empty when the admin listener is off. */
  adminListen: ListenSpec[];
  /** Kong's `stream_listen`: TCP/TLS stream proxy listeners (src/stream/); empty = off (the default). */
  streamListen: ListenSpec[];
  database: 'off' | 'sqlite' | 'postgres';
  declarativeConfig: string | null;
  workers: number;
  logLevel: string;
  trustedIps: string;
  /**
   * Kong's real_ip_header: `x-real-ip` (X-Real-IP, then X-Forwarded-For, from trusted peers) or
   * `proxy_protocol` (the PROXY protocol source address, from trusted peers).
   */
  realIpHeader: 'x-real-ip' | 'proxy_protocol';
  /** Max request body bytes; 0 = unlimited (Kong's client_max_body_size default). */
  maxBodySize: number;
  /** Max bytes buffered in memory when a plugin reads a body; bodies held whole (request/response buffering) spill to a temporary file beyond it. */
  bodyBufferCap: number;
  /** Max Admin API request body (bytes); larger → 413. */
  adminMaxBodySize: number;
  /** client_body_timeout: ms between two reads of a request body before 408. */
  clientBodyTimeout: number;
  /** How long SIGTERM waits for in-flight requests (ms). */
  drainTimeout: number;
  watch: boolean;
  /** Kong's `proxy_access_log`: where (off, stdout, a file) and the format (json, combined). */
  accessLog: AccessLogSetting;
  /** Kong's `status_listen`: the Status API (GET /status, /status/ready, /metrics); empty = off. */
  statusListen: ListenSpec[];
  /** Kong's `admin_gui_listen`: the web admin UI (admin-gui/server.ts); empty = off. */
  adminGuiListen: ListenSpec[];
  /** Kong's `admin_gui_api_url`: the Admin API URL the UI calls; null = the browser's host name with the admin_listen port. */
  adminGuiApiUrl: string | null;
  /** Kong's `admin_gui_path`: '' (the root) or '/manager' — no trailing slash. */
  adminGuiPath: string;
  sslCert: string | null;
  sslCertKey: string | null;
  /** Kong's `prefix`: where the generated default certificate is kept (ssl/kong-default*.crt). */
  prefix: string;
  /** Kong's ssl_protocols as a version range. */
  sslProtocols: { minVersion: 'TLSv1.2' | 'TLSv1.3'; maxVersion: 'TLSv1.2' | 'TLSv1.3' };
  /** OpenSSL cipher list (TLS ≤ 1.2); null = Node's default. */
  sslCiphers: string | null;
  /** Client certificates on TLS proxy listeners: off, optional (verified when sent) or on (required). */
  sslVerifyClient: 'off' | 'optional' | 'on';
  /** Send the verified client certificate upstream in this header (URL-encoded PEM); null = not sent. */
  clientCertHeader: string | null;
  adminToken: string | null;
  /** Kong's admin_gui_url (PORTCULLIS_ADMIN_GUI_URL): the UI origins the Admin API answers CORS for. */
  adminGuiUrl: string[];
  adminSslCert: string | null;
  adminSslCertKey: string | null;
  upstreamTlsVerify: boolean;
  upstreamCaFile: string | null;
  /** Kong's lua_ssl_trusted_certificate: the CAs outbound TLS clients trust (null: `system`, Node's default list). */
  luaSslTrustedCertificate: TrustedCertificates | null;
  /** 'lean' (default): body-less requests to plain-HTTP upstreams use proxy/h1.ts; 'undici': everything through undici. */
  upstreamClient: 'lean' | 'undici';
  /** Max request header bytes (larger → 431). */
  maxHeaderSize: number;
  /** What `%2F`/`%5C` in a request path do: keep (refused only when they change the route), reject, unescape. */
  pathEscapedSlashes: EscapedSlashes;
  /** Kong's `headers`: which of Kong's response headers the gateway adds. */
  headers: HeadersSetting;
  /** Kong's `headers_upstream`: X-Kong-Request-Id on the upstream request. */
  headersUpstream: { requestId: boolean };
  /** Kong's dns_resolver / dns_hostsfile: how target host names are resolved. */
  dns: { servers: string[]; hostsFile: string };
  /** Kong's tracing_instrumentations and tracing_sampling_rate (the opentelemetry plugin's spans). */
  tracing: TracingSetting;
  /** All variables, for the store/kv settings readers. */
  env: Record<string, string | undefined>;
}

export interface SettingDoc {
  env: string;
  flag?: string;
  default: string;
  help: string;
}

/** Every setting, for `portcullis --help` and docs/configuration.md. */
export const settingDocs: readonly SettingDoc[] = [
  { env: 'PORTCULLIS_PROXY_LISTEN', flag: '--proxy-listen', default: '0.0.0.0:8000', help: 'Proxy listeners (Kong\'s proxy_listen): comma-separated "host:port [ssl] [http2] [reuseport] [backlog=N] [proxy_protocol] [ssl_verify_client=off|optional|on]". ssl: TLS with SNI certificate selection; http2: h2 by ALPN on ssl listeners, h2c (prior knowledge) on plain ones, HTTP/1.1 always served; proxy_protocol: connections start with a PROXY protocol v1/v2 header (see PORTCULLIS_REAL_IP_HEADER); ssl_verify_client: this ssl listener\'s own PORTCULLIS_SSL_VERIFY_CLIENT. Other Kong flags (deferred, bind, ...) are refused.' },
  { env: 'PORTCULLIS_ADMIN_LISTEN', flag: '--admin-listen', default: '127.0.0.1:8001', help: 'Admin API listeners, same syntax (flags: ssl, reuseport, backlog=N); "off" disables the Admin API.' },
  { env: 'PORTCULLIS_STREAM_LISTEN', default: 'off', help: 'Stream (TCP/TLS) proxy listeners, as Kong\'s stream_listen: comma-separated "host:port [ssl] [proxy_protocol] [reuseport] [backlog=N]", or off. Plain listeners serve routes with protocol tcp (matched by sources/destinations); ssl listeners read the ClientHello and serve tls routes (TLS terminated with the SNI certificate selection of the proxy listeners) and tls_passthrough routes (the TLS bytes piped to the service untouched). udp and other flags are refused.' },
  { env: 'PORTCULLIS_DATABASE', flag: '--database', default: 'sqlite (off when a declarative config is given)', help: 'off (declarative file), sqlite (embedded) or postgres.' },
  { env: 'PORTCULLIS_DECLARATIVE_CONFIG', flag: '-c, --config', default: '(none)', help: 'decK-format YAML/JSON file served in DB-less mode.' },
  { env: 'PORTCULLIS_WORKERS', flag: '--workers', default: 'number of CPUs', help: 'Worker processes serving the proxy.' },
  { env: 'PORTCULLIS_LOG_LEVEL', flag: '--log-level', default: 'info', help: 'trace, debug, info, notice, warn, error, crit, alert, emerg, fatal or silent (Kong\'s nginx levels and pino\'s). Changed at runtime with PUT /debug/node/log-level/{level}.' },
  { env: 'PORTCULLIS_PROXY_ACCESS_LOG', default: 'stdout', help: 'As Kong\'s proxy_access_log: "stdout" (also "on"), a file path, or "off"; optionally followed by a format, json (default) or combined (nginx combined + kong_request_id).' },
  { env: 'PORTCULLIS_STATUS_LISTEN', default: 'off', help: 'As Kong\'s status_listen: host:port of the Status API (GET /status, /status/ready, /metrics), e.g. 0.0.0.0:8007; "off" disables it.' },
  { env: 'PORTCULLIS_REAL_IP_HEADER', default: 'X-Real-IP', help: 'Kong\'s real_ip_header: X-Real-IP (the client address from X-Real-IP, else X-Forwarded-For, sent by a peer in trusted_ips) or proxy_protocol (the source address of the PROXY protocol header, on proxy_protocol listeners, when the load balancer is in trusted_ips).' },
  { env: 'PORTCULLIS_ADMIN_GUI_LISTEN', default: '127.0.0.1:8002', help: 'As Kong\'s admin_gui_listen: host:port of the web admin UI (flags: reuseport, backlog=N); "off" disables it. The UI is built into ui/dist by npm install.' },
  { env: 'PORTCULLIS_ADMIN_GUI_API_URL', default: '(browser host name, admin_listen port)', help: 'As Kong\'s admin_gui_api_url: the Admin API URL the UI calls, when it is not the host name the UI was loaded from with the first admin_listen port.' },
  { env: 'PORTCULLIS_ADMIN_GUI_PATH', default: '/', help: 'As Kong\'s admin_gui_path: the path the UI is served under (e.g. /manager); no trailing slash.' },
  { env: 'PORTCULLIS_TRUSTED_IPS', default: '(none)', help: 'Comma-separated IPs/CIDRs whose X-Forwarded-*/X-Real-IP headers are trusted (0.0.0.0/0,::/0 for all).' },
  { env: 'PORTCULLIS_CLIENT_MAX_BODY_SIZE', default: '0', help: 'Max request body (bytes, or with k/m/g suffix); 0 = unlimited. Larger bodies get 413 {"message":"Payload too large"}, as Kong.' },
  { env: 'PORTCULLIS_CLIENT_BODY_BUFFER_SIZE', default: '8m', help: 'Max body a plugin may buffer in memory; request bodies held for request_buffering and responses held for response_buffering go to a temporary file beyond it. Also the most a response body held for the plugins\' body handlers (response-transformer json, proxy-cache) may be: a larger one is sent unchanged.' },
  { env: 'PORTCULLIS_CLIENT_BODY_TIMEOUT', default: '60s', help: 'As Kong\'s client_body_timeout: longest wait between two reads of a request body (seconds, or with an ms/s/m suffix); the client then gets 408 and the connection closes. 0 = none.' },
  { env: 'PORTCULLIS_ADMIN_CLIENT_MAX_BODY_SIZE', default: '1m', help: 'Max Admin API request body (bytes, or with k/m suffix); larger bodies get 413. Raise it for a very large POST /config.' },
  { env: 'PORTCULLIS_MAX_HEADER_SIZE', default: '32k', help: 'Max request header size; larger requests get 431.' },
  { env: 'PORTCULLIS_DRAIN_TIMEOUT', default: '30', help: 'Seconds SIGTERM waits for in-flight requests before exiting.' },
  { env: 'PORTCULLIS_SSL_CERT', default: '(generated)', help: 'Kong\'s ssl_cert: PEM certificate file served by "ssl" proxy listeners when no SNI matches (or the client sends none). Unset: a self-signed RSA + ECDSA pair is generated at first start in <prefix>/ssl/.' },
  { env: 'PORTCULLIS_SSL_CERT_KEY', default: '(generated)', help: 'Kong\'s ssl_cert_key: PEM key file of PORTCULLIS_SSL_CERT.' },
  { env: 'PORTCULLIS_PREFIX', default: '.portcullis', help: 'Kong\'s prefix: the directory that keeps the generated default certificate (ssl/kong-default*.crt/.key).' },
  { env: 'PORTCULLIS_SSL_PROTOCOLS', default: 'TLSv1.2 TLSv1.3', help: 'Kong\'s ssl_protocols for TLS proxy listeners (TLSv1.2 and/or TLSv1.3).' },
  { env: 'PORTCULLIS_SSL_CIPHERS', default: '(Node\'s default)', help: 'Kong\'s ssl_ciphers: OpenSSL cipher list for TLS 1.2.' },
  { env: 'PORTCULLIS_SSL_VERIFY_CLIENT', default: 'off', help: 'Ask TLS clients for a certificate: optional (verified against the ca_certificates entities when sent) or on (required; handshake refused without a valid one). The verified chain and its x5t#S256 thumbprint are in the plugin request context.' },
  { env: 'PORTCULLIS_CLIENT_CERT_HEADER', default: '(none)', help: 'Opt-in: send the verified client certificate upstream in this header (URL-encoded PEM, e.g. X-Client-Cert).' },
  { env: 'PORTCULLIS_ADMIN_TOKEN', default: '(none)', help: 'When set, the Admin API requires this value in the Kong-Admin-Token header.' },
  { env: 'PORTCULLIS_ADMIN_GUI_URL', default: '(none)', help: 'Kong\'s admin_gui_url: the admin UI\'s URL(s), comma-separated; the Admin API answers CORS for their origins only (default: the GUI listener\'s).' },
  { env: 'PORTCULLIS_ADMIN_SSL_CERT', default: '(none)', help: 'PEM certificate file for "ssl" admin listeners.' },
  { env: 'PORTCULLIS_ADMIN_SSL_CERT_KEY', default: '(none)', help: 'PEM key file for "ssl" admin listeners.' },
  { env: 'PORTCULLIS_UPSTREAM_TLS_VERIFY', default: 'off', help: 'Verify upstream TLS certificates when a service leaves tls_verify unset.' },
  { env: 'PORTCULLIS_UPSTREAM_CA_FILE', default: '(none)', help: 'Extra CA bundle (PEM) trusted for upstream TLS.' },
  { env: 'PORTCULLIS_LUA_SSL_TRUSTED_CERTIFICATE', default: 'system', help: 'As Kong\'s lua_ssl_trusted_certificate: the certificate authorities the gateway\'s own TLS clients trust (openid-connect\'s identity provider calls, Redis with ssl_verify, OTLP collectors), a comma-separated list of system (Node\'s default list: its bundled roots and NODE_EXTRA_CA_CERTS), PEM file paths (bundles allowed), PEM certificates or base64 PEM certificates. Without system only the listed ones are trusted. Process-wide: also upstream TLS\'s trust store when a service has no ca_certificates and PORTCULLIS_UPSTREAM_CA_FILE is unset.' },
  { env: 'PORTCULLIS_UPSTREAM_CLIENT', default: 'lean', help: 'lean: body-less requests to plain-HTTP upstreams use the gateway\'s lean HTTP/1.1 client (the rest undici); undici: every upstream request through undici.' },
  { env: 'PORTCULLIS_PLUGINS', default: 'bundled', help: 'As Kong\'s plugins: comma-separated plugin names to enable; bundled = every bundled plugin, off = none. A plugin not enabled is refused where a config names it.' },
  { env: 'PORTCULLIS_HEADERS', default: 'server_tokens, latency_tokens, X-Kong-Request-Id', help: 'As Kong\'s headers: a comma-separated list of server_tokens (Server + Via), latency_tokens (X-Kong-Proxy-Latency, X-Kong-Upstream-Latency, X-Kong-Response-Latency, X-Kong-Admin-Latency), or single names (Server, Via, X-Kong-Upstream-Status, X-Kong-Request-Id, ...); off for none.' },
  { env: 'PORTCULLIS_HEADERS_UPSTREAM', default: 'X-Kong-Request-Id', help: 'As Kong\'s headers_upstream: X-Kong-Request-Id on the request sent upstream, or off.' },
  { env: 'PORTCULLIS_TRACING_INSTRUMENTATIONS', default: 'all', help: 'As Kong\'s tracing_instrumentations: which spans the opentelemetry plugin records, a comma-separated list of all, request (the root kong span only), router (kong.router), balancer (kong.balancer), plugin_rewrite (kong.rewrite.plugin.<name>, the rewrite handlers after opentelemetry\'s), plugin_access (kong.access.plugin.<name>), plugin_header_filter (kong.header_filter.plugin.<name>, the plugins\' response handlers) and http_client (kong.internal.request, openid-connect\'s IdP calls); the root kong span is recorded with any of them. off: no span is recorded, trace headers are still propagated upstream. db_query and dns_query are refused (no database query or DNS lookup runs on a request\'s path here). Kong\'s default is off; ours is all.' },
  { env: 'PORTCULLIS_TRACING_SAMPLING_RATE', default: '0.01', help: 'As Kong\'s tracing_sampling_rate: the share of requests (0 to 1) an opentelemetry plugin with sampling_rate null traces; a sampled incoming trace context is always followed.' },
  { env: 'PORTCULLIS_PATH_ESCAPED_SLASHES', default: 'keep', help: 'Encoded slashes (%2F, %5C) in request paths, as Envoy\'s path_with_escaped_slashes_action: keep (forwarded as sent; refused with 400 only when decoding them would match another route), reject (any of them → 400) or unescape (decoded, then routed and forwarded decoded).' },
  { env: 'PORTCULLIS_DNS_RESOLVER', default: '(system resolvers)', help: 'As Kong\'s dns_resolver: comma-separated DNS servers (ip or ip:port) used to resolve upstream target names (A/AAAA/SRV, re-resolved when the TTL expires).' },
  { env: 'PORTCULLIS_DNS_HOSTSFILE', default: '/etc/hosts', help: 'As Kong\'s dns_hostsfile: hosts file consulted before DNS for target names (read again every 10 s).' },
  { env: 'PORTCULLIS_SQLITE_PATH', default: 'portcullis.db', help: 'SQLite file of the embedded store.' },
  { env: 'PORTCULLIS_PG_HOST / _PORT / _USER / _PASSWORD / _DATABASE / _SCHEMA', default: '127.0.0.1 / 5432 / postgres / - / portcullis / public', help: 'PostgreSQL connection (or PORTCULLIS_PG_URL).' },
];

export class SettingsError extends Error {
  override name = 'SettingsError';
}

function trustedCertificatesOf(v: string | undefined): TrustedCertificates | null {
  try {
    return parseTrustedCertificates(v);
  } catch (err) {
    throw new SettingsError(`PORTCULLIS_LUA_SSL_TRUSTED_CERTIFICATE: ${(err as Error).message.replace(/^lua_ssl_trusted_certificate: /, '')}`);
  }
}

/**
 * Kong's listen syntax: `host:port [ssl] [http2] [reuseport] [backlog=N] [proxy_protocol]`,
 * comma-separated, or `off`; plus our `ssl_verify_client=off|optional|on` for `ssl` listeners. A
 * flag we do not implement (deferred, bind, ipv6only, so_keepalive) is refused by name rather
 * than ignored. `flags` limits what this listener kind accepts.
 */
export function parseListen(spec: string, what: string, flags: readonly string[] = ['ssl', 'http2', 'reuseport', 'backlog', 'proxy_protocol', 'ssl_verify_client']): ListenSpec[] {
  if (spec.trim().toLowerCase() === 'off') return [];
  return spec.split(',').map((item) => {
    const words = item.trim().split(/\s+/);
    const addr = words[0];
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(addr);
    if (!m) throw new SettingsError(`${what}: '${item.trim()}' is not host:port`);
    const port = Number(m[2]);
    if (port > 65535) throw new SettingsError(`${what}: port ${port} out of range`);
    const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
    const out: ListenSpec = { host, port, ssl: false, http2: false, reuseport: false, backlog: null, proxyProtocol: false, sslVerifyClient: null };
    for (const word of words.slice(1)) {
      const [flag, value] = word.split('=', 2) as [string, string | undefined];
      if (!flags.includes(flag)) throw new SettingsError(`${what}: the '${flag}' flag of '${item.trim()}' is not supported${['ssl', 'http2', 'reuseport', 'backlog', 'proxy_protocol', 'ssl_verify_client'].includes(flag) ? ' here' : ''} (supported: ${flags.join(', ')})`);
      if (flag === 'backlog') {
        const n = Number(value);
        if (value === undefined || !Number.isInteger(n) || n < 1) throw new SettingsError(`${what}: backlog of '${item.trim()}' must be backlog=N with N a positive whole number`);
        out.backlog = n;
      } else if (flag === 'ssl_verify_client') {
        if (value !== 'off' && value !== 'optional' && value !== 'on') throw new SettingsError(`${what}: ssl_verify_client of '${item.trim()}' must be ssl_verify_client=off, optional or on`);
        out.sslVerifyClient = value;
      } else if (flag === 'proxy_protocol') {
        if (value !== undefined) throw new SettingsError(`${what}: the '${flag}' flag takes no value`);
        out.proxyProtocol = true;
      } else if (value !== undefined) {
        throw new SettingsError(`${what}: the '${flag}' flag takes no value`);
      } else {
        (out as unknown as Record<string, boolean>)[flag] = true;
      }
    }
    if (out.sslVerifyClient !== null && !out.ssl) throw new SettingsError(`${what}: ssl_verify_client of '${item.trim()}' needs the 'ssl' flag`);
    return out;
  });
}

/**
 * Kong's `stream_listen`: the listen syntax with the flags a stream listener takes (ssl,
 * proxy_protocol, reuseport, backlog=N). Kong's `udp` is refused by name: only TCP is proxied.
 */
export function parseStreamListen(spec: string): ListenSpec[] {
  for (const item of spec.split(',')) {
    if (item.trim().split(/\s+/).slice(1).includes('udp')) {
      throw new SettingsError(`stream_listen: the 'udp' flag of '${item.trim()}' is not supported (UDP stream proxying is not implemented; supported flags: ssl, proxy_protocol, reuseport, backlog)`);
    }
  }
  return parseListen(spec, 'stream_listen', ['ssl', 'proxy_protocol', 'reuseport', 'backlog']);
}

/** Kong's `ssl_protocols` (space-separated TLSv1.2 / TLSv1.3; older versions refused). */
export function parseSslProtocols(value: string): { minVersion: 'TLSv1.2' | 'TLSv1.3'; maxVersion: 'TLSv1.2' | 'TLSv1.3' } {
  const words = value.split(/[\s,]+/).filter(Boolean);
  const known = ['TLSv1.2', 'TLSv1.3'] as const;
  for (const w of words) {
    if (!(known as readonly string[]).includes(w)) throw new SettingsError(`PORTCULLIS_SSL_PROTOCOLS: '${w}' is not supported (TLSv1.2, TLSv1.3)`);
  }
  if (words.length === 0) throw new SettingsError('PORTCULLIS_SSL_PROTOCOLS: at least one of TLSv1.2, TLSv1.3');
  const sorted = known.filter((k) => words.includes(k));
  return { minVersion: sorted[0], maxVersion: sorted[sorted.length - 1] };
}

function headerNameOf(v: string | undefined): string | null {
  if (v === undefined || v === '') return null;
  if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(v)) throw new SettingsError(`PORTCULLIS_CLIENT_CERT_HEADER: ${JSON.stringify(v)} is not a header name`);
  return v.toLowerCase();
}

function realIpHeaderOf(v: string | undefined): 'x-real-ip' | 'proxy_protocol' {
  if (v === undefined || v === '' || v.toLowerCase() === 'x-real-ip') return 'x-real-ip';
  if (v === 'proxy_protocol') return 'proxy_protocol';
  throw new SettingsError(`PORTCULLIS_REAL_IP_HEADER must be X-Real-IP or proxy_protocol, not ${JSON.stringify(v)}`);
}

function clientCertModeOf(v: string | undefined): 'off' | 'optional' | 'on' {
  if (v === undefined || v === '' || v === 'off') return 'off';
  if (v === 'optional' || v === 'on') return v;
  throw new SettingsError(`PORTCULLIS_SSL_VERIFY_CLIENT must be off, optional or on, not ${JSON.stringify(v)}`);
}

export function parseSize(value: string, what: string): number {
  const m = /^(\d+)\s*([kmg]?)b?$/i.exec(value.trim());
  if (!m) throw new SettingsError(`${what}: '${value}' is not a size (e.g. 0, 512k, 10m)`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(m[1]) * mult;
}

function onOff(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  return ['on', 'true', '1', 'yes'].includes(value.toLowerCase());
}

/** Kong's `headers` setting, one flag per header (the kernel and the Admin API read them). */
export interface HeadersSetting {
  server: boolean;
  via: boolean;
  proxyLatency: boolean;
  responseLatency: boolean;
  adminLatency: boolean;
  upstreamLatency: boolean;
  upstreamStatus: boolean;
  requestId: boolean;
}

const headerWords: Record<string, (keyof HeadersSetting)[]> = {
  server_tokens: ['server', 'via'],
  latency_tokens: ['proxyLatency', 'responseLatency', 'adminLatency', 'upstreamLatency'],
  server: ['server'],
  via: ['via'],
  'x-kong-proxy-latency': ['proxyLatency'],
  'x-kong-response-latency': ['responseLatency'],
  'x-kong-admin-latency': ['adminLatency'],
  'x-kong-upstream-latency': ['upstreamLatency'],
  'x-kong-upstream-status': ['upstreamStatus'],
  'x-kong-request-id': ['requestId'],
};

/**
 * Kong's `headers` setting: a comma-separated list of `server_tokens` (Server + Via),
 * `latency_tokens` (the X-Kong-*-Latency headers) and single header names; `off` disables all.
 * A word Kong does not know is refused.
 */
export function parseHeadersSetting(value: string): HeadersSetting {
  const out: HeadersSetting = { server: false, via: false, proxyLatency: false, responseLatency: false, adminLatency: false, upstreamLatency: false, upstreamStatus: false, requestId: false };
  const words = value.split(',').map((w) => w.trim().toLowerCase()).filter(Boolean);
  if (words.includes('off')) {
    if (words.length > 1) throw new SettingsError('PORTCULLIS_HEADERS: "off" cannot be combined with other values');
    return out;
  }
  for (const w of words) {
    const keys = headerWords[w];
    if (keys === undefined) throw new SettingsError(`PORTCULLIS_HEADERS: '${w}' is not one of off, server_tokens, latency_tokens, Server, Via, X-Kong-Proxy-Latency, X-Kong-Response-Latency, X-Kong-Admin-Latency, X-Kong-Upstream-Latency, X-Kong-Upstream-Status, X-Kong-Request-Id`);
    for (const k of keys) out[k] = true;
  }
  return out;
}

function parseHeadersUpstream(value: string): { requestId: boolean } {
  const words = value.split(',').map((w) => w.trim().toLowerCase()).filter(Boolean);
  if (words.length === 1 && words[0] === 'off') return { requestId: false };
  for (const w of words) if (w !== 'x-kong-request-id') throw new SettingsError(`PORTCULLIS_HEADERS_UPSTREAM: '${w}' is not X-Kong-Request-Id or off`);
  return { requestId: words.length > 0 };
}

function accessLogOf(value: string | undefined): AccessLogSetting {
  try {
    return parseAccessLogSetting(value);
  } catch (err) {
    if (err instanceof AccessLogSettingError) throw new SettingsError(err.message);
    throw err;
  }
}

/** Unset = no token; set but empty (or blank) is a mistake, not "no token": refused. */
function adminTokenOf(v: string | undefined): string | null {
  if (v === undefined) return null;
  if (v.trim() === '') throw new SettingsError('PORTCULLIS_ADMIN_TOKEN is set but empty; unset it to run the Admin API without a token, or give it a value');
  return v;
}

function adminGuiUrlOf(v: string | undefined): string[] {
  try {
    return parseAdminGuiUrl(v);
  } catch (err) {
    throw new SettingsError((err as Error).message);
  }
}

function adminBodySize(v: string | undefined): number {
  const n = parseSize(v === undefined || v === '' ? '1m' : v, 'PORTCULLIS_ADMIN_CLIENT_MAX_BODY_SIZE');
  // Unlimited would let one request cost every worker its size many times over.
  if (n < 1) throw new SettingsError('PORTCULLIS_ADMIN_CLIENT_MAX_BODY_SIZE must be at least 1 byte (there is no unlimited)');
  return n;
}

/** A duration as nginx writes one: a number of seconds, or with an ms, s or m suffix; in ms. */
export function parseDuration(value: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m)?$/i.exec(value.trim());
  if (!m) throw new SettingsError(`${what}: '${value}' is not a duration (e.g. 60, 60s, 500ms, 1m)`);
  const unit = (m[2] ?? 's').toLowerCase();
  return Math.round(Number(m[1]) * (unit === 'ms' ? 1 : unit === 's' ? 1000 : 60_000));
}

/** `ip[:port]` list (IPv6 as `[ip]:port`); each checked. */
export function parseDnsServers(value: string): string[] {
  const out: string[] = [];
  for (const raw of value.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const m = /^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\])(?::(\d{1,5}))?$/.exec(item);
    if (!m || (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535))) {
      throw new SettingsError(`PORTCULLIS_DNS_RESOLVER: '${item}' is not ip[:port]`);
    }
    out.push(item);
  }
  return out;
}

const instrumentationWords: Record<string, keyof Instrumentations | null> = {
  request: null, router: 'router', balancer: 'balancer', plugin_rewrite: 'pluginRewrite', plugin_access: 'pluginAccess',
  plugin_header_filter: 'pluginHeaderFilter', http_client: 'httpClient',
};
/** Kong's values we cannot produce a span for, with the reason given when they are set. */
const unavailableInstrumentations: Record<string, string> = {
  db_query: 'Portcullis serves requests from its in-memory configuration and does not trace the queries of the database or the shared store',
  dns_query: 'target names are resolved in the background (before a request needs them, and again when their TTL runs out), never on a request\'s path',
};

/**
 * Kong's `tracing_instrumentations` (PORTCULLIS_TRACING_INSTRUMENTATIONS) and
 * `tracing_sampling_rate` (PORTCULLIS_TRACING_SAMPLING_RATE). Empty or unset: `all` (Kong's
 * default is `off`) and 0.01. `off` combined with anything else is refused, as in Kong; so are
 * unknown values and the ones without a span here (db_query, dns_query), each by name.
 */
export function parseTracingSetting(instrumentations: string | undefined, samplingRate: string | undefined): TracingSetting {
  const words = (instrumentations ?? '').split(',').map((w) => w.trim().toLowerCase()).filter(Boolean);
  const rateText = (samplingRate ?? '').trim();
  const rate = rateText === '' ? 0.01 : Number(rateText);
  if (!/^(\d+(\.\d*)?|\.\d+)(e-?\d+)?$/i.test(rateText === '' ? '0' : rateText) || !(rate >= 0 && rate <= 1)) {
    throw new SettingsError(`PORTCULLIS_TRACING_SAMPLING_RATE: '${rateText}' must be a number from 0 to 1`);
  }
  if (words.includes('off')) {
    if (words.length > 1) throw new SettingsError('PORTCULLIS_TRACING_INSTRUMENTATIONS: "off" cannot be combined with other values');
    return { off: true, instrumentations: { router: false, balancer: false, pluginRewrite: false, pluginAccess: false, pluginHeaderFilter: false, httpClient: false }, samplingRate: rate };
  }
  const on = { router: false, balancer: false, pluginRewrite: false, pluginAccess: false, pluginHeaderFilter: false, httpClient: false };
  for (const w of words) {
    const why = unavailableInstrumentations[w];
    if (why !== undefined) throw new SettingsError(`PORTCULLIS_TRACING_INSTRUMENTATIONS: '${w}' is not available: ${why}`);
    if (w === 'all') continue;
    if (!(w in instrumentationWords)) throw new SettingsError(`PORTCULLIS_TRACING_INSTRUMENTATIONS: '${w}' is not one of off, all, request, router, balancer, plugin_rewrite, plugin_access, plugin_header_filter, http_client`);
    const key = instrumentationWords[w];
    if (key !== null) on[key] = true;
  }
  return { off: false, instrumentations: words.length === 0 || words.includes('all') ? allInstrumentations : on, samplingRate: rate };
}

export interface Flags {
  config?: string;
  workers?: string;
  watch?: boolean;
  proxyListen?: string;
  adminListen?: string;
  database?: string;
  logLevel?: string;
}

function upstreamClientOf(v: string | undefined): 'lean' | 'undici' {
  if (v === undefined || v === '' || v === 'lean') return 'lean';
  if (v === 'undici') return 'undici';
  throw new SettingsError(`PORTCULLIS_UPSTREAM_CLIENT must be lean or undici, not ${JSON.stringify(v)}`);
}

function escapedSlashesOf(v: string | undefined): EscapedSlashes {
  if (v === undefined || v === '') return 'keep';
  const mode = escapedSlashesModes.find((m) => m === v.toLowerCase());
  if (mode === undefined) throw new SettingsError(`PORTCULLIS_PATH_ESCAPED_SLASHES must be keep, reject or unescape, not ${JSON.stringify(v)}`);
  return mode;
}

function adminGuiApiUrlOf(v: string | undefined): string | null {
  if (v === undefined || v.trim() === '') return null;
  const text = v.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new SettingsError(`PORTCULLIS_ADMIN_GUI_API_URL: '${text}' is not a URL (e.g. http://127.0.0.1:8001)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new SettingsError(`PORTCULLIS_ADMIN_GUI_API_URL: '${text}' must be an http or https URL`);
  return text;
}

/** admin_gui_path as Kong checks it: starts with '/', plain segments, no trailing slash (kept as '' for the root). */
function adminGuiPathOf(v: string | undefined): string {
  const p = v === undefined || v.trim() === '' ? '/' : v.trim();
  if (!/^\/[A-Za-z0-9._~\-/]*$/.test(p) || p.includes('//') || p.split('/').some((seg) => seg === '..' || seg === '.')) {
    throw new SettingsError(`PORTCULLIS_ADMIN_GUI_PATH: '${v}' must start with '/' and contain only letters, digits, '-', '.', '_', '~' and single '/' separators`);
  }
  if (p !== '/' && p.endsWith('/')) throw new SettingsError(`PORTCULLIS_ADMIN_GUI_PATH: '${v}' must not end with '/'`);
  return p === '/' ? '' : p;
}

/** Whether two listen hosts take the same connections: the same host, or a wildcard of the other's family. */
function hostsOverlap(a: string, b: string): boolean {
  if (a === b || a === '*' || b === '*') return true;
  const v6 = (h: string) => h.includes(':');
  return (a === '0.0.0.0' && !v6(b)) || (b === '0.0.0.0' && !v6(a)) || (a === '::' && v6(b)) || (b === '::' && v6(a));
}

/**
 * Two listeners on one port whose addresses overlap (the same host, or a wildcard) are refused:
 * with SO_REUSEPORT both would bind and the kernel would hand each connection to either one (a
 * proxy request answered by the Admin API). nginx refuses such a Kong configuration too.
 */
function assertDistinctListeners(kinds: ReadonlyArray<[string, readonly ListenSpec[]]>): void {
  const seen: Array<{ what: string; l: ListenSpec }> = [];
  for (const [what, list] of kinds) {
    for (const l of list) {
      if (l.port === 0) continue;
      const clash = seen.find((o) => o.l.port === l.port && hostsOverlap(o.l.host, l.host));
      if (clash !== undefined) throw new SettingsError(`${what}: ${l.host}:${l.port} is also ${clash.what === what ? 'listed twice in' : 'in'} ${clash.what === what ? what : clash.what} (${clash.l.host}:${clash.l.port}); every listener needs an address of its own`);
      seen.push({ what, l });
    }
  }
}

export function readSettings(flags: Flags, env: Record<string, string | undefined> = process.env): Settings {
  const declarativeConfig = flags.config ?? env.PORTCULLIS_DECLARATIVE_CONFIG ?? null;
  const dbRaw = (flags.database ?? env.PORTCULLIS_DATABASE ?? (declarativeConfig ? 'off' : 'sqlite')).toLowerCase();
  if (dbRaw !== 'off' && dbRaw !== 'sqlite' && dbRaw !== 'postgres') throw new SettingsError(`database: '${dbRaw}' must be off, sqlite or postgres`);
  const workersRaw = flags.workers ?? env.PORTCULLIS_WORKERS;
  const workers = workersRaw === undefined || workersRaw === '' || workersRaw === 'auto' ? os.availableParallelism() : Number(workersRaw);
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) throw new SettingsError(`workers: '${workersRaw}' must be a whole number from 1 to 256`);
  const drain = Number(env.PORTCULLIS_DRAIN_TIMEOUT ?? 30);
  if (!(drain >= 0)) throw new SettingsError('PORTCULLIS_DRAIN_TIMEOUT must be a number of seconds');
  const logLevel = flags.logLevel ?? env.PORTCULLIS_LOG_LEVEL ?? 'info';
  if (!configurableLogLevels.includes(logLevel)) throw new SettingsError(`log level: '${logLevel}' is not one of ${configurableLogLevels.join(', ')}`);
  const proxyListen = parseListen(flags.proxyListen ?? env.PORTCULLIS_PROXY_LISTEN ?? '0.0.0.0:8000', 'proxy_listen');
  const realIpHeader = realIpHeaderOf(env.PORTCULLIS_REAL_IP_HEADER);
  if (realIpHeader === 'proxy_protocol' && !proxyListen.some((l) => l.proxyProtocol)) {
    throw new SettingsError('PORTCULLIS_REAL_IP_HEADER: proxy_protocol needs a proxy_listen entry with the proxy_protocol flag');
  }
  const adminListen = parseListen(flags.adminListen ?? env.PORTCULLIS_ADMIN_LISTEN ?? '127.0.0.1:8001', 'admin_listen', ['ssl', 'reuseport', 'backlog']);
  const statusListen = parseListen(env.PORTCULLIS_STATUS_LISTEN ?? 'off', 'status_listen', ['ssl', 'http2', 'reuseport', 'backlog']);
  const adminGuiListen = parseListen(env.PORTCULLIS_ADMIN_GUI_LISTEN ?? '127.0.0.1:8002', 'admin_gui_listen', ['reuseport', 'backlog']);
  const streamListen = parseStreamListen(env.PORTCULLIS_STREAM_LISTEN ?? 'off');
  // The default admin GUI address gives way when taken (a warning at start); a chosen one may not.
  assertDistinctListeners([['proxy_listen', proxyListen], ['admin_listen', adminListen], ['status_listen', statusListen], ['stream_listen', streamListen],
    ...(env.PORTCULLIS_ADMIN_GUI_LISTEN ? [['admin_gui_listen', adminGuiListen] as [string, ListenSpec[]]] : [])]);
  return {
    proxyListen,
    adminListen,
    streamListen,
    database: dbRaw,
    declarativeConfig,
    workers,
    logLevel,
    trustedIps: env.PORTCULLIS_TRUSTED_IPS ?? '',
    realIpHeader,
    maxBodySize: parseSize(env.PORTCULLIS_CLIENT_MAX_BODY_SIZE ?? '0', 'PORTCULLIS_CLIENT_MAX_BODY_SIZE'),
    bodyBufferCap: parseSize(env.PORTCULLIS_CLIENT_BODY_BUFFER_SIZE ?? '8m', 'PORTCULLIS_CLIENT_BODY_BUFFER_SIZE'),
    adminMaxBodySize: adminBodySize(env.PORTCULLIS_ADMIN_CLIENT_MAX_BODY_SIZE),
    clientBodyTimeout: parseDuration(env.PORTCULLIS_CLIENT_BODY_TIMEOUT || '60s', 'PORTCULLIS_CLIENT_BODY_TIMEOUT'),
    maxHeaderSize: parseSize(env.PORTCULLIS_MAX_HEADER_SIZE ?? '32k', 'PORTCULLIS_MAX_HEADER_SIZE'),
    drainTimeout: drain * 1000,
    watch: flags.watch ?? false,
    accessLog: accessLogOf(env.PORTCULLIS_PROXY_ACCESS_LOG),
    statusListen,
    adminGuiListen,
    adminGuiApiUrl: adminGuiApiUrlOf(env.PORTCULLIS_ADMIN_GUI_API_URL),
    adminGuiPath: adminGuiPathOf(env.PORTCULLIS_ADMIN_GUI_PATH),
    sslCert: env.PORTCULLIS_SSL_CERT || null,
    sslCertKey: env.PORTCULLIS_SSL_CERT_KEY || null,
    prefix: env.PORTCULLIS_PREFIX || '.portcullis',
    sslProtocols: parseSslProtocols(env.PORTCULLIS_SSL_PROTOCOLS ?? 'TLSv1.2 TLSv1.3'),
    sslCiphers: env.PORTCULLIS_SSL_CIPHERS || null,
    sslVerifyClient: clientCertModeOf(env.PORTCULLIS_SSL_VERIFY_CLIENT),
    clientCertHeader: headerNameOf(env.PORTCULLIS_CLIENT_CERT_HEADER),
    adminToken: adminTokenOf(env.PORTCULLIS_ADMIN_TOKEN),
    adminGuiUrl: adminGuiUrlOf(env.PORTCULLIS_ADMIN_GUI_URL),
    adminSslCert: env.PORTCULLIS_ADMIN_SSL_CERT || null,
    adminSslCertKey: env.PORTCULLIS_ADMIN_SSL_CERT_KEY || null,
    upstreamTlsVerify: onOff(env.PORTCULLIS_UPSTREAM_TLS_VERIFY, false),
    upstreamCaFile: env.PORTCULLIS_UPSTREAM_CA_FILE || null,
    luaSslTrustedCertificate: trustedCertificatesOf(env.PORTCULLIS_LUA_SSL_TRUSTED_CERTIFICATE),
    upstreamClient: upstreamClientOf(env.PORTCULLIS_UPSTREAM_CLIENT),
    headers: parseHeadersSetting(env.PORTCULLIS_HEADERS ?? 'server_tokens, latency_tokens, X-Kong-Request-Id'),
    headersUpstream: parseHeadersUpstream(env.PORTCULLIS_HEADERS_UPSTREAM ?? 'X-Kong-Request-Id'),
    pathEscapedSlashes: escapedSlashesOf(env.PORTCULLIS_PATH_ESCAPED_SLASHES),
    dns: {
      servers: parseDnsServers(env.PORTCULLIS_DNS_RESOLVER ?? ''),
      hostsFile: env.PORTCULLIS_DNS_HOSTSFILE ?? '/etc/hosts',
    },
    tracing: parseTracingSetting(env.PORTCULLIS_TRACING_INSTRUMENTATIONS, env.PORTCULLIS_TRACING_SAMPLING_RATE),
    env,
  };
}
