/**
 * `proxy_protocol` on proxy listeners: a raw TCP client sends PROXY protocol v1 and v2 headers,
 * over plain and TLS listeners; with real_ip_header proxy_protocol and the load balancer in
 * trusted_ips the carried address is the client address (X-Real-IP / X-Forwarded-For upstream).
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { readProxyHeader } from '../src/kernel/preamble.ts';
import { readSettings } from '../src/kernel/settings.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';

type Echoed = { headers: Record<string, string> };

function v1(src: string, family = 'TCP4', dst = '127.0.0.1'): Buffer {
  return Buffer.from(`PROXY ${family} ${src} ${dst} 51234 443\r\n`);
}

/** A v2 PROXY header built byte by byte (RFC-style layout of haproxy's proxy-protocol.txt §2.2). */
function v2(src: string, opts: { local?: boolean } = {}): Buffer {
  const sig = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
  const ipv6 = src.includes(':');
  const addr = ipv6
    ? Buffer.concat([ipv6Bytes(src), ipv6Bytes('::1'), u16(51234), u16(443)])
    : Buffer.concat([Buffer.from(src.split('.').map(Number)), Buffer.from([127, 0, 0, 1]), u16(51234), u16(443)]);
  const verCmd = opts.local ? 0x20 : 0x21;
  const famProto = ipv6 ? 0x21 : 0x11;
  return Buffer.concat([sig, Buffer.from([verCmd, famProto]), u16(addr.length), addr]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function ipv6Bytes(text: string): Buffer {
  const [head, tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.concat(groups.map((g) => u16(parseInt(g, 16))));
}

const request = (path: string) => `GET ${path} HTTP/1.1\r\nHost: pp.test\r\nConnection: close\r\n\r\n`;

/** Sends `chunks` on a raw TCP connection (one write each) and reads the whole answer. */
function rawExchange(port: number, chunks: Buffer[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', async () => {
      for (const c of chunks) {
        s.write(c);
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    let text = '';
    s.on('data', (d) => (text += d.toString('utf8')));
    s.on('close', () => resolve(text));
    s.on('error', reject);
  });
}

/** A PROXY header on a raw TCP connection, then TLS over it, then one HTTP/1.1 request. */
function tlsExchange(port: number, header: Buffer, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const raw = net.connect(port, '127.0.0.1', () => {
      raw.write(header);
      const s = tls.connect({ socket: raw, servername: 'localhost', rejectUnauthorized: false }, () => s.write(request(path)));
      let text = '';
      s.on('data', (d) => (text += d.toString('utf8')));
      s.on('end', () => resolve(text));
      s.on('error', reject);
    });
    raw.on('error', reject);
  });
}

function echoedHeaders(response: string): Record<string, string> {
  assert.match(response, /^HTTP\/1\.1 200 /, response.slice(0, 200));
  return (JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) as Echoed).headers;
}

describe('PROXY protocol headers', () => {
  it('reads v1 and v2 headers, incomplete ones ask for more, anything else is refused', () => {
    assert.deepEqual(readProxyHeader(Buffer.concat([v1('203.0.113.7'), Buffer.from('GET /')])), { length: v1('203.0.113.7').length, peer: { address: '203.0.113.7', port: 51234 } });
    assert.deepEqual(readProxyHeader(v2('2001:db8::1')), { length: v2('2001:db8::1').length, peer: { address: '2001:db8::1', port: 51234 } });
    assert.deepEqual(readProxyHeader(v2('198.51.100.2', { local: true })), { length: v2('198.51.100.2').length, peer: null });
    assert.deepEqual(readProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')), { length: 15, peer: null });
    assert.equal(readProxyHeader(v1('203.0.113.7').subarray(0, 10)), 'more');
    assert.equal(readProxyHeader(v2('203.0.113.7').subarray(0, 20)), 'more');
    assert.ok(readProxyHeader(Buffer.from('GET / HTTP/1.1\r\n')) instanceof Error);
    assert.ok(readProxyHeader(Buffer.from('PROXY TCP4 not-an-ip 127.0.0.1 1 2\r\n')) instanceof Error);
    assert.ok(readProxyHeader(Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`)) instanceof Error);
  });

  it('settings: proxy_protocol is a listen flag; real_ip_header proxy_protocol needs such a listener', () => {
    const s = readSettings({ proxyListen: '127.0.0.1:0 proxy_protocol, 127.0.0.1:0 ssl proxy_protocol' }, { PORTCULLIS_REAL_IP_HEADER: 'proxy_protocol' });
    assert.deepEqual(s.proxyListen.map((l) => [l.ssl, l.proxyProtocol]), [[false, true], [true, true]]);
    assert.equal(s.realIpHeader, 'proxy_protocol');
    assert.throws(() => readSettings({ proxyListen: '127.0.0.1:0' }, { PORTCULLIS_REAL_IP_HEADER: 'proxy_protocol' }), /PORTCULLIS_REAL_IP_HEADER: proxy_protocol needs a proxy_listen entry with the proxy_protocol flag/);
    assert.throws(() => readSettings({ proxyListen: '127.0.0.1:0' }, { PORTCULLIS_REAL_IP_HEADER: 'X-Client-IP' }), /PORTCULLIS_REAL_IP_HEADER must be X-Real-IP or proxy_protocol/);
    assert.throws(() => readSettings({ proxyListen: '127.0.0.1:0 proxy_protocol=on' }, {}), /'proxy_protocol' flag takes no value/);
  });
});

describe('proxy_protocol listeners with real_ip_header proxy_protocol', () => {
  let echo: EchoServer;
  let trusted: TestGateway;
  let untrusted: TestGateway;
  let plainPort = 0;
  let tlsPort = 0;
  let ordinaryPort = 0;
  const config = () => ({ services: [{ name: 'e', url: echo.url, routes: [{ name: 'all', paths: ['/'] }] }] });

  before(async () => {
    echo = await startEcho();
    trusted = await startGateway({
      proxyListen: '127.0.0.1:0 proxy_protocol, 127.0.0.1:0 ssl http2 proxy_protocol, 127.0.0.1:0',
      env: { PORTCULLIS_REAL_IP_HEADER: 'proxy_protocol', PORTCULLIS_TRUSTED_IPS: '127.0.0.1,::1' },
      config: config(),
    });
    [plainPort, tlsPort, ordinaryPort] = trusted.node.proxyPorts();
    untrusted = await startGateway({
      proxyListen: '127.0.0.1:0 proxy_protocol',
      env: { PORTCULLIS_REAL_IP_HEADER: 'proxy_protocol', PORTCULLIS_TRUSTED_IPS: '192.0.2.1' },
      config: config(),
    });
  });
  after(async () => {
    await trusted.close();
    await untrusted.close();
    await echo.close();
  });

  it('v1 on a plain listener: the carried address is the client address upstream', async () => {
    const h = echoedHeaders(await rawExchange(plainPort, [Buffer.concat([v1('203.0.113.7'), Buffer.from(request('/v1'))])]));
    assert.equal(h['x-real-ip'], '203.0.113.7');
    assert.equal(h['x-forwarded-for'], '203.0.113.7');
  });

  it('v2 (IPv4 and IPv6) on a plain listener, the header and the request in separate packets', async () => {
    const h4 = echoedHeaders(await rawExchange(plainPort, [v2('198.51.100.9').subarray(0, 9), v2('198.51.100.9').subarray(9), Buffer.from(request('/v2'))]));
    assert.equal(h4['x-real-ip'], '198.51.100.9');
    const h6 = echoedHeaders(await rawExchange(plainPort, [v2('2001:db8::7'), Buffer.from(request('/v2-6'))]));
    assert.equal(h6['x-real-ip'], '2001:db8::7');
  });

  it('v2 LOCAL (a load balancer health check) keeps the connection peer as the client', async () => {
    const h = echoedHeaders(await rawExchange(plainPort, [Buffer.concat([v2('198.51.100.9', { local: true }), Buffer.from(request('/local'))])]));
    assert.equal(h['x-real-ip'], '127.0.0.1');
  });

  it('v1 and v2 on a TLS listener: the header precedes the handshake', async () => {
    const h1 = echoedHeaders(await tlsExchange(tlsPort, v1('203.0.113.50'), '/tls-v1'));
    assert.equal(h1['x-real-ip'], '203.0.113.50');
    assert.equal(h1['x-forwarded-proto'], 'https');
    const h2 = echoedHeaders(await tlsExchange(tlsPort, v2('203.0.113.51'), '/tls-v2'));
    assert.equal(h2['x-real-ip'], '203.0.113.51');
  });

  it('h2 over TLS after a v2 header: the carried address is the client address', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const session = http2.connect(`https://localhost:${tlsPort}`, {
        createConnection: () => {
          const raw = net.connect(tlsPort, '127.0.0.1');
          raw.write(v2('203.0.113.60'));
          return tls.connect({ socket: raw, servername: 'localhost', ALPNProtocols: ['h2'], rejectUnauthorized: false });
        },
      });
      session.on('error', reject);
      const req = session.request({ ':path': '/h2' });
      let text = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (text += c));
      req.on('end', () => {
        session.close();
        resolve(text);
      });
      req.on('error', reject);
    });
    assert.equal((JSON.parse(body) as Echoed).headers['x-real-ip'], '203.0.113.60');
  });

  it('a connection without a valid header is closed unanswered; the listener goes on', async () => {
    assert.equal(await rawExchange(plainPort, [Buffer.from(request('/no-header'))]), '');
    assert.equal(await rawExchange(plainPort, [Buffer.from('PROXY TCP4 999.1.1.1 127.0.0.1 1 2\r\n'), Buffer.from(request('/bad'))]), '');
    const h = echoedHeaders(await rawExchange(plainPort, [v1('203.0.113.8'), Buffer.from(request('/after'))]));
    assert.equal(h['x-real-ip'], '203.0.113.8');
  });

  it('a listener without the flag reads no header; X-Real-IP from the peer is not the client address', async () => {
    const r = await fetch(`http://127.0.0.1:${ordinaryPort}/ordinary`, { headers: { 'x-real-ip': '192.0.2.99' } });
    assert.equal(((await r.json()) as Echoed).headers['x-real-ip'], '127.0.0.1');
  });

  it('a load balancer outside trusted_ips: the header is read, its address not believed', async () => {
    const h = echoedHeaders(await rawExchange(untrusted.node.proxyPorts()[0], [Buffer.concat([v1('203.0.113.7'), Buffer.from(request('/untrusted'))])]));
    assert.equal(h['x-real-ip'], '127.0.0.1');
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
  });
});
