/**
 * TLS for the proxy listeners: the file/default certificate (Kong's ssl_cert/ssl_cert_key, or one
 * generated in the prefix directory) and the CertificateStore built from it.
 */
import { readFileSync } from 'node:fs';
import { defaultCertificate } from './default-cert.ts';
import { checkPair } from './pem.ts';
import { CertificateStore, type ClientCertMode, type TlsMaterial } from './store.ts';
import type { ConfigData, Service } from '../config/types.ts';
import type { UpstreamTls } from '../proxy/pools.ts';

export interface ServerTlsSettings {
  sslCert: string | null;
  sslCertKey: string | null;
  prefix: string;
  sslProtocols: { minVersion: 'TLSv1.2' | 'TLSv1.3'; maxVersion: 'TLSv1.2' | 'TLSv1.3' };
  sslCiphers: string | null;
  sslVerifyClient: ClientCertMode;
}

/** The certificate served when no SNI matches: the configured files, else the generated pair. */
export async function fallbackCertificate(s: ServerTlsSettings): Promise<{ cert: string; key: string; cert_alt?: string; key_alt?: string }> {
  if ((s.sslCert === null) !== (s.sslCertKey === null)) {
    throw new Error('PORTCULLIS_SSL_CERT and PORTCULLIS_SSL_CERT_KEY must be set together');
  }
  if (s.sslCert !== null && s.sslCertKey !== null) {
    const cert = readFileSync(s.sslCert, 'utf8');
    const key = readFileSync(s.sslCertKey, 'utf8');
    const { issues } = checkPair(cert, key, 'PORTCULLIS_SSL_CERT', 'PORTCULLIS_SSL_CERT_KEY', 'PORTCULLIS_SSL_CERT does not match PORTCULLIS_SSL_CERT_KEY');
    if (issues.length > 0) throw new Error(issues.map((i) => `${i.field === '@entity' ? '' : `${i.field}: `}${i.message}`).join('; '));
    return { cert, key };
  }
  return defaultCertificate(s.prefix);
}

export async function certificateStore(s: ServerTlsSettings): Promise<CertificateStore> {
  return new CertificateStore(await fallbackCertificate(s), {
    minVersion: s.sslProtocols.minVersion,
    maxVersion: s.sslProtocols.maxVersion,
    ...(s.sslCiphers !== null ? { ciphers: s.sslCiphers } : {}),
    clientCert: s.sslVerifyClient,
  });
}

/** What the certificate store needs from a config: certificates, SNIs, CA certificates. */
export function tlsMaterial(data: ConfigData): TlsMaterial {
  const d = data as Partial<Record<'certificates' | 'snis' | 'ca_certificates', unknown[]>>;
  return {
    certificates: (d.certificates ?? []) as TlsMaterial['certificates'],
    snis: (d.snis ?? []) as TlsMaterial['snis'],
    caCertificates: ((d.ca_certificates ?? []) as Array<{ cert: string }>).map((c) => c.cert),
  };
}

/**
 * Resolves services' `ca_certificates` (CA certificate ids) and `client_certificate` (a
 * certificate id) to PEM for the upstream pools. A balanced service without a client_certificate
 * of its own presents its upstream's (Kong: the service's wins). The config is validated before
 * this runs, so every id resolves.
 */
export function upstreamTlsResolver(data: ConfigData): (s: Service, upstream?: { client_certificate: { id: string } | null } | null) => UpstreamTls | null {
  const certs = certificatesById(data);
  const cas = new Map(((data as Partial<Record<'ca_certificates', Array<{ id: string; cert: string }>>>).ca_certificates ?? []).map((c) => [c.id, c.cert]));
  return (s, upstream) => {
    const ids = s.ca_certificates ?? [];
    const ref = s.client_certificate ?? upstream?.client_certificate ?? null;
    const client = ref === null ? undefined : certs.get(ref.id);
    if (ids.length === 0 && client === undefined) return null;
    return {
      ca: ids.map((id) => cas.get(id)).filter((pem): pem is string => pem !== undefined),
      clientCert: client === undefined ? null : { cert: client.cert, key: client.key },
    };
  };
}

/** Certificate entities by id (PEM cert and key). */
export function certificatesById(data: ConfigData): Map<string, { cert: string; key: string }> {
  const d = data as Partial<Record<'certificates', Array<{ id: string; cert: string; key?: string }>>>;
  return new Map((d.certificates ?? []).map((c) => [c.id, { cert: c.cert, key: c.key ?? '' }]));
}
