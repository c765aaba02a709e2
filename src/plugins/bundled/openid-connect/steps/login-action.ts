/**
 * `login_action` for the methods of `login_methods` other than the code flow (which applies it
 * at its callback, browser/authcode.ts): after the request authenticated (and its session was
 * saved), `response` answers with the `login_tokens`, `redirect` sends the browser on with them.
 */
import type { Reply, RequestContext } from '../../../sdk.ts';
import { loginReply, loginSettings, type LoginSettings } from '../browser/login.ts';
import type { OidcConfig } from '../schema.ts';
import type { Outcome } from '../runtime.ts';

const settingsOf = new WeakMap<OidcConfig, LoginSettings>();

/** Whether this configuration applies a login action to any method but the code flow. */
export function appliesLoginAction(cfg: OidcConfig): boolean {
  return cfg.login_action !== 'upstream' && cfg.login_methods.some((m) => m !== 'authorization_code');
}

/** The login reply for this request's outcome, or null (the request goes on upstream). */
export function loginActionReply(cfg: OidcConfig, ctx: RequestContext, outcome: Outcome, clientIndex: number): Reply | null {
  if (outcome.method === 'authorization_code') return null;
  let s = settingsOf.get(cfg);
  if (s === undefined) settingsOf.set(cfg, (s = loginSettings(cfg)));
  return loginReply(ctx, s, outcome.method, {
    tokens: outcome.tokens as Readonly<Record<string, unknown>>,
    introspection: outcome.introspection,
    clientIndex,
    path: ctx.request.path,
    query: ctx.request.rawQuery,
  });
}
