import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { startGateway, type TestGateway } from './helpers/gateway.ts';

/** Sends raw bytes and collects everything until the server closes (or 3 s pass). */
function raw(port: number, payload: string): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    let closed = false;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed });
    }, 3000);
    socket.on('data', (c) => (text += c.toString('latin1')));
    socket.on('end', () => {
      closed = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    });
    socket.on('error', reject);
    socket.write(payload);
  });
}

describe('edge checks: smuggling, oversized headers, body limit', () => {
  let echo: EchoServer;
  let gw: TestGateway;
  before(async () => {
    echo = await startEcho();
    gw = await startGateway({
      env: { PORTCULLIS_CLIENT_MAX_BODY_SIZE: '1k', PORTCULLIS_MAX_HEADER_SIZE: '8k' },
      config: { services: [{ name: 's', url: echo.url, routes: [{ name: 'r', paths: ['/'] }] }] },
    });
  });
  after(async () => {
    await gw.close();
    await echo.close();
  });

  const smuggling: Array<[string, string]> = [
    ['Content-Length and Transfer-Encoding together',
      'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['two different Content-Length headers',
      'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcdGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['malformed Content-Length',
      'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4x\r\n\r\nabcd'],
    ['obfuscated Transfer-Encoding',
      'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n'],
  ];
  for (const [name, payload] of smuggling) {
    test(`${name} → 400, connection closed, nothing forwarded`, async () => {
      const before = echo.received.length;
      const { text, closed } = await raw(gw.proxyPort, payload);
      assert.match(text, /^HTTP\/1\.1 400 /);
      assert.ok(closed, 'connection closed');
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(echo.received.length, before);
    });
  }

  test('oversized headers → 431', async () => {
    const big = 'x'.repeat(16 * 1024);
    const { text } = await raw(gw.proxyPort, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${big}\r\n\r\n`);
    assert.match(text, /^HTTP\/1\.1 431 /);
  });

  test('body over client_max_body_size → 413 (declared length and chunked)', async () => {
    const before = echo.received.length;
    const r = await fetch(`${gw.proxyUrl}/a`, { method: 'POST', body: 'x'.repeat(2048) });
    assert.equal(r.status, 413);
    // Kong's error handler body for 413 (kong/error_handlers.lua), as nginx's client_max_body_size gives.
    assert.deepEqual(await r.json(), { message: 'Payload too large' });
    assert.equal(echo.received.length, before);
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${gw.proxyUrl}/upload-count`, { method: 'POST' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', () => resolve(-1));
      req.write('y'.repeat(800));
      setTimeout(() => req.end('y'.repeat(800)), 20);
    });
    assert.ok(chunked === 413 || chunked === -1, `chunked oversized body refused (got ${chunked})`);
    const small = await fetch(`${gw.proxyUrl}/a`, { method: 'POST', body: 'small' });
    assert.equal(small.status, 200);
  });
});

describe('HTTP/1.1 request targets and Host (RFC 9112 §3.2)', () => {
  let echo: EchoServer;
  let gw: TestGateway;
  before(async () => {
    echo = await startEcho();
    gw = await startGateway({
      config: {
        services: [
          { name: 'a', url: `${echo.url}/a-side`, routes: [{ name: 'ra', hosts: ['a.example'], paths: ['/'] }] },
          { name: 'b', url: `${echo.url}/b-side`, routes: [{ name: 'rb', hosts: ['b.example'], paths: ['/'] }] },
        ],
      },
    });
  });
  after(async () => {
    await gw.close();
    await echo.close();
  });

  test('two Host header fields → 400, connection closed, nothing forwarded', async () => {
    const before = echo.received.length;
    const { text, closed } = await raw(gw.proxyPort, 'GET /x HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 400 /);
    assert.match(text, /connection: close/i);
    assert.ok(closed, 'connection closed');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(echo.received.length, before);
  });

  test('an absolute-form target is routed by its authority, not the Host header; the upstream gets the origin-form path', async () => {
    const before = echo.received.length;
    const { text } = await raw(gw.proxyPort, 'GET http://b.example/x/y?q=1 HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 200 /);
    const seen = echo.received.slice(before);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].url, '/b-side/x/y?q=1');
    assert.equal(seen[0].headers['x-forwarded-host'], 'b.example');
    const bare = await raw(gw.proxyPort, 'GET http://a.example HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n');
    assert.match(bare.text, /^HTTP\/1\.1 200 /);
    assert.equal(echo.received.at(-1)!.url, '/a-side');
  });
});

/** A minimal WebSocket echo upstream (RFC 6455): short text frames only, enough for a proxy test. */
function startWsEcho(): Promise<{ port: number; close(): void }> {
  const server = http.createServer((_req, res) => res.end('not a websocket'));
  server.on('upgrade', (req, socket) => {
    const key = req.headers['sec-websocket-key'] as string;
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Upstream-Path: ${req.url}\r\n\r\n`);
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 6) {
        const opcode = buf[0] & 0x0f;
        const len = buf[1] & 0x7f;
        if (len > 125 || buf.length < 6 + len) return;
        const mask = buf.subarray(2, 6);
        const data = Buffer.from(buf.subarray(6, 6 + len).map((b, i) => b ^ mask[i % 4]));
        buf = buf.subarray(6 + len);
        if (opcode === 0x8) {
          socket.end(Buffer.from([0x88, 0]));
          return;
        }
        if (opcode === 0x1) socket.write(Buffer.concat([Buffer.from([0x81, data.length]), data]));
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  })));
}

describe('WebSocket upgrades', () => {
  test('proxied after the access phase ran; echo works both ways', async () => {
    const ws = await startWsEcho();
    const gw = await startGateway({
      config: `
_format_version: "3.0"
services:
  - name: ws
    url: http://127.0.0.1:${ws.port}/socket
    routes:
      - { name: ws-route, paths: [/ws] }
      - { name: blocked, paths: [/blocked] }
plugins:
  - name: request-termination
    route: blocked
    config: { status_code: 403, message: no sockets here }
`,
    });
    try {
      const socket = new WebSocket(`ws://127.0.0.1:${gw.proxyPort}/ws`);
      const got = await new Promise<string>((resolve, reject) => {
        socket.onopen = () => socket.send('hello through the gateway');
        socket.onmessage = (e) => resolve(String(e.data));
        socket.onerror = () => reject(new Error('websocket error'));
      });
      assert.equal(got, 'hello through the gateway');
      socket.close();

      const refused = await new Promise<string>((resolve) => {
        const s = new WebSocket(`ws://127.0.0.1:${gw.proxyPort}/blocked`);
        s.onopen = () => resolve('opened');
        s.onerror = () => resolve('refused');
      });
      assert.equal(refused, 'refused');
      const { text } = await raw(gw.proxyPort, 'GET /blocked HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
      assert.match(text, /^HTTP\/1\.1 403 /);
      assert.match(text, /no sockets here/);
    } finally {
      await gw.close();
      ws.close();
    }
  });
});
