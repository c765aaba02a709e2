import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Sealer } from './seal.ts';
import { chunkName, CookieTooLargeError, readChunked, stripFromCookieHeader, writeChunked } from './cookies.ts';
import { resolveConfig } from './config.ts';
import type { CookieSettings } from './config.ts';

describe('Sealer', () => {
  it('round-trips and rejects tampering, truncation and other purposes', async () => {
    const s = new Sealer(['secret-one']);
    const sealed = await s.seal('session', { a: 1, b: 'x' });
    assert.deepEqual(await s.open('session', sealed), { a: 1, b: 'x' });
    assert.equal(await s.open('authorization', sealed), null, 'purpose separation');
    assert.equal(await s.open('session', sealed.slice(0, -3)), null);
    const parts = sealed.split('.');
    const flipped = parts[3][0] === 'A' ? `B${parts[3].slice(1)}` : `A${parts[3].slice(1)}`;
    assert.equal(await s.open('session', [...parts.slice(0, 3), flipped, parts[4]].join('.')), null);
    assert.equal(await s.open('session', 'garbage'), null);
    assert.equal(await s.open('session', ''), null);
  });

  it('deflates large payloads and opens them again', async () => {
    const s = new Sealer(['secret-one']);
    const big = { claims: 'abc'.repeat(2000) };
    const sealed = await s.seal('session', big);
    assert.ok(sealed.length < 2000, `compressed (${sealed.length})`);
    assert.deepEqual(await s.open('session', sealed), big);
  });

  it('opens values sealed with an older secret during a rotation, and seals with the first', async () => {
    const old = new Sealer(['old-secret']);
    const sealedOld = await old.seal('session', { v: 'old' });
    const rotated = new Sealer(['new-secret', 'old-secret']);
    assert.deepEqual(await rotated.open('session', sealedOld), { v: 'old' });
    const sealedNew = await rotated.seal('session', { v: 'new' });
    assert.equal(await old.open('session', sealedNew), null, 'new values use the new secret');
    assert.deepEqual(await new Sealer(['new-secret']).open('session', sealedNew), { v: 'new' });
    assert.equal(await new Sealer(['other']).open('session', sealedOld), null);
  });
});

const settings: CookieSettings = { name: 'session', path: '/', domain: null, sameSite: 'Lax', httpOnly: true, secure: null };

function toCookies(headers: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const h of headers) {
    const pair = h.split(';')[0];
    const i = pair.indexOf('=');
    m.set(pair.slice(0, i), pair.slice(i + 1));
  }
  return m;
}

describe('cookie chunking', () => {
  it('keeps small values in one cookie with Kong’s attributes', () => {
    const { headers, count } = writeChunked('abc', settings, false);
    assert.equal(count, 1);
    assert.deepEqual(headers, ['session=abc; Path=/; SameSite=Lax; HttpOnly']);
    assert.match(writeChunked('abc', settings, true).headers[0], /; Secure; HttpOnly$/);
    assert.match(writeChunked('abc', { ...settings, sameSite: 'None' }, false).headers[0], /SameSite=None; Secure/);
    assert.doesNotMatch(writeChunked('abc', { ...settings, sameSite: 'Default', domain: 'example.com' }, false).headers[0], /SameSite/);
  });

  it('splits above 4 KB into session, session2, ... and reassembles', () => {
    const value = 'x'.repeat(10_000);
    const { headers, count } = writeChunked(value, settings, false);
    assert.equal(count, 3);
    for (const h of headers) assert.ok(h.length <= 4096);
    assert.deepEqual(headers.map((h) => h.split('=')[0]), ['session', 'session2', 'session3']);
    assert.equal(readChunked(toCookies(headers), 'session').value, value);
  });

  it('refuses more than 9 chunks with an error that points to redis', () => {
    assert.throws(() => writeChunked('x'.repeat(40_000), settings, false), (e: unknown) => e instanceof CookieTooLargeError && /session_storage: redis/.test(e.message));
  });

  it('treats a forged chunk count or a missing chunk as unreadable', () => {
    const { headers } = writeChunked('y'.repeat(9000), settings, false);
    const cookies = toCookies(headers);
    const forged = new Map(cookies);
    forged.set('session', cookies.get('session')!.replace(/^~3~/, '~9~'));
    assert.equal(readChunked(forged, 'session').value, null);
    const silly = new Map(cookies);
    silly.set('session', cookies.get('session')!.replace(/^~3~/, '~99~'));
    assert.equal(readChunked(silly, 'session').value, null);
    const missing = new Map(cookies);
    missing.delete(chunkName('session', 2));
    assert.equal(readChunked(missing, 'session').value, null);
    assert.equal(readChunked(missing, 'session').present, true);
    assert.equal(readChunked(new Map(), 'session').present, false);
  });

  it('strips named cookies from a Cookie header', () => {
    assert.equal(stripFromCookieHeader('a=1; session=x; session2=y; b=2', (n) => n.startsWith('session')), 'a=1; b=2');
    assert.equal(stripFromCookieHeader('session=x', (n) => n === 'session'), '');
  });
});

describe('resolveConfig', () => {
  it('applies Kong defaults', () => {
    const c = resolveConfig({}, 1);
    assert.equal(c.sessionCookie.name, 'session');
    assert.equal(c.sessionCookie.sameSite, 'Lax');
    assert.equal(c.authCookie.name, 'authorization');
    assert.equal(c.authCookie.sameSite, 'Default');
    assert.equal(c.idlingTimeout, 900);
    assert.equal(c.rollingTimeout, 3600);
    assert.equal(c.absoluteTimeout, 86400);
    assert.deepEqual([...c.logoutMethods].sort(), ['DELETE', 'POST']);
    assert.deepEqual(c.loginTokens, ['id_token']);
    assert.deepEqual(resolveConfig({ login_tokens: null }, 1).loginTokens, []);
    assert.equal(c.storage, 'cookie');
  });

  it('requires session_secret with several workers and says why', () => {
    assert.throws(() => resolveConfig({}, 4), /session_secret: required when the gateway runs more than one worker \(workers=4\)/);
    assert.doesNotThrow(() => resolveConfig({ session_secret: 's' }, 4));
    assert.deepEqual(resolveConfig({ session_secret: ['a', 'b'] }, 4).secrets, ['a', 'b']);
  });

  it('rejects redis storage without a redis record and memcached', () => {
    assert.throws(() => resolveConfig({ session_secret: 's', session_storage: 'redis' }, 1), /redis: session_storage=redis needs a redis record/);
    assert.throws(() => resolveConfig({ session_secret: 's', session_storage: 'memcached' }, 1), /memcached is not supported/);
  });
});
