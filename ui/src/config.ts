/**
 * Runtime settings the gateway writes into /kconfig.js (window.K_CONFIG), as Kong Manager reads
 * them: where the Admin API is, the path the UI is served under, and where the proxy answers
 * (for the issuer pages' "test sign-in" links).
 */
declare global {
  interface Window {
    K_CONFIG?: Record<string, string>;
  }
}

function read(key: string): string | null {
  const v = window.K_CONFIG?.[key];
  return v === undefined || v === null || v === '' ? null : String(v);
}

function withProtocol(url: string): string {
  return /^(https?:)?\/\//.test(url) ? url.replace(/\/+$/, '') : `${window.location.protocol}//${url.replace(/\/+$/, '')}`;
}

export const config = {
  /** Path the UI is served under, with no trailing slash ('' for the root). */
  get guiPath(): string {
    return (read('ADMIN_GUI_PATH') ?? '/').replace(/\/+$/, '');
  },
  get adminApiUrl(): string {
    const url = read('ADMIN_API_URL');
    if (url) return withProtocol(url);
    const port = read('ADMIN_API_PORT') ?? '8001';
    return `${window.location.protocol}//${window.location.hostname}:${port}`;
  },
  get proxyUrl(): string {
    const url = read('PROXY_URL');
    if (url) return withProtocol(url);
    const port = read('PROXY_PORT') ?? '8000';
    return `${window.location.protocol}//${window.location.hostname}:${port}`;
  },
};
