import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { NameResolver, type Resolution } from './dns.ts';
import { startDns } from '../../test/helpers/dns.ts';

function memoryLog() {
  const lines: string[] = [];
  const log = pino({ level: 'info' }, new Writable({ write(c: Buffer, _e, cb) { lines.push(c.toString()); cb(); } }));
  return { log, lines };
}

test('A records are re-resolved when their TTL expires; a name that stops resolving keeps its last addresses and says so', async () => {
  const dns = await startDns();
  const { log, lines } = memoryLog();
  const r = new NameResolver({ servers: [dns.resolver], hostsFile: '', log, errorRetryMs: 500 });
  try {
    dns.setA('svc.test', ['127.0.0.2'], 1);
    const seen: Resolution[] = [];
    const first = await r.watch('svc.test', (x) => seen.push(x));
    assert.deepEqual(first.addresses.map((a) => a.ip), ['127.0.0.2']);
    dns.setA('svc.test', ['127.0.0.3', '127.0.0.4'], 1);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && r.current('svc.test')!.addresses.length !== 2) await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual(r.current('svc.test')!.addresses.map((a) => a.ip).sort(), ['127.0.0.3', '127.0.0.4']);
    dns.setA('svc.test', []);
    while (Date.now() < deadline + 10_000 && r.current('svc.test')!.error === null) await new Promise((res) => setTimeout(res, 100));
    const now = r.current('svc.test')!;
    assert.ok(now.error !== null);
    assert.deepEqual(now.addresses.map((a) => a.ip).sort(), ['127.0.0.3', '127.0.0.4']);
    assert.match(lines.join(''), /no longer resolves; keeping its last known addresses/);
    assert.ok(seen.length >= 2);
  } finally {
    r.close();
    await dns.close();
  }
});

test('SRV names bring their own port and weight (best priority only); hosts file wins over DNS', async () => {
  const dns = await startDns();
  const dir = await mkdtemp(join(tmpdir(), 'pc-hosts-'));
  const hosts = join(dir, 'hosts');
  await writeFile(hosts, '127.0.0.9 pinned.test # comment\n');
  const { log } = memoryLog();
  const r = new NameResolver({ servers: [dns.resolver], hostsFile: hosts, log });
  try {
    // (SRV targets share no suffix with the SRV name or each other: dns2 would compress them, which c-ares refuses.)
    dns.setA('node-a.example', ['127.0.0.5']);
    dns.setA('pinned.test', ['127.0.0.6']);
    dns.setSrv('_http._tcp.svc.test', [
      { target: 'node-a.example', port: 9001, weight: 0, priority: 1 },
      { target: 'nodeb.other', port: 9002, weight: 5, priority: 2 },
    ]);
    const srv = await r.watch('_http._tcp.svc.test', () => {});
    assert.deepEqual(srv.addresses, [{ ip: '127.0.0.5', port: 9001, weight: 1, srvName: 'node-a.example' }]);
    const pinned = await r.watch('pinned.test', () => {});
    assert.deepEqual(pinned.addresses.map((a) => a.ip), ['127.0.0.9']);
  } finally {
    r.close();
    await dns.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('use_srv_name: the Host of a balanced address is the SRV record\'s target name', async () => {
  const { Balancers } = await import('./balancer.ts');
  const { HealthStates } = await import('./health-states.ts');
  const { defaultHealthchecks } = await import('../config/upstreams.ts');
  const dns = await startDns();
  const { log } = memoryLog();
  const r = new NameResolver({ servers: [dns.resolver], hostsFile: '', log });
  const balancers = new Balancers({ health: new HealthStates(), resolver: r, log });
  try {
    dns.setA('backend.example', ['127.0.0.7']);
    dns.setSrv('_api._tcp.svc.test', [{ target: 'backend.example', port: 9100, weight: 10, priority: 1 }]);
    const base = {
      id: 'u', name: 'srv', algorithm: 'round-robin' as const, hash_on: 'none' as const, hash_fallback: 'none' as const, hash_on_header: null, hash_fallback_header: null,
      hash_on_cookie: null, hash_on_cookie_path: '/', hash_on_query_arg: null, hash_fallback_query_arg: null, hash_on_uri_capture: null,
      hash_fallback_uri_capture: null, slots: 10000, healthchecks: defaultHealthchecks(), host_header: null, client_certificate: null,
      tags: null, created_at: 0, updated_at: 0,
    };
    const target = { id: 't', upstream: { id: 'u' }, target: '_api._tcp.svc.test:8000', weight: 100, tags: null, created_at: 0, updated_at: 0 };
    await balancers.apply([{ ...base, use_srv_name: true }], [target]);
    const a = balancers.get('srv')!.pick('', null)!;
    assert.deepEqual([a.ip, a.port, a.weight, a.hostname], ['127.0.0.7', 9100, 10, 'backend.example']);
    await balancers.apply([{ ...base, use_srv_name: false }], [target]);
    assert.equal(balancers.get('srv')!.pick('', null)!.hostname, '_api._tcp.svc.test');
  } finally {
    balancers.close();
    r.close();
    await dns.close();
  }
});
