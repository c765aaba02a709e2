/**
 * `login_action` after a successful login by one of `login_methods` (reference §2.5): `upstream`
 * (the request goes on), `response` (a JSON body with `login_tokens`, `Cache-Control: no-store`)
 * or `redirect` (302 to `login_redirect_uri`, else to the path first asked for, with the
 * `login_tokens` in the fragment or the query: `login_redirect_mode`). One place for the code
 * flow (authcode.ts) and the other methods (the access pipeline's `login action` step).
 */
import type { Reply, RequestContext } from '../../../sdk.ts';
import { perClient, type LoginSettings } from './config.ts';

export type { LoginSettings } from './config.ts';
export { loginSettings } from './config.ts';

/** What the login produced: the token endpoint response (or the tokens a method has), and the introspection result. */
export interface LoginResult {
  tokens: Readonly<Record<string, unknown>>;
  introspection: Readonly<Record<string, unknown>> | null;
  clientIndex: number;
  /** The path (raw) and raw query first asked for. */
  path: string;
  query: string;
}

/** The reply of `login_action` for `method`, or null when the request goes on upstream. */
export function loginReply(ctx: RequestContext, s: LoginSettings, method: string, r: LoginResult): Reply | null {
  if (s.action === 'upstream' || !s.methods.includes(method)) return null;
  if (s.action === 'response') {
    // A JSON body (RFC 6749 §5.1): `tokens` is the token endpoint response itself.
    const body: Record<string, unknown> = {};
    for (const n of s.tokens) {
      if (n === 'tokens') body.tokens = { ...r.tokens };
      else if (n === 'introspection') {
        if (r.introspection) body.introspection = { ...r.introspection };
      } else if (typeof r.tokens[n] === 'string') body[n] = r.tokens[n];
    }
    return ctx.reply(200, body, { 'cache-control': 'no-store', pragma: 'no-cache' });
  }
  const pairs: [string, string][] = [];
  for (const n of s.tokens) {
    if (n === 'tokens') pairs.push(['tokens', Buffer.from(JSON.stringify(r.tokens)).toString('base64url')]);
    else if (n === 'introspection') {
      if (r.introspection) pairs.push(['introspection', Buffer.from(JSON.stringify(r.introspection)).toString('base64url')]);
    } else if (typeof r.tokens[n] === 'string') pairs.push([n, r.tokens[n] as string]);
  }
  // Only the configured target or the same-origin path the person first asked for.
  const configured = perClient(s.redirectUri, r.clientIndex);
  const path = localPath(r.path);
  let target = configured ?? (s.preserveQueryArgs && r.query ? `${path}?${r.query}` : path);
  if (pairs.length > 0) {
    const encoded = new URLSearchParams(pairs).toString();
    if (s.redirectMode === 'query') target += (target.includes('?') ? '&' : '?') + encoded;
    else target += `#${encoded}`;
  }
  return ctx.reply(302, undefined, { location: target, 'cache-control': 'no-store' });
}

/**
 * A path that stays on this origin: `//evil.example/x` (or `/\\evil...`) would be read by browsers
 * as another host, so leading slashes and backslashes collapse to one slash.
 */
export function localPath(path: string): string {
  return `/${path.replace(/^[/\\]+/, '')}`;
}
