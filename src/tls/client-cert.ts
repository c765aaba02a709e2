/**
 * The client certificate of a TLS connection, as plugins see it (sdk.ts ClientCertificate):
 * only a certificate the handshake verified, its chain, and its RFC 8705 thumbprint. Computed
 * once per connection.
 */
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { ClientCertificate } from '../plugins/sdk.ts';
import { thumbprintS256 } from './pem.ts';

const byConnection = new WeakMap<object, ClientCertificate | null>();

function toPem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}

export function clientCertificateOf(socket: TLSSocket): ClientCertificate | null {
  if (socket.encrypted !== true) return null;
  const known = byConnection.get(socket);
  if (known !== undefined) return known;
  let out: ClientCertificate | null = null;
  if (socket.authorized === true && typeof socket.getPeerCertificate === 'function') {
    const leaf = socket.getPeerCertificate(true) as PeerCertificate & { issuerCertificate?: PeerCertificate };
    if (leaf && leaf.raw) {
      const chain: Buffer[] = [];
      let c: (PeerCertificate & { issuerCertificate?: PeerCertificate }) | undefined = leaf;
      while (c && c.raw && chain.length < 16) {
        chain.push(c.raw);
        if (c.issuerCertificate === c || c.issuerCertificate?.raw?.equals(c.raw)) break;
        c = c.issuerCertificate;
      }
      out = { chain, pem: toPem(leaf.raw), thumbprint: thumbprintS256(leaf.raw) };
    }
  }
  byConnection.set(socket, out);
  return out;
}

/**
 * A TLS connection's facts as nginx's $ssl_protocol, $ssl_cipher and $ssl_client_verify give
 * them (Kong's log record `tls`): NONE without a client certificate, SUCCESS, or FAILED:<reason>.
 */
export function tlsInfoOf(socket: TLSSocket): { version: string; cipher: string; clientVerify: string } {
  const presented = typeof socket.getPeerCertificate === 'function' && socket.getPeerCertificate(false)?.raw !== undefined;
  const verify = !presented ? 'NONE' : socket.authorized === true ? 'SUCCESS' : `FAILED:${String(socket.authorizationError ?? 'unverified')}`;
  return { version: socket.getProtocol() ?? '', cipher: socket.getCipher()?.name ?? '', clientVerify: verify };
}
