/** Self-signed certificates for TLS tests, made with the openssl CLI in a temp dir. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { webcrypto } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SelfSigned {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

export function selfSigned(commonName = 'localhost'): SelfSigned {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-cert-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2',
    '-subj', `/CN=${commonName}`, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ], { stdio: 'ignore' });
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile };
}

export interface IssuedCert {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
  /** For signing further certificates. */
  keys: webcrypto.CryptoKeyPair;
  subject: string;
  /** Serial number, lower-case hex. */
  serial: string;
}

export interface IssueOptions {
  /** Subject CN; also the DNS name unless `dns` is given. */
  cn: string;
  dns?: string[];
  /** rsa (2048) or ec (P-256). */
  type?: 'rsa' | 'ec';
  /** Signed by this CA (default: self-signed). */
  ca?: IssuedCert;
  /** A CA certificate (basicConstraints CA:TRUE). */
  isCa?: boolean;
  /** Validity relative to now, in days (a negative end makes an expired certificate). */
  startDays?: number;
  endDays?: number;
  /** Authority Information Access: the OCSP responder URL. */
  ocspUrl?: string;
  /** CRL Distribution Points: the CRL URL. */
  crlUrl?: string;
  /** A delegated OCSP responder certificate (extended key usage OCSPSigning only). */
  ocspSigning?: boolean;
}

function pem(der: ArrayBuffer, label: string): string {
  return `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

/** A certificate made with @peculiar/x509 (WebCrypto): self-signed or signed by `ca`, RSA or ECDSA. */
export async function issueCert(o: IssueOptions): Promise<IssuedCert> {
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const type = o.type ?? 'rsa';
  const alg = type === 'rsa'
    ? { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }
    : { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair;
  const signerType = o.ca ? (o.ca.keys.privateKey.algorithm.name === 'ECDSA' ? 'ec' : 'rsa') : type;
  const signingAlgorithm = signerType === 'rsa' ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } : { name: 'ECDSA', hash: 'SHA-256' };
  const dns = o.dns ?? (o.isCa ? [] : [o.cn]);
  const extensions: InstanceType<typeof x509.Extension>[] = [new x509.BasicConstraintsExtension(o.isCa === true, undefined, true)];
  if (o.isCa) extensions.push(new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true));
  else extensions.push(new x509.ExtendedKeyUsageExtension(o.ocspSigning ? ['1.3.6.1.5.5.7.3.9'] : ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
  if (o.ocspUrl) extensions.push(new x509.AuthorityInfoAccessExtension({ ocsp: o.ocspUrl }));
  if (o.crlUrl) extensions.push(new x509.CRLDistributionPointsExtension([o.crlUrl]));
  if (dns.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(dns.map((d) => (/^[\d.]+$/.test(d) ? { type: 'ip' as const, value: d } : { type: 'dns' as const, value: d }))));
  const subject = `CN=${o.cn}`;
  const notBefore = new Date(Date.now() + (o.startDays ?? -1) * 86400_000);
  const notAfter = new Date(Date.now() + (o.endDays ?? 30) * 86400_000);
  const serialNumber = Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex').replace(/^[89a-f]/, '1');
  const cert = o.ca
    ? await x509.X509CertificateGenerator.create({ serialNumber, subject, issuer: o.ca.subject, notBefore, notAfter, signingAlgorithm, publicKey: keys.publicKey, signingKey: o.ca.keys.privateKey, extensions })
    : await x509.X509CertificateGenerator.createSelfSigned({ serialNumber, name: subject, notBefore, notAfter, signingAlgorithm, keys, extensions });
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-cert-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const certPem = `${cert.toString('pem')}\n`;
  const keyPem = pem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
  writeFileSync(certFile, certPem);
  writeFileSync(keyFile, keyPem);
  return { cert: certPem, key: keyPem, certFile, keyFile, keys, subject, serial: cert.serialNumber.toLowerCase() };
}
