/**
 * The demo IdP's HTML pages: sign-in form, RP-initiated logout confirmation, errors.
 * Self-contained (no external fonts, scripts or styles) so tests never touch the network.
 */

const style = `body{font-family:system-ui,sans-serif;max-width:22rem;margin:3rem auto;padding:0 1rem}
label,input,button{display:block;width:100%;margin:.4rem 0}input,button{padding:.5rem;box-sizing:border-box}
.error{color:#b00020}`;

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${style}</style></head>
<body>${body}</body></html>`;
}

/** The sign-in form posted back to `/interaction/:uid/login`. */
export function loginPage(opts: { uid: string; clientId: string; error?: string; login?: string }): string {
  const error = opts.error ? `<p class="error" role="alert">${escapeHtml(opts.error)}</p>` : '';
  return page('Sign in', `<h1>Sign in</h1>
<p>to continue to <strong>${escapeHtml(opts.clientId)}</strong></p>${error}
<form method="post" action="/interaction/${encodeURIComponent(opts.uid)}/login" autocomplete="off">
<label for="login">Username</label><input id="login" name="login" type="text" required autofocus value="${escapeHtml(opts.login ?? '')}">
<label for="password">Password</label><input id="password" name="password" type="password" required>
<button type="submit">Sign in</button>
</form>`);
}

/**
 * RP-initiated logout: oidc-provider gives us its form (with its CSRF token); we add the
 * "yes, log out" answer and submit it at once, so a browser following the RP's logout redirect
 * lands back at post_logout_redirect_uri without a click. Without JavaScript the button works.
 */
export function logoutPage(form: string): string {
  return page('Signing out', `${form}
<p>Signing you out…</p>
<input type="hidden" name="logout" value="yes" form="op.logoutForm">
<button type="submit" form="op.logoutForm">Sign out</button>
<script>document.getElementById('op.logoutForm').submit()</script>`);
}

export function loggedOutPage(clientId: string | undefined): string {
  const who = clientId ? ` from ${escapeHtml(clientId)}` : '';
  return page('Signed out', `<h1>Signed out</h1><p>You have been signed out${who}.</p>`);
}

export function errorPage(error: string, description: string | undefined): string {
  return page('Error', `<h1>Error</h1><p class="error">${escapeHtml(error)}</p>${
    description ? `<p>${escapeHtml(description)}</p>` : ''}`);
}
