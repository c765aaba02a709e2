/**
 * The demo IdP's interaction endpoints: a sign-in form for the `login` prompt and automatic
 * consent for the `consent` prompt (every demo client is first-party).
 *
 *   GET  /interaction/:uid        → sign-in form, or consent granted and redirect back
 *   POST /interaction/:uid/login  → check credentials, finish the login prompt
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import { authenticate } from './idp-accounts.ts';
import { loginPage } from './idp-pages.ts';

const maxFormBytes = 16 * 1024;

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxFormBytes) throw new Error('form too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    // No external assets and no scripts on the sign-in page. No `form-action` directive: Chromium
    // applies it to the whole redirect chain after the POST, which ends at the relying party's
    // redirect_uri on another origin and would be blocked.
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
  });
  res.end(html);
}

/** Grants whatever the consent prompt says is missing (scopes, claims, resource scopes). */
async function autoConsent(provider: Provider, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  const accountId = details.session?.accountId;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: details.params.client_id });
  const missing = details.prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes as Record<string, string[]>)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  const grantId: string = await grant.save();
  const consent = details.grantId ? {} : { grantId };
  await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

/** Serves one request under /interaction/. Errors propagate to the caller (500 page). */
export async function handleInteraction(
  provider: Provider, req: IncomingMessage, res: ServerResponse, pathname: string,
): Promise<void> {
  const parts = pathname.split('/').filter(Boolean); // ['interaction', uid, 'login'?]
  const uid = parts[1] ?? '';

  if (req.method === 'GET' && parts.length === 2) {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new Error('interaction mismatch');
    if (details.prompt.name === 'login') {
      sendHtml(res, 200, loginPage({ uid, clientId: String(details.params.client_id) }));
      return;
    }
    if (details.prompt.name === 'consent') {
      await autoConsent(provider, req, res);
      return;
    }
    throw new Error(`unsupported prompt ${details.prompt.name}`);
  }

  if (req.method === 'POST' && parts.length === 3 && parts[2] === 'login') {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid || details.prompt.name !== 'login') throw new Error('interaction mismatch');
    const form = await readForm(req);
    const user = authenticate(form.get('login'), form.get('password'));
    if (!user) {
      sendHtml(res, 401, loginPage({
        uid, clientId: String(details.params.client_id), error: 'Invalid username or password.',
        login: form.get('login') ?? '',
      }));
      return;
    }
    await provider.interactionFinished(req, res, {
      login: { accountId: user.sub, amr: ['pwd'] },
    }, { mergeWithLastSubmission: false });
    return;
  }

  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
  res.end('not found');
}
