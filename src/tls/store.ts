/**
 * The certificates the TLS listeners serve: one node:tls SecureContext per certificate entity
 * (RSA and ECDSA pairs side by side in one context, OpenSSL picks what the client supports),
 * looked up by SNI at the handshake (`SNICallback`). `update()` swaps the lookup tables at once:
 * new handshakes see the change, open connections keep the context they were made with.
 */
import tls, { type SecureContext, type SecureContextOptions } from 'node:tls';
import { wildcardCandidates } from './names.ts';

export interface CertificatePem {
  id: string;
  cert: string;
  key: string;
  cert_alt?: string | null;
  key_alt?: string | null;
}

export interface SniEntry {
  name: string;
  certificate: { id: string };
}

export type ClientCertMode = 'off' | 'optional' | 'on';

export interface TlsPolicy {
  minVersion: tls.SecureVersion;
  maxVersion: tls.SecureVersion;
  /** OpenSSL cipher list for TLS ≤ 1.2; undefined = Node's default (Mozilla intermediate-like). */
  ciphers?: string;
  /** Ask clients for a certificate: off, optional (verified when sent) or on (required). */
  clientCert: ClientCertMode;
}

export interface TlsMaterial {
  certificates: readonly CertificatePem[];
  snis: readonly SniEntry[];
  /** PEM of every CA certificate entity: trusted for client certificates. */
  caCertificates: readonly string[];
}

/** Something whose default context follows the store (a tls.Server or http2 secure server). */
interface ContextHolder {
  setSecureContext(options: SecureContextOptions): void;
}

export class CertificateStore {
  readonly #policy: TlsPolicy;
  readonly #fallback: { cert: string; key: string; cert_alt?: string; key_alt?: string };
  #byName = new Map<string, SecureContext>();
  #star: SecureContext | undefined;
  #defaultContext: SecureContext;
  /** Contexts by the PEM text they were built from: unchanged certificates keep theirs. */
  #built = new Map<string, SecureContext>();
  #ca: string[] = [];
  readonly #holders = new Set<ContextHolder>();

  constructor(fallback: { cert: string; key: string; cert_alt?: string; key_alt?: string }, policy: TlsPolicy) {
    this.#fallback = fallback;
    this.#policy = policy;
    this.#defaultContext = tls.createSecureContext(this.defaultOptions());
  }

  get policy(): TlsPolicy {
    return this.#policy;
  }

  /** Options for a server's own (no-SNI) context: the file certificate plus the policy. */
  defaultOptions(): SecureContextOptions {
    const f = this.#fallback;
    return this.#options(f.cert, f.key, f.cert_alt ?? null, f.key_alt ?? null);
  }

  /** Server options that make a TLS server follow this store. */
  serverOptions(): tls.TlsOptions {
    const mode = this.#policy.clientCert;
    return {
      ...this.defaultOptions(),
      SNICallback: this.sniCallback,
      requestCert: mode !== 'off',
      rejectUnauthorized: mode === 'on',
    };
  }

  #options(cert: string, key: string, certAlt: string | null, keyAlt: string | null): SecureContextOptions {
    const p = this.#policy;
    const o: SecureContextOptions = {
      cert: certAlt ? [cert, certAlt] : cert,
      key: keyAlt ? [key, keyAlt] : key,
      minVersion: p.minVersion,
      maxVersion: p.maxVersion,
    };
    if (p.ciphers !== undefined) o.ciphers = p.ciphers;
    if (p.clientCert !== 'off' && this.#ca.length > 0) o.ca = this.#ca;
    return o;
  }

  /** Registers a server whose default context is replaced when the CA list changes. */
  attach(server: ContextHolder): void {
    this.#holders.add(server);
  }

  detach(server: ContextHolder): void {
    this.#holders.delete(server);
  }

  /**
   * Swaps in new certificates and SNIs. Throws (leaving the old tables) when a certificate
   * cannot be loaded by OpenSSL.
   */
  update(material: TlsMaterial): void {
    const caChanged = material.caCertificates.join('\n') !== this.#ca.join('\n');
    const previousCa = this.#ca;
    this.#ca = [...material.caCertificates];
    try {
      const built = new Map<string, SecureContext>();
      const byId = new Map<string, SecureContext>();
      for (const c of material.certificates) {
        const k = `${c.cert}\0${c.key}\0${c.cert_alt ?? ''}\0${c.key_alt ?? ''}`;
        let ctx = caChanged ? undefined : this.#built.get(k);
        // Node installs one certificate per handshake from an SNI context (the last of a list), so
        // a context holds one pair; the alternative pair is chosen in #pick.
        ctx ??= tls.createSecureContext(this.#options(c.cert, c.key, null, null));
        built.set(k, ctx);
        byId.set(c.id, ctx);
      }
      const byName = new Map<string, SecureContext>();
      let star: SecureContext | undefined;
      for (const s of material.snis) {
        const ctx = byId.get(s.certificate.id);
        if (ctx === undefined) continue;
        if (s.name === '*') star = ctx;
        else byName.set(s.name.toLowerCase(), ctx);
      }
      const defaultContext = caChanged ? tls.createSecureContext(this.defaultOptions()) : this.#defaultContext;
      this.#built = built;
      this.#byName = byName;
      this.#star = star;
      this.#defaultContext = defaultContext;
    } catch (err) {
      this.#ca = previousCa;
      throw err;
    }
    if (caChanged) for (const h of this.#holders) h.setSecureContext(this.defaultOptions());
  }

  /** The context for a requested server name (Kong's order); undefined = the server's default. */
  select(servername: string): SecureContext | undefined {
    const name = servername.toLowerCase();
    const exact = this.#byName.get(name);
    if (exact !== undefined) return exact;
    if (this.#byName.size > 0) {
      const [prefix, suffix] = wildcardCandidates(name);
      const p = prefix === null ? undefined : this.#byName.get(prefix);
      if (p !== undefined) return p;
      const s = suffix === null ? undefined : this.#byName.get(suffix);
      if (s !== undefined) return s;
    }
    return this.#star ?? this.#defaultContext;
  }

  readonly sniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    let ctx: SecureContext | undefined;
    try {
      ctx = this.select(servername);
    } catch {
      ctx = undefined;
    }
    cb(null, ctx);
  };
}
