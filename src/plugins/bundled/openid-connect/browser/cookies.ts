/**
 * Set-Cookie serialization (RFC 6265 §4.1) and chunking of large values over several cookies
 * named `<name>`, `<name>2` … `<name>9`, as lua-resty-session does (reference §10).
 *
 * Chunked format (ours): the first cookie holds `~<n>~<part 1>` where n is the chunk count (2–9);
 * the others hold the raw parts. A sealed value never starts with `~`, so both forms are unambiguous.
 * Any inconsistency (bad count, missing chunk) makes the value unreadable, and the sealed value's
 * AEAD tag catches anything else (reordered or altered chunks).
 */
import type { CookieSettings } from './config.ts';

/** One cookie (name + value + attributes) must stay within what every browser keeps. */
export const maxCookieBytes = 4096;
export const maxChunks = 9;

export class CookieTooLargeError extends Error {
  constructor(name: string, size: number) {
    super(
      `openid-connect: session too large for cookie storage (${size} bytes, more than ${maxChunks} cookies of ` +
        `${maxCookieBytes} bytes for "${name}"); use session_storage: redis or request fewer claims/scopes`,
    );
    this.name = 'CookieTooLargeError';
  }
}

export function chunkName(base: string, i: number): string {
  return i === 1 ? base : `${base}${i}`;
}

/** Attributes part of a Set-Cookie header (starting with `; `). */
export function cookieAttributes(s: CookieSettings, secureRequest: boolean, maxAgeSeconds?: number, now = Date.now()): string {
  let out = `; Path=${s.path}`;
  if (s.domain) out += `; Domain=${s.domain}`;
  if (maxAgeSeconds !== undefined) {
    out += `; Expires=${new Date(now + maxAgeSeconds * 1000).toUTCString()}; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`;
  }
  // `Default` means "send no SameSite attribute" (the browser's own default applies).
  if (s.sameSite !== 'Default') out += `; SameSite=${s.sameSite}`;
  // SameSite=None is rejected by browsers without Secure.
  if (s.sameSite === 'None' || (s.secure ?? secureRequest)) out += '; Secure';
  if (s.httpOnly) out += '; HttpOnly';
  return out;
}

export function clearCookie(name: string, s: CookieSettings, secureRequest: boolean): string {
  return `${name}=${cookieAttributes(s, secureRequest)}; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Max-Age=0`;
}

/**
 * Serialize a value into one or more Set-Cookie header values; throws CookieTooLargeError when it
 * needs more than 9 cookies. Also returns the number of chunks written.
 */
export function writeChunked(value: string, s: CookieSettings, secureRequest: boolean, maxAgeSeconds?: number, now?: number): { headers: string[]; count: number } {
  const attrs = cookieAttributes(s, secureRequest, maxAgeSeconds, now);
  const single = `${s.name}=${value}${attrs}`;
  if (single.length <= maxCookieBytes) return { headers: [single], count: 1 };
  // room for `<name>9=` + attributes, plus the `~n~` marker on the first chunk
  const room = maxCookieBytes - attrs.length - s.name.length - 2 - 3;
  if (room <= 0) throw new CookieTooLargeError(s.name, value.length);
  const count = Math.ceil(value.length / room);
  if (count > maxChunks) throw new CookieTooLargeError(s.name, value.length);
  const headers: string[] = [];
  for (let i = 1; i <= count; i++) {
    const part = value.slice((i - 1) * room, i * room);
    headers.push(`${chunkName(s.name, i)}=${i === 1 ? `~${count}~` : ''}${part}${attrs}`);
  }
  return { headers, count };
}

/** Reassemble a possibly chunked value from request cookies; null when absent or inconsistent. */
export function readChunked(cookies: ReadonlyMap<string, string>, name: string): { value: string | null; present: boolean; names: string[] } {
  const first = cookies.get(name);
  const names = existingChunkNames(cookies, name);
  if (first === undefined || first === '') return { value: null, present: names.length > 0, names };
  if (!first.startsWith('~')) return { value: first, present: true, names };
  const m = /^~([2-9])~/.exec(first);
  if (!m) return { value: null, present: true, names };
  const count = Number(m[1]);
  let value = first.slice(m[0].length);
  for (let i = 2; i <= count; i++) {
    const part = cookies.get(chunkName(name, i));
    if (!part) return { value: null, present: true, names };
    value += part;
  }
  return { value, present: true, names };
}

/** Names of `<name>`, `<name>2` … `<name>9` present in the request. */
export function existingChunkNames(cookies: ReadonlyMap<string, string>, name: string): string[] {
  const out: string[] = [];
  for (let i = 1; i <= maxChunks; i++) if (cookies.has(chunkName(name, i))) out.push(chunkName(name, i));
  return out;
}

/**
 * Remove the named cookies from a Cookie request header value: the other non-empty parts, trimmed,
 * joined with `; `. One pass without arrays, and a dropped cookie's value (a session cookie is
 * kilobytes) is never copied.
 */
export function stripFromCookieHeader(header: string, drop: (name: string) => boolean): string {
  let out = '';
  for (let start = 0; start <= header.length; ) {
    let end = header.indexOf(';', start);
    if (end === -1) end = header.length;
    const eq = header.indexOf('=', start);
    const name = header.slice(start, eq === -1 || eq > end ? end : eq).trim();
    // A part without a name may still be non-empty ("=x"): it is judged like any other.
    const keep = name === '' ? header.slice(start, end).trim() !== '' && !drop(name) : !drop(name);
    if (keep) {
      const part = header.slice(start, end).trim();
      out = out === '' ? part : `${out}; ${part}`;
    }
    start = end + 1;
  }
  return out;
}
