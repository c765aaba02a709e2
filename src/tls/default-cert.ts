/**
 * Kong's fallback certificate: when `ssl_cert`/`ssl_cert_key` are not set, a self-signed RSA and
 * an ECDSA certificate are generated at first start and kept in `<prefix>/ssl/`
 * (kong-default.crt/.key, kong-default-ecdsa.crt/.key), so every later start and every worker
 * serves the same ones.
 */
import { webcrypto } from 'node:crypto';

type KeyGen = webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams;
type Signing = webcrypto.Algorithm | webcrypto.EcdsaParams;
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface DefaultCertificate {
  cert: string;
  key: string;
  cert_alt: string;
  key_alt: string;
}

function toPem(der: ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

async function generate(alg: KeyGen, signing: Signing): Promise<{ cert: string; key: string }> {
  // Loaded only when a certificate is generated (first start). @peculiar/x509 resolves its ASN.1
  // helpers through tsyringe, which needs the Reflect metadata API.
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair;
  const now = new Date();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(12))).toString('hex'),
    name: 'CN=localhost, OU=IT Department, O=Portcullis, L=San Francisco, ST=California, C=US',
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + 10 * 365 * 24 * 3600_000),
    keys,
    signingAlgorithm: signing,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'localhost' }])],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { cert: cert.toString('pem') + '\n', key: toPem(pkcs8, 'PRIVATE KEY') };
}

function writeAtomically(file: string, text: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, file);
}

/** Reads the default certificates from `<prefix>/ssl`, generating them the first time. */
export async function defaultCertificate(prefix: string): Promise<DefaultCertificate> {
  const dir = join(prefix, 'ssl');
  const files = {
    cert: join(dir, 'kong-default.crt'), key: join(dir, 'kong-default.key'),
    cert_alt: join(dir, 'kong-default-ecdsa.crt'), key_alt: join(dir, 'kong-default-ecdsa.key'),
  };
  if (!existsSync(files.cert) || !existsSync(files.key)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const rsa = await generate({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, { name: 'RSASSA-PKCS1-v1_5' });
    writeAtomically(files.key, rsa.key, 0o600);
    writeAtomically(files.cert, rsa.cert, 0o644);
  }
  if (!existsSync(files.cert_alt) || !existsSync(files.key_alt)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const ec = await generate({ name: 'ECDSA', namedCurve: 'P-256' }, { name: 'ECDSA', hash: 'SHA-256' } as webcrypto.EcdsaParams);
    writeAtomically(files.key_alt, ec.key, 0o600);
    writeAtomically(files.cert_alt, ec.cert, 0o644);
  }
  return {
    cert: readFileSync(files.cert, 'utf8'), key: readFileSync(files.key, 'utf8'),
    cert_alt: readFileSync(files.cert_alt, 'utf8'), key_alt: readFileSync(files.key_alt, 'utf8'),
  };
}
