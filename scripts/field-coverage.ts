import { readFileSync, writeFileSync } from 'node:fs';
import { execSync } from 'node:child_process';
import { entities } from '../src/config/entities/index.ts';
import { bundledPlugins } from '../src/plugins/bundled/index.ts';
import { createRegistry } from '../src/plugins/registry.ts';
import { normalizeEntity } from '../src/config/normalize.ts';
import { fieldPaths, namesField } from '../test/helpers/schema-fields.ts';
const root = new URL('..', import.meta.url).pathname;
const files = execSync("ls test/*.test.ts src/*/*.test.ts src/*/*/*.test.ts src/*/*/*/*.test.ts src/*/*/*/*/*.test.ts 2>/dev/null || true", { cwd: root, encoding: 'utf8', shell: '/bin/bash' }).split('\n').filter(Boolean).filter((f) => !f.includes('field-coverage'));
const texts = files.map((f) => [f, readFileSync(root + f, 'utf8')] as const);
const registry = createRegistry(bundledPlugins);
const minimalEntity: Record<string, Record<string, unknown>> = { services: { host: 'h' }, routes: { paths: ['/'] }, consumers: { username: 'u' }, plugins: { name: 'cors' }, acls: { consumer: { id: '00000000-0000-4000-8000-000000000001' }, group: 'g' } };
const minimalConfig: Record<string, Record<string, unknown>> = { 'openid-connect': { issuer: 'https://idp.example/' }, acl: { allow: ['a'] }, 'rate-limiting': { minute: 1 } };
const candidates: unknown[] = [true, false, 'x', 'strict', 'optional', ['x'], 2, { x: 1 }, {}];
const nest = (rel: string, v: unknown): Record<string, unknown> => rel.split('.').reduceRight<unknown>((acc, k) => ({ [k]: acc }), v) as Record<string, unknown>;
const refusal = /not supported|cannot set|leave it null/;
function refusedValue(kind: 'entity' | 'plugin', owner: string, field: string): unknown {
  for (const v of candidates) {
    let issues: { path: string; message: string }[] = [];
    if (kind === 'entity') {
      const r = normalizeEntity(owner as never, { ...minimalEntity[owner], ...nest(field, v) }, { registry, now: 0 });
      issues = r.ok ? [] : r.issues;
    } else {
      const r = registry.validateConfig(owner, { ...(minimalConfig[owner] ?? {}), ...nest(field, v) });
      issues = r.ok ? [] : r.issues;
    }
    if (issues.length > 0 && issues.every((i) => (i.path === field || i.path.startsWith(`${field}.`) || i.path.startsWith(`${field}[`)) && refusal.test(i.message))) return v;
  }
  return undefined;
}
const lines: string[] = [];
const topRefused = new Map<string, unknown>();
const add = (path: string, kind: 'entity' | 'plugin', owner: string, rel: string) => {
  const parts = rel.split('.');
  const hit = texts.find(([f, t]) => namesField(f, t, path));
  if (hit) { lines.push(`  '${path}': { tests: ['${hit[0]}'] },`); return; }
  const base = path.slice(0, path.length - rel.length);
  for (let i = 1; i < parts.length; i++) {
    const parentPath = base + parts.slice(0, i).join('.');
    if (topRefused.has(parentPath)) { lines.push(`  '${path}': { refusedWith: '${parentPath}' },`); return; }
  }
  const v = refusedValue(kind, owner, rel);
  if (v !== undefined) { topRefused.set(path, v); lines.push(`  '${path}': { refused: ${JSON.stringify(v)} },`); return; }
  lines.push(`  '${path}': { gap: true },`);
};
for (const d of entities) for (const p of fieldPaths(d.schema)) add(`${d.name}.${p}`, 'entity', d.name, p);
for (const p of bundledPlugins) for (const f of fieldPaths(p.schema)) add(`plugins:${p.name}.config.${f}`, 'plugin', p.name, f);
const header = `/**
 * Every field of every entity schema and bundled plugin schema, and how it is accounted for
 * (checked by field-coverage.test.ts):
 *   - \`tests\`: a test file that exercises the field (it must mention the field's name);
 *   - \`refused\`: a value other than the default that validation refuses, naming the field;
 *   - \`refusedWith\`: a nested field of a refused record (the record is refused as a whole);
 *   - \`gap\`: KNOWN GAP — accepted, neither exercised by a test nor refused. This list may only
 *     shrink: a new field must come with a test or a refusal.
 * Regenerate the starting point with \`node scripts/field-coverage.ts\`, then edit by hand.
 */
export type Coverage = { tests: readonly string[] } | { refused: unknown } | { refusedWith: string } | { gap: true };

export const fieldCoverage: Readonly<Record<string, Coverage>> = {
`;
writeFileSync(root + 'test/field-coverage.ts', header + lines.join('\n') + '\n};\n');
console.log(lines.filter((l) => l.includes('gap')).length, 'gaps', lines.filter((l) => l.includes('refused')).length, 'refused');
