/**
 * Header values on the wire are bytes. node:http and undici carry them as latin1 strings (one
 * character per byte) and refuse characters above U+00FF. Text that plugins take from tokens and
 * entities (claims, consumer names, ACL groups) is Unicode: it is sent as its UTF-8 bytes, as Kong
 * sends its (UTF-8) Lua strings. ASCII values are returned as they are.
 */
export function utf8HeaderValue(value: string): string {
  for (let i = 0; i < value.length; i++) {
    if (value.charCodeAt(i) > 0x7f) return Buffer.from(value, 'utf8').toString('latin1');
  }
  return value;
}
