/**
 * Revocation checks of the client certificate that `proof_of_possession_mtls_from_header` reads
 * from a header (`revocation_check_mode`, Kong 3.15):
 *
 * - OCSP (RFC 6960) when the certificate's Authority Information Access names a responder: a
 *   POSTed request for the certificate (SHA-1 CertID, a nonce), a `basic` response signed by the
 *   issuing CA or by a responder certificate that CA issued for OCSP signing (RFC 6960 §4.2.2.2),
 *   the nonce compared when the responder echoes one, `thisUpdate` / `nextUpdate` honoured.
 * - Otherwise (or when the responder gives no usable answer) the CRL of the CRL Distribution
 *   Points (RFC 5280 §5): signed by the issuing CA, within `thisUpdate` / `nextUpdate`, the
 *   certificate's serial number looked up.
 *
 * What each answer means (`verdict`):
 * - good: the request goes on;
 * - revoked: refused in both modes;
 * - invalid (a response that cannot be trusted: a bad signature, a signer the CA did not
 *   authorize, a nonce or certificate that does not match): refused in both modes. Kong's
 *   IGNORE_CA_ERROR forgives the CA being unreachable, not a wrong answer;
 * - unavailable (network error, timeout, HTTP error status, an unparseable body, an OCSP error
 *   status such as tryLater, `unknown` status, a response or CRL past its `nextUpdate`, a
 *   certificate that names neither an OCSP responder nor a CRL): refused with STRICT only.
 *
 * Only the header's leaf certificate is checked (against its issuer in the verified chain).
 * Answers are remembered per certificate (SHA-256 fingerprint) for `cert_cache_ttl` ms (a good
 * answer no longer than its `nextUpdate`), at most `CACHE_ENTRIES` of them; concurrent requests
 * with the same certificate share one check. Every fetch is bounded by `http_timeout` ms and goes
 * through `http_proxy_host:port` (http URLs, absolute-form requests) or `https_proxy_host:port`
 * (https URLs, CONNECT tunnels) when set. `ssl_verify` verifies an https responder's or CRL
 * server's certificate against Node's default CA store plus the record's `ca_certificates`.
 *
 * The ASN.1 codecs (@peculiar/asn1-*) are loaded on the first check.
 */
import { X509Certificate, createHash, randomBytes, verify as verifySignature } from 'node:crypto';
import { getCACertificates } from 'node:tls';
import { ProxyAgent, request, type Dispatcher } from 'undici';
import { OriginPools } from '../../origin-pools.ts';
import type { Sync } from './runtime.ts';

/** The record fields a check reads (`proof_of_possession_mtls_from_header`). */
export interface RevocationSettings {
  revocation_check_mode: 'IGNORE_CA_ERROR' | 'SKIP' | 'STRICT';
  cert_cache_ttl: number;
  http_timeout: number;
  http_proxy_host: string | null;
  http_proxy_port: number | null;
  https_proxy_host: string | null;
  https_proxy_port: number | null;
  ssl_verify: boolean;
}

/** What the responder or CRL said, or why it said nothing usable. */
export type Answer =
  | { kind: 'good'; source: 'ocsp' | 'crl'; nextUpdate: number | null }
  | { kind: 'revoked'; source: 'ocsp' | 'crl' }
  | { kind: 'invalid'; why: string }
  | { kind: 'unavailable'; why: string };

/** Answers remembered per plugin instance. */
export const CACHE_ENTRIES = 1000;
/** The largest OCSP response and CRL read (bytes). */
const OCSP_LIMIT = 1 << 20;
const CRL_LIMIT = 16 << 20;
/** Clock difference tolerated on thisUpdate / nextUpdate (ms). */
const SKEW = 5 * 60_000;

const OID = {
  sha1: '1.3.14.3.2.26',
  ocsp: '1.3.6.1.5.5.7.48.1',
  ocspBasic: '1.3.6.1.5.5.7.48.1.1',
  ocspNonce: '1.3.6.1.5.5.7.48.1.2',
  ocspSigning: '1.3.6.1.5.5.7.3.9',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  crlDistributionPoints: '2.5.29.31',
  extKeyUsage: '2.5.29.37',
} as const;

/** Signature algorithms: OID → the digest node:crypto verifies with (null: EdDSA, digest built in). */
const signatureDigests: ReadonlyMap<string, string | null> = new Map([
  ['1.2.840.113549.1.1.5', 'sha1'], ['1.2.840.113549.1.1.11', 'sha256'], ['1.2.840.113549.1.1.12', 'sha384'], ['1.2.840.113549.1.1.13', 'sha512'],
  ['1.2.840.10045.4.1', 'sha1'], ['1.2.840.10045.4.3.2', 'sha256'], ['1.2.840.10045.4.3.3', 'sha384'], ['1.2.840.10045.4.3.4', 'sha512'],
  ['1.3.101.112', null], ['1.3.101.113', null],
]);

/** CertID hash algorithms a responder may answer with. */
const certIdDigests: ReadonlyMap<string, string> = new Map([
  [OID.sha1, 'sha1'], ['2.16.840.1.101.3.4.2.1', 'sha256'], ['2.16.840.1.101.3.4.2.2', 'sha384'], ['2.16.840.1.101.3.4.2.3', 'sha512'],
]);

async function loadAsn() {
  const [s, x, o] = await Promise.all([import('@peculiar/asn1-schema'), import('@peculiar/asn1-x509'), import('@peculiar/asn1-ocsp')]);
  return {
    AsnConvert: s.AsnConvert, OctetString: s.OctetString,
    Certificate: x.Certificate, CertificateList: x.CertificateList, AlgorithmIdentifier: x.AlgorithmIdentifier, Extension: x.Extension,
    AuthorityInfoAccessSyntax: x.AuthorityInfoAccessSyntax, CRLDistributionPoints: x.CRLDistributionPoints, ExtendedKeyUsage: x.ExtendedKeyUsage,
    CertID: o.CertID, OCSPRequest: o.OCSPRequest, TBSRequest: o.TBSRequest, Request: o.Request, OCSPResponse: o.OCSPResponse,
    BasicOCSPResponse: o.BasicOCSPResponse, OCSPResponseStatus: o.OCSPResponseStatus,
  };
}
type Asn = Awaited<ReturnType<typeof loadAsn>>;
let asnModules: Promise<Asn> | null = null;
const asn = (): Promise<Asn> => (asnModules ??= loadAsn());

const bytes = (b: ArrayBuffer | ArrayBufferView): Buffer => (b instanceof ArrayBuffer ? Buffer.from(b) : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const digest = (alg: string, data: ArrayBuffer | ArrayBufferView): Buffer => createHash(alg).update(bytes(data)).digest();
/** INTEGER contents compared as numbers (a leading 0x00 pad does not count). */
const sameSerial = (a: ArrayBuffer, b: ArrayBuffer): boolean => {
  const strip = (x: Buffer) => (x.length > 1 && x[0] === 0 ? x.subarray(1) : x);
  return strip(bytes(a)).equals(strip(bytes(b)));
};

class FetchError extends Error {}

/** A certificate and its issuer, as the chain verification found them. */
export interface CheckedCertificate {
  leaf: X509Certificate;
  issuer: X509Certificate;
  /** PEMs of the record's `ca_certificates` (trusted for https fetches with `ssl_verify`). */
  caPems: readonly string[];
}

interface Pools {
  key: string;
  direct: OriginPools;
  http: ProxyAgent | null;
  https: ProxyAgent | null;
}

/** The revocation checks of one plugin instance (`revocation_check_mode` IGNORE_CA_ERROR or STRICT). */
export class RevocationChecker {
  readonly #s: RevocationSettings;
  readonly #now: () => number;
  readonly #cache = new Map<string, { answer: Answer; until: number }>();
  readonly #flights = new Map<string, Promise<Answer>>();
  #pools: Pools | null = null;

  constructor(settings: RevocationSettings, now: () => number) {
    this.#s = settings;
    this.#now = now;
  }

  get strict(): boolean {
    return this.#s.revocation_check_mode === 'STRICT';
  }

  /** Why the certificate is refused, or null; synchronous when the answer is remembered. */
  check(c: CheckedCertificate, log: { warn(obj: object, msg: string): void }): Sync<string | null> {
    const key = c.leaf.fingerprint256;
    const known = this.#cache.get(key);
    if (known !== undefined && known.until > this.#now()) return this.#verdict(known.answer);
    let flight = this.#flights.get(key);
    if (flight === undefined) {
      // (Anything unexpected while checking is an unavailable answer, not a gateway error.)
      flight = this.answer(c).catch((err: unknown): Answer => ({ kind: 'unavailable', why: `the check failed: ${reason(err)}` })).then((answer) => {
        this.#remember(key, answer);
        // Said once per check (not on each request the remembered answer serves).
        if (answer.kind === 'unavailable' && !this.strict) {
          log.warn({ reason: answer.why }, 'openid-connect: client certificate revocation status unavailable; the request goes on (revocation_check_mode IGNORE_CA_ERROR)');
        }
        return answer;
      }).finally(() => this.#flights.delete(key));
      this.#flights.set(key, flight);
    }
    return flight.then((a) => this.#verdict(a));
  }

  #remember(key: string, answer: Answer): void {
    const now = this.#now();
    let until = now + this.#s.cert_cache_ttl;
    if (answer.kind === 'good' && answer.nextUpdate !== null) until = Math.min(until, answer.nextUpdate);
    this.#cache.delete(key);
    if (until <= now) return;
    // Bounded: the oldest answer makes room.
    if (this.#cache.size >= CACHE_ENTRIES) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(key, { answer, until });
  }

  #verdict(a: Answer): string | null {
    switch (a.kind) {
      case 'good':
        return null;
      case 'revoked':
        return `the certificate is revoked (${a.source === 'ocsp' ? 'OCSP' : 'CRL'})`;
      case 'invalid':
        return `the revocation check failed: ${a.why}`;
      case 'unavailable':
        return this.strict ? `the revocation status is unavailable: ${a.why}` : null;
    }
  }

  /** The certificate's revocation status: OCSP first, then the CRL (a fresh check, not cached). */
  async answer(c: CheckedCertificate): Promise<Answer> {
    const m = await asn();
    const leaf = m.AsnConvert.parse(c.leaf.raw, m.Certificate);
    const issuer = m.AsnConvert.parse(c.issuer.raw, m.Certificate);
    const { ocsp, crl } = locations(m, leaf);
    let first: Answer | null = null;
    for (const url of ocsp) {
      const a = await this.#ocsp(m, url, leaf, issuer, c);
      if (a.kind !== 'unavailable') return a;
      first ??= a;
    }
    for (const url of crl) {
      const a = await this.#crl(m, url, leaf, issuer, c);
      if (a.kind !== 'unavailable') return a;
      first ??= a;
    }
    return first ?? { kind: 'unavailable', why: 'the certificate names no OCSP responder and no CRL distribution point' };
  }

  async #ocsp(m: Asn, url: string, leaf: InstanceType<Asn['Certificate']>, issuer: InstanceType<Asn['Certificate']>, c: CheckedCertificate): Promise<Answer> {
    const issuerName = bytes(m.AsnConvert.serialize(issuer.tbsCertificate.subject));
    const issuerKey = issuer.tbsCertificate.subjectPublicKeyInfo.subjectPublicKey;
    const serial = leaf.tbsCertificate.serialNumber;
    const certId = new m.CertID({
      hashAlgorithm: new m.AlgorithmIdentifier({ algorithm: OID.sha1, parameters: null }),
      issuerNameHash: new m.OctetString(digest('sha1', issuerName)),
      issuerKeyHash: new m.OctetString(digest('sha1', issuerKey)),
      serialNumber: serial,
    });
    const nonce = randomBytes(16);
    const nonceValue = bytes(m.AsnConvert.serialize(new m.OctetString(nonce)));
    const req = new m.OCSPRequest({
      tbsRequest: new m.TBSRequest({
        requestList: [new m.Request({ reqCert: certId })],
        requestExtensions: [new m.Extension({ extnID: OID.ocspNonce, critical: false, extnValue: new m.OctetString(nonceValue) })],
      }),
    });
    let body: Buffer;
    try {
      body = await this.#fetch(url, c.caPems, { method: 'POST', headers: { 'content-type': 'application/ocsp-request', accept: 'application/ocsp-response' }, body: bytes(m.AsnConvert.serialize(req)) }, OCSP_LIMIT);
    } catch (err) {
      return { kind: 'unavailable', why: `OCSP responder ${url}: ${reason(err)}` };
    }
    let basic: InstanceType<Asn['BasicOCSPResponse']>;
    try {
      const resp = m.AsnConvert.parse(body, m.OCSPResponse);
      if (resp.responseStatus !== 0) return { kind: 'unavailable', why: `OCSP responder ${url}: status ${m.OCSPResponseStatus[resp.responseStatus] ?? resp.responseStatus}` };
      if (resp.responseBytes?.responseType !== OID.ocspBasic) return { kind: 'unavailable', why: `OCSP responder ${url}: not a basic OCSP response` };
      basic = m.AsnConvert.parse(resp.responseBytes.response.buffer, m.BasicOCSPResponse);
    } catch {
      return { kind: 'unavailable', why: `OCSP responder ${url}: not an OCSP response` };
    }
    const data = basic.tbsResponseData;
    const signer = ocspSigner(m, basic, issuer, c.issuer, this.#now());
    if (typeof signer === 'string') return { kind: 'invalid', why: `OCSP response: ${signer}` };
    if (!signatureValid(basic.signatureAlgorithm.algorithm, basic.tbsResponseDataRaw!, signer, basic.signature)) {
      return { kind: 'invalid', why: 'OCSP response: the signature does not verify' };
    }
    // The nonce is optional (responders that pre-produce answers leave it out); echoed, it must match.
    const echoed = data.responseExtensions?.find((e) => e.extnID === OID.ocspNonce);
    if (echoed !== undefined) {
      const v = bytes(echoed.extnValue.buffer);
      if (!v.equals(nonceValue) && !v.equals(nonce)) return { kind: 'invalid', why: 'OCSP response: the nonce does not match the request' };
    }
    const single = data.responses.find((r) => {
      const alg = certIdDigests.get(r.certID.hashAlgorithm.algorithm);
      return alg !== undefined && sameSerial(r.certID.serialNumber, serial)
        && bytes(r.certID.issuerNameHash.buffer).equals(digest(alg, issuerName)) && bytes(r.certID.issuerKeyHash.buffer).equals(digest(alg, issuerKey));
    });
    if (single === undefined) return { kind: 'invalid', why: 'OCSP response: no answer for this certificate' };
    const now = this.#now();
    if (single.thisUpdate.getTime() > now + SKEW) return { kind: 'unavailable', why: `OCSP responder ${url}: the answer's thisUpdate is in the future` };
    if (single.nextUpdate !== undefined && single.nextUpdate.getTime() < now - SKEW) return { kind: 'unavailable', why: `OCSP responder ${url}: the answer is past its nextUpdate` };
    if (single.certStatus.revoked !== undefined) return { kind: 'revoked', source: 'ocsp' };
    if (single.certStatus.good !== undefined) return { kind: 'good', source: 'ocsp', nextUpdate: single.nextUpdate?.getTime() ?? null };
    return { kind: 'unavailable', why: `OCSP responder ${url}: status unknown` };
  }

  async #crl(m: Asn, url: string, leaf: InstanceType<Asn['Certificate']>, issuer: InstanceType<Asn['Certificate']>, c: CheckedCertificate): Promise<Answer> {
    let body: Buffer;
    try {
      body = await this.#fetch(url, c.caPems, { method: 'GET', headers: { accept: 'application/pkix-crl' } }, CRL_LIMIT);
    } catch (err) {
      return { kind: 'unavailable', why: `CRL ${url}: ${reason(err)}` };
    }
    let crl: InstanceType<Asn['CertificateList']>;
    try {
      const text = body.subarray(0, 64).toString('latin1');
      const der = text.includes('-----BEGIN') ? Buffer.from(body.toString('latin1').replace(/-----[^-]+-----|\s/g, ''), 'base64') : body;
      crl = m.AsnConvert.parse(der, m.CertificateList);
    } catch {
      return { kind: 'unavailable', why: `CRL ${url}: not a CRL` };
    }
    const tbs = crl.tbsCertList;
    if (!bytes(m.AsnConvert.serialize(tbs.issuer)).equals(bytes(m.AsnConvert.serialize(issuer.tbsCertificate.subject)))) {
      return { kind: 'invalid', why: `CRL ${url}: issued by another CA` };
    }
    if (!signatureValid(crl.signatureAlgorithm.algorithm, crl.tbsCertListRaw!, c.issuer, crl.signature)) {
      return { kind: 'invalid', why: `CRL ${url}: the signature does not verify` };
    }
    const now = this.#now();
    const next = tbs.nextUpdate?.getTime().getTime() ?? null;
    if (tbs.thisUpdate.getTime().getTime() > now + SKEW) return { kind: 'unavailable', why: `CRL ${url}: its thisUpdate is in the future` };
    if (next !== null && next < now - SKEW) return { kind: 'unavailable', why: `CRL ${url}: past its nextUpdate` };
    const serial = leaf.tbsCertificate.serialNumber;
    if ((tbs.revokedCertificates ?? []).some((r) => sameSerial(r.userCertificate, serial))) return { kind: 'revoked', source: 'crl' };
    return { kind: 'good', source: 'crl', nextUpdate: next };
  }

  /** One fetch: bounded by `http_timeout`, through the configured proxy, the body read up to `limit` bytes. */
  async #fetch(url: string, caPems: readonly string[], init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: Buffer }, limit: number): Promise<Buffer> {
    const u = new URL(url);
    const pools = this.#poolsFor(caPems);
    const dispatcher: Dispatcher = (u.protocol === 'https:' ? pools.https : pools.http) ?? pools.direct;
    const signal = AbortSignal.timeout(this.#s.http_timeout);
    const res = await request(u, { method: init.method, headers: init.headers, body: init.body, dispatcher, signal });
    if (res.statusCode < 200 || res.statusCode > 299) {
      res.body.resume();
      throw new FetchError(`HTTP ${res.statusCode}`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > limit) {
        res.body.destroy();
        throw new FetchError(`the answer is larger than ${limit} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  /** The connection pools for a set of trusted CA certificates (new ones when the set changes). */
  #poolsFor(caPems: readonly string[]): Pools {
    const key = caPems.join('\n');
    if (this.#pools !== null && this.#pools.key === key) return this.#pools;
    const old = this.#pools;
    if (old !== null) void Promise.all([old.direct.close(), old.http?.close(), old.https?.close()]).catch(() => undefined);
    const s = this.#s;
    const timeout = s.http_timeout;
    const tls = { rejectUnauthorized: s.ssl_verify, timeout, ...(s.ssl_verify ? { ca: [...getCACertificates('default'), ...caPems] } : {}) };
    const common = { headersTimeout: timeout, bodyTimeout: timeout };
    const proxyUrl = (host: string, port: number) => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.#pools = {
      key,
      direct: new OriginPools({ ...common, connect: tls }),
      // http:// URLs as absolute-form requests to the proxy, https:// ones through a CONNECT tunnel.
      http: s.http_proxy_host !== null && s.http_proxy_port !== null ? new ProxyAgent({ ...common, uri: proxyUrl(s.http_proxy_host, s.http_proxy_port), proxyTunnel: false, proxyTls: { timeout } }) : null,
      https: s.https_proxy_host !== null && s.https_proxy_port !== null ? new ProxyAgent({ ...common, uri: proxyUrl(s.https_proxy_host, s.https_proxy_port), proxyTunnel: true, requestTls: tls, proxyTls: { timeout } }) : null,
    };
    return this.#pools;
  }

  async close(): Promise<void> {
    const p = this.#pools;
    this.#pools = null;
    if (p !== null) await Promise.all([p.direct.close(), p.http?.close(), p.https?.close()]);
  }
}

function reason(err: unknown): string {
  if (err instanceof FetchError) return err.message;
  const e = err as { name?: string; code?: string; message?: string };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError' || /^UND_ERR_(CONNECT|HEADERS|BODY)_TIMEOUT$/.test(e?.code ?? '')) return 'timed out (http_timeout)';
  return e?.code ?? e?.message ?? 'fetch failed';
}

/** The http(s) OCSP responder and CRL URLs the certificate names. */
function locations(m: Asn, leaf: InstanceType<Asn['Certificate']>): { ocsp: string[]; crl: string[] } {
  const web = (u: string | undefined): u is string => u !== undefined && /^https?:\/\//i.test(u);
  const ocsp: string[] = [];
  const crl: string[] = [];
  for (const ext of leaf.tbsCertificate.extensions ?? []) {
    try {
      if (ext.extnID === OID.authorityInfoAccess) {
        for (const d of m.AsnConvert.parse(ext.extnValue.buffer, m.AuthorityInfoAccessSyntax)) {
          const u = d.accessLocation.uniformResourceIdentifier;
          if (d.accessMethod === OID.ocsp && web(u)) ocsp.push(u);
        }
      } else if (ext.extnID === OID.crlDistributionPoints) {
        for (const p of m.AsnConvert.parse(ext.extnValue.buffer, m.CRLDistributionPoints)) {
          for (const n of p.distributionPoint?.fullName ?? []) if (web(n.uniformResourceIdentifier)) crl.push(n.uniformResourceIdentifier);
        }
      }
    } catch {
      // An extension that does not parse names no location.
    }
  }
  return { ocsp, crl };
}

/**
 * The certificate whose key signed an OCSP response (RFC 6960 §4.2.2.2): the issuing CA itself,
 * or a certificate in the response that the CA issued with the OCSPSigning extended key usage and
 * that is valid now. A string says why there is none.
 */
function ocspSigner(m: Asn, basic: InstanceType<Asn['BasicOCSPResponse']>, issuer: InstanceType<Asn['Certificate']>, issuerCert: X509Certificate, now: number): X509Certificate | string {
  const rid = basic.tbsResponseData.responderID;
  const named = (c: InstanceType<Asn['Certificate']>): boolean => {
    if (rid.byName) return bytes(m.AsnConvert.serialize(c.tbsCertificate.subject)).equals(bytes(m.AsnConvert.serialize(rid.byName)));
    if (rid.byKey) return digest('sha1', c.tbsCertificate.subjectPublicKeyInfo.subjectPublicKey).equals(bytes(rid.byKey.buffer));
    return false;
  };
  if (named(issuer)) return issuerCert;
  const delegate = (basic.certs ?? []).find(named);
  if (delegate === undefined) return 'signed by a responder the issuing CA did not authorize';
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(bytes(m.AsnConvert.serialize(delegate)));
  } catch {
    return 'the responder certificate does not parse';
  }
  if (!cert.checkIssued(issuerCert) || !cert.verify(issuerCert.publicKey)) return 'the responder certificate is not issued by the certificate\'s CA';
  if (cert.validFromDate.getTime() > now || cert.validToDate.getTime() < now) return 'the responder certificate is expired or not yet valid';
  const eku = delegate.tbsCertificate.extensions?.find((e) => e.extnID === OID.extKeyUsage);
  let purposes: string[] = [];
  try {
    purposes = eku ? [...m.AsnConvert.parse(eku.extnValue.buffer, m.ExtendedKeyUsage)] : [];
  } catch {
    purposes = [];
  }
  if (!purposes.includes(OID.ocspSigning)) return 'the responder certificate is not authorized for OCSP signing';
  return cert;
}

function signatureValid(algorithm: string, data: ArrayBuffer, signer: X509Certificate, signature: ArrayBuffer): boolean {
  const alg = signatureDigests.get(algorithm);
  if (alg === undefined) return false;
  try {
    return verifySignature(alg, bytes(data), signer.publicKey, bytes(signature));
  } catch {
    return false;
  }
}
