import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { OriginPools } from './origin-pools.ts';

/** A server that ends each keep-alive connection after two requests (as nginx's keepalive_requests does after 1000). */
async function closingServer(): Promise<{ url: string; connections: () => number; close(): Promise<void> }> {
  let connections = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  server.maxRequestsPerSocket = 2;
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

async function twelveRequests(url: string, dispatcher: OriginPools | Agent): Promise<void> {
  for (let i = 0; i < 12; i++) {
    const r = await request(`${url}/x`, { method: 'POST', body: 'x'.repeat(300), dispatcher });
    assert.equal(await r.body.text(), 'ok');
  }
}

test('OriginPools keeps reusing connections after the server closes them (12 requests, 2 per connection: 6 connections)', async () => {
  const a = await closingServer();
  const b = await closingServer();
  const pools = new OriginPools({ keepAliveTimeout: 60_000 });
  try {
    await twelveRequests(a.url, pools);
    await twelveRequests(b.url, pools);
    assert.equal(a.connections(), 6);
    assert.equal(b.connections(), 6);
  } finally {
    await pools.close();
    await a.close();
    await b.close();
  }
});

test('the undici 7 Agent behaviour OriginPools avoids: after the first server close, a connection per request', async () => {
  // If this starts failing, undici's Agent was mended: OriginPools may then go (see its header).
  const a = await closingServer();
  const agent = new Agent({ keepAliveTimeout: 60_000 });
  try {
    await twelveRequests(a.url, agent);
    assert.ok(a.connections() > 6, `connections: ${a.connections()}`);
  } finally {
    await agent.close();
    await a.close();
  }
});

test('OriginPools: closed, it refuses new origins; destroy fails what is in flight', async () => {
  const a = await closingServer();
  const pools = new OriginPools();
  await request(`${a.url}/x`, { dispatcher: pools }).then((r) => r.body.text());
  await pools.close();
  await assert.rejects(request('http://127.0.0.1:9/x', { dispatcher: pools }), /closed/);
  const other = new OriginPools();
  const hanging = http.createServer(() => {});
  await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', () => r()));
  const pending = request(`http://127.0.0.1:${(hanging.address() as AddressInfo).port}/`, { dispatcher: other });
  await new Promise((r) => setTimeout(r, 50));
  await other.destroy(new Error('going away'));
  await assert.rejects(pending, /going away|destroyed/);
  hanging.closeAllConnections();
  hanging.close();
  await a.close();
});
