/**
 * Mutual-TLS proof of possession (RFC 8705 §3, `proof_of_possession_mtls`): a certificate-bound
 * access token carries `cnf["x5t#S256"]`, the base64url SHA-256 thumbprint of the client
 * certificate it was issued to; the request must come with that certificate.
 *
 * The certificate is the one the gateway's TLS listener verified at the handshake
 * (`ctx.request.clientCertificate`, PORTCULLIS_SSL_VERIFY_CLIENT), or, with
 * `proof_of_possession_mtls_from_header`, one a TLS-terminating proxy in `trusted_ips` put in a
 * header, verified here against the configured `ca_certificates` entities (the verdict is
 * remembered per header value while the entities stay the same) and, unless
 * `revocation_check_mode` is SKIP, checked for revocation by OCSP or CRL (../revocation.ts).
 *
 * The check runs after the credential search, for the PoP-compatible methods only (`bearer`,
 * `introspection`, and `session` when the session was made by one of them). It is synchronous
 * (a thumbprint comparison) while the revocation answer is remembered, so a cached bearer token
 * stays on the synchronous path.
 */
import { X509Certificate, hash } from 'node:crypto';
import { GatewayError } from '../../../../errors.ts';
import type { EntityLookup, RequestContext } from '../../../sdk.ts';
import { authError } from '../errors.ts';
import type { RevocationChecker } from '../revocation.ts';
import type { Claims, Outcome, Sync } from '../runtime.ts';
import type { OidcConfig } from '../schema.ts';

/** Methods whose tokens can be checked for possession (Kong's list). */
export const popCompatibleMethods: ReadonlySet<string> = new Set(['bearer', 'introspection', 'session']);

type HeaderRecord = NonNullable<OidcConfig['proof_of_possession_mtls_from_header']>;

/** The `cnf["x5t#S256"]` a token is bound to: the introspection answer's, else the JWT's (RFC 8705 §3.1, §3.2). */
export function boundThumbprint(o: Outcome): string | null {
  return x5tOf(o.introspection) ?? x5tOf(o.accessClaims);
}

function x5tOf(claims: Claims | null): string | null {
  const cnf = claims?.cnf;
  if (cnf === null || typeof cnf !== 'object') return null;
  const x5t = (cnf as Record<string, unknown>)['x5t#S256'];
  return typeof x5t === 'string' ? x5t : null;
}

/** Header verdicts remembered per entity snapshot. */
const VERDICTS = 1000;

/** A header certificate that was read: its thumbprint, or why it cannot be used. */
type HeaderVerdict = { thumbprint: string; until: number; leaf: X509Certificate; issuer: X509Certificate; caPems: readonly string[] } | { problem: string };

/** Reads and verifies client certificates that a TLS-terminating proxy passes in a header. */
export class HeaderCertificates {
  readonly #rec: HeaderRecord;
  readonly #name: string;
  readonly #now: () => number;
  readonly #revocation: RevocationChecker | null;
  /**
   * Verdicts by the header's exact value, for the entity snapshot (CA certificates) they were
   * reached with: a changed CA list starts afresh. Bounded: cleared when full.
   */
  #verdicts = new Map<string, HeaderVerdict>();
  #verdictsOf: EntityLookup | null = null;

  constructor(rec: HeaderRecord, now: () => number, revocation: RevocationChecker | null = null) {
    this.#rec = rec;
    this.#name = rec.certificate_header_name.toLowerCase();
    this.#now = now;
    this.#revocation = revocation;
  }

  /**
   * The thumbprint of the header's certificate; null when there is no header or it comes from a
   * peer outside `trusted_ips` (with `secure_source`: anyone could have written it). A header
   * that cannot be decoded, does not verify or is revoked is a 401. Revocation is checked only
   * for a certificate with the `bound` thumbprint (another one is refused anyway, without a fetch).
   */
  thumbprint(ctx: RequestContext, bound: string | null = null): Sync<string | null> {
    const value = ctx.request.header(this.#name);
    if (value === undefined || value === '') return null;
    if (this.#rec.secure_source && !ctx.request.trusted) {
      ctx.log.info({ header: this.#name }, 'openid-connect: client certificate header ignored: the peer is not in trusted_ips');
      return null;
    }
    if (this.#verdictsOf !== ctx.entities || this.#verdicts.size >= VERDICTS) {
      this.#verdicts = new Map();
      this.#verdictsOf = ctx.entities;
    }
    let verdict = this.#verdicts.get(value);
    // A remembered success holds until the first certificate it relied on expires.
    if (verdict !== undefined && 'until' in verdict && verdict.until <= this.#now()) verdict = undefined;
    if (verdict === undefined) {
      verdict = this.#verify(ctx, value);
      this.#verdicts.set(value, verdict);
    }
    if ('problem' in verdict) throw authError('invalid_token', `client certificate header: ${verdict.problem}`);
    if (this.#revocation === null || (bound !== null && verdict.thumbprint !== bound)) return verdict.thumbprint;
    const { thumbprint } = verdict;
    const revoked = this.#revocation.check(verdict, ctx.log);
    if (revoked instanceof Promise) return revoked.then((problem) => accepted(thumbprint, problem));
    return accepted(thumbprint, revoked);
  }

  #verify(ctx: RequestContext, value: string): HeaderVerdict {
    let certs: X509Certificate[];
    try {
      certs = decodeCertificates(value, this.#rec.certificate_header_format);
    } catch {
      return { problem: `not a ${this.#rec.certificate_header_format} certificate` };
    }
    const anchors: X509Certificate[] = [];
    for (const id of this.#rec.ca_certificates) {
      const ca = ctx.entities.caCertificateById(id);
      // The configuration names a CA certificate that does not exist: the gateway's mistake (500).
      if (ca === null) {
        throw new GatewayError('GW_PLUGIN_FAILED', 'The client certificate header cannot be verified', {
          status: 500,
          detail: `proof_of_possession_mtls_from_header.ca_certificates: no CA certificate with id ${id}`,
        });
      }
      anchors.push(new X509Certificate(ca.cert));
    }
    const chain = verifyChain(certs, anchors, this.#rec.allow_partial_chain, this.#now());
    if (typeof chain === 'string') return { problem: chain };
    const until = Math.min(...[...certs, ...anchors].map((c) => c.validToDate.getTime()));
    return { thumbprint: hash('sha256', certs[0].raw, 'base64url'), until, leaf: certs[0], issuer: chain.issuer, caPems: anchors.map((a) => a.toString()) };
  }
}

function accepted(thumbprint: string, revocationProblem: string | null): string {
  if (revocationProblem !== null) throw authError('invalid_token', `client certificate header: ${revocationProblem}`);
  return thumbprint;
}

/** `url_encoded`: URL-encoded PEM (nginx's `$ssl_client_escaped_cert`); `base64_encoded`: base64 of the DER (or of a PEM). */
function decodeCertificates(value: string, format: HeaderRecord['certificate_header_format']): X509Certificate[] {
  let pem: string;
  if (format === 'url_encoded') {
    pem = decodeURIComponent(value);
  } else {
    const bytes = Buffer.from(value, 'base64');
    const text = bytes.toString('latin1');
    if (!text.includes('-----BEGIN CERTIFICATE-----')) return [new X509Certificate(bytes)];
    pem = text;
  }
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (blocks === null) throw new Error('no certificate');
  return blocks.map((b) => new X509Certificate(b));
}

const selfIssued = (c: X509Certificate): boolean => c.checkIssued(c) && c.verify(c.publicKey);

/**
 * Why the chain `certs` (leaf first, then any intermediates the proxy passed) does not lead to
 * one of `anchors`, or the leaf's issuer when it does: each certificate signed by the next, each
 * within its validity period, issuers being CA certificates, ending at a self-signed anchor (or,
 * with `allow_partial_chain`, at any anchor). A leaf that is itself an anchor is its own issuer.
 */
function verifyChain(certs: X509Certificate[], anchors: X509Certificate[], partial: boolean, nowMs: number): string | { issuer: X509Certificate } {
  const now = new Date(nowMs);
  const isAnchor = (c: X509Certificate) => anchors.some((a) => a.fingerprint256 === c.fingerprint256);
  let current = certs[0];
  let leafIssuer: X509Certificate | null = null;
  for (let depth = 0; depth < 10; depth++) {
    if (current.validFromDate > now || current.validToDate < now) return depth === 0 ? 'the certificate is expired or not yet valid' : 'an issuer certificate is expired or not yet valid';
    if (isAnchor(current) && (partial || selfIssued(current))) return { issuer: leafIssuer ?? current };
    if (selfIssued(current)) return 'the certificate is not issued by a trusted CA';
    const issuer = [...anchors, ...certs.slice(1)].find((c) => c.ca && current.checkIssued(c) && current.verify(c.publicKey));
    if (issuer === undefined) return 'the certificate is not issued by a trusted CA';
    leafIssuer ??= issuer;
    current = issuer;
  }
  return 'the certificate chain is too long';
}

/**
 * The mTLS proof-of-possession check of one plugin instance, or null when it is off. Throws a
 * 401 `invalid_token` (RFC 8705 §3) when the token is not bound to the presented certificate.
 */
export function mtlsPop(cfg: OidcConfig, now: () => number, revocation: RevocationChecker | null = null): ((ctx: RequestContext, o: Outcome, sessionMethod: string | null) => Sync<void>) | null {
  const mode = cfg.proof_of_possession_mtls;
  if (mode === 'off') return null;
  const fromHeader = cfg.proof_of_possession_mtls_from_header ? new HeaderCertificates(cfg.proof_of_possession_mtls_from_header, now, revocation) : null;
  const validation = cfg.proof_of_possession_auth_methods_validation;
  return (ctx, o, sessionMethod) => {
    // A session is checked when a compatible method made it (Kong); without the methods
    // validation, incompatible methods go unchecked (as Kong documents).
    const method = o.method === 'session' && sessionMethod !== null ? sessionMethod : o.method;
    if (!popCompatibleMethods.has(method) && !validation) return;
    const bound = boundThumbprint(o);
    if (bound === null) {
      if (mode === 'optional') return;
      throw authError('invalid_token', 'the access token is not bound to a client certificate');
    }
    const fromHeaderThumbprint = fromHeader?.thumbprint(ctx, bound) ?? null;
    if (fromHeaderThumbprint instanceof Promise) return fromHeaderThumbprint.then((t) => matches(ctx, t, bound));
    return matches(ctx, fromHeaderThumbprint, bound);
  };
}

function matches(ctx: RequestContext, fromHeader: string | null, bound: string): void {
  const presented = fromHeader ?? ctx.request.clientCertificate?.thumbprint ?? null;
  if (presented === null) throw authError('invalid_token', 'no client certificate was presented for a certificate-bound token');
  if (presented !== bound) throw authError('invalid_token', 'the client certificate does not match the token binding');
}
