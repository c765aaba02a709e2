/**
 * Regex route paths (`~...`): the one function that turns Kong's PCRE source into the RegExp the
 * router runs. The config validator calls it too, so a path is accepted exactly when the router
 * can compile it.
 */
import { normalizeRegexSource } from './normalize.ts';

/**
 * PCRE's Python-style group syntax, mapped to JavaScript's: `(?P<name>...)` → `(?<name>...)`,
 * `(?P=name)` → `\k<name>`. Escaped characters and character classes are copied untouched, so
 * `\(?P<` or `[(?P<]` keep their meaning.
 */
function translatePcre(source: string): string {
  if (!source.includes('(?P')) return source;
  let out = '';
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    if (ch === '\\') {
      out += source.slice(i, i + 2);
      i++;
      continue;
    }
    if (inClass) {
      if (ch === ']') inClass = false;
      out += ch;
      continue;
    }
    if (ch === '[') {
      inClass = true;
      out += ch;
      continue;
    }
    if (ch === '(' && source.startsWith('(?P<', i)) {
      out += '(?<';
      i += 3;
      continue;
    }
    if (ch === '(' && source.startsWith('(?P=', i)) {
      const end = source.indexOf(')', i);
      if (end === -1) throw new SyntaxError('unterminated (?P= back-reference');
      out += `\\k<${source.slice(i + 4, end)}>`;
      i = end;
      continue;
    }
    if (ch === '(' && source.startsWith('(?P>', i)) {
      throw new SyntaxError('recursive patterns ((?P>name)) are not supported');
    }
    out += ch;
  }
  return out;
}

/**
 * Compile the source of a regex route path (the text after `~`) into the start-anchored RegExp
 * the router matches normalised paths with: percent-encoding normalised as for request paths,
 * PCRE group syntax translated. Throws (SyntaxError) when the source cannot be compiled.
 */
export function compileRoutePathRegex(source: string): RegExp {
  return new RegExp(`^(?:${translatePcre(normalizeRegexSource(source))})`);
}
