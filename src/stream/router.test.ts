import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Route, Service } from '../config/types.ts';
import { StreamRouter, type StreamFacts } from './router.ts';

function route(name: string, extra: Partial<Route>): Route {
  return {
    id: name, name, protocols: ['tcp'], methods: null, hosts: null, paths: null, headers: null, snis: null, sources: null, destinations: null,
    strip_path: true, preserve_host: false, regex_priority: 0, path_handling: 'v0', https_redirect_status_code: 426,
    request_buffering: true, response_buffering: true, service: { id: 'svc' }, tags: null, created_at: 1, updated_at: 1, ...extra,
  };
}

const svc: Service = {
  id: 'svc', name: 'svc', protocol: 'tcp', host: '127.0.0.1', port: 9, path: null, retries: 5, connect_timeout: 60000, write_timeout: 60000,
  read_timeout: 60000, tls_verify: null, tls_verify_depth: null, ca_certificates: null, client_certificate: null, enabled: true, tags: null, created_at: 1, updated_at: 1,
};

const facts = (f: Partial<StreamFacts>): StreamFacts => ({ srcIp: '10.0.0.5', srcPort: 40000, dstIp: '127.0.0.1', dstPort: 9000, sni: null, kind: 'tcp', ...f });

function matcher(routes: Route[], services: Service[] = [svc]): (f: Partial<StreamFacts>) => string | null {
  const r = new StreamRouter(routes, new Map(services.map((s) => [s.id, s])));
  return (f) => r.match(facts(f))?.route.name ?? null;
}

test('sources and destinations: ip (address or CIDR) and port of one entry must both match; any entry may', () => {
  const m = matcher([
    route('dst-port', { destinations: [{ port: 9000 }] }),
    route('src-cidr-port', { sources: [{ ip: '192.168.0.0/16', port: 1234 }, { ip: '172.16.0.0/12' }] }),
  ]);
  assert.equal(m({}), 'dst-port');
  assert.equal(m({ dstPort: 9001 }), null);
  assert.equal(m({ dstPort: 9001, srcIp: '192.168.1.1', srcPort: 1234 }), 'src-cidr-port');
  assert.equal(m({ dstPort: 9001, srcIp: '192.168.1.1', srcPort: 1235 }), null);
  assert.equal(m({ dstPort: 9001, srcIp: '172.20.0.1' }), 'src-cidr-port');
  // A dual-stack listener's IPv4-mapped peer counts as its IPv4 address.
  assert.equal(m({ dstPort: 9001, srcIp: '::ffff:172.20.0.1' }), 'src-cidr-port');
});

test("Kong's precedence: snis or sources+destinations first, then sources' weight over destinations' (ip > port > cidr); ties keep config order", () => {
  const m = matcher([
    route('cidr', { sources: [{ ip: '10.0.0.0/8' }] }),
    route('port', { sources: [{ port: 40000 }] }),
    route('ip', { sources: [{ ip: '10.0.0.5' }] }),
    route('dst-ip', { destinations: [{ ip: '127.0.0.1' }] }),
    route('both', { sources: [{ ip: '10.0.0.0/8' }], destinations: [{ port: 9000 }] }),
  ]);
  assert.equal(m({}), 'both');
  assert.equal(m({ dstPort: 1 }), 'ip');
  assert.equal(m({ dstPort: 1, srcIp: '10.0.0.6' }), 'port');
  assert.equal(m({ dstPort: 1, srcIp: '10.0.0.6', srcPort: 1 }), 'cidr');
  assert.equal(m({ dstPort: 1, srcIp: '11.0.0.6', srcPort: 1 }), 'dst-ip');
  const tie = matcher([route('first', { destinations: [{ port: 9000 }] }), route('second', { destinations: [{ port: 9000 }] })]);
  assert.equal(tie({}), 'first');
});

test('snis: exact, *.suffix and prefix.* names, trailing dot ignored; checked on TLS only; plain listeners serve tcp routes, ssl ones tls/tls_passthrough', () => {
  const m = matcher([
    route('exact', { protocols: ['tls'], snis: ['a.example.com.'] }),
    route('suffix', { protocols: ['tls'], snis: ['*.example.org'] }),
    route('prefix', { protocols: ['tls_passthrough'], snis: ['pass.*'] }),
    route('tcp-or-tls', { protocols: ['tcp', 'tls'], snis: ['mixed.test'] }),
  ]);
  assert.equal(m({ kind: 'tls', sni: 'a.example.com' }), 'exact');
  assert.equal(m({ kind: 'tls', sni: 'x.y.example.org' }), 'suffix');
  assert.equal(m({ kind: 'tls', sni: 'example.org' }), null);
  assert.equal(m({ kind: 'tls', sni: 'pass.example.net' }), 'prefix');
  assert.equal(m({ kind: 'tls', sni: null }), null);
  // On a plain connection there is no SNI to check (Kong ignores snis there): only tcp routes.
  assert.equal(m({ kind: 'tcp' }), 'tcp-or-tls');
  const r = new StreamRouter([route('prefix', { protocols: ['tls_passthrough'], snis: ['pass.*'] })], new Map([[svc.id, svc]]));
  assert.equal(r.match(facts({ kind: 'tls', sni: 'pass.x' }))?.passthrough, true);
});

test('routes of a disabled service and non-stream routes are left out; a route without a service matches with service null', () => {
  const off = { ...svc, id: 'off', enabled: false };
  const m = matcher([
    route('disabled', { service: { id: 'off' }, destinations: [{ port: 9000 }] }),
    route('http', { protocols: ['http'], paths: ['/'] }),
    route('no-service', { service: null, destinations: [{ port: 9000 }] }),
  ], [svc, off]);
  assert.equal(m({}), 'no-service');
  const r = new StreamRouter([route('no-service', { service: null, destinations: [{ port: 9000 }] })], new Map());
  assert.equal(r.match(facts({}))?.service, null);
});
