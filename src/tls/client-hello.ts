/**
 * What a TLS client can verify, read from its ClientHello before the handshake starts: whether
 * it accepts an ECDSA server certificate, an RSA one, and which it prefers. Node hands an SNI
 * callback one SecureContext and installs only one certificate from it, so the RSA/ECDSA choice of
 * a certificate entity with `cert_alt` is made here, as OpenSSL would make it with both loaded:
 * the first signature scheme of the client's list that a certificate of ours can serve, limited
 * to key types the offered cipher suites allow (TLS 1.2 suites name the certificate type).
 */

export type KeyType = 'rsa' | 'ec';

export interface HelloCapabilities {
  /** The certificate type to serve, or null when the hello says nothing usable (serve the primary). */
  prefer: KeyType | null;
}

const helloKey = Symbol('portcullis.helloHint');
type Marked = { [helloKey]?: HelloCapabilities | null; _parent?: Marked };

/** Keeps what the ClientHello said with the raw socket, for the SNI callback. */
export function markHello(rawSocket: object, hello: HelloCapabilities | null): void {
  (rawSocket as Marked)[helloKey] = hello;
}

/**
 * The hint kept with the raw socket under a TLS socket. node:tls keeps the socket it wrapped as
 * `_parent` (not a documented field: without it, there is no hint and the primary pair is served).
 */
export function helloHintOf(tlsSocket: unknown): HelloCapabilities | null {
  const s = tlsSocket as Marked | null | undefined;
  return s?._parent?.[helloKey] ?? s?.[helloKey] ?? null;
}

/** How many bytes of ClientHello we are willing to hold before giving up (then: no hint). */
export const maxHelloBytes = 64 * 1024;

const ecdsaSchemes = new Set([0x0403, 0x0503, 0x0603, 0x0203]);
const rsaSchemes = new Set([0x0401, 0x0501, 0x0601, 0x0201, 0x0804, 0x0805, 0x0806, 0x0809, 0x080a, 0x080b]);

function isEcdsaSuite(s: number): boolean {
  return (s >= 0xc006 && s <= 0xc00a) || s === 0xc023 || s === 0xc024 || s === 0xc02b || s === 0xc02c
    || s === 0xc048 || s === 0xc049 || s === 0xc05c || s === 0xc05d || s === 0xc072 || s === 0xc073
    || s === 0xc086 || s === 0xc087 || (s >= 0xc0ac && s <= 0xc0af) || s === 0xcca9;
}

function isRsaSuite(s: number): boolean {
  if (isEcdsaSuite(s) || (s & 0xff00) === 0x1300) return false;
  if (s === 0x00ff || s === 0x5600 || (s & 0x0f0f) === 0x0a0a) return false; // SCSVs, GREASE
  // ECDHE-RSA, DHE-RSA and static RSA suites; PSK/anonymous suites are not offered by real clients.
  return true;
}

/**
 * Reads the ClientHello at the start of `buf` (TLS records). 'more' = incomplete, read on;
 * null = not a ClientHello (let the TLS stack answer it); otherwise what the client accepts.
 * `tls13` says whether the server may negotiate TLS 1.3.
 */
export function readClientHello(buf: Buffer, tls13: boolean): HelloCapabilities | 'more' | null {
  const msg = helloMessage(buf);
  if (msg === 'more' || msg === null) return msg;
  try {
    return capabilities(msg, tls13);
  } catch {
    return null;
  }
}

/**
 * The ClientHello message body at the start of `buf` (reassembled from as many handshake
 * records as it spans): 'more' = incomplete, null = not a ClientHello.
 */
function helloMessage(buf: Buffer): Buffer | 'more' | null {
  const parts: Buffer[] = [];
  let have = 0;
  let need = -1;
  let off = 0;
  while (need < 0 || have < need) {
    if (buf.length < off + 5) return 'more';
    if (buf[off] !== 0x16 || buf[off + 1] !== 0x03) return null;
    const len = buf.readUInt16BE(off + 3);
    if (buf.length < off + 5 + len) return buf.length >= maxHelloBytes ? null : 'more';
    parts.push(buf.subarray(off + 5, off + 5 + len));
    have += len;
    off += 5 + len;
    if (need < 0 && have >= 4) {
      const head = parts.length === 1 ? parts[0] : Buffer.concat(parts);
      if (head[0] !== 0x01) return null;
      need = 4 + head.readUIntBE(1, 3);
      if (need > maxHelloBytes) return null;
    }
  }
  return (parts.length === 1 ? parts[0] : Buffer.concat(parts)).subarray(4, need);
}

/**
 * The server name (SNI, lower-case) of the ClientHello at the start of `buf`: 'more' =
 * incomplete, null = not a ClientHello; `{ sni: null }` = a ClientHello without a host name.
 * The stream proxy routes TLS connections by it before (or instead of) terminating them.
 */
export function readHelloServerName(buf: Buffer): { sni: string | null } | 'more' | null {
  const msg = helloMessage(buf);
  if (msg === 'more' || msg === null) return msg;
  try {
    return { sni: serverNameOf(msg) };
  } catch {
    return null;
  }
}

/** The host_name entry of the server_name extension (RFC 6066 §3). */
function serverNameOf(hello: Buffer): string | null {
  let p = 2 + 32; // legacy_version, random
  p += 1 + hello[p]; // session id
  p += 2 + hello.readUInt16BE(p); // cipher suites
  p += 1 + hello[p]; // compression methods
  if (p + 2 > hello.length) return null;
  const end = p + 2 + hello.readUInt16BE(p);
  p += 2;
  while (p + 4 <= end) {
    const type = hello.readUInt16BE(p);
    const len = hello.readUInt16BE(p + 2);
    if (type === 0) {
      const body = hello.subarray(p + 4, p + 4 + len);
      let q = 2; // server_name_list length
      while (q + 3 <= body.length) {
        const nameType = body[q];
        const nameLen = body.readUInt16BE(q + 1);
        if (nameType === 0) return body.subarray(q + 3, q + 3 + nameLen).toString('latin1').toLowerCase();
        q += 3 + nameLen;
      }
      return null;
    }
    p += 4 + len;
  }
  return null;
}

function capabilities(hello: Buffer, tls13Allowed: boolean): HelloCapabilities {
  let p = 2 + 32; // legacy_version, random
  p += 1 + hello[p]; // session id
  const suitesLen = hello.readUInt16BE(p);
  p += 2;
  let tls13Suite = false;
  let ecdsaSuite = false;
  let rsaSuite = false;
  for (let i = 0; i < suitesLen; i += 2) {
    const s = hello.readUInt16BE(p + i);
    if ((s & 0xff00) === 0x1300) tls13Suite = true;
    else if (isEcdsaSuite(s)) ecdsaSuite = true;
    else if (isRsaSuite(s)) rsaSuite = true;
  }
  p += suitesLen;
  p += 1 + hello[p]; // compression methods
  let sigalgs: number[] | null = null;
  let offers13 = false;
  if (p + 2 <= hello.length) {
    const end = p + 2 + hello.readUInt16BE(p);
    p += 2;
    while (p + 4 <= end) {
      const type = hello.readUInt16BE(p);
      const len = hello.readUInt16BE(p + 2);
      const body = hello.subarray(p + 4, p + 4 + len);
      if (type === 13 && body.length >= 2) {
        sigalgs = [];
        const n = body.readUInt16BE(0);
        for (let i = 2; i + 1 < 2 + n && i + 1 < body.length; i += 2) sigalgs.push(body.readUInt16BE(i));
      } else if (type === 43 && body.length >= 1) {
        for (let i = 1; i + 1 < 1 + body[0] && i + 1 < body.length; i += 2) if (body.readUInt16BE(i) === 0x0304) offers13 = true;
      }
      p += 4 + len;
    }
  }
  const tls13 = tls13Allowed && offers13 && tls13Suite;
  const ecOk = (tls13 || ecdsaSuite) && (sigalgs === null ? !tls13 : sigalgs.some((a) => ecdsaSchemes.has(a)));
  const rsaOk = (tls13 || rsaSuite) && (sigalgs === null || sigalgs.some((a) => rsaSchemes.has(a)));
  if (ecOk && rsaOk && sigalgs !== null) {
    const first = sigalgs.find((a) => ecdsaSchemes.has(a) || rsaSchemes.has(a));
    return { prefer: first !== undefined && ecdsaSchemes.has(first) ? 'ec' : 'rsa' };
  }
  if (ecOk && !rsaOk) return { prefer: 'ec' };
  if (rsaOk && !ecOk) return { prefer: 'rsa' };
  // Both without a signature_algorithms list (TLS 1.2 defaults to RSA), or neither.
  return { prefer: ecOk && rsaOk ? 'rsa' : null };
}
