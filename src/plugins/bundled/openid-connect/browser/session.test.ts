import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { makeCtx } from '../../../../../test/helpers/plugin-ctx.ts';
import { MemoryKv } from '../../../../../test/helpers/fake-ctx.ts';
import { resolveConfig, type BrowserConfig } from './config.ts';
import { Sealer } from './seal.ts';
import { SessionStore, type SessionData } from './session.ts';

function store(config: BrowserConfig, now: () => number, secrets = ['s1']) {
  const cfg = resolveConfig({ session_secret: secrets, ...config }, 1);
  return new SessionStore(cfg, new Sealer(secrets), new MemoryKv(now), now);
}

/** Cookies a browser would send after these Set-Cookie values. */
function cookiesFrom(setCookies: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const h of setCookies) {
    const pair = h.split(';')[0];
    const i = pair.indexOf('=');
    if (/Max-Age=0/.test(h)) m.delete(pair.slice(0, i));
    else m.set(pair.slice(0, i), pair.slice(i + 1));
  }
  return m;
}

function ctxWith(cookies: Map<string, string>) {
  const ctx = makeCtx();
  const jar = ctx.request.cookies as Map<string, string>;
  for (const [k, v] of cookies) jar.set(k, v);
  return ctx;
}

function setCookies(ctx: ReturnType<typeof makeCtx>): string[] {
  const v = ctx.downstream.get('set-cookie');
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** Random text: deflate cannot shrink it, so it really needs several cookies. */
function incompressible(n: number): string {
  return randomBytes(n).toString('base64url').slice(0, n);
}

function session(st: SessionStore, bigClaim = ''): SessionData {
  return st.newSession({ method: 'password', clientIndex: 0, tokens: { access_token: 'at' }, claims: { id_token: { sub: 'alex', iss: 'https://idp', big: bigClaim } } });
}

describe('SessionStore (cookie storage)', () => {
  it('writes a large session in chunks and reads it back', async () => {
    const st = store({}, () => 1_000_000);
    const ctx = makeCtx();
    await st.write(ctx, session(st, incompressible(9000)), { renew: true });
    const sc = setCookies(ctx);
    const names = sc.map((c) => c.split('=')[0]);
    assert.ok(names.length >= 3);
    assert.deepEqual(names, ['session', ...names.slice(1).map((_, i) => `session${i + 2}`)]);
    const read = await st.read(ctxWith(cookiesFrom(sc)));
    assert.equal(read?.session.subject, 'alex');
    assert.equal((read?.session.claims.id_token?.big as string).length, 9000);
  });

  it('expires leftover chunks when a session shrinks', async () => {
    const st = store({}, () => 1_000_000);
    const first = makeCtx();
    await st.write(first, session(st, incompressible(9000)), { renew: true });
    const second = ctxWith(cookiesFrom(setCookies(first)));
    await st.write(second, session(st), { renew: true });
    const sc = setCookies(second);
    assert.ok(sc.some((c) => c.startsWith('session2=;') && c.includes('Max-Age=0')));
    assert.ok(sc.some((c) => c.startsWith('session3=;') && c.includes('Max-Age=0')));
  });

  it('treats a forged chunk count as no session and removes every chunk', async () => {
    const st = store({}, () => 1_000_000);
    const ctx = makeCtx();
    await st.write(ctx, session(st, incompressible(9000)), { renew: true });
    const cookies = cookiesFrom(setCookies(ctx));
    const n = cookies.size;
    cookies.set('session', cookies.get('session')!.replace(/^~\d~/, `~${n - 1}~`));
    const bad = ctxWith(cookies);
    assert.equal(await st.read(bad), null);
    const cleared = setCookies(bad).filter((c) => c.includes('Max-Age=0')).map((c) => c.split('=')[0]);
    assert.deepEqual(cleared, [...cookies.keys()]);
  });

  it('rejects a session sealed with an unknown secret, accepts a rotated one', async () => {
    const now = () => 1_000_000;
    const old = store({}, now, ['old']);
    const ctx = makeCtx();
    await old.write(ctx, session(old), { renew: true });
    const cookies = cookiesFrom(setCookies(ctx));
    assert.equal((await store({}, now, ['new', 'old']).read(ctxWith(cookies)))?.session.subject, 'alex');
    assert.equal(await store({}, now, ['new']).read(ctxWith(cookies)), null);
  });

  it('ignores (without removing) a session of another audience', async () => {
    const now = () => 1_000_000;
    const a = store({ session_audience: 'app-a' }, now);
    const ctx = makeCtx();
    await a.write(ctx, session(a), { renew: true });
    const other = ctxWith(cookiesFrom(setCookies(ctx)));
    assert.equal(await store({ session_audience: 'app-b' }, now).read(other), null);
    assert.deepEqual(setCookies(other), []);
  });

  it('ends sessions at each timeout (0 disables a check)', async () => {
    let t = 1_000_000;
    const st = store({ session_idling_timeout: 10, session_rolling_timeout: 0, session_absolute_timeout: 0 }, () => t);
    const ctx = makeCtx();
    await st.write(ctx, session(st), { renew: true });
    const cookies = cookiesFrom(setCookies(ctx));
    t += 9_000;
    assert.ok(await st.read(ctxWith(cookies)));
    t += 2_000;
    assert.equal(await st.read(ctxWith(cookies)), null);
  });

  it('back-channel markers end older sessions of the sid or sub only', async () => {
    const t = 1_000_000;
    const st = store({ backchannel_logout_uri_suffix: '/bcl' }, () => t);
    const ctx = makeCtx();
    const s = { ...session(st), idpSessionId: 'sid-1' };
    await st.write(ctx, s, { renew: true });
    const cookies = cookiesFrom(setCookies(ctx));
    await st.markLoggedOut('https://idp', 'other-sid', null);
    assert.ok(await st.read(ctxWith(cookies)));
    await st.markLoggedOut('https://idp', 'sid-1', null);
    assert.equal(await st.read(ctxWith(cookies)), null);
  });
});
