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

  it('takes its secret from a loader on first use (a generated secret in a shared store); a failed load is retried', async () => {
    let calls = 0;
    const deferred = new Sealer(async () => {
      calls++;
      if (calls === 1) throw new Error('store down');
      return ['stored-secret'];
    });
    await assert.rejects(deferred.seal('session', { a: 1 }), /store down/);
    const sealed = await deferred.seal('session', { a: 1 });
    assert.equal(calls, 2);
    // Another process loading the same stored secret opens it; one with another secret does not.
    assert.deepEqual(await new Sealer(async () => ['stored-secret']).open('session', sealed), { a: 1 });
    assert.equal(await new Sealer(['other-secret']).open('session', sealed), null);
    await deferred.seal('session', { b: 2 });
    assert.equal(calls, 2, 'loaded once');
  });

  it('deflates large payloads and opens them again', async () => {
    const s = new Sealer(['secret-one']);
    const big = { claims: 'abc'.repeat(2000) };
    const sealed = await s.seal('session', big);
    assert.ok(sealed.length < 2000, `compressed (${sealed.length})`);
    assert.deepEqual(await s.open('session', sealed), big);
  });

  it('remembers opened session values: peek answers without crypto, only for the exact sealed text; values are frozen', async () => {
    const s = new Sealer(['secret-one']);
    const sealed = await s.seal('session', { a: 1, nested: { b: [2] } });
    assert.equal(s.peek('session', sealed), undefined, 'not opened yet');
    const opened = (await s.open('session', sealed)) as { a: number; nested: { b: number[] } };
    assert.equal(s.peek('session', sealed), opened);
    assert.equal(await s.open('session', sealed), opened, 'the same object for every request');
    assert.throws(() => {
      opened.nested.b.push(3);
    }, TypeError);
    // Same tail (the authentication tag), another ciphertext: not the remembered value.
    const parts = sealed.split('.');
    const flipped = (parts[3].startsWith('A') ? 'B' : 'A') + parts[3].slice(1);
    const forged = [...parts.slice(0, 3), flipped, parts[4]].join('.');
    assert.equal(s.peek('session', forged), undefined);
    assert.equal(await s.open('session', forged), null);
    assert.equal(s.peek('session', sealed), opened, 'a failed forgery does not evict the real value');
    const flow = await s.seal('authorization', { s: 'state' });
    await s.open('authorization', flow);
    assert.equal(s.peek('authorization', flow), undefined, 'authorization flows are single-use: not remembered');
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
    // What the earlier split/trim/filter/join implementation gave, for odd headers too.
    const reference = (header: string, drop: (name: string) => boolean): string =>
      header
        .split(';')
        .map((p) => p.trim())
        .filter((p) => p !== '' && !drop(p.slice(0, p.indexOf('=') === -1 ? p.length : p.indexOf('=')).trim()))
        .join('; ');
    const drop = (n: string) => n === 'session' || n === '' || n.startsWith('authorization.');
    for (const header of ['', ';', ' ; ;', 'a', 'session', '=x', ' = ', 'a=1;session=2', ' session =x ; a = b=c ;; authorization.x=1; b', 'a=1; =2; b=3', 'x=;y', 'session=a=b; keep=1 ']) {
      assert.equal(stripFromCookieHeader(header, drop), reference(header, drop), JSON.stringify(header));
      assert.equal(stripFromCookieHeader(header, () => false), reference(header, () => false), JSON.stringify(header));
    }
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

  it('does not require session_secret with several workers (the node generates one and shares it)', () => {
    assert.deepEqual(resolveConfig({}, 4).secrets, []);
    assert.doesNotThrow(() => resolveConfig({ session_secret: 's' }, 4));
    assert.deepEqual(resolveConfig({ session_secret: ['a', 'b'] }, 4).secrets, ['a', 'b']);
  });

  it('rejects redis storage without a redis record; memcache is memcached storage', () => {
    assert.throws(() => resolveConfig({ session_secret: 's', session_storage: 'redis' }, 1), /redis: session_storage=redis needs a redis record/);
    assert.equal(resolveConfig({ session_secret: 's', session_storage: 'memcache' }, 1).storage, 'memcached');
    assert.equal(resolveConfig({ session_secret: 's', session_storage: 'memcached', session_memcached_port: 11311 }, 1).memcached.port, 11311);
  });
});
