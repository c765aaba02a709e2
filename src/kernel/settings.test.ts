import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readSettings } from './settings.ts';

test('PORTCULLIS_ADMIN_TOKEN set but empty is refused, not taken as "no token"', () => {
  assert.equal(readSettings({}, {}).adminToken, null);
  assert.equal(readSettings({}, { PORTCULLIS_ADMIN_TOKEN: 's3cret' }).adminToken, 's3cret');
  assert.throws(() => readSettings({}, { PORTCULLIS_ADMIN_TOKEN: '' }), /PORTCULLIS_ADMIN_TOKEN is set but empty/);
  assert.throws(() => readSettings({}, { PORTCULLIS_ADMIN_TOKEN: '  ' }), /PORTCULLIS_ADMIN_TOKEN is set but empty/);
});

test('two listeners on one address are refused, naming both settings; distinct ports, families and port 0 are fine', () => {
  assert.throws(() => readSettings({ proxyListen: '127.0.0.1:18222', adminListen: '127.0.0.1:18222' }, {}), /admin_listen: 127\.0\.0\.1:18222 is also in proxy_listen/);
  assert.throws(() => readSettings({ proxyListen: '0.0.0.0:8000' }, { PORTCULLIS_STATUS_LISTEN: '127.0.0.1:8000' }), /status_listen: 127\.0\.0\.1:8000 is also in proxy_listen \(0\.0\.0\.0:8000\)/);
  assert.throws(() => readSettings({ proxyListen: '0.0.0.0:8000, 127.0.0.1:8000 ssl' }, {}), /listed twice in proxy_listen/);
  assert.throws(() => readSettings({}, { PORTCULLIS_ADMIN_GUI_LISTEN: '127.0.0.1:8001' }), /admin_gui_listen: 127\.0\.0\.1:8001 is also in admin_listen/);
  // The default admin GUI address is not checked: it gives way at start when taken.
  assert.doesNotThrow(() => readSettings({ proxyListen: '0.0.0.0:8002' }, {}));
  assert.doesNotThrow(() => readSettings({ proxyListen: '0.0.0.0:8000, [::]:8000', adminListen: '127.0.0.1:0' }, { PORTCULLIS_STATUS_LISTEN: '127.0.0.1:0' }));
  assert.doesNotThrow(() => readSettings({}, {}));
});

test("log level: Kong's nginx level names are accepted beside pino's, anything else is refused naming the setting", () => {
  for (const level of ['notice', 'crit', 'alert', 'emerg', 'debug', 'trace', 'silent']) assert.equal(readSettings({ logLevel: level }, {}).logLevel, level);
  assert.equal(readSettings({}, { PORTCULLIS_LOG_LEVEL: 'notice' }).logLevel, 'notice');
  assert.throws(() => readSettings({}, { PORTCULLIS_LOG_LEVEL: 'stderr' }), /log level: 'stderr' is not one of trace, debug, info, notice/);
});

test("PORTCULLIS_STREAM_LISTEN (Kong's stream_listen): off by default; ssl, proxy_protocol, reuseport, backlog=N; udp and HTTP-only flags refused by name", () => {
  assert.deepEqual(readSettings({}, {}).streamListen, []);
  const s = readSettings({}, { PORTCULLIS_STREAM_LISTEN: '0.0.0.0:5555, 127.0.0.1:5556 ssl proxy_protocol reuseport backlog=64' });
  assert.deepEqual(s.streamListen, [
    { host: '0.0.0.0', port: 5555, ssl: false, http2: false, reuseport: false, backlog: null, proxyProtocol: false, sslVerifyClient: null },
    { host: '127.0.0.1', port: 5556, ssl: true, http2: false, reuseport: true, backlog: 64, proxyProtocol: true, sslVerifyClient: null },
  ]);
  assert.throws(() => readSettings({}, { PORTCULLIS_STREAM_LISTEN: '0.0.0.0:5555 udp' }), /stream_listen: the 'udp' flag of '0\.0\.0\.0:5555 udp' is not supported/);
  assert.throws(() => readSettings({}, { PORTCULLIS_STREAM_LISTEN: '0.0.0.0:5555 http2' }), /stream_listen: the 'http2' flag of '0\.0\.0\.0:5555 http2' is not supported here/);
  assert.throws(() => readSettings({}, { PORTCULLIS_STREAM_LISTEN: '0.0.0.0:5555 bind' }), /stream_listen: the 'bind' flag/);
  // A stream listener cannot share the proxy's address.
  assert.throws(() => readSettings({}, { PORTCULLIS_PROXY_LISTEN: '0.0.0.0:8000', PORTCULLIS_STREAM_LISTEN: '127.0.0.1:8000' }), /stream_listen: 127\.0\.0\.1:8000 is also in proxy_listen/);
});
