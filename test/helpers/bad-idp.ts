/**
 * A deliberately misbehaving OpenID Provider for negative tests of a token-verifying RP.
 * Plain node:http, no oidc-provider: every answer is under the test's control, including
 * broken JWKS/discovery documents, hanging endpoints, forged and mis-signed tokens.
 *
 * Endpoints (relative to the issuer):
 *   /.well-known/openid-configuration  discovery   /jwks  jwks
 *   /token  token   /introspect  introspection   /userinfo  userinfo   /revoke  revocation
 *   /authorize  authorization (always 400)    /logout  end_session (302 or 200)
 */
import http from 'node:http';
import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import type { JWK } from 'jose';

export type FailureMode = null | 'http500' | 'garbage' | 'hang';
export type DiscoveryFailureMode = FailureMode | 'wrong-issuer';

export interface BadIdpOptions {
  host?: string;
  port?: number;
  /** After rotateKeys(), keep serving the previous key too (default false: only the new one). */
  keepOldKeyInJwks?: boolean;
  /** Extra/overriding fields of the discovery document. */
  discovery?: Record<string, unknown>;
}

export interface SignOptions {
  /** null: no kid header; a string: that kid (whatever the key) */
  kid?: string | null;
  /** default RS256; ES256 uses the EC key; RS384/RS512/PS256… use the RSA key */
  alg?: string;
  /**
   * current (published), old (published before the last rotation), other (never published;
   * its header still names the current kid unless `kid` says otherwise)
   */
  key?: 'current' | 'old' | 'other';
  /** extra protected-header fields (e.g. { typ: 'at+jwt' }, { jku: ... }) */
  header?: Record<string, unknown>;
}

export interface RecordedRequest {
  endpoint: string;
  method: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface BadIdp {
  issuer: string;
  port: number;
  close(): Promise<void>;
  /** 'discovery','jwks','token','introspection','userinfo','revocation',… */
  counts(): Record<string, number>;
  resetCounts(): void;
  /** Every request received, in order (headers and raw body), for asserting what the RP sent. */
  requests(): readonly RecordedRequest[];
  /** The JWKS currently served (public keys). */
  jwks(): { keys: JWK[] };
  /** kid of the current RSA signing key */
  currentKid(): string;
  /**
   * Signs a JWT. Defaults iss (this issuer), iat (now), exp (now + 300 s) unless the claims set
   * them; give a claim the value `undefined` to leave it out entirely.
   */
  sign(claims: Record<string, unknown>, opts?: SignOptions): Promise<string>;
  /** An `alg: none` token with an empty signature (RFC 7519 §6, must be rejected). */
  unsigned(claims: Record<string, unknown>): string;
  /**
   * HS256-signed with the current RSA public key's PEM (SPKI) text as the HMAC secret — the
   * classic algorithm-confusion attack. Header carries the current kid.
   */
  hs256WithPublicKey(claims: Record<string, unknown>): string;
  /** New current RSA and EC keys with new kids; see {@link BadIdpOptions.keepOldKeyInJwks}. */
  rotateKeys(opts?: { keepOld?: boolean }): Promise<void>;
  setJwksFailure(mode: FailureMode): void;
  setDiscoveryFailure(mode: DiscoveryFailureMode): void;
  /**
   * Frozen: every endpoint accepts the connection and reads the request, then never answers
   * (a hung IdP); requests are still counted. Unfreezing lets new requests through.
   */
  setFrozen(frozen: boolean): void;
  /** Introspection answers from this table; unknown tokens get `{ active: false }`. */
  setIntrospection(token: string, response: object): void;
  /** Userinfo answers from this table; unknown tokens get 401 invalid_token. */
  setUserinfo(token: string, response: object): void;
  /**
   * Authorization endpoint answer: a 302 back to the request's `redirect_uri` with these query
   * parameters (e.g. a forged JARM `response` made from the request's `state`). The default is a
   * 400 (no sign-in).
   */
  setAuthorizeResponse(answer: ((params: URLSearchParams) => Promise<Record<string, string>>) | null): void;
  /** Token endpoint answer; the default is 400 invalid_grant. */
  setTokenResponse(response: object | ((params: URLSearchParams) => { status: number; body: object })): void;
  /**
   * Answers every request to `endpoint` itself (any status, headers, raw body), ahead of the
   * endpoint's own handling; null removes it. For JWT-formatted answers, response headers, ...
   */
  setResponder(endpoint: string, fn: Responder | null): void;
  /** The private RSA key of the current signing key (to sign JWT answers with `signWith`). */
  signRaw(payload: Record<string, unknown>, header?: Record<string, unknown>, key?: 'current' | 'other'): Promise<string>;
}

export type Responder = (req: RecordedRequest, url: URL) => { status: number; headers?: http.OutgoingHttpHeaders; body: string };

interface KeyPair {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: KeyObject;
  publicKey: KeyObject;
}

function newRsa(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid: `rsa-${randomUUID()}`, alg: 'RS256', privateKey, publicKey };
}
function newEc(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { kid: `ec-${randomUUID()}`, alg: 'ES256', privateKey, publicKey };
}
function publicJwk(pair: KeyPair): JWK {
  return { ...(pair.publicKey.export({ format: 'jwk' }) as JWK), kid: pair.kid, alg: pair.alg, use: 'sig' };
}
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function withDefaults(issuer: string, claims: Record<string, unknown>): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  const merged: Record<string, unknown> = { iss: issuer, iat: now, exp: now + 300, ...claims };
  for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
  return merged;
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

/** Answers for a failure mode; returns false when the endpoint should behave normally. */
function fail(res: http.ServerResponse, mode: FailureMode): boolean {
  switch (mode) {
    case 'http500': sendJson(res, 500, { error: 'server_error' }); return true;
    case 'garbage':
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"keys": [ this is not json');
      return true;
    case 'hang': return true; // never answer; close() tears the socket down
    default: return false;
  }
}

const paths: Record<string, string> = {
  '/.well-known/openid-configuration': 'discovery',
  '/jwks': 'jwks',
  '/token': 'token',
  '/introspect': 'introspection',
  '/userinfo': 'userinfo',
  '/revoke': 'revocation',
  '/authorize': 'authorization',
  '/logout': 'end_session',
};

/** Starts the misbehaving OP on 127.0.0.1, port 0 unless told otherwise. */
export async function startBadIdp(opts: BadIdpOptions = {}): Promise<BadIdp> {
  const counters = new Map<string, number>();
  const recorded: RecordedRequest[] = [];
  const introspection = new Map<string, object>();
  const userinfo = new Map<string, object>();
  let authorizeResponse: ((params: URLSearchParams) => Promise<Record<string, string>>) | null = null;
  let tokenResponse: object | ((params: URLSearchParams) => { status: number; body: object }) | undefined;
  let jwksFailure: FailureMode = null;
  let discoveryFailure: DiscoveryFailureMode = null;
  let frozen = false;
  const responders = new Map<string, Responder>();
  let rsa = newRsa();
  let ec = newEc();
  let oldKeys: KeyPair[] = [];
  let servedOld = false;
  const other = { rsa: newRsa(), ec: newEc() };

  const server = http.createServer();
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => { server.off('error', reject); resolve(); });
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://${host}:${port}`;

  const jwks = () => ({ keys: [rsa, ec, ...(servedOld ? oldKeys : [])].map(publicJwk) });

  const discoveryDoc = () => ({
    issuer: discoveryFailure === 'wrong-issuer' ? `${issuer}/not-this-issuer` : issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
    userinfo_endpoint: `${issuer}/userinfo`,
    introspection_endpoint: `${issuer}/introspect`,
    revocation_endpoint: `${issuer}/revoke`,
    end_session_endpoint: `${issuer}/logout`,
    response_types_supported: ['code'],
    response_modes_supported: ['query', 'form_post', 'query.jwt', 'form_post.jwt', 'jwt'],
    authorization_signing_alg_values_supported: ['RS256', 'ES256'],
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials', 'password'],
    subject_types_supported: ['public'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    id_token_signing_alg_values_supported: ['RS256', 'ES256'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    code_challenge_methods_supported: ['S256'],
    claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'name', 'email', 'groups'],
    ...opts.discovery,
  });

  server.on('request', (req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    const endpoint = paths[url.pathname] ?? 'other';
    counters.set(endpoint, (counters.get(endpoint) ?? 0) + 1);
    readBody(req).then((body) => {
      recorded.push({ endpoint, method: req.method ?? '', headers: req.headers, body });
      if (frozen) return; // never answer; close() tears the socket down
      const responder = responders.get(endpoint);
      if (responder) {
        const out = responder(recorded[recorded.length - 1], url);
        res.writeHead(out.status, out.headers ?? {});
        res.end(out.body);
        return;
      }
      const form = new URLSearchParams(body);
      switch (endpoint) {
        case 'discovery':
          if (!fail(res, discoveryFailure === 'wrong-issuer' ? null : discoveryFailure)) sendJson(res, 200, discoveryDoc());
          return;
        case 'jwks':
          if (!fail(res, jwksFailure)) sendJson(res, 200, jwks(), { 'content-type': 'application/jwk-set+json' });
          return;
        case 'token': {
          if (tokenResponse === undefined) {
            sendJson(res, 400, { error: 'invalid_grant', error_description: 'no token response configured' });
          } else if (typeof tokenResponse === 'function') {
            const out = tokenResponse(form);
            sendJson(res, out.status, out.body);
          } else {
            sendJson(res, 200, tokenResponse);
          }
          return;
        }
        case 'introspection':
          sendJson(res, 200, introspection.get(form.get('token') ?? '') ?? { active: false });
          return;
        case 'userinfo': {
          const auth = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '');
          const answer = auth ? userinfo.get(auth[1]) : undefined;
          if (answer) sendJson(res, 200, answer);
          else sendJson(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
          return;
        }
        case 'revocation':
          res.writeHead(200).end();
          return;
        case 'end_session': {
          const target = url.searchParams.get('post_logout_redirect_uri');
          if (target) res.writeHead(302, { location: target }).end();
          else res.writeHead(200, { 'content-type': 'text/plain' }).end('logged out');
          return;
        }
        case 'authorization': {
          const redirect = url.searchParams.get('redirect_uri');
          if (authorizeResponse && redirect) {
            authorizeResponse(url.searchParams).then((answer) => {
              const back = new URL(redirect);
              for (const [k, v] of Object.entries(answer)) back.searchParams.set(k, v);
              res.writeHead(302, { location: back.href }).end();
            }, () => res.destroy());
            return;
          }
          sendJson(res, 400, { error: 'unsupported_response_type', error_description: 'the bad IdP has no sign-in' });
          return;
        }
        default:
          sendJson(res, 404, { error: 'not_found' });
      }
    }, () => res.destroy());
  });

  return {
    issuer,
    port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
    counts: () => Object.fromEntries(counters),
    resetCounts: () => counters.clear(),
    requests: () => recorded,
    jwks,
    currentKid: () => rsa.kid,

    async sign(claims, signOpts = {}) {
      const alg = signOpts.alg ?? 'RS256';
      const useEc = alg.startsWith('ES');
      let pair: KeyPair;
      switch (signOpts.key ?? 'current') {
        case 'other': pair = useEc ? other.ec : other.rsa; break;
        case 'old': {
          const old = oldKeys.find((k) => k.alg === (useEc ? 'ES256' : 'RS256'));
          if (!old) throw new Error('no old key yet: call rotateKeys() first');
          pair = old;
          break;
        }
        default: pair = useEc ? ec : rsa;
      }
      const header: Record<string, unknown> = { typ: 'JWT', ...signOpts.header, alg };
      // The unpublished key still claims the current kid, so the failure is the signature itself.
      const defaultKid = signOpts.key === 'other' ? (useEc ? ec : rsa).kid : pair.kid;
      const kid = signOpts.kid === undefined ? defaultKid : signOpts.kid;
      if (kid !== null) header.kid = kid;
      return new SignJWT(withDefaults(issuer, claims))
        .setProtectedHeader(header as { alg: string })
        .sign(pair.privateKey);
    },

    unsigned(claims) {
      return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(withDefaults(issuer, claims))}.`;
    },

    hs256WithPublicKey(claims) {
      const input = `${b64({ alg: 'HS256', typ: 'JWT', kid: rsa.kid })}.${b64(withDefaults(issuer, claims))}`;
      const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
      return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
    },

    async rotateKeys(rotateOpts = {}) {
      oldKeys = [rsa, ec];
      servedOld = rotateOpts.keepOld ?? opts.keepOldKeyInJwks ?? false;
      rsa = newRsa();
      ec = newEc();
    },

    setJwksFailure(mode) { jwksFailure = mode; },
    setDiscoveryFailure(mode) { discoveryFailure = mode; },
    setFrozen(on) { frozen = on; },
    setIntrospection(token, response) { introspection.set(token, response); },
    setUserinfo(token, response) { userinfo.set(token, response); },
    setAuthorizeResponse(answer) { authorizeResponse = answer; },
    setTokenResponse(response) { tokenResponse = response; },
    setResponder(endpoint, fn) {
      if (fn) responders.set(endpoint, fn);
      else responders.delete(endpoint);
    },
    async signRaw(payload, header = {}, key = 'current') {
      const pair = key === 'other' ? other.rsa : rsa;
      return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: rsa.kid, ...header }).sign(pair.privateKey);
    },
  };
}
