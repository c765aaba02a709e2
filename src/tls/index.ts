/**
 * TLS for the proxy listeners: the file/default certificate (Kong's ssl_cert/ssl_cert_key, or one
 * generated in the prefix directory) and the CertificateStore built from it.
 */
import { readFileSync } from 'node:fs';
import { defaultCertificate } from './default-cert.ts';
import { checkPair } from './pem.ts';
import { CertificateStore, type ClientCertMode, type TlsMaterial } from './store.ts';
import type { ConfigData } from '../config/types.ts';

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
