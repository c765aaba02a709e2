/**
 * The certificates the TLS listeners serve: node:tls SecureContexts per certificate entity,
 * looked up by SNI at the handshake (`SNICallback`). `update()` swaps the lookup tables at once:
 * new handshakes see the change, open connections keep the context they were made with.
 *
 * RSA + ECDSA pairs (`cert_alt`/`key_alt`): Node installs only one certificate from the context an
 * SNI callback returns (checked on Node 24: a context built with both pairs serves the last one
 * only), so such a certificate gets one context per key type and the callback picks by what the
 * client's ClientHello accepts (tls/client-hello.ts, read before the handshake by
 * kernel/preamble.ts). The file/default certificate is the server's own context, where OpenSSL
 * keeps both pairs and chooses itself.
 */
import tls, { type SecureContext, type SecureContextOptions } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { helloHintOf, type HelloCapabilities, type KeyType } from './client-hello.ts';
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
  /**
   * Ask clients for a certificate: off, optional (verified when sent) or on (required). The
   * default for listeners without their own `ssl_verify_client=` flag.
   */
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

/** The contexts of one certificate entity: one, or one per key type of an RSA + ECDSA pair. */
interface Served {
  primary: SecureContext;
  /** Present for a pair: the context of each key type. */
  byType: Record<KeyType, SecureContext> | null;
}

function keyTypeOf(cert: string): KeyType {
  const t = new X509Certificate(cert).publicKey.asymmetricKeyType;
  return t === 'rsa' || t === 'rsa-pss' ? 'rsa' : 'ec';
}

export class CertificateStore {
  readonly #policy: TlsPolicy;
  readonly #fallback: { cert: string; key: string; cert_alt?: string; key_alt?: string };
  #byName = new Map<string, Served>();
  #star: Served | undefined;
  /** Contexts by the PEM text they were built from: unchanged certificates keep theirs. */
  #built = new Map<string, Served>();
  /** Some SNI-addressed certificate has an alternative pair: the ClientHello must be read. */
  #pairs = false;
  #ca: string[] = [];
  readonly #holders = new Set<ContextHolder>();

  constructor(fallback: { cert: string; key: string; cert_alt?: string; key_alt?: string }, policy: TlsPolicy) {
    this.#fallback = fallback;
    this.#policy = policy;
  }

  get policy(): TlsPolicy {
    return this.#policy;
  }

  /** Options for a server's own (no-SNI) context: the file certificate plus the policy. */
  defaultOptions(): SecureContextOptions {
    const f = this.#fallback;
    return this.#options(f.cert, f.key, f.cert_alt ?? null, f.key_alt ?? null);
  }

  /** True when the RSA/ECDSA choice needs the client's ClientHello (see kernel/preamble.ts). */
  needsHello(): boolean {
    return this.#pairs;
  }

  /** Server options that make a TLS server follow this store; `mode` overrides the policy's. */
  serverOptions(mode: ClientCertMode = this.#policy.clientCert): tls.TlsOptions {
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
    // The trust store for client certificates; used only on listeners that request one.
    if (this.#ca.length > 0) o.ca = this.#ca;
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
      const built = new Map<string, Served>();
      const byId = new Map<string, Served>();
      for (const c of material.certificates) {
        const k = `${c.cert}\0${c.key}\0${c.cert_alt ?? ''}\0${c.key_alt ?? ''}`;
        let served = caChanged ? undefined : this.#built.get(k);
        if (served === undefined) {
          const primary = tls.createSecureContext(this.#options(c.cert, c.key, null, null));
          let byType: Served['byType'] = null;
          if (c.cert_alt && c.key_alt) {
            const alt = tls.createSecureContext(this.#options(c.cert_alt, c.key_alt, null, null));
            byType = keyTypeOf(c.cert) === 'rsa' ? { rsa: primary, ec: alt } : { rsa: alt, ec: primary };
          }
          served = { primary, byType };
        }
        built.set(k, served);
        byId.set(c.id, served);
      }
      const byName = new Map<string, Served>();
      let star: Served | undefined;
      let pairs = false;
      for (const s of material.snis) {
        const served = byId.get(s.certificate.id);
        if (served === undefined) continue;
        if (served.byType !== null) pairs = true;
        if (s.name === '*') star = served;
        else byName.set(s.name.toLowerCase(), served);
      }
      this.#built = built;
      this.#byName = byName;
      this.#star = star;
      this.#pairs = pairs;
    } catch (err) {
      this.#ca = previousCa;
      throw err;
    }
    if (caChanged) for (const h of this.#holders) h.setSecureContext(this.defaultOptions());
  }

  /**
   * The context for a requested server name (Kong's order: exact, prefix wildcard, suffix
   * wildcard, `*`, the file certificate); of an RSA + ECDSA pair, the one `hello` prefers.
   */
  select(servername: string, hello: HelloCapabilities | null = null): SecureContext | undefined {
    const served = this.#lookup(servername.toLowerCase());
    // No match: the server keeps its own context (the file certificate, both pairs of it; a
    // context handed back from the callback would serve only one of them).
    if (served === undefined) return undefined;
    if (served.byType === null || hello === null || hello.prefer === null) return served.primary;
    return served.byType[hello.prefer];
  }

  #lookup(name: string): Served | undefined {
    const exact = this.#byName.get(name);
    if (exact !== undefined) return exact;
    if (this.#byName.size > 0) {
      const [prefix, suffix] = wildcardCandidates(name);
      const p = prefix === null ? undefined : this.#byName.get(prefix);
      if (p !== undefined) return p;
      const s = suffix === null ? undefined : this.#byName.get(suffix);
      if (s !== undefined) return s;
    }
    return this.#star;
  }

  /**
   * node:tls calls its SNICallback as a method of the TLS socket being handshaken (`this`); the
   * ClientHello hint is found through it (kernel/preamble.ts marks the raw socket under it).
   */
  get sniCallback(): (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void {
    const store = this;
    return function (this: unknown, servername, cb) {
      let ctx: SecureContext | undefined;
      try {
        ctx = store.select(servername, store.#pairs ? helloHintOf(this) : null);
      } catch {
        ctx = undefined;
      }
      cb(null, ctx);
    };
  }
}
