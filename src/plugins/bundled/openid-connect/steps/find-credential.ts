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

export type Location = 'header' | 'query' | 'body' | 'cookie';

/** Where a credential was found, so `hide_credentials` can remove exactly that. */
export interface Source {
  location: Location;
  /** Header, parameter or cookie name (lower-case for headers). */
  name: string;
}

export interface FoundToken extends Source {
  token: string;
}

export interface FoundPair {
  id: string;
  secret: string;
  sources: Source[];
}

/** Tokens longer than this are refused before any parsing or IdP call. */
export const MAX_TOKEN_LENGTH = 16 * 1024;

const bearerHeaders = ['authorization', 'access-token', 'x-access-token'];

/** Request body fields, parsed lazily (form or JSON; anything else has none). */
export class BodyFields {
  readonly #request: IncomingView;
  #fields: Promise<Map<string, string>> | null = null;
  constructor(request: IncomingView) {
    this.#request = request;
  }
  get(name: string): Promise<string | undefined> {
    this.#fields ??= this.#parse();
    return this.#fields.then((f) => f.get(name));
  }
  async #parse(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const m = this.#request.method;
    if (m === 'GET' || m === 'HEAD' || m === 'OPTIONS') return out;
    const form = await this.#request.form();
    if (form) {
      for (const [k, v] of form) if (!out.has(k)) out.set(k, v);
      return out;
    }
    const json = await this.#request.json();
    // JSON `null` or arrays carry no fields (a JSON null body once caused 500s in Kong).
    if (json && typeof json === 'object' && !Array.isArray(json)) {
      for (const [k, v] of Object.entries(json as Record<string, unknown>)) if (typeof v === 'string') out.set(k, v);
    }
    return out;
  }
}

function checkLength(token: string): string {
  if (token.length > MAX_TOKEN_LENGTH) throw authError('invalid_token', 'token too large');
  return token;
}

/**
 * The bearer token of the request, or null. A token sent in more than one location is refused
 * (RFC 6750 §2: clients MUST NOT use more than one method) with 400 `invalid_request`.
 */
export async function findBearerToken(cfg: OidcConfig, request: IncomingView, body: BodyFields): Promise<FoundToken | null> {
  const found: FoundToken[] = [];
  for (const type of cfg.bearer_token_param_type) {
    if (type === 'body') {
      const v = await body.get('access_token');
      if (v) found.push({ location: 'body', name: 'access_token', token: v });
    } else tokensAt(cfg, request, type, found);
  }
  return onlyToken(found);
}

function tokensAt(cfg: OidcConfig, request: IncomingView, type: 'header' | 'query' | 'cookie', found: FoundToken[]): void {
  if (type === 'header') {
    const names = cfg.bearer_token_header_name ? [cfg.bearer_token_header_name.toLowerCase()] : bearerHeaders;
    for (const name of names) {
      const raw = request.header(name);
      if (!raw) continue;
      const m = /^bearer[ \t]+(\S+)\s*$/i.exec(raw);
      if (m) found.push({ location: 'header', name, token: m[1] });
      else if (name !== 'authorization' && !/\s/.test(raw.trim())) found.push({ location: 'header', name, token: raw.trim() });
    }
  } else if (type === 'query') {
    // No query string, no parameter: skip building URLSearchParams on the hot path.
    const v = request.rawQuery === '' ? null : request.query.get('access_token');
    if (v) found.push({ location: 'query', name: 'access_token', token: v });
  } else if (type === 'cookie' && cfg.bearer_token_cookie_name) {
    const v = request.cookies.get(cfg.bearer_token_cookie_name);
    if (v) found.push({ location: 'cookie', name: cfg.bearer_token_cookie_name, token: v });
  }
}

function onlyToken(found: FoundToken[]): FoundToken | null {
  if (found.length === 0) return null;
  if (found.length > 1) throw authError('invalid_request', 'token sent in more than one place');
  checkLength(found[0].token);
  return found[0];
}

/** `Authorization: Basic` credentials (RFC 7617 §2), or null. */
export function parseBasic(request: IncomingView): FoundPair | null {
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
  const name = cfg.refresh_token_param_name;
  if (!name) return null;
  for (const type of cfg.refresh_token_param_type) {
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
