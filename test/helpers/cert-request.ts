/**
 * One request with node:http(s) and no connection reuse: over https with an optional client
 * certificate (any server certificate accepted, SNI localhost), from an optional local address.
 * The mTLS tests use it where fetch cannot present a client certificate.
 */
import http from 'node:http';
import https from 'node:https';
import type { IssuedCert } from './certs.ts';

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function request(url: string, o: { method?: string; cert?: IssuedCert; headers?: Record<string, string>; body?: string; localAddress?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const options: https.RequestOptions = {
      method: o.method ?? 'GET',
      host: u.hostname,
      port: u.port,
      path: u.pathname + u.search,
      headers: o.headers,
      agent: false,
      ...(o.localAddress ? { localAddress: o.localAddress } : {}),
    };
    const tlsOptions = u.protocol === 'https:' ? { rejectUnauthorized: false, servername: 'localhost', ...(o.cert ? { cert: o.cert.cert, key: o.cert.key } : {}) } : {};
    const req = (u.protocol === 'https:' ? https : http).request({ ...options, ...tlsOptions }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}
