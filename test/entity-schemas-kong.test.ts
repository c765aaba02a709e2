/**
 * The core entities against Kong's entity schemas (kong/db/schema/entities/*.lua): what
 * GET /schemas/{entity} declares (decK and Kong Manager fill defaults from it, so a default shown
 * there must be what a created entity reads back), and Kong's entity checks with Kong's error
 * shape (400, code 2, `@entity` for entity-level messages). Admin API writes on SQLite.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type TestGateway, adminJson } from './helpers/gateway.ts';

type Fields = Array<Record<string, Record<string, unknown>>>;

describe('core entities as Kong declares them', () => {
  let gw: TestGateway;
  const call = (method: string, path: string, body?: unknown) => adminJson(gw.adminUrl, method, path, body);
  const field = (fields: Fields, name: string) => fields.find((f) => name in f)?.[name];

  before(async () => {
    gw = await startGateway({ database: 'sqlite' });
  });
  after(async () => {
    await gw.close();
  });

  test('services: protocol and port are required with defaults http and 80, host is required (as Kong\'s schema); a service created without them reads back those defaults', async () => {
    const schema = (await call('GET', '/schemas/services')).body.fields as Fields;
    assert.equal(field(schema, 'protocol')?.default, 'http');
    assert.equal(field(schema, 'protocol')?.required, true);
    assert.equal(field(schema, 'port')?.default, 80);
    assert.equal(field(schema, 'port')?.required, true);
    assert.equal(field(schema, 'host')?.required, true);
    const plain = await call('POST', '/services', { host: 'plain.test' });
    assert.equal(plain.status, 201);
    assert.equal(plain.body.protocol, 'http');
    assert.equal(plain.body.port, 80);
    // Kong: the port default does not follow the protocol (only `url` derives 443).
    const https = await call('POST', '/services', { host: 'secure.test', protocol: 'https' });
    assert.equal(https.status, 201);
    assert.equal(https.body.port, 80);
    const viaUrl = await call('POST', '/services', { url: 'https://url.test/api' });
    assert.equal(viaUrl.status, 201);
    assert.equal(viaUrl.body.port, 443);
    const missing = await call('POST', '/services', { protocol: 'http' });
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.body.fields, { host: 'required field missing' });
  });

  test('every top-level default GET /schemas/{entity} shows is what a created entity reads back', async () => {
    const svc = (await call('POST', '/services', { host: 'defaults.test' })).body;
    const up = (await call('POST', '/upstreams', { name: 'defaults-up' })).body;
    const created: Record<string, Record<string, unknown>> = {
      services: svc,
      routes: (await call('POST', '/routes', { paths: ['/defaults'] })).body,
      consumers: (await call('POST', '/consumers', { username: 'defaults' })).body,
      upstreams: up,
      targets: (await call('POST', `/upstreams/${up.id}/targets`, { target: '10.0.0.1:80' })).body,
      consumer_groups: (await call('POST', '/consumer_groups', { name: 'defaults-group' })).body,
      plugins: (await call('POST', '/plugins', { name: 'cors' })).body,
    };
    for (const [entity, row] of Object.entries(created)) {
      assert.ok(typeof row.id === 'string', `${entity} created: ${JSON.stringify(row)}`);
      const fields = (await call('GET', `/schemas/${entity}`)).body.fields as Fields;
      for (const f of fields) {
        const [name, def] = Object.entries(f)[0]!;
        if (def.default === undefined) continue;
        assert.deepEqual(row[name], def.default, `${entity}.${name}: schema default vs read back`);
      }
    }
  });

  test('routes: snis only with https, grpcs, tls or tls_passthrough (Kong\'s entity check and message)', async () => {
    const bad = await call('POST', '/routes', { protocols: ['http'], paths: ['/sni-http'], snis: ['a.example.com'] });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body, {
      code: 2,
      name: 'schema violation',
      message: "2 schema violations ('snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'; snis: length must be 0)",
      fields: { '@entity': ["'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'"], snis: 'length must be 0' },
    });
    assert.equal((await call('POST', '/routes', { protocols: ['http'], paths: ['/sni-empty'], snis: [] })).status, 201);
    const ok = await call('POST', '/routes', { protocols: ['http', 'https'], snis: ['a.example.com'] });
    assert.equal(ok.status, 201);
    // A PATCH that leaves only http behind is refused too.
    const patched = await call('PATCH', `/routes/${ok.body.id}`, { protocols: ['http'] });
    assert.equal(patched.status, 400);
    assert.equal(patched.body.fields.snis, 'length must be 0');
  });

  test('routes: each sni is Kong\'s wildcard_host (one wildcard, first or last character; no IP, no port)', async () => {
    for (const [sni, message] of [
      ['foo.*.test', 'wildcard must be leftmost or rightmost character'],
      ['foo*.test', 'wildcard must be leftmost or rightmost character'],
      ['*.example.*', 'only one wildcard must be specified'],
      ['192.0.2.1', 'must not be an IP'],
      ['a.example.com:8443', 'must not have a port'],
      ['bad_host!.test', 'invalid value: bad_host!.test'],
    ]) {
      const r = await call('POST', '/routes', { protocols: ['https'], snis: [sni] });
      assert.equal(r.status, 400, sni);
      assert.deepEqual(r.body.fields, { snis: [message] }, sni);
    }
    for (const sni of ['*.example.com', 'example.*', '*', 'plain.example.com']) {
      assert.equal((await call('POST', '/routes', { protocols: ['https'], snis: [sni] })).status, 201, sni);
    }
  });

  test('routes: Kong\'s messages for gRPC routes, host wildcards and paths', async () => {
    const strip = await call('POST', '/routes', { protocols: ['grpc'], paths: ['/pkg.Svc/M'], strip_path: true });
    assert.deepEqual(strip.body.fields, { strip_path: "cannot set 'strip_path' when 'protocols' is 'grpc' or 'grpcs'" });
    const none = await call('POST', '/routes', { protocols: ['grpcs'] });
    assert.deepEqual(none.body.fields, { '@entity': ["must set one of 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'grpcs'"] });
    const noneGrpc = await call('POST', '/routes', { protocols: ['grpc'] });
    assert.deepEqual(noneGrpc.body.fields, { '@entity': ["must set one of 'hosts', 'headers', 'paths' when 'protocols' is 'grpc'"] });
    const hosts = await call('POST', '/routes', { hosts: ['a.*.example.com', '*.*.example.com'] });
    assert.deepEqual(hosts.body.fields, { hosts: ['invalid wildcard: must be placed at leftmost or rightmost label', 'invalid wildcard: must have at most one wildcard'] });
    const paths = await call('POST', '/routes', { paths: ['no-slash'] });
    assert.deepEqual(paths.body.fields, { paths: ['should start with: / (fixed path) or ~/ (regex path)'] });
  });

  test('services: Kong\'s conditional checks (TLS fields only for TLS protocols, no path for grpc/stream) report the field and @entity', async () => {
    const tls = await call('POST', '/services', { host: 'plain-tls.test', tls_verify: true });
    assert.equal(tls.status, 400);
    assert.deepEqual(tls.body, {
      code: 2,
      name: 'schema violation',
      message: "2 schema violations (failed conditional validation given value of field 'protocol'; tls_verify: value must be null)",
      fields: { '@entity': ["failed conditional validation given value of field 'protocol'"], tls_verify: 'value must be null' },
    });
    const path = await call('POST', '/services', { host: 'grpc.test', protocol: 'grpc', path: '/x' });
    assert.equal(path.status, 400);
    assert.deepEqual(path.body.fields, { '@entity': ["failed conditional validation given value of field 'protocol'"], path: 'value must be null' });
    assert.equal((await call('POST', '/services', { host: 'tls-ok.test', protocol: 'https', tls_verify: true, tls_verify_depth: 2 })).status, 201);
  });

  test('upstreams: Kong\'s entity checks for hash_on/hash_fallback — the conditional on @entity, the reason on the field it constrains', async () => {
    const missing = await call('POST', '/upstreams', { name: 'hash-header', hash_on: 'header' });
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.body, {
      code: 2,
      name: 'schema violation',
      message: "2 schema violations (failed conditional validation given value of field 'hash_on'; hash_on_header: required field missing)",
      fields: { '@entity': ["failed conditional validation given value of field 'hash_on'"], hash_on_header: 'required field missing' },
    });
    for (const [body, fields] of [
      [{ hash_on: 'ip', hash_fallback: 'header' }, { '@entity': ["failed conditional validation given value of field 'hash_fallback'"], hash_fallback_header: 'required field missing' }],
      // The cookie is hash_on_cookie even for the fallback.
      [{ hash_on: 'ip', hash_fallback: 'cookie' }, { '@entity': ["failed conditional validation given value of field 'hash_fallback'"], hash_on_cookie: 'required field missing' }],
      [{ hash_on: 'consumer', hash_fallback: 'query_arg' }, { '@entity': ["failed conditional validation given value of field 'hash_fallback'"], hash_fallback_query_arg: 'required field missing' }],
      [{ hash_on: 'uri_capture' }, { '@entity': ["failed conditional validation given value of field 'hash_on'"], hash_on_uri_capture: 'required field missing' }],
      [{ hash_fallback: 'ip' }, { '@entity': ["failed conditional validation given value of field 'hash_on'"], hash_fallback: 'expected one of: none' }],
      [{ hash_on: 'cookie', hash_on_cookie: 'c', hash_fallback: 'ip' }, { '@entity': ["failed conditional validation given value of field 'hash_on'"], hash_fallback: 'expected one of: none' }],
      [{ hash_on: 'consumer', hash_fallback: 'consumer' }, { '@entity': ["failed conditional validation given value of field 'hash_on'"], hash_fallback: 'expected one of: none, ip, header, cookie, path, query_arg, uri_capture' }],
      [{ hash_on: 'path', hash_fallback: 'path' }, { '@entity': ["failed conditional validation given value of field 'hash_on'"], hash_fallback: 'expected one of: none, consumer, header, cookie, query_arg, ip, uri_capture' }],
      [{ hash_on: 'header', hash_on_header: 'X-A', hash_fallback: 'header', hash_fallback_header: 'X-A' }, { '@entity': ["values of these fields must be distinct: 'hash_on_header', 'hash_fallback_header'"] }],
      [{ hash_on: 'query_arg', hash_on_query_arg: 'q', hash_fallback: 'query_arg', hash_fallback_query_arg: 'q' }, { '@entity': ["values of these fields must be distinct: 'hash_on_query_arg', 'hash_fallback_query_arg'"] }],
    ] as [Record<string, unknown>, unknown][]) {
      const r = await call('POST', '/upstreams', { name: 'hash-checks', ...body });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.deepEqual(r.body.fields, fields, JSON.stringify(body));
    }
    // Kong compares the names as given: two spellings of one header are distinct to it.
    const spelled = await call('POST', '/upstreams', { name: 'hash-spelled', hash_on: 'header', hash_on_header: 'X-A', hash_fallback: 'header', hash_fallback_header: 'x-a' });
    assert.equal(spelled.status, 201);
    assert.equal(spelled.body.algorithm, 'consistent-hashing');
    // A PATCH is checked against the merged upstream.
    const patched = await call('PATCH', '/upstreams/hash-spelled', { hash_fallback: 'cookie' });
    assert.deepEqual(patched.body.fields, { '@entity': ["failed conditional validation given value of field 'hash_fallback'"], hash_on_cookie: 'required field missing' });
  });

  test('upstreams: algorithm and hash_on show Kong\'s defaults (round-robin, none) in GET /schemas/upstreams', async () => {
    const fields = (await call('GET', '/schemas/upstreams')).body.fields as Fields;
    assert.equal(field(fields, 'algorithm')?.default, 'round-robin');
    assert.equal(field(fields, 'hash_on')?.default, 'none');
    assert.equal(field(fields, 'hash_fallback')?.default, 'none');
    const up = await call('POST', '/upstreams', { name: 'schema-defaults' });
    assert.equal(up.body.algorithm, 'round-robin');
    assert.equal(up.body.hash_on, 'none');
  });

  test('upstreams: header names as Kong\'s header_name typedef (Host allowed; letters, digits, - and _), cookie names as Kong\'s token', async () => {
    const host = await call('POST', '/upstreams', { name: 'hash-host', hash_on: 'header', hash_on_header: 'Host', healthchecks: { active: { headers: { Host: ['probe.internal'] } } } });
    assert.equal(host.status, 201, JSON.stringify(host.body));
    assert.deepEqual(host.body.healthchecks.active.headers, { Host: ['probe.internal'] });
    const dotted = await call('POST', '/upstreams', { name: 'hash-dotted', hash_on: 'header', hash_on_header: 'x.user' });
    assert.equal(dotted.status, 400);
    assert.deepEqual(dotted.body.fields, { hash_on_header: "bad header name 'x.user', allowed characters are A-Z, a-z, 0-9, '_', and '-'" });
    const cookie = await call('POST', '/upstreams', { name: 'hash-cookie', hash_on: 'cookie', hash_on_cookie: 'a=b' });
    assert.equal(cookie.status, 400);
    assert.deepEqual(cookie.body.fields, { hash_on_cookie: 'contains one or more invalid characters. ASCII control characters (0-31;127), space, tab and the characters ()<>@,;:\\"/?={}[] are not allowed.' });
  });

  test('names (services, routes, plugin instance_name) are Kong\'s utf8_name: any non-ASCII character is accepted; Kong\'s message', async () => {
    const bad = await call('POST', '/services', { name: 'bad name!', host: 'named.test' });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body.fields, { name: "invalid value 'bad name!': the only accepted ascii characters are alphanumerics or ., -, _, and ~" });
    const route = await call('POST', '/routes', { name: 'a/b', paths: ['/utf8-name'] });
    assert.deepEqual(route.body.fields, { name: "invalid value 'a/b': the only accepted ascii characters are alphanumerics or ., -, _, and ~" });
    const svc = await call('POST', '/services', { name: 'café—☕', host: 'named.test' });
    assert.equal(svc.status, 201);
    const plugin = await call('POST', '/plugins', { name: 'cors', instance_name: 'cors→🙂', service: { id: svc.body.id } });
    assert.equal(plugin.status, 201, JSON.stringify(plugin.body));
    assert.equal(plugin.body.instance_name, 'cors→🙂');
    assert.equal((await call('DELETE', `/plugins/${plugin.body.id}`)).status, 204);
  });

  test('plugins: a plugin\'s own protocols set (Kong\'s protocols_http) narrows what protocols accepts, and GET /schemas/plugins/{name} offers only those', async () => {
    const svc = (await call('POST', '/services', { name: 'protocols-svc', host: 'protocols.test' })).body;
    const tcp = await call('POST', '/plugins', { name: 'cors', service: { id: svc.id }, protocols: ['http', 'tcp'] });
    assert.equal(tcp.status, 400);
    assert.deepEqual(tcp.body.fields, { protocols: [null, 'expected one of: grpc, grpcs, http, https, ws, wss'] });
    // A PATCH onto a stream protocol is refused too.
    const ok = await call('POST', '/plugins', { name: 'cors', service: { id: svc.id }, protocols: ['https'] });
    assert.equal(ok.status, 201);
    assert.deepEqual((await call('PATCH', `/plugins/${ok.body.id}`, { protocols: ['tls'] })).body.fields, { protocols: ['expected one of: grpc, grpcs, http, https, ws, wss'] });
    // Kong's prometheus takes every protocol (typedefs.protocols): stream sessions are recorded
    // in its stream families; udp (no udp route exists here) is refused.
    const promTcp = await call('POST', '/plugins', { name: 'prometheus', service: { id: svc.id }, protocols: ['tcp', 'tls'] });
    assert.equal(promTcp.status, 201);
    const promUdp = await call('POST', '/plugins', { name: 'prometheus', route: null, protocols: ['udp'] });
    assert.equal(promUdp.status, 400);
    assert.deepEqual(promUdp.body.fields, { protocols: ['expected one of: grpc, grpcs, http, https, ws, wss, tcp, tls, tls_passthrough'] });
    const cors = (await call('GET', '/schemas/plugins/cors')).body.fields as Fields;
    assert.deepEqual((field(cors, 'protocols')?.elements as Record<string, unknown>).one_of, ['grpc', 'grpcs', 'http', 'https', 'ws', 'wss']);
    const prometheus = (await call('GET', '/schemas/plugins/prometheus')).body.fields as Fields;
    assert.deepEqual((field(prometheus, 'protocols')?.elements as Record<string, unknown>).one_of, ['grpc', 'grpcs', 'http', 'https', 'ws', 'wss', 'tcp', 'tls', 'tls_passthrough']);
    // ip-restriction runs on stream connections too (its preread handler): Kong's default has tcp and tls.
    const ipr = (await call('GET', '/schemas/plugins/ip-restriction')).body.fields as Fields;
    assert.ok(((field(ipr, 'protocols')?.elements as Record<string, unknown>).one_of as string[]).includes('tcp'));
  });

  test('upstreams and targets: Kong\'s ranges with Kong\'s message (value should be between min and max)', async () => {
    const slots = await call('POST', '/upstreams', { name: 'ranges', slots: 5 });
    assert.deepEqual(slots.body.fields, { slots: 'value should be between 10 and 65536' });
    const hc = await call('POST', '/upstreams', { name: 'ranges', healthchecks: { threshold: 101, active: { concurrency: 0, healthy: { successes: 256, http_statuses: [99] } } } });
    assert.deepEqual(hc.body.fields, { healthchecks: {
      threshold: 'value should be between 0 and 100',
      active: { concurrency: 'value should be between 1 and 2147483648', healthy: { successes: 'value should be between 0 and 255', http_statuses: ['value should be between 100 and 999'] } },
    } });
    const up = (await call('POST', '/upstreams', { name: 'ranges' })).body;
    const weight = await call('POST', `/upstreams/${up.id}/targets`, { target: '10.0.0.1', weight: 65536 });
    assert.deepEqual(weight.body.fields, { weight: 'value should be between 0 and 65535' });
    const schema = (await call('GET', '/schemas/upstreams')).body.fields as Fields;
    assert.deepEqual(field(schema, 'slots')?.between, [10, 65536]);
  });

  test('upstreams: host_header and healthchecks.active.https_sni answer with Kong\'s typedef messages', async () => {
    for (const [value, message] of [
      ['a.test:99999', 'invalid port number'],
      ['bad_host!', 'invalid hostname: bad_host!'],
      ['300.1.1.1', 'invalid ipv4 address: 300.1.1.1'],
      ['[zz::1]:80', 'invalid ipv6 address: [zz::1]:80'],
    ]) {
      const r = await call('POST', '/upstreams', { name: 'host-header', host_header: value });
      assert.deepEqual(r.body.fields, { host_header: message }, value);
    }
    for (const value of ['a.test', 'a.test:8080', '10.0.0.1:80', '[::1]:8443', '::1']) {
      const r = await call('POST', '/upstreams', { name: 'host-header', host_header: value });
      assert.equal(r.status, 201, value);
      assert.equal((await call('DELETE', '/upstreams/host-header')).status, 204);
    }
    for (const [value, message] of [
      ['192.0.2.1', 'must not be an IP'],
      ['probe.test:443', 'must not have a port'],
      ['*.test', 'invalid value: *.test'],
    ]) {
      const r = await call('POST', '/upstreams', { name: 'sni-check', healthchecks: { active: { type: 'https', https_sni: value } } });
      assert.deepEqual(r.body.fields, { healthchecks: { active: { https_sni: message } } }, value);
    }
    assert.equal((await call('POST', '/upstreams', { name: 'sni-check', healthchecks: { active: { type: 'https', https_sni: 'probe.test' } } })).status, 201);
  });

  test('upstreams: healthchecks.active.http_path and hash_on_cookie_path are Kong\'s path typedef, with its messages', async () => {
    for (const [value, message] of [
      ['health', 'should start with: /'],
      ['/a//b', 'must not have empty segments'],
      ['/health?full=1', "invalid path: '/health?full=1' (characters outside of the reserved list of RFC 3986 found)"],
      ['/a%zz', "invalid url-encoded value: '%zz'"],
    ]) {
      const r = await call('POST', '/upstreams', { name: 'paths', healthchecks: { active: { http_path: value } }, hash_on_cookie_path: value });
      assert.deepEqual(r.body.fields, { hash_on_cookie_path: message, healthchecks: { active: { http_path: message } } }, value);
    }
    assert.equal((await call('POST', '/upstreams', { name: 'paths', healthchecks: { active: { http_path: '/status%20page;v=1' } } })).status, 201);
  });

  test('targets read back as Kong stores them: port 8000 when none, IPv6 fully expanded in brackets, a name as written', async () => {
    const up = (await call('POST', '/upstreams', { name: 'target-format' })).body;
    for (const [given, stored] of [
      ['::1', '[0000:0000:0000:0000:0000:0000:0000:0001]:8000'],
      ['[2001:DB8::7]:8443', '[2001:0db8:0000:0000:0000:0000:0000:0007]:8443'],
      ['API.Internal', 'API.Internal:8000'],
      ['10.0.0.9', '10.0.0.9:8000'],
    ]) {
      const r = await call('POST', `/upstreams/${up.id}/targets`, { target: given });
      assert.equal(r.status, 201, given);
      assert.equal(r.body.target, stored, given);
    }
    // The same address written another way is the same target.
    const again = await call('POST', `/upstreams/${up.id}/targets`, { target: '[0:0::1]:8000' });
    assert.equal(again.status, 409);
    const bad = await call('POST', `/upstreams/${up.id}/targets`, { target: 'a b' });
    assert.deepEqual(bad.body.fields, { target: "Invalid target ('a b'); not a valid hostname or ip address" });
  });

  test('tags: Kong\'s tag rule and message', async () => {
    const bad = await call('POST', '/consumers', { username: 'tagged', tags: ['ok', 'a/b'] });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body.fields, { tags: [null, "invalid tag 'a/b': expected printable ascii (except `,` and `/`) or valid utf-8 sequences"] });
    assert.equal((await call('POST', '/consumers', { username: 'tagged', tags: ['with space', 'ünïcode'] })).status, 201);
  });

  test('GET /schemas/{entity}: entity_checks as Kong\'s endpoint prints them (single-key form, Kong\'s order, functions dropped, ngx.null as null)', async () => {
    const checks = async (entity: string) => {
      const r = await call('GET', `/schemas/${entity}`);
      assert.equal(r.status, 200, entity);
      return r.body.entity_checks;
    };
    assert.deepEqual(await checks('consumers'), [{ at_least_one_of: ['custom_id', 'username'] }]);
    const unlessTls = (field: string) => ({ conditional: { if_field: 'protocol', if_match: { not_one_of: ['https', 'tls'] }, then_field: field, then_match: { eq: null } } });
    assert.deepEqual(await checks('services'), [
      { conditional: { if_field: 'protocol', if_match: { one_of: ['tcp', 'tls', 'udp', 'grpc', 'grpcs'] }, then_field: 'path', then_match: { eq: null } } },
      unlessTls('client_certificate'), unlessTls('tls_verify'), unlessTls('tls_verify_depth'), unlessTls('ca_certificates'),
    ]);
    // Kong's default router_flavor (traditional_compatible) adds the router's own check.
    assert.deepEqual(await checks('routes'), [
      { conditional: {
        if_field: 'protocols',
        if_match: { elements: { type: 'string', not_one_of: ['grpcs', 'https', 'tls', 'tls_passthrough'] } },
        then_field: 'snis',
        then_match: { len_eq: 0 },
        then_err: "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'",
      } },
      { custom_entity_check: { field_sources: ['path_handling'] } },
      { custom_entity_check: {
        field_sources: ['id', 'protocols', 'snis', 'sources', 'destinations', 'methods', 'hosts', 'paths', 'headers', 'expression', 'regex_priority', 'priority'],
        run_with_missing_fields: true,
      } },
    ]);
    const when = (if_field: string, value: string, then_field: string, then_match: unknown) => ({ conditional: { if_field, if_match: { match: `^${value}$` }, then_field, then_match } });
    assert.deepEqual(await checks('upstreams'), [
      when('hash_on', 'header', 'hash_on_header', { required: true }),
      when('hash_fallback', 'header', 'hash_fallback_header', { required: true }),
      when('hash_on', 'cookie', 'hash_on_cookie', { required: true }),
      when('hash_fallback', 'cookie', 'hash_on_cookie', { required: true }),
      when('hash_on', 'none', 'hash_fallback', { one_of: ['none'] }),
      when('hash_on', 'cookie', 'hash_fallback', { one_of: ['none'] }),
      when('hash_on', 'consumer', 'hash_fallback', { one_of: ['none', 'ip', 'header', 'cookie', 'path', 'query_arg', 'uri_capture'] }),
      when('hash_on', 'ip', 'hash_fallback', { one_of: ['none', 'consumer', 'header', 'cookie', 'path', 'query_arg', 'uri_capture'] }),
      when('hash_on', 'path', 'hash_fallback', { one_of: ['none', 'consumer', 'header', 'cookie', 'query_arg', 'ip', 'uri_capture'] }),
      { distinct: ['hash_on_header', 'hash_fallback_header'] },
      when('hash_on', 'query_arg', 'hash_on_query_arg', { required: true }),
      when('hash_fallback', 'query_arg', 'hash_fallback_query_arg', { required: true }),
      { distinct: ['hash_on_query_arg', 'hash_fallback_query_arg'] },
      when('hash_on', 'uri_capture', 'hash_on_uri_capture', { required: true }),
      when('hash_fallback', 'uri_capture', 'hash_fallback_uri_capture', { required: true }),
      { distinct: ['hash_on_uri_capture', 'hash_fallback_uri_capture'] },
    ]);
    assert.deepEqual(await checks('certificates'), [
      { mutually_required: ['cert_alt', 'key_alt'] },
      { custom_entity_check: { field_sources: ['cert', 'key'] } },
      { custom_entity_check: { field_sources: ['cert_alt', 'key_alt'] } },
      { custom_entity_check: { field_sources: ['cert', 'cert_alt'] } },
    ]);
    assert.deepEqual(await checks('ca_certificates'), [{ custom_entity_check: { field_sources: ['cert'] } }]);
    assert.deepEqual(await checks('jwt_secrets'), [{ conditional: {
      if_field: 'algorithm',
      if_match: { match_any: { patterns: ['^RS256$', '^RS384$', '^RS512$', '^PS256$', '^PS384$', '^PS512$', '^EdDSA$'] } },
      then_field: 'rsa_public_key',
      then_match: { required: true },
    } }]);
    // Kong declares none for these.
    for (const entity of ['targets', 'snis', 'plugins', 'acls', 'keyauth_credentials', 'basicauth_credentials', 'oauth2_credentials']) {
      assert.deepEqual(await checks(entity), [], entity);
    }
  });

  test('GET /schemas/{entity}: fields Kong declares `type = "set"` say set (tags everywhere, a route\'s protocols, methods, snis, sources, destinations, a plugin\'s protocols); Kong\'s arrays stay arrays', async () => {
    const fields = async (entity: string) => (await call('GET', `/schemas/${entity}`)).body.fields as Fields;
    const routes = await fields('routes');
    for (const name of ['protocols', 'methods', 'snis', 'sources', 'destinations', 'tags']) assert.equal(field(routes, name)?.type, 'set', `routes.${name}`);
    // Kong's `type = "array"` fields stay arrays.
    for (const name of ['hosts', 'paths']) assert.equal(field(routes, name)?.type, 'array', `routes.${name}`);
    assert.equal(field(await fields('plugins'), 'protocols')?.type, 'set');
    assert.equal(field(await fields('services'), 'ca_certificates')?.type, 'array');
    for (const entity of ['services', 'consumers', 'upstreams', 'targets', 'certificates', 'ca_certificates', 'snis', 'plugins', 'acls', 'keyauth_credentials', 'jwt_secrets']) {
      assert.equal(field(await fields(entity), 'tags')?.type, 'set', `${entity}.tags`);
    }
  });

  const pluginSchema = async (name: string) => {
    const r = await call('GET', `/schemas/plugins/${name}`);
    assert.equal(r.status, 200, name);
    return r.body as { fields: unknown; entity_checks: unknown };
  };

  test('GET /schemas/plugins/{name}: the plugin schema\'s own entity_checks as Kong prints them, in Kong\'s order (acl, rate-limiting, jwt)', async () => {
    // kong/plugins/acl/schema.lua
    assert.deepEqual((await pluginSchema('acl')).entity_checks, [
      { only_one_of: ['config.allow', 'config.deny'] },
      { at_least_one_of: ['config.allow', 'config.deny'] },
    ]);
    // kong/plugins/rate-limiting/schema.lua
    const required = (if_field: string, eq: string, then_field: string) => ({ conditional: { if_field, if_match: { eq }, then_field, then_match: { required: true } } });
    assert.deepEqual((await pluginSchema('rate-limiting')).entity_checks, [
      { at_least_one_of: ['config.second', 'config.minute', 'config.hour', 'config.day', 'config.month', 'config.year'] },
      required('config.policy', 'redis', 'config.redis.host'),
      required('config.policy', 'redis', 'config.redis.port'),
      required('config.policy', 'redis', 'config.redis.timeout'),
      required('config.limit_by', 'header', 'config.header_name'),
      required('config.limit_by', 'path', 'config.path'),
    ]);
    // kong/plugins/jwt/schema.lua
    assert.deepEqual((await pluginSchema('jwt')).entity_checks, [{ conditional: {
      if_field: 'config.maximum_expiration', if_match: { gt: 0 }, then_field: 'config.claims_to_verify', then_match: { contains: 'exp' },
    } }]);
  });

  test('GET /schemas/plugins/{name}: entity_checks is [] where Kong\'s plugin schema declares none (oauth2\'s and opentelemetry\'s are inside config; openid-connect is Enterprise)', async () => {
    for (const name of ['key-auth', 'basic-auth', 'cors', 'correlation-id', 'http-log', 'file-log', 'prometheus', 'request-termination', 'oauth2', 'opentelemetry', 'openid-connect']) {
      assert.deepEqual((await pluginSchema(name)).entity_checks, [], name);
    }
  });

  test('GET /schemas/plugins/{name}: every plugin on the server answers both keys, fields then entity_checks (a list), as Kong always does', async () => {
    const names = Object.keys((await call('GET', '/')).body.plugins.available_on_server as Record<string, unknown>);
    assert.ok(names.length >= 14 && names.includes('openid-connect'), names.join(', '));
    for (const name of names) {
      const body = await pluginSchema(name);
      assert.deepEqual(Object.keys(body), ['fields', 'entity_checks'], name);
      assert.ok(Array.isArray(body.entity_checks), name);
    }
  });
});

