/**
 * Upstream and downstream headers from a token set (Kong's `upstream_*_header`,
 * `downstream_*_header`, `*_headers_claims`/`*_headers_names`, `*_headers`), consumer headers,
 * and `hide_credentials`. JSON values (introspection, user info) are sent as base64 of the JSON.
 */
import { utf8HeaderValue } from '../../../header-value.ts';
import type { RequestContext } from '../../../sdk.ts';
import type { OidcConfig } from '../schema.ts';
import type { Claims, HeaderWrite, Outcome, Source } from '../runtime.ts';
import { claimAt } from './authorize.ts';

/** Parse `name[:scheme]` (e.g. the default `authorization:bearer` → `Authorization: Bearer <t>`). */
export function tokenHeader(spec: string, token: string): HeaderWrite {
  const i = spec.indexOf(':');
  if (i < 0) return { name: spec, value: token };
  const scheme = spec.slice(i + 1).trim();
  const pretty = scheme.length > 0 ? scheme[0].toUpperCase() + scheme.slice(1) : '';
  return { name: spec.slice(0, i).trim(), value: pretty ? `${pretty} ${token}` : token };
}

function encodeJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64');
}

function claimValue(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  // Claims are Unicode text (a name such as "Łukasz"): sent as UTF-8 bytes, as Kong does.
  if (typeof v === 'string') return utf8HeaderValue(v);
  if (Array.isArray(v) && v.every((x) => typeof x !== 'object')) return utf8HeaderValue(v.join(', '));
  if (typeof v === 'object') return encodeJson(v);
  return String(v);
}

type Side = 'upstream' | 'downstream';

/** Every header name this side may write (so client-sent copies can be removed first). */
export function configuredNames(cfg: OidcConfig, side: Side): string[] {
  const c = cfg as unknown as Record<string, unknown>;
  const names: string[] = [];
  for (const what of ['access_token', 'id_token', 'refresh_token', 'introspection', 'user_info', 'access_token_jwk', 'id_token_jwk', 'introspection_jwt', 'user_info_jwt']) {
    const spec = c[`${side}_${what}_header`];
    if (typeof spec === 'string' && spec) names.push(tokenHeader(spec, '').name);
  }
  names.push(...((c[`${side}_headers_names`] as string[] | null) ?? []));
  names.push(...(((c[`${side}_headers`] as { header: string }[] | null) ?? []).map((h) => h.header)));
  return names;
}

/** A token header spec parsed once: header name and the value prefix (`Bearer ` or none). */
interface TokenSpec {
  name: string;
  prefix: string;
}

function tokenSpec(spec: string | null): TokenSpec | null {
  if (!spec) return null;
  // With an empty token, the value is exactly the prefix ("Bearer " or "").
  const { name, value } = tokenHeader(spec, '');
  return { name, prefix: value };
}

/**
 * The header settings of one side, read from the config once per plugin instance: building the
 * `${side}_*_header` keys and looking them up on every request was a measurable share of the
 * bearer path's cost (bench/RESULTS.md).
 */
export interface HeaderPlan {
  readonly accessToken: TokenSpec | null;
  readonly idToken: TokenSpec | null;
  readonly refreshToken: TokenSpec | null;
  readonly introspection: string | null;
  readonly userInfo: string | null;
  /** The JWKs that verified the tokens, and the JWT-formatted IdP answers, by header name. */
  readonly accessTokenJwk: string | null;
  readonly idTokenJwk: string | null;
  readonly introspectionJwt: string | null;
  readonly userInfoJwt: string | null;
  /** Token endpoint response headers are replayed on this side (`token_headers_replay`: downstream). */
  readonly replay: boolean;
  readonly claims: readonly string[];
  readonly names: readonly string[];
  readonly mapped: readonly { header: string; path: string[] }[];
}

/** Whether a plan can write any header at all (`*_headers_names` need their `*_headers_claims`). */
export function writesAny(p: HeaderPlan): boolean {
  return !!(p.accessToken || p.idToken || p.refreshToken || p.introspection || p.userInfo || p.accessTokenJwk || p.idTokenJwk || p.introspectionJwt || p.userInfoJwt || p.replay) || p.claims.length > 0 || p.mapped.length > 0;
}

export function headerPlan(cfg: OidcConfig, side: Side): HeaderPlan {
  const c = cfg as unknown as Record<string, unknown>;
  const spec = (what: string) => (c[`${side}_${what}_header`] as string | null) || null;
  return {
    accessToken: tokenSpec(spec('access_token')),
    idToken: tokenSpec(spec('id_token')),
    refreshToken: tokenSpec(spec('refresh_token')),
    introspection: spec('introspection'),
    userInfo: spec('user_info'),
    accessTokenJwk: spec('access_token_jwk'),
    idTokenJwk: spec('id_token_jwk'),
    introspectionJwt: spec('introspection_jwt'),
    userInfoJwt: spec('user_info_jwt'),
    replay: side === 'downstream' && (cfg.token_headers_replay ?? []).length > 0,
    claims: (c[`${side}_headers_claims`] as string[] | null) ?? [],
    names: (c[`${side}_headers_names`] as string[] | null) ?? [],
    mapped: (c[`${side}_headers`] as { header: string; path: string[] }[] | null) ?? [],
  };
}

/** The headers for one side, computed from the outcome (access token claims before ID token). */
export function headersFor(cfg: OidcConfig, side: Side, o: Outcome): HeaderWrite[] {
  return headersFromPlan(headerPlan(cfg, side), o);
}

/** As `headersFor`, with the side's settings already read (`headerPlan`). */
export function headersFromPlan(p: HeaderPlan, o: Outcome): HeaderWrite[] {
  const out: HeaderWrite[] = [];
  const t = o.tokens;
  if (p.accessToken && t.access_token) out.push({ name: p.accessToken.name, value: p.accessToken.prefix + t.access_token });
  if (p.idToken && t.id_token) out.push({ name: p.idToken.name, value: p.idToken.prefix + t.id_token });
  if (p.refreshToken && t.refresh_token) out.push({ name: p.refreshToken.name, value: p.refreshToken.prefix + t.refresh_token });
  if (p.introspection && o.introspection) out.push({ name: p.introspection, value: encodeJson(o.introspection) });
  if (p.userInfo && o.userinfo) out.push({ name: p.userInfo, value: encodeJson(o.userinfo) });
  // JWKs as base64 of their JSON (like the other JSON values); JWT answers as the JWT itself.
  if (p.accessTokenJwk && o.accessJwk) out.push({ name: p.accessTokenJwk, value: encodeJson(o.accessJwk) });
  if (p.idTokenJwk && o.idJwk) out.push({ name: p.idTokenJwk, value: encodeJson(o.idJwk) });
  if (p.introspectionJwt && o.introspectionJwt) out.push({ name: p.introspectionJwt, value: o.introspectionJwt });
  if (p.userInfoJwt && o.userinfoJwt) out.push({ name: p.userInfoJwt, value: o.userinfoJwt });
  if (p.replay && o.replay) out.push(...o.replay);
  if (p.claims.length === 0 && p.mapped.length === 0) return out;
  const sources: (Claims | null)[] = [o.accessClaims, o.idClaims, o.introspection, o.userinfo];
  const lookup = (path: readonly string[]): string | null => {
    for (const s of sources) {
      const v = claimValue(claimAt(s, path));
      if (v !== null) return v;
    }
    return null;
  };
  p.claims.forEach((claim, i) => {
    const v = lookup([claim]);
    if (v !== null && p.names[i]) out.push({ name: p.names[i], value: v });
  });
  for (const m of p.mapped) {
    const v = lookup(m.path);
    if (v !== null) out.push({ name: m.header, value: v });
  }
  return out;
}

/**
 * Remove the credential the client sent (header, query parameter, body field or cookie).
 * Synchronous unless a body field is to go (a Promise then).
 */
export function hideCredentials(ctx: RequestContext, used: readonly Source[]): void | Promise<void> {
  let bodyFields: Set<string> | null = null;
  for (const s of used) {
    if (s.location === 'header') ctx.upstream.removeHeader(s.name);
    else if (s.location === 'query') ctx.upstream.query.delete(s.name);
    else if (s.location === 'body') (bodyFields ??= new Set()).add(s.name);
    else if (s.location === 'cookie') {
      const cookie = ctx.upstream.getHeader('cookie');
      if (typeof cookie === 'string') {
        const kept = cookie.split(';').map((p) => p.trim()).filter((p) => p && p.split('=')[0] !== s.name);
        if (kept.length > 0) ctx.upstream.setHeader('cookie', kept.join('; '));
        else ctx.upstream.removeHeader('cookie');
      }
    }
  }
  if (bodyFields !== null) return hideBodyFields(ctx, bodyFields);
}

async function hideBodyFields(ctx: RequestContext, bodyFields: ReadonlySet<string>): Promise<void> {
  const form = await ctx.request.form();
  if (form) {
    for (const f of bodyFields) form.delete(f);
    ctx.upstream.setBody(form.toString(), 'application/x-www-form-urlencoded');
    return;
  }
  const json = await ctx.request.json();
  if (json && typeof json === 'object' && !Array.isArray(json)) {
    const copy = { ...(json as Record<string, unknown>) };
    for (const f of bodyFields) delete copy[f];
    ctx.upstream.setBody(JSON.stringify(copy), 'application/json');
  }
}

/** Kong's consumer headers, removed from the client request before the plugin writes its own. */
export const consumerHeaderNames = ['x-consumer-id', 'x-consumer-username', 'x-consumer-custom-id', 'x-anonymous-consumer', 'x-authenticated-groups', 'x-credential-identifier'];

type ConsumerRef = { id: string; username: string | null; custom_id: string | null } | null;

/** The consumer headers to set (after removing {@link consumerHeaderNames}), in Kong's order. */
export function consumerHeaders(consumer: ConsumerRef, groups: readonly string[] | null, credential: { identifier?: string | null } | null): HeaderWrite[] {
  const out: HeaderWrite[] = [];
  // Names, ids and groups are Unicode text: UTF-8 on the wire (utf8HeaderValue).
  if (credential?.identifier) out.push({ name: 'x-credential-identifier', value: utf8HeaderValue(credential.identifier) });
  if (consumer) {
    out.push({ name: 'x-consumer-id', value: utf8HeaderValue(consumer.id) });
    if (consumer.username) out.push({ name: 'x-consumer-username', value: utf8HeaderValue(consumer.username) });
    if (consumer.custom_id) out.push({ name: 'x-consumer-custom-id', value: utf8HeaderValue(consumer.custom_id) });
  }
  if (groups && groups.length > 0) out.push({ name: 'x-authenticated-groups', value: utf8HeaderValue(groups.join(', ')) });
  return out;
}

/** A copy of `s` held as one contiguous string (V8 keeps concatenations and slices as trees). */
export function flat(s: string): string {
  if (s.length < 64) return s;
  const copy = Buffer.from(s, 'latin1').toString('latin1');
  return copy === s ? copy : s; // (a character beyond Latin-1 would not survive the copy)
}
