/**
 * The mTLS proof-of-possession scenarios of bench/run.ts (issue 17): an openid-connect bearer
 * token bound to the client certificate (`proof_of_possession_mtls: strict`) against the same
 * token without the check, both over a TLS listener that asks for client certificates
 * (PORTCULLIS_SSL_VERIFY_CLIENT=optional). wrk cannot present a client certificate, so both are
 * measured with bench/mtls-load.ts (an undici client with the certificate).
 *
 * The certificate-bound token comes from a second demo IdP over HTTPS with oidc-provider's mTLS
 * features (demo/idp-mtls.ts), requested with the same client certificate.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import https from 'node:https';
import { startIdp, demoAudience, type DemoIdp } from '../demo/idp.ts';
import { issueCert, type IssuedCert } from '../test/helpers/certs.ts';
import type { WrkOptions, WrkResult } from './lib.ts';

const here = new URL('.', import.meta.url).pathname;

export interface MtlsBench {
  idp: DemoIdp;
  ca: IssuedCert;
  client: IssuedCert;
  token: string;
  /** The load function for these scenarios (instead of wrk). */
  load(url: string, headers: Record<string, string>, o: WrkOptions): Promise<WrkResult>;
  /** The gateway's decK document: `base` plus the client CA as a ca_certificates entity. */
  config(base: string): string;
  /** GET with (or without) the client certificate: the status. */
  status(url: string, headers: Record<string, string>, withCert: boolean): Promise<number>;
  close(): Promise<void>;
}

function post(url: string, cert: IssuedCert, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'POST', cert: cert.cert, key: cert.key, rejectUnauthorized: false, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function startMtlsBench(dir: string, loadCpus: string | null): Promise<MtlsBench> {
  const ca = await issueCert({ cn: 'Bench client CA', isCa: true });
  const client = await issueCert({ cn: 'bench-client', ca });
  const server = await issueCert({ cn: 'localhost', dns: ['localhost', '127.0.0.1'] });
  const idp = await startIdp({
    accessTokenTtl: 3600,
    mtls: { cert: server.cert, key: server.key, ca: [ca.cert] },
    extraClients: [{
      client_id: 'bench-bound', client_secret: 'bench-bound-secret', token_endpoint_auth_method: 'client_secret_post',
      grant_types: ['client_credentials'], redirect_uris: [], response_types: [], tls_client_certificate_bound_access_tokens: true,
    } as never],
  });
  const r = await post(`${idp.mtlsUrl}/token`, client, new URLSearchParams({
    grant_type: 'client_credentials', client_id: 'bench-bound', client_secret: 'bench-bound-secret', audience: demoAudience, scope: 'openid',
  }).toString());
  if (r.status !== 200) throw new Error(`bound token request answered ${r.status}: ${r.body}`);
  const token = (JSON.parse(r.body) as { access_token: string }).access_token;
  const certFile = join(dir, 'client.pem');
  const keyFile = join(dir, 'client-key.pem');
  await writeFile(certFile, client.cert);
  await writeFile(keyFile, client.key);
  return {
    idp, ca, client, token,
    load: (url, headers, o) => new Promise((resolve, reject) => {
      const args = [join(here, 'mtls-load.ts'), url, String(o.durationSec), String(o.connections), certFile, keyFile, JSON.stringify(headers)];
      const [file, argv] = loadCpus ? ['taskset', ['-c', loadCpus, process.execPath, ...args]] : [process.execPath, args];
      const p = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (c: Buffer) => (out += c.toString()));
      p.stderr.on('data', (c: Buffer) => (out += c.toString()));
      p.once('error', reject);
      p.once('exit', (code) => {
        const line = out.trim().split('\n').pop() ?? '';
        if (code !== 0) return reject(new Error(`mtls-load exited with ${code}: ${out}`));
        try {
          resolve(JSON.parse(line) as WrkResult);
        } catch {
          reject(new Error(`could not read mtls-load's report: ${out}`));
        }
      });
    }),
    config(base) {
      const doc = JSON.parse(base) as Record<string, unknown>;
      return JSON.stringify({ ...doc, ca_certificates: [{ cert: ca.cert }] }, null, 1);
    },
    status: (url, headers, withCert) => new Promise((resolve, reject) => {
      const req = https.get(url, { headers, rejectUnauthorized: false, servername: 'localhost', agent: false, ...(withCert ? { cert: client.cert, key: client.key } : {}) }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
    }),
    close: () => idp.close(),
  };
}
