/**
 * Microbenchmark of the openid-connect plugin's steady-state `access` (and `response`) cost,
 * without HTTP: bearer JWT with a warm verified-token cache, and a session cookie (cookie
 * storage) that was opened before. Each iteration builds a fresh kernel request context (as the
 * gateway does); the cost of that alone is measured and subtracted.
 *
 *   node bench/oidc-micro.ts [iterations] [bearer|session-cookie]   (add --cpu-prof to profile)
 */
import { pino } from 'pino';
import { startIdp } from '../demo/idp.ts';
import { ResponseHeaders, type Context } from '../src/kernel/context.ts';
import { contextAloneNs, makeContext as makeKernelContext } from './micro-context.ts';
import { createMemoryKv } from '../src/storage/kv.ts';
import { oidcConfigSchema } from '../src/plugins/bundled/openid-connect/schema.ts';
import { createOidc } from '../src/plugins/bundled/openid-connect/create.ts';
import type { PluginHandlers, Reply } from '../src/plugins/sdk.ts';

const iterations = Number(process.argv[2] ?? 200_000);
/** Only this scenario (a profile of one steady state), else both. */
const only = process.argv[3] ?? null;
const log = pino({ level: 'silent' });
const entities = {
  consumerById: () => null,
  consumerByUsername: () => null,
  consumerByCustomId: () => null,
  aclGroups: () => [],
  keyAuthByKey: () => null, basicAuthByUsername: () => null, jwtSecretByKey: () => null, oauth2ByClientId: () => null, oauth2ById: () => null, consumerGroups: () => [], consumerGroupByName: () => null, certificateById: () => null, caCertificateById: () => null,
};

const makeContext = (headers: Record<string, string>): Context => makeKernelContext(headers, entities);

async function run(h: PluginHandlers, ctx: Context): Promise<Reply | void> {
  let r = h.access!(ctx);
  if (r instanceof Promise) r = await r;
  if (r) return r;
  if (h.response === undefined) return;
  ctx.response = new ResponseHeaders(200, {}, false);
  const rr = h.response(ctx as Context & { response: ResponseHeaders });
  if (rr instanceof Promise) await rr;
}

async function measure(name: string, h: PluginHandlers, headers: Record<string, string>): Promise<void> {
  if (only !== null && only !== name) return;
  const first = await run(h, makeContext(headers));
  if (first) throw new Error(`${name}: access replied ${first.status}`);
  for (let i = 0; i < 20_000; i++) await run(h, makeContext(headers));
  let sink = 0;
  const base = contextAloneNs(iterations, headers, entities);
  const t = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const ctx = makeContext(headers);
    const r = await run(h, ctx);
    if (r) throw new Error(`${name}: access replied ${r.status}`);
    sink += ctx.upstream.path.length;
  }
  const total = Number(process.hrtime.bigint() - t) / iterations;
  console.log(`${name.padEnd(16)} ${(total - base).toFixed(0).padStart(6)} ns/op (context alone ${base.toFixed(0)} ns) ${sink > 0 ? '' : '!'}`);
}

const idp = await startIdp({ accessTokenTtl: 3600 });
try {
  const tokenRes = await fetch(`${idp.issuer}/token`, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'password', username: 'alex', password: 'doe', client_id: 'kong', client_secret: 'kong-secret', scope: 'openid' }),
  });
  const accessToken = ((await tokenRes.json()) as { access_token: string }).access_token;
  const base = {
    issuer: `${idp.issuer}/.well-known/openid-configuration`,
    client_id: ['kong'],
    client_secret: ['kong-secret'],
    client_auth: ['client_secret_post'],
  };
  const deps = (sharedKv = createMemoryKv()) => ({ entity: {} as never, log, sharedKv, workers: 1, now: Date.now });

  const bearer = createOidc(oidcConfigSchema.parse({ ...base, auth_methods: ['bearer'] }), deps());
  const session = createOidc(oidcConfigSchema.parse({ ...base, auth_methods: ['password', 'session'], session_secret: 'portcullis-bench-session-secret-not-for-production' }), deps());

  // Log in once with the password grant: the session cookie comes back in Set-Cookie.
  const login = makeContext({ authorization: `Basic ${Buffer.from('alex:doe').toString('base64')}` });
  const r = await run(session, login);
  if (r) throw new Error(`login replied ${r.status}`);
  const cookie = (login.extraHeaders ?? []).filter(([n]) => n === 'set-cookie').map(([, v]) => String(v).split(';')[0]).join('; ');
  if (!cookie) throw new Error('login set no cookie');

  for (let round = 0; round < 3; round++) {
    await measure('bearer', bearer, { authorization: `Bearer ${accessToken}` });
    await measure('session-cookie', session, { cookie });
  }
  await bearer.close?.();
  await session.close?.();
} finally {
  await idp.close();
}
