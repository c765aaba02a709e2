/**
 * Where the client put its credential (Kong's `*_param_type` options), read once per request:
 * bearer tokens (RFC 6750 §2.1–2.3 plus Kong's `access-token`/`x-access-token` headers and the
 * cookie option), Basic credentials (RFC 7617) or form/query parameters for the password and
 * client credentials grants (RFC 6749 §4.3.2, §2.3.1), and the refresh token parameter.
 * Locations are tried header → query → body (→ cookie).
 */
import type { IncomingView } from '../../../sdk.ts';
import type { OidcConfig } from '../schema.ts';
import { authError } from '../errors.ts';
import { BodyFields, noBody } from '../body-fields.ts';
import type { FoundToken, Runtime, Source, Sync, VerifiedToken } from '../runtime.ts';
import { cachedVerification } from './verify-token.ts';

interface FoundPair {
  id: string;
  secret: string;
  sources: Source[];
}

/** Tokens longer than this are refused before any parsing or IdP call. */
const MAX_TOKEN_LENGTH = 16 * 1024;

const bearerHeaders = ['authorization', 'access-token', 'x-access-token'];

function checkLength(token: string): string {
  if (token.length > MAX_TOKEN_LENGTH) throw authError('invalid_token', 'token too large');
  return token;
}

/** Whitespace as `\s` sees it (ASCII fast, the rest by `trim`). */
function isSpace(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  if (c < 0x80) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  return s[i].trim() === '';
}

/**
 * Where the token starts after `Bearer` and its spaces or tabs (case-insensitive), or -1 when
 * the value does not start so. Character codes: no regular expression over a kilobyte of token.
 */
function bearerSchemeEnd(raw: string): number {
  if (raw.length < 8) return -1;
  // `| 0x20` lower-cases ASCII letters; only B/b, E/e, A/a, R/r map to these codes.
  if ((raw.charCodeAt(0) | 0x20) !== 0x62 || (raw.charCodeAt(1) | 0x20) !== 0x65 || (raw.charCodeAt(2) | 0x20) !== 0x61) return -1;
  if ((raw.charCodeAt(3) | 0x20) !== 0x72 || (raw.charCodeAt(4) | 0x20) !== 0x65 || (raw.charCodeAt(5) | 0x20) !== 0x72) return -1;
  let i = 6;
  for (let c = raw.charCodeAt(i); c === 0x20 || c === 0x09; c = raw.charCodeAt(++i));
  return i === 6 ? -1 : i;
}

/** Where the token starts after `DPoP` and its spaces or tabs (case-insensitive, RFC 9449 §7.1), or -1. */
function dpopSchemeEnd(raw: string): number {
  if (raw.length < 6 || raw.slice(0, 4).toLowerCase() !== 'dpop') return -1;
  let i = 4;
  for (let c = raw.charCodeAt(i); c === 0x20 || c === 0x09; c = raw.charCodeAt(++i));
  return i === 4 ? -1 : i;
}

/**
 * The token of a bearer header value (RFC 6750 §2.1: `Bearer <token>`; in Kong's
 * `access-token`/`x-access-token` headers also the bare token), or null. A token whose
 * verification is cached (`verified`) is a JWT seen before, so it needs no whitespace scan.
 */
function headerToken(rt: Runtime, raw: string, name: string, nowMs: number): FoundToken | null {
  let start = bearerSchemeEnd(raw);
  let dpop = false;
  // `Authorization: DPoP <token>` while DPoP is on (steps/dpop.ts checks its proof).
  if (start < 0 && name === 'authorization' && rt.cfg.proof_of_possession_dpop !== 'off') {
    start = dpopSchemeEnd(raw);
    dpop = start >= 0;
  }
  // Without the Bearer scheme, only the token itself is taken, and not from Authorization.
  if (start < 0) {
    if (name === 'authorization') return null;
    start = 0;
    while (start < raw.length && isSpace(raw, start)) start++;
  }
  let end = raw.length;
  while (end > start && isSpace(raw, end - 1)) end--;
  if (end === start) return null;
  const token = start === 0 && end === raw.length ? raw : raw.slice(start, end);
  const verified = cachedVerification(rt, token, nowMs);
  if (verified === undefined && /\s/.test(token)) return null;
  if (dpop) return { location: 'header', name, token, scheme: 'dpop', ...(verified ? { verified } : {}) };
  return foundAt('header', name, token, verified);
}

/** A token found in the query or a cookie (taken as it is). */
function valueToken(rt: Runtime, location: 'query' | 'cookie', name: string, token: string, nowMs: number): FoundToken {
  return foundAt(location, name, token, cachedVerification(rt, token, nowMs));
}

/** The FoundToken; for a token whose verification is cached, the one remembered with it for this place. */
function foundAt(location: 'header' | 'query' | 'cookie', name: string, token: string, verified: VerifiedToken | undefined): FoundToken {
  if (verified === undefined) return { location, name, token };
  const known = verified.found;
  if (known !== null && known.location === location && known.name === name) return known;
  return (verified.found = { location, name, token: verified.token, verified });
}

/**
 * The bearer token of the request, or null: the one place that reads it (every method that
 * takes a bearer token asks the request state, which asks this once). A token sent in more than
 * one location is refused (RFC 6750 §2: clients MUST NOT use more than one method) with 400
 * `invalid_request`. Synchronous unless the body has to be read (`bearer_token_param_type` body).
 */
export function findBearerToken(rt: Runtime, request: IncomingView, rs: { readonly body: BodyFields; readonly nowMs: number }): Sync<FoundToken | null> {
  const cfg = rt.cfg;
  const nowMs = rs.nowMs;
  let found: FoundToken | null = null;
  let inBody = false;
  for (const type of cfg.bearer_token_param_type) {
    if (type === 'header') {
      const names = cfg.bearer_token_header_name ? [cfg.bearer_token_header_name.toLowerCase()] : bearerHeaders;
      for (const name of names) {
        // (Names are lower-case: the header map is read directly.)
        const v = request.headers[name];
        const raw = typeof v === 'string' ? v : v?.[0];
        if (raw) found = one(found, headerToken(rt, raw, name, nowMs));
      }
    } else if (type === 'query') {
      // No query string, no parameter: skip building URLSearchParams on the hot path.
      const v = request.rawQuery === '' ? null : request.query.get('access_token');
      if (v) found = one(found, valueToken(rt, 'query', 'access_token', v, nowMs));
    } else if (type === 'cookie') {
      const v = cfg.bearer_token_cookie_name ? request.cookies.get(cfg.bearer_token_cookie_name) : undefined;
      if (v) found = one(found, valueToken(rt, 'cookie', cfg.bearer_token_cookie_name!, v, nowMs));
    } else if (!noBody(request.method)) inBody = true;
  }
  if (!inBody) return checked(found);
  // (The locations' order does not matter: more than one is refused whatever they are.)
  const sofar = found;
  return rs.body.get('access_token').then((v) => checked(v ? one(sofar, { location: 'body', name: 'access_token', token: v }) : sofar));
}

/** The token found so far, now that `next` was looked for: a second one is refused. */
function one(found: FoundToken | null, next: FoundToken | null): FoundToken | null {
  if (next === null) return found;
  if (found !== null) throw authError('invalid_request', 'token sent in more than one place');
  return next;
}

function checked(found: FoundToken | null): FoundToken | null {
  if (found !== null) checkLength(found.token);
  return found;
}

/** `Authorization: Basic` credentials (RFC 7617 §2), or null. */
function parseBasic(request: IncomingView): FoundPair | null {
  const raw = request.header('authorization');
  const m = raw ? /^basic[ \t]+([A-Za-z0-9+/=]+)\s*$/i.exec(raw) : null;
  if (!m) return null;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return null;
  return { id: decoded.slice(0, colon), secret: decoded.slice(colon + 1), sources: [{ location: 'header', name: 'authorization' }] };
}

/**
 * A name/secret pair for a grant: the Basic header, or the two parameters in the query or body,
 * trying the locations in `types` order.
 */
export async function findPair(
  types: readonly ('header' | 'query' | 'body')[],
  request: IncomingView,
  body: BodyFields,
  idName: string,
  secretName: string,
): Promise<FoundPair | null> {
  for (const type of types) {
    if (type === 'header') {
      const basic = parseBasic(request);
      if (basic) return basic;
    } else if (type === 'query') {
      const id = request.query.get(idName);
      const secret = request.query.get(secretName);
      if (id && secret) return { id, secret, sources: [{ location: 'query', name: idName }, { location: 'query', name: secretName }] };
    } else {
      const id = await body.get(idName);
      const secret = await body.get(secretName);
      if (id && secret) return { id, secret, sources: [{ location: 'body', name: idName }, { location: 'body', name: secretName }] };
    }
  }
  return null;
}

/**
 * The refresh token under `refresh_token_param_name`. Header lookup is case-insensitive and
 * treats `_` and `-` alike, so `refresh_token` finds a `Refresh-Token` header (Kong's how-to).
 */
export async function findRefreshToken(cfg: OidcConfig, request: IncomingView, body: BodyFields): Promise<FoundToken | null> {
  return findNamedToken(cfg.refresh_token_param_name, cfg.refresh_token_param_type, request, body);
}

/** The ID token under `id_token_param_name`, in the `id_token_param_type` locations (as the refresh token). */
export async function findIdToken(cfg: OidcConfig, request: IncomingView, body: BodyFields): Promise<FoundToken | null> {
  return findNamedToken(cfg.id_token_param_name, cfg.id_token_param_type, request, body);
}

async function findNamedToken(name: string | null, types: readonly ('header' | 'query' | 'body')[], request: IncomingView, body: BodyFields): Promise<FoundToken | null> {
  if (!name) return null;
  for (const type of types) {
    let token: string | undefined;
    let used = name;
    if (type === 'header') {
      for (const candidate of new Set([name.toLowerCase(), name.toLowerCase().replaceAll('_', '-'), name.toLowerCase().replaceAll('-', '_')])) {
        token = request.header(candidate);
        if (token) {
          used = candidate;
          break;
        }
      }
    } else if (type === 'query') token = request.query.get(name) ?? undefined;
    else token = await body.get(name);
    if (token) return { location: type, name: used, token: checkLength(token) };
  }
  return null;
}
