/**
 * An OCSP responder (RFC 6960) and a CRL server (RFC 5280) for tests, over real HTTP, for the
 * certificates of one test CA (test/helpers/certs.ts).
 *
 * The responder reads the POSTed OCSPRequest, answers each CertID from `status` (by serial
 * number, default good), echoes the request's nonce and signs with the CA's key (or with a
 * delegated responder certificate). What it does is chosen by the first path segment of the URL
 * named in the certificate:
 *   /ok (any other name too)  a signed answer;
 *   /bad-signature           a signed answer whose signature is broken;
 *   /other-signer            an answer signed by a key the CA did not authorize;
 *   /delegated               signed by `delegate` (a certificate the CA issued for OCSP signing);
 *   /stale                   nextUpdate in the past;
 *   /wrong-nonce             a nonce other than the request's;
 *   /no-nonce                no nonce (as responders with pre-produced answers do);
 *   /no-next-update          no nextUpdate (newer information is always available);
 *   /try-later               OCSP status tryLater (3), no answer;
 *   /500                     HTTP 500;
 *   /garbage                 200 with a body that is not DER;
 *   /hang                    never answers (the connection stays open until close()).
 * Requests are counted per path (`hits`).
 *
 * The CRL server answers GET /<name>.crl with a CRL signed by the CA that lists `revoked`
 * (fresh, nextUpdate in an hour), DER; /stale.crl is past its nextUpdate, /pem.crl is PEM,
 * /other.crl is signed by `other` under its own name. It can serve over https.
 */
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { X509Certificate, webcrypto } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, Certificate, Extension } from '@peculiar/asn1-x509';
import { BasicOCSPResponse, CertStatus, OCSPRequest, OCSPResponse, OCSPResponseStatus, ResponderID, ResponseBytes, ResponseData, RevokedInfo, SingleResponse } from '@peculiar/asn1-ocsp';
import type { IssuedCert } from './certs.ts';

export type OcspStatus = 'good' | 'revoked' | 'unknown';

export interface OcspResponder {
  url: string;
  /** Status by serial number (lower-case hex); default good. */
  readonly status: Map<string, OcspStatus>;
  /** Requests by path (`/ok`, `/hang`, ...). */
  readonly hits: Map<string, number>;
  /** Whether the last request carried a nonce. */
  lastNonce: boolean;
  close(): Promise<void>;
}

const SHA256_RSA = '1.2.840.113549.1.1.11';
const NONCE = '1.3.6.1.5.5.7.48.1.2';
const BASIC = '1.3.6.1.5.5.7.48.1.1';

async function sign(key: webcrypto.CryptoKey, data: ArrayBuffer): Promise<ArrayBuffer> {
  return webcrypto.subtle.sign({ name: 'RSASSA-PKCS1-v1_5' }, key, data);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function tracked(server: Server): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return sockets;
}

function listen(server: Server): Promise<number> {
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
}

function closer(server: Server, sockets: Set<Socket>): () => Promise<void> {
  return () => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  });
}

const hex = (b: ArrayBuffer): string => Buffer.from(b).toString('hex').replace(/^00(?=.)/, '').toLowerCase();

/** An OCSP responder for `ca`'s certificates. `delegate` signs at /delegated; `stranger` signs at /other-signer. */
export async function startOcspResponder(o: { ca: IssuedCert; delegate?: IssuedCert; stranger?: IssuedCert }): Promise<OcspResponder> {
  const status = new Map<string, OcspStatus>();
  const hits = new Map<string, number>();
  const caCert = AsnConvert.parse(new X509Certificate(o.ca.cert).raw, Certificate);
  const delegateCert = o.delegate ? AsnConvert.parse(new X509Certificate(o.delegate.cert).raw, Certificate) : null;
  const strangerCert = o.stranger ? AsnConvert.parse(new X509Certificate(o.stranger.cert).raw, Certificate) : null;
  const state = { lastNonce: false };

  const answer = async (mode: string, body: Buffer): Promise<Buffer> => {
    if (mode === 'try-later') return Buffer.from(AsnConvert.serialize(new OCSPResponse({ responseStatus: OCSPResponseStatus.tryLater })));
    const req = AsnConvert.parse(body, OCSPRequest);
    const nonce = req.tbsRequest.requestExtensions?.find((e) => e.extnID === NONCE);
    state.lastNonce = nonce !== undefined;
    const now = Date.now();
    const responses = req.tbsRequest.requestList.map((r) => {
      const s = status.get(hex(r.reqCert.serialNumber)) ?? 'good';
      const certStatus = s === 'good' ? new CertStatus({ good: null }) : s === 'revoked' ? new CertStatus({ revoked: new RevokedInfo({ revocationTime: new Date(now - 3600_000) }) }) : new CertStatus({ unknown: null });
      const stale = mode === 'stale';
      return new SingleResponse({
        certID: r.reqCert,
        certStatus,
        thisUpdate: new Date(now - (stale ? 7200_000 : 60_000)),
        ...(mode === 'no-next-update' ? {} : { nextUpdate: new Date(now + (stale ? -3600_000 : 3600_000)) }),
      });
    });
    const signerCert = mode === 'delegated' && delegateCert ? delegateCert : mode === 'other-signer' && strangerCert ? strangerCert : caCert;
    const signerKey = mode === 'delegated' && o.delegate ? o.delegate.keys.privateKey : mode === 'other-signer' && o.stranger ? o.stranger.keys.privateKey : o.ca.keys.privateKey;
    const data = new ResponseData({
      responderID: new ResponderID({ byName: signerCert.tbsCertificate.subject }),
      producedAt: new Date(now),
      responses,
      ...(nonce && mode !== 'no-nonce'
        ? { responseExtensions: [new Extension({ extnID: NONCE, critical: false, extnValue: mode === 'wrong-nonce' ? new OctetString(Buffer.from('0410000102030405060708090a0b0c0d0e0f', 'hex')) : nonce.extnValue })] }
        : {}),
    });
    const tbs = AsnConvert.serialize(data);
    const signature = Buffer.from(await sign(signerKey, tbs));
    if (mode === 'bad-signature') signature[signature.length - 1] ^= 0xff;
    const basic = new BasicOCSPResponse({
      tbsResponseData: data,
      signatureAlgorithm: new AlgorithmIdentifier({ algorithm: SHA256_RSA, parameters: null }),
      signature: new Uint8Array(signature).buffer,
      ...(mode === 'delegated' && delegateCert ? { certs: [delegateCert] } : {}),
      ...(mode === 'other-signer' && strangerCert ? { certs: [strangerCert] } : {}),
    });
    const basicDer = AsnConvert.serialize(basic);
    // The response must carry exactly the signed bytes.
    const check = AsnConvert.parse(basicDer, BasicOCSPResponse);
    if (!Buffer.from(check.tbsResponseDataRaw!).equals(Buffer.from(tbs))) throw new Error('test responder: tbsResponseData re-encoded differently');
    return Buffer.from(AsnConvert.serialize(new OCSPResponse({
      responseStatus: OCSPResponseStatus.successful,
      responseBytes: new ResponseBytes({ responseType: BASIC, response: new OctetString(basicDer) }),
    })));
  };

  const server = createHttp((req: IncomingMessage, res: ServerResponse) => {
    // The path a certificate names, also when the request came through a proxy in absolute form.
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const mode = path.split('/')[1] ?? '';
    hits.set(`/${mode}`, (hits.get(`/${mode}`) ?? 0) + 1);
    if (mode === 'hang') return;
    if (mode === '500') {
      res.writeHead(500).end('responder broken');
      return;
    }
    if (mode === 'garbage') {
      res.writeHead(200, { 'content-type': 'application/ocsp-response' }).end('not DER at all');
      return;
    }
    readBody(req).then((body) => answer(mode, body)).then(
      (der) => res.writeHead(200, { 'content-type': 'application/ocsp-response' }).end(der),
      (err: unknown) => res.writeHead(400).end(String(err)),
    );
  });
  const sockets = tracked(server);
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    status,
    hits,
    get lastNonce() {
      return state.lastNonce;
    },
    set lastNonce(v: boolean) {
      state.lastNonce = v;
    },
    close: closer(server, sockets),
  };
}

export interface CrlServer {
  url: string;
  /** Serial numbers (lower-case hex) the CRL lists. */
  readonly revoked: Set<string>;
  /** GET requests served. */
  readonly hits: { count: number };
  close(): Promise<void>;
}

/** A CRL server for `ca` (http, or https with `tls`). The CRL is signed afresh on each request. */
export async function startCrlServer(o: { ca: IssuedCert; other?: IssuedCert; tls?: { cert: string; key: string } }): Promise<CrlServer> {
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const revoked = new Set<string>();
  const hits = { count: 0 };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    hits.count++;
    if (!(req.url ?? '').endsWith('.crl')) {
      res.writeHead(404).end();
      return;
    }
    const now = Date.now();
    const name = (req.url ?? '').split('/').pop();
    const signer = name === 'other.crl' && o.other ? o.other : o.ca;
    x509.X509CrlGenerator.create({
      issuer: signer.subject,
      thisUpdate: new Date(now - (name === 'stale.crl' ? 7200_000 : 60_000)),
      nextUpdate: new Date(now + (name === 'stale.crl' ? -3600_000 : 3600_000)),
      entries: [...revoked].map((serialNumber) => ({ serialNumber, revocationDate: new Date(now - 3600_000) })),
      signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      signingKey: signer.keys.privateKey,
    }).then(
      (crl) => res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(name === 'pem.crl' ? crl.toString('pem') : Buffer.from(crl.rawData)),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  };
  const server = o.tls ? createHttps({ cert: o.tls.cert, key: o.tls.key }, handler) : createHttp(handler);
  const sockets = tracked(server);
  const port = await listen(server);
  return { url: `${o.tls ? 'https' : 'http'}://127.0.0.1:${port}`, revoked, hits, close: closer(server, sockets) };
}

/** A port nothing listens on (it was free a moment ago). */
export async function closedPort(): Promise<number> {
  const s = createHttp();
  const port = await listen(s);
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
