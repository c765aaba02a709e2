/**
 * multipart/form-data bodies for request-transformer, read and written with the platform's
 * WHATWG implementation (undici's `Response.formData()` and `new Response(formData)`), not a
 * parser of our own. Kong uses its lua-multipart library, which keeps each part's header lines
 * and bytes as they came; here a body is a list of parts (field name, text or file) and is
 * written again with a new boundary. Where that differs from Kong:
 *
 * - A file part (one with a filename) keeps its name, filename, Content-Type and bytes; one sent
 *   without a Content-Type is written with `Content-Type: text/plain` (the WHATWG default).
 * - A part's other header lines (a Content-Type on a text field, Content-Transfer-Encoding, any
 *   custom one) cannot be held by FormData and are dropped when the body is rewritten.
 * - Text fields are read as UTF-8 (invalid bytes become U+FFFD) and their line breaks are written
 *   as CRLF (the WHATWG encoding normalises a lone CR or LF).
 * - A body the platform cannot parse (no or wrong boundary, truncated, a backslash-escaped quote
 *   in a filename) is not edited: Kong's lenient parser reads what it can and, with no boundary,
 *   writes an empty body or one whose boundary does not match the Content-Type.
 * - No part left: an empty body, as Kong's encoder writes.
 */

/** One part of a multipart body: its field name and its value (a text field or a file). */
export type Part = [name: string, value: string | File];

/**
 * The parts of a multipart body in their order; none for an empty body; null when the body does
 * not parse as multipart/form-data with this Content-Type.
 */
export async function readParts(raw: Buffer, contentType: string): Promise<Part[] | null> {
  if (raw.length === 0) return [];
  try {
    const form = await new Response(new Uint8Array(raw.buffer, raw.byteOffset, raw.length), { headers: { 'content-type': contentType } }).formData();
    return [...form];
  } catch {
    return null;
  }
}

/** The body holding these parts and the Content-Type naming its new boundary (none: an empty body). */
export async function writeParts(parts: readonly Part[]): Promise<{ body: Buffer; contentType: string | undefined }> {
  if (parts.length === 0) return { body: Buffer.alloc(0), contentType: undefined };
  const form = new FormData();
  for (const [name, value] of parts) form.append(name, value);
  const res = new Response(form);
  return { body: Buffer.from(await res.arrayBuffer()), contentType: res.headers.get('content-type') ?? undefined };
}

/** Index of the first part with this name, or -1. */
export function firstPart(parts: readonly Part[], name: string): number {
  return parts.findIndex((p) => p[0] === name);
}

/** Drops every part with this name; true when there was one. */
export function dropParts(parts: Part[], name: string): boolean {
  let kept = 0;
  for (const p of parts) if (p[0] !== name) parts[kept++] = p;
  const dropped = kept < parts.length;
  parts.length = kept;
  return dropped;
}
