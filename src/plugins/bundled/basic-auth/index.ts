/**
 * basic-auth — Kong's HTTP Basic authentication (priority 1100). `Proxy-Authorization` is read
 * first, then `Authorization`; the scheme is `Basic` in either case, the value base64 of
 * `user:pass` split at the first colon. Missing, malformed, unknown user or wrong password → 401
 * `Unauthorized` with `WWW-Authenticate: Basic realm="<realm>"`. `hide_credentials` drops the
 * header(s) read.
 *
 * Passwords are stored as salted scrypt hashes (src/password-hash.ts). scrypt is deliberately
 * slow, so the header value that authenticated is remembered (bounded) with the stored hash it was
 * verified against: a known client costs one Map lookup per request, and a changed password (a
 * new hash) or a deleted credential is verified again.
 */
import { z } from 'zod';
import { definePlugin, type RequestContext, HTTP_PROTOCOLS } from '../../sdk.ts';
import { authAccess, ownerOf, setIdentity, type AttemptResult, type AuthFailure } from '../../auth.ts';
import { verifyPassword } from '../../../password-hash.ts';
import type { BasicAuthCredential } from '../../../config/credentials.ts';

export const basicAuthSchema = z.strictObject({
  anonymous: z.string().min(1).nullable().default(null),
  hide_credentials: z.boolean().default(false),
  realm: z.string().default('service'),
});

export type BasicAuthConfig = z.infer<typeof basicAuthSchema>;

/** Verified header values remembered per plugin instance. */
const VERIFIED_MAX = 10_000;

const SCHEME = /[Bb]asic\s*(.+)/;
const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** `user`, `pass` from an Authorization value, or null when it is not a usable Basic credential. */
export function parseBasic(value: string | undefined): { username: string; password: string } | null {
  if (value === undefined) return null;
  const m = SCHEME.exec(value);
  if (m === null) return null;
  const encoded = m[1].trim();
  if (!B64.test(encoded)) return null;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export default definePlugin<BasicAuthConfig>({
  name: 'basic-auth',
  version: '0.1.0',
  priority: 1100,
  // Kong's schema: protocols_http.
  protocols: HTTP_PROTOCOLS,
  schema: basicAuthSchema,
  scopes: { consumer: false },
  create(conf) {
    const unauthorized: AuthFailure = { status: 401, body: { message: 'Unauthorized' }, headers: { 'www-authenticate': `Basic realm="${conf.realm}"` } };
    const succeed = (ctx: RequestContext, cred: BasicAuthCredential): AttemptResult => {
      const consumer = ownerOf(ctx, cred);
      if (consumer === null) return unauthorized;
      setIdentity(ctx, consumer, { id: cred.id, identifier: cred.username, consumer: cred.consumer });
      return null;
    };

    /**
     * Header values that authenticated before → the username and the stored hash they were
     * verified against: a known client costs one Map lookup (V8 hashes the whole value with a
     * per-process seed, so a lookup reveals nothing about near misses). A changed password (a new
     * hash) or a deleted credential is not served from here.
     */
    const verifiedHeaders = new Map<string, { username: string; hash: string }>();
    const remember = (header: string, cred: BasicAuthCredential): void => {
      if (verifiedHeaders.size >= VERIFIED_MAX) verifiedHeaders.delete(verifiedHeaders.keys().next().value!);
      verifiedHeaders.set(header, { username: cred.username, hash: cred.password });
    };

    const attempt = (ctx: RequestContext): AttemptResult | Promise<AttemptResult> => {
      const proxyAuth = ctx.request.header('proxy-authorization');
      const auth = ctx.request.header('authorization');
      if (proxyAuth === undefined && auth === undefined) return unauthorized;
      const seen = verifiedHeaders.get(proxyAuth ?? auth!);
      if (seen !== undefined) {
        const cred = ctx.entities.basicAuthByUsername(seen.username);
        if (cred !== null && cred.password === seen.hash) {
          if (conf.hide_credentials) ctx.upstream.removeHeader(proxyAuth !== undefined ? 'proxy-authorization' : 'authorization');
          return succeed(ctx, cred);
        }
      }
      let header = proxyAuth;
      let given = parseBasic(proxyAuth);
      if (conf.hide_credentials && proxyAuth !== undefined) ctx.upstream.removeHeader('proxy-authorization');
      let cred = given !== null ? ctx.entities.basicAuthByUsername(given.username) : null;
      if (cred === null) {
        header = auth;
        given = parseBasic(auth);
        if (conf.hide_credentials && auth !== undefined) ctx.upstream.removeHeader('authorization');
        if (given === null) return unauthorized;
        cred = ctx.entities.basicAuthByUsername(given.username);
      }
      if (cred === null) return unauthorized;
      const found = cred;
      return verifyPassword(given!.password, found.password).then((ok) => {
        if (!ok) return unauthorized;
        remember(header!, found);
        return succeed(ctx, found);
      });
    };

    return { access: authAccess(conf, 'basic-auth', attempt) };
  },
});
