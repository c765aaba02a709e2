/**
 * Certificate and key checks with node:crypto, worded as Kong words them (certificates,
 * ca_certificates and the `certificate`/`key` typedefs). Pure functions: each returns the parsed
 * material or throws a PemError naming what is wrong.
 */
import { X509Certificate, createHash, createPrivateKey, type KeyObject } from 'node:crypto';

export class PemError extends Error {
  override name = 'PemError';
}

/** A PEM that parses but fails one of Kong's entity checks (reported under `@entity`, not the field). */
export class PemEntityCheckError extends PemError {
  override name = 'PemEntityCheckError';
}

const certBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The PEM blocks of a bundle (leaf first), each parsed; throws `invalid certificate: ...`. */
export function parseCertificates(pem: string): X509Certificate[] {
  if (typeof pem !== 'string' || !pem.includes('-----BEGIN CERTIFICATE-----')) throw new PemError('invalid certificate: not a PEM certificate');
  const blocks = pem.match(certBlock);
  if (blocks === null) throw new PemError('invalid certificate: not a PEM certificate');
  return blocks.map((b) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      throw new PemError(`invalid certificate: ${(err as Error).message}`);
    }
  });
}

/** A private key in PEM; an encrypted key is refused (there is no passphrase to open it). */
export function parsePrivateKey(pem: string): KeyObject {
  if (typeof pem !== 'string' || !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) throw new PemError('invalid key: not a PEM private key');
  if (pem.includes('ENCRYPTED')) throw new PemError('invalid key: encrypted keys are not supported');
  try {
    return createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new PemError(`invalid key: ${(err as Error).message}`);
  }
}

export type KeyKind = 'rsa' | 'ec' | 'other';

export function keyKind(key: KeyObject): KeyKind {
  const t = key.asymmetricKeyType;
  if (t === 'rsa' || t === 'rsa-pss') return 'rsa';
  if (t === 'ec' || t === 'ed25519' || t === 'ed448') return 'ec';
  return 'other';
}

/** True when the leaf certificate's public key is the public half of `key`. */
export function keyMatches(cert: X509Certificate, key: KeyObject): boolean {
  return cert.checkPrivateKey(key);
}

export interface CheckedPair {
  leaf: X509Certificate;
  kind: KeyKind;
  /** The leaf's notAfter is in the past (Kong accepts it; we warn). */
  expired: boolean;
}

export interface PairIssue {
  /** A field name, or '@entity' for a check across fields (Kong's entity_checks). */
  field: string;
  message: string;
}

/** Checks one cert/key pair; issues name `certField`/`keyField`, a mismatch goes under @entity. */
export function checkPair(cert: unknown, key: unknown, certField: string, keyField: string, mismatch: string, now = Date.now()): { pair: CheckedPair | null; issues: PairIssue[] } {
  const issues: PairIssue[] = [];
  let leaf: X509Certificate | null = null;
  let pk: KeyObject | null = null;
  try {
    leaf = parseCertificates(String(cert))[0];
  } catch (err) {
    issues.push({ field: certField, message: (err as Error).message });
  }
  try {
    pk = parsePrivateKey(String(key));
  } catch (err) {
    issues.push({ field: keyField, message: (err as Error).message });
  }
  if (leaf === null || pk === null) return { pair: null, issues };
  if (!keyMatches(leaf, pk)) {
    issues.push({ field: '@entity', message: mismatch });
    return { pair: null, issues };
  }
  return { pair: { leaf, kind: keyKind(pk), expired: Date.parse(leaf.validTo) < now }, issues };
}

/** Kong's ca_certificates checks: one certificate, not expired, a CA. */
export function checkCaCertificate(pem: unknown, now = Date.now()): { cert: X509Certificate; digest: string } {
  const text = String(pem);
  const certs = parseCertificates(text);
  // Kong's custom_entity_check of ca_certificates: its answers go under @entity.
  if (certs.length > 1) throw new PemEntityCheckError('please submit only one certificate at a time');
  const cert = certs[0];
  if (Date.parse(cert.validTo) < now) throw new PemEntityCheckError('certificate expired, "Not After" time is in the past');
  if (!cert.ca) throw new PemEntityCheckError('certificate does not appear to be a CA because it is missing the "CA" basic constraint');
  return { cert, digest: certDigest(cert) };
}

/** SHA-256 of the DER, hex (Kong's ca_certificates.cert_digest). */
export function certDigest(cert: X509Certificate): string {
  return createHash('sha256').update(cert.raw).digest('hex');
}

/** RFC 8705 x5t#S256: SHA-256 of the DER, base64url without padding. */
export function thumbprintS256(der: Buffer): string {
  return createHash('sha256').update(der).digest('base64url');
}
