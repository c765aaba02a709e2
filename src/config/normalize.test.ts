import { test } from 'node:test';
import assert from 'node:assert/strict';
import { entityInputSchemas, normalizeEntity, scopeAllowed } from './index.ts';
import type { EntityRef, RefKind } from './index.ts';
import { testRegistry } from './testkit.ts';

const registry = testRegistry();
const now = 1_700_000_000_000;
const sid = '0b6b6d55-57a4-4f4e-8c7e-8e0a4f0b1f2c';

test('a service from Admin API input gets a random v4 id, timestamps and defaults', () => {
  const res = normalizeEntity('services', { name: 'svc', url: 'https://up.example/api' }, { registry, now });
  assert.ok(res.ok);
  assert.match(res.value.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(res.value.created_at, 1_700_000_000);
  assert.equal(res.value.updated_at, 1_700_000_000);
  assert.deepEqual([res.value.protocol, res.value.host, res.value.port, res.value.path], ['https', 'up.example', 443, '/api']);
  const other = normalizeEntity('services', { host: 'h' }, { registry, now });
  assert.ok(other.ok);
  assert.notEqual(other.value.id, res.value.id);
  assert.equal(other.value.name, null);
  assert.equal(other.value.path, null);
  // `http://a` has no path, `http://a/` has "/", as in Kong.
  const slash = normalizeEntity('services', { url: 'http://a/' }, { registry, now });
  assert.ok(slash.ok);
  assert.equal(slash.value.path, '/');
});

test('issues are relative to the entity and all reported at once', () => {
  const res = normalizeEntity('routes', { paths: ['x'], methods: ['get'], extra: 1, service: 'by-name' }, { registry, now });
  assert.equal(res.ok, false);
  if (res.ok) return;
  const lines = res.issues.map((i) => `${i.path}: ${i.message}`);
  assert.ok(lines.includes('extra: unknown field'), lines.join('\n'));
  assert.ok(lines.some((l) => l.startsWith('paths[0]: should start with: / (fixed path) or ~/ (regex path)')));
  assert.ok(lines.some((l) => l.startsWith("methods[0]: invalid method 'get'")));
  assert.ok(lines.some((l) => l.startsWith("service: a reference by name ('by-name') cannot be resolved here")));
  assert.equal(normalizeEntity('routes', 'nope', { registry, now }).ok, false);
});

test('foreign keys: {id} is taken as is without a resolver; names go through the resolver', () => {
  const direct = normalizeEntity('routes', { paths: ['/'], service: { id: sid } }, { registry, now });
  assert.ok(direct.ok);
  assert.deepEqual(direct.value.service, { id: sid });
  const asked: Array<[RefKind, EntityRef]> = [];
  const resolve = (kind: RefKind, ref: EntityRef) => {
    asked.push([kind, ref]);
    return ref.name === 'svc' ? sid : null;
  };
  const byName = normalizeEntity('plugins', { name: 'tiny', service: { name: 'svc' } }, { registry, now, resolve });
  assert.ok(byName.ok);
  assert.deepEqual(byName.value.service, { id: sid });
  assert.deepEqual(asked, [['services', { name: 'svc' }]]);
  const missing = normalizeEntity('plugins', { name: 'tiny', consumer: 'ghost' }, { registry, now, resolve });
  assert.equal(missing.ok, false);
  if (!missing.ok) assert.deepEqual(missing.issues, [{ path: 'consumer', message: "no consumer named 'ghost'" }]);
  const badId = normalizeEntity('routes', { paths: ['/'], service: { id: 'not-a-uuid' } }, { registry, now });
  assert.equal(badId.ok, false);
  if (!badId.ok) assert.deepEqual(badId.issues, [{ path: 'service.id', message: 'expected a valid UUID' }]);
});

test('PATCH: partial input merged onto the existing entity; id and created_at kept', () => {
  const created = normalizeEntity('services', { name: 's', url: 'http://a:8080/x', retries: 2 }, { registry, now });
  assert.ok(created.ok);
  const later = now + 60_000;
  const patched = normalizeEntity('services', { read_timeout: 5000 }, { registry, now: later, existing: created.value, partial: true });
  assert.ok(patched.ok);
  assert.equal(patched.value.id, created.value.id);
  assert.equal(patched.value.created_at, created.value.created_at);
  assert.equal(patched.value.updated_at, Math.floor(later / 1000));
  assert.deepEqual([patched.value.host, patched.value.port, patched.value.retries, patched.value.read_timeout], ['a', 8080, 2, 5000]);
  // `url` in a PATCH replaces protocol/host/port/path instead of conflicting with them.
  const moved = normalizeEntity('services', { url: 'https://b' }, { registry, now: later, existing: created.value, partial: true });
  assert.ok(moved.ok);
  assert.deepEqual([moved.value.protocol, moved.value.host, moved.value.port, moved.value.path], ['https', 'b', 443, null]);
  const bad = normalizeEntity('services', { port: -1 }, { registry, now: later, existing: created.value, partial: true });
  assert.equal(bad.ok, false);
});

test('PATCH of a plugin merges config fields; PUT-style (no partial) re-defaults them', () => {
  const p = normalizeEntity('plugins', { name: 'tiny', config: { a: 'q', n: 7 } }, { registry, now });
  assert.ok(p.ok);
  const patched = normalizeEntity('plugins', { config: { n: 9 } }, { registry, now, existing: p.value, partial: true });
  assert.ok(patched.ok);
  assert.deepEqual(patched.value.config, { a: 'q', n: 9 });
  const put = normalizeEntity('plugins', { name: 'tiny', config: { n: 9 } }, { registry, now, existing: p.value });
  assert.ok(put.ok);
  assert.deepEqual(put.value.config, { a: 'x', n: 9 });
  assert.equal(put.value.id, p.value.id);
});

test('consumers and acls', () => {
  const c = normalizeEntity('consumers', { custom_id: 'c-1', tags: ['t'] }, { registry, now });
  assert.ok(c.ok);
  assert.equal(c.value.username, null);
  const none = normalizeEntity('consumers', { tags: ['t,u'] }, { registry, now });
  assert.equal(none.ok, false);
  if (!none.ok) {
    assert.deepEqual(none.issues.map((i) => i.path).sort(), ['', 'tags[0]']);
  }
  const acl = normalizeEntity('acls', { consumer: { id: c.value.id }, group: 'admins' }, { registry, now });
  assert.ok(acl.ok);
  assert.equal(acl.value.group, 'admins');
  const noGroup = normalizeEntity('acls', { consumer: { id: c.value.id } }, { registry, now });
  assert.equal(noGroup.ok, false);
  if (!noGroup.ok) assert.deepEqual(noGroup.issues, [{ path: 'group', message: 'required field missing' }]);
});

test('scope rules of plugin definitions', () => {
  assert.equal(scopeAllowed(undefined, 'consumer'), true);
  assert.equal(scopeAllowed({ consumer: false }, 'consumer'), false);
  assert.equal(scopeAllowed({ consumer: false }, 'global'), true);
  assert.equal(scopeAllowed({ route: true }, 'route'), true);
  assert.equal(scopeAllowed({ route: true }, 'service'), false);
});

test('entity input schemas are usable on their own (e.g. for JSON Schema in the Admin API)', () => {
  assert.equal(entityInputSchemas.routes.safeParse({ paths: ['/'] }).success, true);
  assert.equal(entityInputSchemas.routes.safeParse({ paths: ['/'], nope: 1 }).success, false);
  const parsed = entityInputSchemas.services.parse({ host: 'h' });
  assert.equal(parsed.retries, 5);
});

test('route protocols from different families cannot be mixed; header regexes must compile', () => {
  const res = normalizeEntity('routes', { protocols: ['http', 'grpc'], paths: ['/'], headers: { 'x-v': ['~*(a'] } }, { registry, now });
  assert.equal(res.ok, false);
  if (res.ok) return;
  const lines = res.issues.map((i) => `${i.path}: ${i.message}`);
  assert.ok(lines.includes("protocols: these sets are mutually exclusive: ('http', 'https'), ('grpc', 'grpcs')"), lines.join('\n'));
  assert.ok(lines.some((l) => l.startsWith("headers.x-v[0]: invalid regex '(a'")), lines.join('\n'));
  const ok = normalizeEntity('routes', { protocols: ['https'], headers: { 'X-V': '~*^v[12]$' } }, { registry, now });
  assert.ok(ok.ok);
  assert.deepEqual(ok.value.headers, { 'x-v': ['~*^v[12]$'] });
});

test('null plugin config fields mean "unset", as in Kong dumps', () => {
  const res = normalizeEntity('plugins', { name: 'tiny', config: { a: null, n: 4 } }, { registry, now });
  assert.ok(res.ok);
  assert.deepEqual(res.value.config, { a: 'x', n: 4 });
  const bad = normalizeEntity('plugins', { name: 'tiny', config: { a: null, n: 0 } }, { registry, now });
  assert.equal(bad.ok, false);
  if (!bad.ok) assert.deepEqual(bad.issues, [{ path: 'config.n', message: 'value should be at least 1' }]);
});

test("routes need a matching attribute; with https among the protocols (the default) 'snis' counts, as Kong's http subschema", () => {
  const msg = (input: Record<string, unknown>): string[] => {
    const res = normalizeEntity('routes', input, { registry, now });
    return res.ok ? [] : res.issues.map((i) => `${i.path}: ${i.message}`);
  };
  assert.deepEqual(msg({}), [": must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https'"]);
  assert.deepEqual(msg({ protocols: ['http'] }), [": must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' is 'http'"]);
  assert.deepEqual(msg({ snis: ['api.example.com'] }), []);
  assert.ok(msg({ protocols: ['http'], snis: ['api.example.com'] }).length > 0);
});

test("stream routes: Kong's stream subschema rules and messages; sources/destinations entries are IPs or CIDRs and/or ports", () => {
  const lines = (input: Record<string, unknown>) => {
    const res = normalizeEntity('routes', input, { registry, now });
    return res.ok ? [] : res.issues.map((i) => `${i.path}: ${i.message}`);
  };
  assert.deepEqual(lines({ protocols: ['tcp', 'tls'], sources: [{ ip: '10.0.0.0/8', port: 1234 }], destinations: [{ ip: '::1' }] }), []);
  assert.deepEqual(lines({ protocols: ['tls'], snis: ['*.example.com'] }), []);
  assert.deepEqual(lines({ protocols: ['tcp'] }), [": must set one of 'sources', 'destinations', 'snis' when 'protocols' is 'tcp', 'tls' or 'udp'"]);
  assert.deepEqual(lines({ protocols: ['tls_passthrough'], destinations: [{ port: 443 }] }), [": must set snis when 'protocols' is 'tls_passthrough'"]);
  assert.deepEqual(lines({ protocols: ['tcp'], destinations: [{ port: 80 }], paths: ['/a'], methods: ['GET'] }), [
    "methods: cannot set 'methods' when 'protocols' is 'tcp', 'tls', 'tls_passthrough' or 'udp'",
    "paths: cannot set 'paths' when 'protocols' is 'tcp', 'tls', 'tls_passthrough' or 'udp'",
  ]);
  assert.deepEqual(lines({ protocols: ['tcp'], destinations: [{ port: 80 }], hosts: ['a.test'], headers: { 'x-a': ['1'] } }), [
    "hosts: cannot set 'hosts' when 'protocols' is 'tcp', 'tls', 'tls_passthrough' or 'udp'",
    "headers: cannot set 'headers' when 'protocols' is 'tcp', 'tls', 'tls_passthrough' or 'udp'",
  ]);
  // snis only with tls / tls_passthrough (Kong's entity check).
  assert.ok(lines({ protocols: ['tcp'], snis: ['a.test'] }).includes(": 'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'"));
  // Kong's protocol families do not mix.
  assert.deepEqual(lines({ protocols: ['tcp', 'tls_passthrough'], snis: ['a.test'] }), ["protocols: these sets are mutually exclusive: ('tcp', 'tls', 'udp'), ('tls_passthrough')"]);
  assert.deepEqual(lines({ protocols: ['tcp'], sources: [{ ip: 'nope' }] }), ["sources[0].ip: invalid ip or cidr range: 'nope'"]);
  assert.deepEqual(lines({ protocols: ['tcp'], destinations: [{ ip: '10.0.0.0/33' }] }), ["destinations[0].ip: invalid ip or cidr range: '10.0.0.0/33'"]);
  assert.deepEqual(lines({ protocols: ['tcp'], sources: [{}] }), ["sources[0]: at least one of these fields must be non-empty: 'ip', 'port'"]);
  // Stream services: tcp (no upstream TLS fields) and tls (tls_verify, depth, CAs, client certificate), no path.
  const svc = (input: Record<string, unknown>) => {
    const res = normalizeEntity('services', input, { registry, now });
    return res.ok ? [] : res.issues.map((i) => `${i.path}: ${i.message}`);
  };
  assert.deepEqual(svc({ protocol: 'tls', host: 'h', port: 443, tls_verify: true, tls_verify_depth: 2, connect_timeout: 100, read_timeout: 100, write_timeout: 100, retries: 1 }), []);
  assert.deepEqual(svc({ protocol: 'tcp', host: 'h', port: 5432, tls_verify: true }), [": failed conditional validation given value of field 'protocol'", 'tls_verify: value must be null']);
  assert.deepEqual(svc({ url: 'tcp://h:5432/x' }), [": failed conditional validation given value of field 'protocol'", 'url: value must be null']);
});

test('fields nothing applies yet are refused by name: http routes with sources/destinations, stream routes; gRPC rules; upstream TLS fields only on TLS services', () => {
  const lines = (entity: 'routes' | 'services', input: Record<string, unknown>) => {
    const res = normalizeEntity(entity, input, { registry, now });
    return res.ok ? [] : res.issues.map((i) => `${i.path}: ${i.message}`);
  };
  assert.deepEqual(lines('routes', { paths: ['/'], sources: [{ ip: '10.0.0.1' }] }), ["sources: cannot set 'sources' when 'protocols' is 'http' or 'https'"]);
  assert.deepEqual(lines('routes', { paths: ['/'], protocols: ['ws'], destinations: [{ port: 80 }] }), ["destinations: cannot set 'destinations' when 'protocols' is 'ws' or 'wss'"]);
  assert.deepEqual(lines('routes', { paths: ['/'], sources: null, destinations: [] }), []);
  // Stream routes are served (src/stream/); udp is refused by name.
  assert.deepEqual(lines('routes', { protocols: ['tcp'], destinations: [{ port: 80 }] }), []);
  assert.deepEqual(lines('routes', { protocols: ['tls_passthrough'], snis: ['a.test'] }), []);
  assert.deepEqual(lines('routes', { protocols: ['udp'], sources: [{ ip: '10.0.0.1' }] }), ["protocols: 'udp' is not supported: stream routes proxy TCP only ('tcp', 'tls', 'tls_passthrough')"]);
  // A udp service could only be reached by a tcp route, over TCP: refused by name too.
  assert.deepEqual(lines('services', { protocol: 'udp', host: 'dns.test', port: 53 }), ["protocol: 'udp' is not supported: stream services are proxied over TCP ('tcp' or 'tls')"]);
  assert.deepEqual(lines('services', { url: 'udp://dns.test:53' }), ["url: 'udp' is not supported: stream services are proxied over TCP ('tcp' or 'tls')"]);
  assert.deepEqual(lines('services', { protocol: 'tcp', host: 'db.test', port: 5432 }), []);
  // gRPC routes are served (proxy/grpc.ts): Kong's grpc subschema rules apply.
  assert.deepEqual(lines('routes', { protocols: ['grpc', 'grpcs'], paths: ['/'] }), []);
  assert.deepEqual(lines('routes', { protocols: ['grpc'], paths: ['/'], strip_path: true }), ["strip_path: cannot set 'strip_path' when 'protocols' is 'grpc' or 'grpcs'"]);
  assert.deepEqual(lines('routes', { protocols: ['grpc'], paths: ['/'], methods: ['POST'] }), ["methods: cannot set 'methods' when 'protocols' is 'grpc' or 'grpcs'"]);
  // tls_verify_depth is applied to upstream TLS; like Kong it is refused on a service without TLS.
  assert.deepEqual(lines('services', { host: 'h', tls_verify_depth: 2 }), [": failed conditional validation given value of field 'protocol'", 'tls_verify_depth: value must be null']);
  assert.deepEqual(lines('services', { host: 'h', protocol: 'https', tls_verify_depth: 2 }), []);
  assert.deepEqual(lines('services', { host: 'h', tls_verify_depth: null }), []);
});
