/**
 * Stream proxying (Kong's stream_listen with tcp / tls / tls_passthrough routes): real gateway,
 * real TCP and TLS clients, echo servers on port 0.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { startGateway, type TestGateway } from './helpers/gateway.ts';
import { issueCert, type IssuedCert } from './helpers/certs.ts';
import { freePort, startGatewayProcess, waitFor } from './helpers/process.ts';

/** A TCP server that reads until the client's end, then answers `<tag>:<bytes>` and ends. */
async function echoServer(tag: string): Promise<{ port: number; close(): Promise<void>; peers: string[] }> {
  const peers: string[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    peers.push(s.remoteAddress ?? '');
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => s.end(`${tag}:${Buffer.concat(chunks).toString()}`));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, peers, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** A TLS server with its own certificate that echoes each chunk back prefixed with `tag`. */
async function tlsEchoServer(tag: string, cert: IssuedCert): Promise<{ port: number; close(): Promise<void> }> {
  const server = tls.createServer({ cert: cert.cert, key: cert.key }, (s) => {
    s.on('data', (c: Buffer) => s.write(`${tag}:${c.toString()}`));
    s.on('end', () => s.end());
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** Sends `payload`, half-closes, and resolves with everything received until the gateway closed. */
function tcpExchange(port: number, payload: string, localAddress = '127.0.0.1'): Promise<{ data: string; error: string | null }> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let error: string | null = null;
    s.on('connect', () => s.end(payload));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => s.end());
    s.on('error', (e: NodeJS.ErrnoException) => { error = e.code ?? e.message; });
    s.on('close', () => resolve({ data: Buffer.concat(chunks).toString(), error }));
  });
}

/** A TLS client: sends `payload`, reads one answer, closes; reports the certificate it was shown. */
function tlsExchange(port: number, o: tls.ConnectionOptions, payload: string): Promise<{ data: string; peerCn: string | null; error: string | null }> {
  return new Promise((resolve) => {
    const s = tls.connect({ port, host: '127.0.0.1', ...o });
    let peerCn: string | null = null;
    let data = '';
    let error: string | null = null;
    s.on('secureConnect', () => {
      peerCn = String(s.getPeerCertificate().subject?.CN ?? '');
      s.write(payload);
    });
    s.on('data', (c: Buffer) => {
      data += c.toString();
      s.end();
    });
    s.on('error', (e: NodeJS.ErrnoException) => { error = e.code ?? e.message; });
    s.on('close', () => resolve({ data, peerCn, error }));
  });
}

let ca: IssuedCert;
let gwCert: IssuedCert;
let upstreamCert: IssuedCert;
let echoA: Awaited<ReturnType<typeof echoServer>>;
let echoB: Awaited<ReturnType<typeof echoServer>>;
let tlsEcho: Awaited<ReturnType<typeof tlsEchoServer>>;

before(async () => {
  ca = await issueCert({ cn: 'stream test CA', isCa: true });
  gwCert = await issueCert({ cn: 'gw.stream.test', dns: ['gw.stream.test'], ca });
  upstreamCert = await issueCert({ cn: 'upstream.stream.test', dns: ['127.0.0.1'], ca });
  echoA = await echoServer('A');
  echoB = await echoServer('B');
  tlsEcho = await tlsEchoServer('T', upstreamCert);
});

after(async () => {
  await Promise.all([echoA.close(), echoB.close(), tlsEcho.close()]);
});

/** A gateway with a plain and an ssl stream listener; its config is given once the ports are known. */
async function streamGateway(config: (ports: { tcp: number; tcp2: number; tls: number }) => object): Promise<{ gw: TestGateway; ports: { tcp: number; tcp2: number; tls: number } }> {
  const gw = await startGateway({ env: { PORTCULLIS_STREAM_LISTEN: '127.0.0.1:0, 127.0.0.1:0, 127.0.0.1:0 ssl' } });
  const [tcp, tcp2, tlsPort] = gw.node.streamPorts();
  const ports = { tcp, tcp2, tls: tlsPort };
  assert.equal(await gw.reload(config(ports)), true, gw.logText());
  return { gw, ports };
}

test('a tcp route matched by destination port proxies bytes both ways, half-close included; no matching route closes the connection', async () => {
  const { gw, ports } = await streamGateway((p) => ({
    services: [{ name: 'a', protocol: 'tcp', host: '127.0.0.1', port: echoA.port, routes: [{ name: 'by-port', protocols: ['tcp'], destinations: [{ port: p.tcp }] }] }],
  }));
  try {
    assert.deepEqual(await tcpExchange(ports.tcp, 'hello stream'), { data: 'A:hello stream', error: null });
    // The second listener's port is in no route: closed without a byte.
    const none = await tcpExchange(ports.tcp2, 'hello');
    assert.equal(none.data, '');
    assert.ok(gw.logs.some((l) => l.msg === 'no Route found with those values'));
  } finally {
    await gw.close();
  }
});

test('routes by source: an exact IP outranks a CIDR (Kong\'s stream precedence), whatever the config order', async () => {
  const { gw, ports } = await streamGateway(() => ({
    services: [
      { name: 'a', protocol: 'tcp', host: '127.0.0.1', port: echoA.port, routes: [{ name: 'cidr', protocols: ['tcp'], sources: [{ ip: '127.0.0.0/8' }] }] },
      { name: 'b', protocol: 'tcp', host: '127.0.0.1', port: echoB.port, routes: [{ name: 'exact', protocols: ['tcp'], sources: [{ ip: '127.0.0.2' }] }] },
    ],
  }));
  try {
    assert.equal((await tcpExchange(ports.tcp, 'x', '127.0.0.1')).data, 'A:x');
    assert.equal((await tcpExchange(ports.tcp, 'y', '127.0.0.2')).data, 'B:y');
  } finally {
    await gw.close();
  }
});

test('an ssl stream listener terminates TLS for a tls route with the SNI\'s certificate, to a plain service and to a tls service', async () => {
  const { gw, ports } = await streamGateway(() => ({
    certificates: [{ cert: gwCert.cert, key: gwCert.key, snis: [{ name: 'gw.stream.test' }] }],
    ca_certificates: [{ id: 'a0f4e6c2-4f49-4e0c-9a8e-0d6f1a2b3c4d', cert: ca.cert }],
    services: [
      { name: 'plain', protocol: 'tcp', host: '127.0.0.1', port: echoA.port, routes: [{ name: 'to-plain', protocols: ['tls'], snis: ['gw.stream.test'] }] },
      {
        name: 'secure', protocol: 'tls', host: '127.0.0.1', port: tlsEcho.port, tls_verify: true, ca_certificates: ['a0f4e6c2-4f49-4e0c-9a8e-0d6f1a2b3c4d'],
        routes: [{ name: 'to-tls', protocols: ['tls'], snis: ['*.tls.stream.test'] }],
      },
    ],
  }));
  try {
    // The client verifies the gateway's certificate against the CA (SNI selection picked it).
    const plain = await new Promise<{ data: string; cn: string }>((resolve, reject) => {
      let cn = '';
      const s = tls.connect({ port: ports.tls, host: '127.0.0.1', servername: 'gw.stream.test', ca: ca.cert }, () => {
        cn = String(s.getPeerCertificate().subject?.CN ?? '');
        s.end('over tls');
      });
      let data = '';
      s.on('data', (c: Buffer) => { data += c.toString(); });
      s.on('error', reject);
      s.on('close', () => resolve({ data, cn }));
    });
    assert.equal(plain.data, 'A:over tls');
    assert.equal(plain.cn, 'gw.stream.test');
    // To a tls service (verified against the service's ca_certificates); the gateway's default
    // certificate answers an SNI without a certificate entity.
    const secure = await tlsExchange(ports.tls, { servername: 'x.tls.stream.test', rejectUnauthorized: false }, 'ping');
    assert.equal(secure.error, null);
    assert.equal(secure.data, 'T:ping');
    assert.notEqual(secure.peerCn, 'upstream.stream.test');
    // An SNI no route names: closed during the handshake.
    const none = await tlsExchange(ports.tls, { servername: 'other.test', rejectUnauthorized: false }, 'ping');
    assert.equal(none.data, '');
    assert.equal(none.peerCn, null);
  } finally {
    await gw.close();
  }
});

test('a tls service whose certificate fails verification is not connected (tls_verify applies)', async () => {
  const other = await issueCert({ cn: 'other CA', isCa: true });
  const { gw, ports } = await streamGateway((p) => ({
    ca_certificates: [{ id: 'b0f4e6c2-4f49-4e0c-9a8e-0d6f1a2b3c4d', cert: other.cert }],
    services: [{
      name: 'secure', protocol: 'tls', host: '127.0.0.1', port: tlsEcho.port, tls_verify: true, ca_certificates: ['b0f4e6c2-4f49-4e0c-9a8e-0d6f1a2b3c4d'], retries: 0,
      routes: [{ name: 'to-tls', protocols: ['tcp'], destinations: [{ port: p.tcp }] }],
    }],
  }));
  try {
    const r = await tcpExchange(ports.tcp, 'ping');
    assert.equal(r.data, '');
    assert.ok(gw.logs.some((l) => l.msg === 'stream upstream connection failed; client connection closed'), gw.logText());
  } finally {
    await gw.close();
  }
});

test('a tls service presents its client_certificate (mTLS to the service); tls_verify_depth bounds the chain', async () => {
  const clientCert = await issueCert({ cn: 'gateway-client', ca });
  const mtls = tls.createServer({ cert: upstreamCert.cert, key: upstreamCert.key, ca: ca.cert, requestCert: true, rejectUnauthorized: true }, (s) => {
    s.on('data', (c: Buffer) => s.write(`M(${String(s.getPeerCertificate().subject?.CN)}):${c.toString()}`));
    s.on('end', () => s.end());
    s.on('error', () => {});
  });
  mtls.on('tlsClientError', () => {});
  await new Promise<void>((r) => mtls.listen(0, '127.0.0.1', r));
  const mtlsPort = (mtls.address() as net.AddressInfo).port;
  const caId = 'c0f4e6c2-4f49-4e0c-9a8e-0d6f1a2b3c4d';
  const certId = 'd0f4e6c2-4f49-4e0c-9a8e-0d6f1a2b3c4d';
  const { gw, ports } = await streamGateway((p) => ({
    certificates: [{ id: certId, cert: clientCert.cert, key: clientCert.key }],
    ca_certificates: [{ id: caId, cert: ca.cert }],
    services: [
      { name: 'with-cert', protocol: 'tls', host: '127.0.0.1', port: mtlsPort, retries: 0, tls_verify: true, ca_certificates: [caId], client_certificate: { id: certId },
        routes: [{ name: 'with', protocols: ['tcp'], destinations: [{ port: p.tcp }] }] },
      // Depth 0: only the service's own certificate may be verified, and it is issued by the CA.
      { name: 'too-deep', protocol: 'tls', host: '127.0.0.1', port: mtlsPort, retries: 0, tls_verify: true, tls_verify_depth: 0, ca_certificates: [caId], client_certificate: { id: certId },
        routes: [{ name: 'deep', protocols: ['tcp'], destinations: [{ port: p.tcp2 }] }] },
    ],
  }));
  try {
    // Plain client, TLS service: the client's half-close reaches the service as TLS close_notify.
    assert.deepEqual(await tcpExchange(ports.tcp, 'hi'), { data: 'M(gateway-client):hi', error: null });
    assert.equal((await tcpExchange(ports.tcp2, 'hi')).data, '');
  } finally {
    await gw.close();
    mtls.close();
  }
});

test('tls_passthrough: the TLS bytes reach the service untouched; the client sees the upstream\'s certificate', async () => {
  const { gw, ports } = await streamGateway(() => ({
    certificates: [{ cert: gwCert.cert, key: gwCert.key, snis: [{ name: 'pass.stream.test' }] }],
    services: [{ name: 'pass', protocol: 'tcp', host: '127.0.0.1', port: tlsEcho.port, routes: [{ name: 'pass', protocols: ['tls_passthrough'], snis: ['pass.stream.test'] }] }],
  }));
  try {
    const r = await tlsExchange(ports.tls, { servername: 'pass.stream.test', ca: ca.cert, checkServerIdentity: () => undefined }, 'through');
    assert.equal(r.error, null);
    assert.equal(r.peerCn, 'upstream.stream.test');
    assert.equal(r.data, 'T:through');
  } finally {
    await gw.close();
  }
});

test('a refused upstream closes the client after the retries', async () => {
  const dead = net.createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const deadPort = (dead.address() as net.AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));
  const { gw, ports } = await streamGateway((p) => ({
    services: [{ name: 'dead', protocol: 'tcp', host: '127.0.0.1', port: deadPort, retries: 2, connect_timeout: 500, routes: [{ name: 'r', protocols: ['tcp'], destinations: [{ port: p.tcp }] }] }],
  }));
  try {
    const started = Date.now();
    const r = await tcpExchange(ports.tcp, 'hello');
    assert.equal(r.data, '');
    assert.ok(Date.now() - started < 5000);
    assert.ok(gw.logs.some((l) => l.msg === 'stream upstream connection failed; client connection closed'));
  } finally {
    await gw.close();
  }
});

test('connect_timeout: an upstream that never completes the connection (a TLS handshake left unanswered) closes the client', async () => {
  const silent = net.createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const silentPort = (silent.address() as net.AddressInfo).port;
  const { gw, ports } = await streamGateway((p) => ({
    services: [{ name: 'slow', protocol: 'tls', host: '127.0.0.1', port: silentPort, retries: 0, connect_timeout: 300, routes: [{ name: 'r', protocols: ['tcp'], destinations: [{ port: p.tcp }] }] }],
  }));
  try {
    const started = Date.now();
    const r = await tcpExchange(ports.tcp, 'hello');
    const took = Date.now() - started;
    assert.equal(r.data, '');
    assert.ok(took >= 250 && took < 3000, `closed after ${took} ms`);
    assert.ok(gw.logs.some((l) => /timed out after 300 ms/.test(String((l.err as { message?: string } | undefined)?.message))), gw.logText());
  } finally {
    await gw.close();
    silent.close();
  }
});

test('read_timeout: a session without bytes in either direction for read_timeout ms is closed', async () => {
  const { gw, ports } = await streamGateway((p) => ({
    services: [{ name: 'a', protocol: 'tcp', host: '127.0.0.1', port: echoA.port, read_timeout: 300, routes: [{ name: 'r', protocols: ['tcp'], destinations: [{ port: p.tcp }] }] }],
  }));
  try {
    const started = Date.now();
    // The echo server answers only after the client's end: nothing flows after the first bytes.
    const took = await new Promise<number>((resolve) => {
      const s = net.connect({ port: ports.tcp, host: '127.0.0.1' }, () => s.write('waiting'));
      s.on('error', () => {});
      s.on('close', () => resolve(Date.now() - started));
    });
    assert.ok(took >= 250 && took < 3000, `closed after ${took} ms`);
  } finally {
    await gw.close();
  }
});

test('write_timeout: a write to a client that stops reading, blocked for write_timeout ms, closes the session', { timeout: 15_000 }, async () => {
  let upstreamClosed: () => void = () => {};
  const closed = new Promise<void>((r) => { upstreamClosed = r; });
  const flood = net.createServer((s) => {
    const chunk = Buffer.alloc(64 * 1024, 120);
    const pump = (): void => { while (!s.destroyed && s.write(chunk)); };
    s.on('drain', pump);
    s.on('error', () => {});
    s.on('close', () => upstreamClosed());
    pump();
  });
  await new Promise<void>((r) => flood.listen(0, '127.0.0.1', r));
  const floodPort = (flood.address() as net.AddressInfo).port;
  const { gw, ports } = await streamGateway((p) => ({
    services: [{ name: 'flood', protocol: 'tcp', host: '127.0.0.1', port: floodPort, read_timeout: 60000, write_timeout: 300, routes: [{ name: 'r', protocols: ['tcp'], destinations: [{ port: p.tcp }] }] }],
  }));
  const client = net.connect({ port: ports.tcp, host: '127.0.0.1' });
  client.on('error', () => {});
  client.pause();
  try {
    const started = Date.now();
    await closed;
    assert.ok(Date.now() - started < 10_000);
  } finally {
    client.destroy();
    await gw.close();
    flood.close();
  }
});

test('a service whose host is an upstream entity: the balancer picks the target', async () => {
  const { gw, ports } = await streamGateway((p) => ({
    upstreams: [{ name: 'stream-pool', targets: [{ target: `127.0.0.1:${echoB.port}` }] }],
    services: [{ name: 'balanced', protocol: 'tcp', host: 'stream-pool', port: 80, routes: [{ name: 'r', protocols: ['tcp'], destinations: [{ port: p.tcp }] }] }],
  }));
  try {
    assert.equal((await tcpExchange(ports.tcp, 'via upstream')).data, 'B:via upstream');
  } finally {
    await gw.close();
  }
});

test('proxy_protocol stream listener: the header is required and stripped; its source is the client address (route sources) only when the peer is trusted', async () => {
  const start = (trusted: string) => startGateway({
    env: { PORTCULLIS_STREAM_LISTEN: '127.0.0.1:0 proxy_protocol', PORTCULLIS_TRUSTED_IPS: trusted },
    config: { services: [{ name: 'a', protocol: 'tcp', host: '127.0.0.1', port: echoA.port, routes: [{ name: 'r', protocols: ['tcp'], sources: [{ ip: '203.0.113.0/24' }] }] }] },
  });
  const header = 'PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n';
  const trusted = await start('127.0.0.1');
  try {
    const [port] = trusted.node.streamPorts();
    assert.equal((await tcpExchange(port, `${header}payload`)).data, 'A:payload');
    // No header: closed unanswered.
    assert.equal((await tcpExchange(port, 'payload')).data, '');
  } finally {
    await trusted.close();
  }
  const untrusted = await start('10.9.9.9');
  try {
    // The header is stripped but its source is not believed: 127.0.0.1 matches no route.
    assert.equal((await tcpExchange(untrusted.node.streamPorts()[0], `${header}payload`)).data, '');
  } finally {
    await untrusted.close();
  }
});

test('ip-restriction on a tcp route (Kong\'s default protocols include tcp): deny closes the connection, allow lets it through', async () => {
  const { gw, ports } = await streamGateway((p) => ({
    services: [{
      name: 'a', protocol: 'tcp', host: '127.0.0.1', port: echoA.port,
      routes: [
        // Without `protocols`: Kong's default for ip-restriction has tcp and tls.
        { name: 'denied', protocols: ['tcp'], destinations: [{ port: p.tcp }], plugins: [{ name: 'ip-restriction', config: { deny: ['127.0.0.1'] } }] },
        { name: 'allowed', protocols: ['tcp'], destinations: [{ port: p.tcp2 }], plugins: [{ name: 'ip-restriction', protocols: ['tcp', 'tls'], config: { allow: ['127.0.0.0/8'] } }] },
      ],
    }],
  }));
  try {
    assert.equal((await tcpExchange(ports.tcp, 'no')).data, '');
    assert.ok(gw.logs.some((l) => l.msg === 'IP address not allowed: 127.0.0.1'));
    assert.equal((await tcpExchange(ports.tcp2, 'yes')).data, 'A:yes');
    const plugins = await (await fetch(`${gw.adminUrl}/plugins`)).json() as { data: Array<{ protocols: string[]; config: { deny: string[] | null } }> };
    assert.deepEqual(plugins.data.find((x) => x.config.deny !== null)?.protocols, ['grpc', 'grpcs', 'http', 'https', 'tcp', 'tls']);
  } finally {
    await gw.close();
  }
});

test('a decK file with stream routes loads at start; one with a udp route is refused naming udp; a reload swaps stream routes', async () => {
  const gw = await startGateway({
    env: { PORTCULLIS_STREAM_LISTEN: '127.0.0.1:0' },
    config: { services: [{ name: 'a', protocol: 'tcp', host: '127.0.0.1', port: echoA.port, routes: [{ name: 'r', protocols: ['tcp'], sources: [{ ip: '127.0.0.1' }] }] }] },
  });
  try {
    const [port] = gw.node.streamPorts();
    assert.equal((await tcpExchange(port, 'one')).data, 'A:one');
    // GET / reports the setting under Kong's name.
    const root = await (await fetch(`${gw.adminUrl}/`)).json() as { configuration: { stream_listen: string[] } };
    assert.deepEqual(root.configuration.stream_listen, ['127.0.0.1:0']);
    const udp = { services: [{ name: 'u', protocol: 'udp', host: '127.0.0.1', port: 53, routes: [{ name: 'u', protocols: ['udp'], sources: [{ ip: '127.0.0.1' }] }] }] };
    assert.equal(await gw.reload(udp), false);
    assert.match(gw.logText(), /'udp' is not supported/);
    // The running config stays.
    assert.equal((await tcpExchange(port, 'two')).data, 'A:two');
    assert.equal(await gw.reload({ services: [{ name: 'b', protocol: 'tcp', host: '127.0.0.1', port: echoB.port, routes: [{ name: 'r', protocols: ['tcp'], sources: [{ ip: '127.0.0.0/8' }] }] }] }), true);
    assert.equal((await tcpExchange(port, 'three')).data, 'B:three');
  } finally {
    await gw.close();
  }
});

test('with two worker processes the workers open the stream listener (SO_REUSEPORT) and proxy; SIGTERM stops them cleanly', async () => {
  const port = await freePort();
  const yaml = `_format_version: "3.0"
services:
  - name: a
    protocol: tcp
    host: 127.0.0.1
    port: ${echoA.port}
    routes:
      - name: r
        protocols: [tcp]
        destinations: [{ port: ${port} }]
`;
  const gw = await startGatewayProcess({ workers: 2, config: yaml, env: { PORTCULLIS_STREAM_LISTEN: `127.0.0.1:${port}` } });
  try {
    await waitFor(async () => (await tcpExchange(port, 'up')).data === 'A:up', 15_000, 'stream listener');
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => tcpExchange(port, `n${i}`)));
    assert.deepEqual(answers.map((a) => a.data), Array.from({ length: 8 }, (_, i) => `A:n${i}`));
  } finally {
    assert.equal(await gw.stop(), 0, gw.output());
  }
});

test('stream log phase: file-log writes Kong\'s stream record and prometheus counts the session (relayed, refused by a plugin, service unreachable; terminated TLS)', async () => {
  const { mkdtemp, readFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { parseExposition } = await import('./helpers/prometheus.ts');
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-stream-log-'));
  const file = join(dir, 'stream.log');
  const dead = await freePort();
  const logging = [
    { name: 'file-log', protocols: ['tcp', 'tls'], config: { path: file } },
    { name: 'prometheus', protocols: ['tcp', 'tls'], config: { status_code_metrics: true, latency_metrics: true, bandwidth_metrics: true } },
  ];
  const { gw, ports } = await streamGateway((p) => ({
    certificates: [{ cert: gwCert.cert, key: gwCert.key, snis: [{ name: 'gw.stream.test' }] }],
    services: [
      { name: 'echo', protocol: 'tcp', host: '127.0.0.1', port: echoA.port, routes: [
        { name: 'relayed', protocols: ['tcp'], destinations: [{ port: p.tcp }], plugins: logging },
        { name: 'terminated', protocols: ['tls'], snis: ['gw.stream.test'], plugins: logging },
      ] },
      { name: 'nowhere', protocol: 'tcp', host: '127.0.0.1', port: dead, retries: 1, routes: [
        { name: 'refused', protocols: ['tcp'], sources: [{ ip: '127.0.0.2' }], destinations: [{ port: p.tcp2 }], plugins: [...logging, { name: 'ip-restriction', config: { deny: ['127.0.0.2'] } }] },
        { name: 'unreachable', protocols: ['tcp'], sources: [{ ip: '127.0.0.1' }], destinations: [{ port: p.tcp2 }], plugins: logging },
      ] },
    ],
  }));
  try {
    assert.equal((await tcpExchange(ports.tcp, 'hello stream')).data, 'A:hello stream');
    assert.equal((await tcpExchange(ports.tcp2, 'no', '127.0.0.2')).data, '');
    assert.equal((await tcpExchange(ports.tcp2, 'lost')).data, '');
    const overTls = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ port: ports.tls, host: '127.0.0.1', servername: 'gw.stream.test', ca: ca.cert, minVersion: 'TLSv1.3' }, () => s.end('secret'));
      let data = '';
      s.on('data', (c: Buffer) => { data += c.toString(); });
      s.on('error', reject);
      s.on('close', () => resolve(data));
    });
    assert.equal(overTls, 'A:secret');
    await waitFor(async () => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean).length === 4, 10_000, 'four stream records');
    const recs = (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
    const of = (route: string) => recs.find((r) => r.route.name === route)!;

    const relayed = of('relayed');
    assert.deepEqual(relayed.session, { received: 12, sent: 14, status: 200, server_port: ports.tcp });
    assert.deepEqual(relayed.upstream, { received: 14, sent: 12 });
    assert.equal(relayed.service.name, 'echo');
    assert.equal(relayed.client_ip, '127.0.0.1');
    assert.equal(relayed.tries.length, 1);
    assert.equal(relayed.tries[0].port, echoA.port);
    assert.ok(relayed.latencies.session >= relayed.latencies.kong && relayed.latencies.kong >= 0);
    assert.ok(Math.abs(relayed.started_at - Date.now()) < 60_000);
    assert.equal('request' in relayed, false, 'a stream record, not an HTTP one');

    assert.equal(of('refused').session.status, 403);
    assert.deepEqual(of('refused').tries, []);
    const unreachable = of('unreachable');
    assert.equal(unreachable.session.status, 502);
    assert.equal(unreachable.tries.length, 2, 'retries: 1');
    assert.equal(unreachable.tries[0].state, 'failed');
    assert.equal(unreachable.tries[0].code, 502);

    const terminated = of('terminated');
    assert.equal(terminated.session.status, 200);
    assert.equal(terminated.session.tls.version, 'TLSv1.3');
    assert.equal(terminated.session.tls.client_verify, 'NONE');
    assert.equal(terminated.session.received, 6, 'the bytes inside TLS');

    const m = parseExposition(await (await fetch(`${gw.adminUrl}/metrics`)).text());
    const sessions = (route: string, code: string, source: string) => m.value('kong_stream_sessions_total', { service: route === 'relayed' || route === 'terminated' ? 'echo' : 'nowhere', route, code, source, workspace: 'default' });
    assert.equal(sessions('relayed', '200', 'service'), 1);
    assert.equal(sessions('terminated', '200', 'service'), 1);
    assert.equal(sessions('refused', '403', 'kong'), 1);
    assert.equal(sessions('unreachable', '502', 'kong'), 1);
    assert.equal(m.value('kong_session_duration_ms_count', { service: 'echo', route: 'relayed', workspace: 'default' }), 1);
    assert.equal(m.value('kong_kong_latency_ms_count', { service: 'echo', route: 'relayed', workspace: 'default' }), 1);
    assert.equal(m.value('kong_bandwidth_bytes', { service: 'echo', route: 'relayed', direction: 'ingress', workspace: 'default', consumer: '' }), 12);
    assert.equal(m.value('kong_bandwidth_bytes', { service: 'echo', route: 'relayed', direction: 'egress', workspace: 'default', consumer: '' }), 14);
  } finally {
    await gw.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('log plugins accept Kong\'s stream protocols (tcp, tls, tls_passthrough); udp is refused under protocols', async () => {
  const gw = await startGateway({ database: 'sqlite' });
  try {
    for (const name of ['file-log', 'http-log', 'prometheus']) {
      const config = name === 'file-log' ? { path: '/tmp/x.log' } : name === 'http-log' ? { http_endpoint: 'http://127.0.0.1:9/log' } : {};
      const ok = await fetch(`${gw.adminUrl}/plugins`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, protocols: ['http', 'tcp', 'tls', 'tls_passthrough'], config }) });
      assert.equal(ok.status, 201, `${name}: ${await ok.text()}`);
      const udp = await fetch(`${gw.adminUrl}/plugins`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, protocols: ['udp'], config }) });
      assert.equal(udp.status, 400, name);
      const body = (await udp.json()) as { fields: { protocols: string[] } };
      assert.match(body.fields.protocols[0], /^expected one of: .*tls_passthrough$/, `${name}: the field is named, udp is not among the accepted`);
    }
  } finally {
    await gw.close();
  }
});
