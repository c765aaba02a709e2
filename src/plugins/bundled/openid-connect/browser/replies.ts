/**
 * Local replies of the browser flows: Kong-shaped failures (`{"message": ...}`, reference §5.4),
 * the `*_redirect_uri` alternatives, an HTML error page for people, and the test that tells a
 * top-level navigation from a script request (Fetch Metadata, `Sec-Fetch-Mode`).
 */
import type { Reply, RequestContext } from '../../../sdk.ts';
import { perClient, type ResolvedConfig } from './config.ts';
import { quoteSafe, quotedStringContent } from '../errors.ts';

export const failureKinds = ['unauthorized', 'forbidden', 'unexpected'] as const;
export type FailureKind = (typeof failureKinds)[number];

/**
 * True when the request looks like a person's top-level navigation, which may be redirected to the
 * IdP. Script requests (fetch/XHR) get a 401 instead: a redirect to a cross-origin login page is
 * useless to them and, followed by CORS rules, only produces an opaque error.
 */
export function isNavigation(ctx: RequestContext): boolean {
  const mode = ctx.request.header('sec-fetch-mode');
  if (mode !== undefined && mode.toLowerCase() !== 'navigate') return false;
  if (ctx.request.header('x-requested-with') !== undefined) return false;
  const accept = (ctx.request.header('accept') ?? '').toLowerCase();
  if (accept.includes('application/json') && !accept.includes('text/html')) return false;
  return true;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function wantsHtml(ctx: RequestContext): boolean {
  return (ctx.request.header('accept') ?? '').toLowerCase().includes('text/html');
}

/**
 * RFC 6750 §3 challenge, as the API methods' (errors.ts): the realm is the request's host; the
 * error code only with `expose_error_code` and never when no credential was sent (§3.1);
 * `display_errors` adds the reason as `error_description`.
 */
function challenge(ctx: RequestContext, cfg: ResolvedConfig, error: string | null, reason: string): string {
  let value = `Bearer realm="${quotedStringContent(ctx.request.host || 'portcullis')}"`;
  if (error && cfg.exposeErrorCode) {
    value += `, error="${error}"`;
    if (cfg.displayErrors) value += `, error_description="${quoteSafe(reason)}"`;
  }
  return value;
}

export interface FailureOptions {
  /** Private reason for the log; shown to the client only with `display_errors`. */
  reason: string;
  /** RFC 6750 error code for the challenge. */
  error?: string | null;
  clientIndex: number;
}

/**
 * A failure reply: a redirect to the configured `<kind>_redirect_uri` when there is one, else
 * 401/403/500 with Kong's message (an HTML page when the client is a browser). Never redirects to
 * anything but a configured target.
 */
export function failureReply(ctx: RequestContext, cfg: ResolvedConfig, kind: FailureKind, opts: FailureOptions): Reply {
  const target = perClient(
    kind === 'unauthorized' ? cfg.unauthorizedRedirectUri : kind === 'forbidden' ? cfg.forbiddenRedirectUri : cfg.unexpectedRedirectUri,
    opts.clientIndex,
  );
  ctx.log.info({ kind, reason: opts.reason }, 'openid-connect: browser flow failed');
  if (target) return ctx.reply(302, undefined, { location: target, 'cache-control': 'no-store' });
  const status = kind === 'unauthorized' ? 401 : kind === 'forbidden' ? 403 : 500;
  const message = kind === 'unauthorized' ? cfg.unauthorizedMessage : kind === 'forbidden' ? cfg.forbiddenMessage : 'An unexpected error occurred';
  const headers: Record<string, string> = { 'cache-control': 'no-store' };
  if (status === 401) headers['www-authenticate'] = challenge(ctx, cfg, opts.error ?? null, opts.reason);
  if (status === 403) headers['www-authenticate'] = challenge(ctx, cfg, 'insufficient_scope', opts.reason);
  if (wantsHtml(ctx)) {
    headers['content-type'] = 'text/html; charset=utf-8';
    const detail = cfg.displayErrors ? `<p>${escapeHtml(opts.reason)}</p>` : '';
    const body =
      `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(message)}</title></head>` +
      `<body><h1>${status} ${escapeHtml(message)}</h1>${detail}<p>Sign-in could not be completed. ` +
      `Close this page and try again from the start.</p></body></html>`;
    return ctx.reply(status, body, headers);
  }
  // As the API methods' replies (errors.ts): the reason as `error_description` with display_errors.
  return ctx.reply(status, cfg.displayErrors ? { message, error_description: opts.reason } : { message }, headers);
}
