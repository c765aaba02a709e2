import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../errors.ts';
import { parseDeclarative, toDeclarative } from './index.ts';
import type { ConfigData } from './index.ts';
import { testRegistry } from './testkit.ts';
import { createRegistry } from '../plugins/registry.ts';
import cors from '../plugins/bundled/cors/index.ts';

const registry = testRegistry();
const now = 1_700_000_000_000;

function parse(text: string, env: NodeJS.ProcessEnv = {}): ConfigData {
  return parseDeclarative(text, { registry, env, now });
}

/** Every issue as a `path: message` line (fails the test if the text is valid). */
function issuesOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parse(text, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.format().split('\n');
  }
  assert.fail('expected the config to be rejected');
}

/** Assert that some issue line starts with `prefix`. */
function hasIssue(lines: string[], prefix: string): void {
  assert.ok(lines.some((l) => l.startsWith(prefix)), `no issue starting with ${JSON.stringify(prefix)} in:\n${lines.join('\n')}`);
}

const howTo = `
_format_version: "3.0"
_info: { select_tags: [demo] }
_transform: true
services:
  - name: example-service
    url: http://httpbin.konghq.com/anything
    routes:
      - name: example-route
        paths: [/anything]
consumers:
  - username: alex
    acls:
      - group: admins
plugins:
  - name: tiny
    service: example-service
    config: { a: hello }
`;

test('a typical decK file loads with defaults filled', () => {
  const data = parse(howTo);
  assert.equal(data.services.length, 1);
  const s = data.services[0]!;
  assert.deepEqual(
    { protocol: s.protocol, host: s.host, port: s.port, path: s.path, retries: s.retries, ct: s.connect_timeout, rt: s.read_timeout, wt: s.write_timeout, enabled: s.enabled },
    { protocol: 'http', host: 'httpbin.konghq.com', port: 80, path: '/anything', retries: 5, ct: 60000, rt: 60000, wt: 60000, enabled: true },
  );
  assert.equal(s.created_at, 1_700_000_000);
  const r = data.routes[0]!;
  assert.deepEqual(r.service, { id: s.id });
  assert.equal(r.strip_path, true);
  assert.equal(r.preserve_host, false);
  assert.equal(r.path_handling, 'v0');
  assert.equal(r.regex_priority, 0);
  assert.deepEqual(r.protocols, ['http', 'https']);
  const p = data.plugins[0]!;
  assert.deepEqual(p.service, { id: s.id });
  assert.equal(p.route, null);
  assert.deepEqual(p.config, { a: 'hello', n: 3 });
  assert.equal(data.acls[0]!.group, 'admins');
  assert.deepEqual(data.acls[0]!.consumer, { id: data.consumers[0]!.id });
});

test('JSON input is accepted too', () => {
  const json = JSON.stringify({
    _format_version: '3.0',
    services: [{ name: 's', protocol: 'https', host: 'api.example.com', routes: [{ name: 'r', hosts: ['*.example.com'], methods: ['GET'] }] }],
    routes: [{ name: 'top', service: 's', paths: ['~/v[0-9]+/items$'], headers: { 'X-Version': 'v2' } }],
  });
  const data = parse(json);
  assert.equal(data.services[0]!.port, 80, 'Kong: a port left out is 80 whatever the protocol');
  assert.equal(data.routes.length, 2);
  assert.deepEqual(data.routes[1]!.service, { id: data.services[0]!.id });
  assert.deepEqual(data.routes[1]!.headers, { 'x-version': ['v2'] });
});

test('nested plugins get their parent scope; route-nested plugins are route-scoped only', () => {
  const data = parse(`
_format_version: "3.0"
services:
  - name: s
    host: upstream
    plugins: [{ name: tiny }]
    routes:
      - name: r
        paths: [/]
        plugins: [{ name: route-only }]
consumers:
  - username: u
    plugins: [{ name: tiny, config: { a: c } }]
plugins:
  - name: tiny
    route: r
  - name: no-consumer
`);
  const [onService, onRoute, onConsumer, topRoute, global] = data.plugins;
  assert.deepEqual([onService!.service?.id, onService!.route], [data.services[0]!.id, null]);
  assert.deepEqual([onRoute!.route?.id, onRoute!.service], [data.routes[0]!.id, null]);
  assert.deepEqual(onConsumer!.consumer, { id: data.consumers[0]!.id });
  assert.deepEqual(topRoute!.route, { id: data.routes[0]!.id });
  assert.deepEqual([global!.route, global!.service, global!.consumer], [null, null, null]);
});

test('service rules: url xor parts, host required, port and timeout ranges, path', () => {
  const lines = issuesOf(`
_format_version: "3.0"
services:
  - name: a
    url: http://x.example/p
    host: other
  - name: b
    port: 80
  - name: c
    host: h
    port: 70000
    connect_timeout: 0
    read_timeout: 2147483647
    write_timeout: 2147483646
  - name: d
    host: "bad host"
    path: nope
  - name: e
    url: "ftp://x"
`);
  hasIssue(lines, "services[0].url: cannot be set together with 'host'");
  hasIssue(lines, 'services[1].host: required field missing');
  hasIssue(lines, 'services[2].port: value should be between 0 and 65535');
  hasIssue(lines, 'services[2].connect_timeout: value should be between 1 and 2147483646');
  hasIssue(lines, 'services[2].read_timeout: value should be between 1 and 2147483646');
  assert.ok(!lines.some((l) => l.startsWith('services[2].write_timeout')));
  hasIssue(lines, "services[3].host: invalid hostname: 'bad host'");
  hasIssue(lines, 'services[3].path: must start with "/"');
  hasIssue(lines, "services[4].url: unsupported protocol 'ftp'");
});

test('route rules, each reported at its exact path', () => {
  const lines = issuesOf(`
_format_version: "3.0"
services:
  - name: s
    host: h
    routes:
      - name: ok
        paths: [/ok]
      - name: bad
        paths: [nope, "~/a(b"]
        methods: [get, POST]
        hosts: ["a.*.com", "*.example.com", "x..y"]
        path_handling: v2
        regex_priority: 1.5
        strip_path: "yes"
        headers: { host: [a] }
      - name: empty
routes:
  - name: no-service
    service: ghost
    paths: [/x]
`);
  hasIssue(lines, 'services[0].routes[1].paths[0]: should start with: / (fixed path) or ~/ (regex path)');
  hasIssue(lines, "services[0].routes[1].paths[1]: invalid regex '/a(b'");
  hasIssue(lines, "services[0].routes[1].methods[0]: invalid method 'get'");
  assert.ok(!lines.some((l) => l.startsWith('services[0].routes[1].methods[1]')));
  hasIssue(lines, "services[0].routes[1].hosts[0]: invalid wildcard: must be placed at leftmost or rightmost label");
  hasIssue(lines, "services[0].routes[1].hosts[2]: invalid hostname: 'x..y'");
  assert.ok(!lines.some((l) => l.startsWith('services[0].routes[1].hosts[1]')));
  hasIssue(lines, 'services[0].routes[1].path_handling: expected one of: v0, v1');
  hasIssue(lines, 'services[0].routes[1].regex_priority: expected an integer');
  hasIssue(lines, 'services[0].routes[1].strip_path: expected a boolean');
  hasIssue(lines, "services[0].routes[1].headers.host: cannot contain 'host' header");
  // Kong (routes.lua): protocols containing https (the default [http, https] does) → the https rule, snis included.
  hasIssue(lines, "services[0].routes[2]: must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https'");
  hasIssue(lines, "routes[0].service: no service named 'ghost'");
});

test('unknown fields, unsupported kinds and ignored decK keys', () => {
  const lines = issuesOf(`
_format_version: "3.0"
_workspace: default
_info: { defaults: {} }
vaults: [{ name: u }]
colour: blue
services:
  - name: s
    host: h
    colour: red
    routes:
      - name: r
        paths: [/]
        service: s
consumers:
  - username: u
    keyauth_credentials: [{ key: k }]
`);
  hasIssue(lines, "vaults: 'vaults' is not supported yet");
  hasIssue(lines, 'colour: unknown field');
  hasIssue(lines, 'services[0].colour: unknown field');
  hasIssue(lines, 'services[0].routes[0].service: not allowed in a nested entity');
  // Credentials are entities now (issue 16): nested under a consumer they load without an issue.
  assert.ok(!lines.some((l) => l.startsWith('consumers[0]')), lines.join('\n'));
  assert.ok(!lines.some((l) => l.startsWith('_workspace') || l.startsWith('_info')));
});

test('_format_version is required and must be "3.0" (or Kong\'s older "1.1"/"2.1", migrated)', () => {
  hasIssue(issuesOf('services: []'), '_format_version: required field missing');
  hasIssue(issuesOf('_format_version: "2.2"'), '_format_version: unsupported format version "2.2"');
  assert.deepEqual(issuesOf('- just a list'), ['expected a mapping (object) at the top level']);
  hasIssue(issuesOf('_format_version: "3.0"\nservices: [ {'), 'line ');
});

test('names are unique per entity kind; references resolve by name or id', () => {
  const lines = issuesOf(`
_format_version: "3.0"
services:
  - { name: x, host: a }
  - { name: y, host: b }
  - { name: x, host: c, port: 99999 }
routes:
  - { name: r, service: x, paths: [/a] }
  - { name: r, service: { name: y }, paths: [/b] }
  - { name: r3, service: { id: 9b7a3c4e-0000-4000-8000-000000000000 }, paths: [/c] }
consumers:
  - { username: alex }
  - { username: alex, custom_id: c1 }
  - { custom_id: c1 }
  - { tags: [t] }
plugins:
  - { name: tiny, service: nope }
  - { name: tiny, route: nope }
  - { name: tiny, consumer: nobody }
`);
  hasIssue(lines, "services[2].name: duplicate name 'x'");
  hasIssue(lines, "services[2].port: value should be between 0 and 65535");
  hasIssue(lines, "routes[1].name: duplicate name 'r'");
  hasIssue(lines, "routes[2].service: no service with id '9b7a3c4e-0000-4000-8000-000000000000'");
  hasIssue(lines, "consumers[1].username: duplicate username 'alex'");
  hasIssue(lines, "consumers[2].custom_id: duplicate custom_id 'c1'");
  hasIssue(lines, "consumers[3]: at least one of these fields must be non-empty: 'custom_id', 'username'");
  hasIssue(lines, "plugins[0].service: no service named 'nope'");
  hasIssue(lines, "plugins[1].route: no route named 'nope'");
  hasIssue(lines, "plugins[2].consumer: no consumer named 'nobody'");
  assert.equal(lines.length, 10, lines.join('\n'));
});

test('plugin configs are checked by the plugin schema; scopes and one-per-scope enforced', () => {
  const lines = issuesOf(`
_format_version: "3.0"
services:
  - name: s
    host: h
    routes: [{ name: r, paths: [/] }]
    plugins:
      - name: tiny
        config: { a: 1, n: 0, extra: true }
      - name: route-only
consumers:
  - username: u
    plugins: [{ name: no-consumer }]
plugins:
  - name: tiny
    service: s
  - name: missing-plugin
  - name: route-only
  - name: route-only
    route: r
  - name: route-only
    route: r
`);
  hasIssue(lines, 'services[0].plugins[0].config.a: expected a string');
  hasIssue(lines, 'services[0].plugins[0].config.n: value should be at least 1');
  hasIssue(lines, 'services[0].plugins[0].config.extra: unknown field');
  hasIssue(lines, "services[0].plugins[1].service: plugin 'route-only' cannot be applied to a service");
  hasIssue(lines, "consumers[0].plugins[0].consumer: plugin 'no-consumer' cannot be applied to a consumer");
  hasIssue(lines, "plugins[1].name: plugin 'missing-plugin' not enabled");
  hasIssue(lines, "plugins[2]: plugin 'route-only' cannot be applied globally");
  hasIssue(lines, 'plugins[4]: duplicate plugin');
  assert.ok(!lines.some((l) => l.startsWith('plugins[3]')), lines.join('\n'));
  // plugins[0] duplicates services[0].plugins[0] only if that one were valid: it is not, so no report.
  assert.ok(!lines.some((l) => l.startsWith('plugins[0]')), lines.join('\n'));
});

test('the same file always yields the same ids; given ids are kept', () => {
  const a = parse(howTo);
  const b = parseDeclarative(howTo, { registry, env: {}, now: now + 5000 });
  assert.deepEqual(a.services.map((s) => s.id), b.services.map((s) => s.id));
  assert.deepEqual(a.routes.map((s) => s.id), b.routes.map((s) => s.id));
  assert.deepEqual(a.plugins.map((s) => s.id), b.plugins.map((s) => s.id));
  assert.deepEqual(a.acls.map((s) => s.id), b.acls.map((s) => s.id));
  assert.match(a.services[0]!.id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const given = parse(`
_format_version: "3.0"
services: [{ id: 0b6b6d55-57a4-4f4e-8c7e-8e0a4f0b1f2c, name: s, host: h }]
plugins: [{ name: tiny, service: 0b6b6d55-57a4-4f4e-8c7e-8e0a4f0b1f2c }]
`);
  assert.equal(given.services[0]!.id, '0b6b6d55-57a4-4f4e-8c7e-8e0a4f0b1f2c');
  assert.deepEqual(given.plugins[0]!.service, { id: '0b6b6d55-57a4-4f4e-8c7e-8e0a4f0b1f2c' });
  // Different names → different ids.
  const other = parse(howTo.replace('example-service', 'other-service').replace('service: example-service', 'service: other-service'));
  assert.notEqual(other.services[0]!.id, a.services[0]!.id);
});

function byId<T extends { id: string }>(xs: T[]): T[] {
  return [...xs].sort((x, y) => x.id.localeCompare(y.id));
}

function canonical(d: ConfigData) {
  return { services: byId(d.services), routes: byId(d.routes), consumers: byId(d.consumers), plugins: byId(d.plugins), acls: byId(d.acls) };
}

test('toDeclarative round trip: parse → dump → parse gives equal data', () => {
  const text = `
_format_version: "3.0"
services:
  - name: s1
    url: https://api.example.com:8443/base
    tags: [a, b]
    routes:
      - name: r1
        paths: [/one, "~/two/[0-9]+$"]
        methods: [GET]
  - host: unnamed.example
    routes:
      - hosts: [a.example.com]
routes:
  - name: loose
    paths: [/loose]
  - name: r2
    service: s1
    paths: [/r2]
    headers: { X-A: [b] }
consumers:
  - username: alex
    acls: [{ group: g1 }, { group: g2 }]
  - custom_id: only-custom
    plugins: [{ name: tiny }]
acls:
  - { consumer: alex, group: g3 }
plugins:
  - name: tiny
    route: r2
    config: { a: z }
  - name: tiny
    instance_name: second
    service: s1
  - id: 3f1e8d7c-2b1a-4c5d-9e8f-7a6b5c4d3e2f
    name: no-consumer
`;
  const a = parse(text);
  const dumped = toDeclarative(a);
  assert.equal(dumped._format_version, '3.0');
  const services = dumped.services as Array<Record<string, unknown>>;
  assert.equal(services[0]!.id, undefined, 'derivable ids are left out');
  assert.equal(services[0]!.created_at, undefined);
  assert.equal((services[0]!.routes as unknown[]).length, 2, 'r2 is nested under s1');
  const plugins = dumped.plugins as Array<Record<string, unknown>>;
  assert.equal(plugins.find((p) => p.instance_name === 'second')?.service, 's1');
  assert.equal(plugins.find((p) => p.name === 'no-consumer')?.id, '3f1e8d7c-2b1a-4c5d-9e8f-7a6b5c4d3e2f');
  const b = parse(JSON.stringify(dumped));
  assert.deepEqual(canonical(b), canonical(a));
});

test('vault references are resolved from the environment', () => {
  const data = parse(
    `
_format_version: "3.0"
services:
  - name: s
    host: "{vault://env/upstream-host}"
plugins:
  - name: tiny
    config: { a: "{vault://env/TINY_A}" }
`,
    { UPSTREAM_HOST: 'backend.internal', TINY_A: 'from-env' },
  );
  assert.equal(data.services[0]!.host, 'backend.internal');
  assert.equal(data.plugins[0]!.config.a, 'from-env');
  const lines = issuesOf(
    `
_format_version: "3.0"
plugins:
  - name: tiny
    config: { a: "{vault://env/missing-var}" }
  - name: tiny
    service: "{vault://aws/x}"
services:
  - name: s
    host: "{vault://env/NO_SUCH_HOST}"
`,
    {},
  );
  assert.equal(lines.length, 3, lines.join('\n'));
  hasIssue(lines, "services[0].host: environment variable 'NO_SUCH_HOST'");
  hasIssue(lines, "plugins[0].config.a: environment variable 'MISSING_VAR' referenced by the vault reference is not set");
  hasIssue(lines, "plugins[1].service: vault 'aws' is not supported yet");
});

test('decK ${{ env "DECK_X" }} placeholders are substituted; missing ones reported by line', () => {
  const text = '_format_version: "3.0"\nservices:\n  - name: s\n    url: ${{ env "DECK_URL" }}\n    routes: [{ name: r, paths: ["${{env "DECK_PATH"}}"] }]\n';
  const data = parse(text, { DECK_URL: 'http://up.example:81/x', DECK_PATH: '/p' });
  assert.equal(data.services[0]!.port, 81);
  assert.deepEqual(data.routes[0]!.paths, ['/p']);
  const lines = issuesOf(text, { DECK_URL: 'http://a' });
  assert.deepEqual(lines, ["line 5: environment variable 'DECK_PATH' is not set"]);
  hasIssue(issuesOf('_format_version: "3.0"\nx: ${{ env "HOME" }}\n', { HOME: '/root' }), "line 2: environment variable 'HOME' must be prefixed with 'DECK_'");
});

test('issues come in document order', () => {
  const lines = issuesOf(`
_format_version: "3.0"
plugins:
  - { name: nope }
services:
  - { name: a, host: h, foo: 1 }
  - { name: a, port: 1 }
`);
  assert.deepEqual(lines, [
    "plugins[0].name: plugin 'nope' not enabled; add it to the 'plugins' configuration property",
    'services[0].foo: unknown field',
    'services[1].host: required field missing',
    "services[1].name: duplicate name 'a' (first defined at services[0])",
  ]);
});

test("a route's snis follow Kong's rules in a declarative file too (https family only; wildcard_host)", () => {
  const lines = issuesOf(`
_format_version: "3.0"
routes:
  - name: http-only
    protocols: [http]
    paths: [/a]
    snis: [a.example.com]
  - name: bad-sni
    protocols: [https]
    snis: ["a.*.example.com"]
`);
  hasIssue(lines, "routes[0]: 'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'");
  hasIssue(lines, 'routes[0].snis: length must be 0');
  hasIssue(lines, 'routes[1].snis[0]: wildcard must be leftmost or rightmost character');
});

test("an upstream's hash_on/hash_fallback follow Kong's entity checks in a declarative file too", () => {
  const lines = issuesOf(`
_format_version: "3.0"
upstreams:
  - name: needs-header
    hash_on: header
  - name: same-fallback
    hash_on: consumer
    hash_fallback: consumer
  - name: host-header
    hash_on: header
    hash_on_header: Host
`);
  hasIssue(lines, "upstreams[0]: failed conditional validation given value of field 'hash_on'");
  hasIssue(lines, 'upstreams[0].hash_on_header: required field missing');
  hasIssue(lines, 'upstreams[1].hash_fallback: expected one of: none, ip, header, cookie, path, query_arg, uri_capture');
  assert.ok(!lines.some((l) => l.startsWith('upstreams[2]')), lines.join('\n'));
});

test("a plugin's own protocols set (Kong's protocols_http) is checked in a declarative file too", () => {
  const text = `
_format_version: "3.0"
plugins:
  - name: cors
    protocols: [http, udp]
`;
  try {
    parseDeclarative(text, { registry: createRegistry([cors]), env: {}, now });
    assert.fail('expected the config to be rejected');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.format(), /plugins\[0\]\.protocols\[1\]: expected one of: grpc, grpcs, http, https, ws, wss/);
  }
});

test('targets in a declarative file are stored as Kong stores them (IPv6 expanded, names as written)', () => {
  const data = parse(`
_format_version: "3.0"
upstreams:
  - name: v6
    targets:
      - target: "::1"
      - target: Backend.Internal:81
`);
  assert.deepEqual(data.targets.map((t) => t.target), ['[0000:0000:0000:0000:0000:0000:0000:0001]:8000', 'Backend.Internal:81']);
});
