/**
 * PORTCULLIS_LUA_SSL_TRUSTED_CERTIFICATE (Kong's lua_ssl_trusted_certificate): the CAs the
 * gateway's own TLS clients trust. Parsing (files, bundles, PEM and base64 values, `system`,
 * errors naming the setting), and end to end: a gateway process talks to a real TLS Redis with an
 * ACL user (rate-limiting `policy: redis`, `ssl`, `ssl_verify`, `server_name`, `username`,
 * `password`) whose self-signed certificate it trusts only through the setting.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { startEcho, type EchoServer } from '../demo/echo.ts';
import { selfSigned, type SelfSigned } from './helpers/certs.ts';
import { freePort, startGatewayProcess, waitFor, type GatewayProcess } from './helpers/process.ts';
import { parseTrustedCertificates } from '../src/tls/trust-store.ts';
import { readSettings, SettingsError } from '../src/kernel/settings.ts';

const ca: SelfSigned = selfSigned('localhost');
const other: SelfSigned = selfSigned('other.example');

test('parsing: system alone changes nothing; files, bundles, PEM and base64 values are read; system keeps the default list', () => {
  assert.equal(parseTrustedCertificates(undefined), null);
  assert.equal(parseTrustedCertificates('system'), null);
  const one = parseTrustedCertificates(ca.certFile);
  assert.equal(one?.system, false);
  assert.equal(one?.pems.length, 1);
  assert.match(one!.pems[0], /BEGIN CERTIFICATE/);
  const bundleFile = join(ca.certFile, '..', 'bundle.pem');
  writeFileSync(bundleFile, `${ca.cert}\n${other.cert}`);
  assert.equal(parseTrustedCertificates(`system, ${bundleFile}`)?.pems.length, 2);
  assert.equal(parseTrustedCertificates(`system, ${bundleFile}`)?.system, true);
  assert.equal(parseTrustedCertificates(ca.cert)?.pems.length, 1);
  assert.equal(parseTrustedCertificates(Buffer.from(other.cert).toString('base64'))?.pems.length, 1);
});

test('parsing: what is not a certificate is refused naming the setting', () => {
  assert.throws(() => parseTrustedCertificates('/no/such/ca.pem'), /lua_ssl_trusted_certificate: failed loading certificate from \/no\/such\/ca\.pem/);
  assert.throws(() => parseTrustedCertificates(ca.keyFile), /lua_ssl_trusted_certificate: failed loading certificate from .*key\.pem/);
  assert.throws(() => parseTrustedCertificates(' , '), /lua_ssl_trusted_certificate: is empty/);
  assert.throws(() => readSettings({}, { PORTCULLIS_LUA_SSL_TRUSTED_CERTIFICATE: 'system,/nope.pem' }),
    (err: unknown) => err instanceof SettingsError && /^PORTCULLIS_LUA_SSL_TRUSTED_CERTIFICATE: failed loading certificate from \/nope\.pem/.test(err.message));
  assert.equal(readSettings({}, {}).luaSslTrustedCertificate, null);
});

let redis: ChildProcess;
let tlsPort: number;
let echo: EchoServer;
let gw: GatewayProcess;
const ids: Record<string, string> = {};

function route(name: string, redisConf: Record<string, unknown>): object {
  ids[name] = randomUUID();
  return {
    id: ids[name], name, paths: [`/${name}`],
    plugins: [{ name: 'rate-limiting', config: { minute: 2, limit_by: 'ip', policy: 'redis', fault_tolerant: false, redis: { host: '127.0.0.1', port: tlsPort, timeout: 1500, ssl: true, username: 'alice', password: 's3cret', ...redisConf } } }],
  };
}

before(async () => {
  tlsPort = await freePort();
  // TLS only (no plain port), the default user disabled: only alice with her password gets in.
  redis = spawn('redis-server', [
    '--port', '0', '--tls-port', String(tlsPort), '--bind', '127.0.0.1',
    '--tls-cert-file', ca.certFile, '--tls-key-file', ca.keyFile, '--tls-ca-cert-file', ca.certFile, '--tls-auth-clients', 'no',
    '--save', '', '--appendonly', 'no', '--user', 'default', 'off', '--user', 'alice', 'on', '>s3cret', '~*', '&*', '+@all',
  ], { stdio: 'ignore' });
  await waitFor(() => new Promise<boolean>((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port: tlsPort, rejectUnauthorized: false }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  }), 10_000, 'TLS redis-server');
  echo = await startEcho();
  const config = {
    _format_version: '3.0',
    services: [{
      name: 'echo', host: '127.0.0.1', port: echo.port,
      routes: [
        route('verified', { ssl_verify: true, server_name: 'localhost' }),
        route('wrongname', { ssl_verify: true, server_name: 'wrong.example' }),
        route('badpass', { ssl_verify: true, server_name: 'localhost', password: 'nope' }),
      ],
    }],
  };
  gw = await startGatewayProcess({ config: JSON.stringify(config), env: { PORTCULLIS_LUA_SSL_TRUSTED_CERTIFICATE: `system, ${ca.certFile}`, PORTCULLIS_LOG_LEVEL: 'warn' } });
});

after(async () => {
  await gw?.stop();
  await echo?.close();
  redis?.kill('SIGKILL');
});

test('a Redis certificate trusted only through the setting is verified (ssl_verify, server_name) and the ACL user counts requests', async () => {
  // Stay inside one minute window.
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 5000) await new Promise((r) => setTimeout(r, left + 50));
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) statuses.push((await fetch(`${gw.proxyUrl}/verified`)).status);
  assert.deepEqual(statuses, [200, 200, 429], gw.output());
});

test('verification is really on: a server_name the certificate does not carry fails the TLS handshake (500 with fault_tolerant false)', async () => {
  const r = await fetch(`${gw.proxyUrl}/wrongname`);
  assert.equal(r.status, 500);
});

test('username and password are sent: a wrong password is refused by the Redis ACL (500)', async () => {
  const r = await fetch(`${gw.proxyUrl}/badpass`);
  assert.equal(r.status, 500);
  assert.ok(!gw.output().includes('nope'), 'the password must not be logged');
});
