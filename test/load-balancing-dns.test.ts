/**
 * Targets given as DNS names: resolved through a DNS server the test controls
 * (PORTCULLIS_DNS_RESOLVER), re-resolved when the TTL expires, last good addresses kept when
 * the name stops resolving.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startDns } from './helpers/dns.ts';
import { startGateway } from './helpers/gateway.ts';
import { waitFor } from './helpers/process.ts';

async function server(host: string, port: number, label: string): Promise<http.Server> {
  const s = http.createServer((req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(`${label} ${req.headers.host}`));
  await new Promise<void>((r) => s.listen(port, host, r));
  return s;
}

test('a DNS target is re-resolved when its TTL expires; a name that stops resolving keeps its last addresses', async () => {
  const dns = await startDns();
  // Two loopback addresses on one port: the name's answer decides which one gets the traffic.
  const first = await server('127.0.0.11', 0, 'first');
  const port = (first.address() as { port: number }).port;
  const second = await server('127.0.0.12', port, 'second');
  dns.setA('api.service.test', ['127.0.0.11'], 1);
  const gw = await startGateway({
    env: { PORTCULLIS_DNS_RESOLVER: dns.resolver },
    config: {
      services: [{ name: 'svc', host: 'dns-pool', routes: [{ paths: ['/'] }] }],
      upstreams: [{ name: 'dns-pool', targets: [{ target: `api.service.test:${port}` }] }],
    },
  });
  const body = async (): Promise<string> => {
    const r = await fetch(`${gw.proxyUrl}/x`);
    return `${r.status} ${await r.text()}`;
  };
  try {
    assert.equal(await body(), `200 first api.service.test:${port}`);
    dns.setA('api.service.test', ['127.0.0.12'], 1);
    await waitFor(async () => (await body()).startsWith('200 second'), 8000, 'new address in use');
    dns.setA('api.service.test', []);
    await waitFor(() => gw.logText().includes('no longer resolves; keeping its last known addresses'), 8000, 'resolution failure logged');
    assert.equal(await body(), `200 second api.service.test:${port}`);
    const h = await (await fetch(`${gw.adminUrl}/upstreams/dns-pool/health`)).json() as { data: { data: { addresses: { ip: string }[] } }[] };
    assert.deepEqual(h.data[0].data.addresses.map((a) => a.ip), ['127.0.0.12']);
  } finally {
    await gw.close();
    first.close();
    second.close();
    await dns.close();
  }
});

test('a DNS target that never resolves: DNS_ERROR in health, 503 with no peer', async () => {
  const dns = await startDns();
  const gw = await startGateway({
    env: { PORTCULLIS_DNS_RESOLVER: dns.resolver },
    config: {
      services: [{ name: 'svc', host: 'nowhere-pool', routes: [{ paths: ['/'] }] }],
      upstreams: [{ name: 'nowhere-pool', targets: [{ target: 'missing.service.test:80' }] }],
    },
  });
  try {
    const r = await fetch(`${gw.proxyUrl}/x`);
    assert.equal(r.status, 503);
    assert.equal((await r.json() as { message: string }).message, 'failure to get a peer from the ring-balancer');
    const h = await (await fetch(`${gw.adminUrl}/upstreams/nowhere-pool/health`)).json() as { data: { health: string }[] };
    assert.equal(h.data[0].health, 'DNS_ERROR');
  } finally {
    await gw.close();
    await dns.close();
  }
});
