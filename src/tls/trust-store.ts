/**
 * Kong's `lua_ssl_trusted_certificate` (PORTCULLIS_LUA_SSL_TRUSTED_CERTIFICATE): the certificate
 * authorities the gateway's own outbound TLS connections trust — the identity provider calls of
 * openid-connect (with `ssl_verify`), Redis with `ssl_verify`, OTLP collectors and any other
 * client a plugin opens without a trust store of its own.
 *
 * Kong's value: a comma-separated list whose items are `system` (the usual trust store), the
 * path of a PEM file (a bundle may hold several certificates), a PEM certificate itself, or a
 * PEM certificate in base64. Default `system`. Without `system` in the list, only the listed
 * certificates are trusted, as in Kong.
 *
 * Applied once per process as Node's default CA list (`tls.setDefaultCACertificates`), so every
 * TLS client made without an explicit `ca` follows it. `system` is Node's default list (its
 * bundled roots, plus NODE_EXTRA_CA_CERTS). Difference from Kong: being process-wide, it is also
 * what upstream TLS verification trusts when a service has no `ca_certificates` and
 * PORTCULLIS_UPSTREAM_CA_FILE is unset (Kong's nginx has no default trust store there).
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import tls from 'node:tls';
import { parseCertificates } from './pem.ts';

/** What the setting asks for: null = `system` alone (Node's default list, left as it is). */
export interface TrustedCertificates {
  /** `system` is in the list. */
  readonly system: boolean;
  /** The listed certificates, one PEM each. */
  readonly pems: readonly string[];
}

/** Parses the setting's value; throws an Error naming the item that is not a certificate. */
export function parseTrustedCertificates(value: string | undefined): TrustedCertificates | null {
  const items = (value ?? 'system').split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new Error('lua_ssl_trusted_certificate: is empty (use system, or certificate files)');
  if (items.every((i) => i === 'system')) return null;
  const pems: string[] = [];
  for (const item of items) {
    if (item === 'system') continue;
    pems.push(...certificatesOf(item));
  }
  return { system: items.includes('system'), pems };
}

function certificatesOf(item: string): string[] {
  let text: string;
  let what: string;
  if (existsSync(item)) {
    what = resolve(item);
    try {
      text = readFileSync(item, 'utf8');
    } catch (err) {
      throw new Error(`lua_ssl_trusted_certificate: cannot read ${what}: ${(err as Error).message}`);
    }
  } else if (item.includes('-----BEGIN')) {
    what = 'a certificate given in the value';
    text = item;
  } else {
    const decoded = /^[A-Za-z0-9+/=\s]+$/.test(item) ? Buffer.from(item, 'base64').toString('utf8') : '';
    if (!decoded.includes('-----BEGIN CERTIFICATE-----')) {
      throw new Error(`lua_ssl_trusted_certificate: failed loading certificate from ${item.length > 80 ? `${item.slice(0, 80)}…` : item} (not a file, a PEM certificate or a base64 PEM certificate)`);
    }
    what = 'a base64 certificate given in the value';
    text = decoded;
  }
  try {
    return parseCertificates(text).map((c) => c.toString());
  } catch (err) {
    throw new Error(`lua_ssl_trusted_certificate: failed loading certificate from ${what}: ${(err as Error).message}`);
  }
}

/** Makes the list this process's default CA certificates (nothing to do for `system` alone). */
export function applyTrustedCertificates(t: TrustedCertificates | null): void {
  if (t === null) return;
  tls.setDefaultCACertificates([...(t.system ? tls.getCACertificates('default') : []), ...t.pems]);
}
