/**
 * No silently ignored settings: every field of every entity schema and bundled plugin schema is
 * either exercised by a test, refused by validation when set, or listed as a known gap
 * (test/field-coverage.ts). A new field without any of these fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { entities } from '../src/config/entities/index.ts';
import { normalizeEntity } from '../src/config/normalize.ts';
import { bundledPlugins } from '../src/plugins/bundled/index.ts';
import { createRegistry } from '../src/plugins/registry.ts';
import { fieldPaths, namesField } from './helpers/schema-fields.ts';
import { fieldCoverage } from './field-coverage.ts';

const root = new URL('..', import.meta.url).pathname;
const registry = createRegistry(bundledPlugins);

/** Every field path: `services.name`, `plugins:openid-connect.config.redis.host`, ... */
function allFields(): { path: string; kind: 'entity' | 'plugin'; owner: string; rel: string }[] {
  const out: { path: string; kind: 'entity' | 'plugin'; owner: string; rel: string }[] = [];
  for (const d of entities) for (const rel of fieldPaths(d.schema)) out.push({ path: `${d.name}.${rel}`, kind: 'entity', owner: d.name, rel });
  for (const p of bundledPlugins) for (const rel of fieldPaths(p.schema)) out.push({ path: `plugins:${p.name}.config.${rel}`, kind: 'plugin', owner: p.name, rel });
  return out;
}

const minimalEntity: Record<string, Record<string, unknown>> = { services: { host: 'h' }, routes: { paths: ['/'] }, consumers: { username: 'u' }, plugins: { name: 'cors' }, acls: { consumer: { id: '00000000-0000-4000-8000-000000000001' }, group: 'g' } };
const minimalConfig: Record<string, Record<string, unknown>> = { 'openid-connect': { issuer: 'https://idp.example/' }, acl: { allow: ['a'] }, 'rate-limiting': { minute: 1 } };
const nest = (rel: string, v: unknown): Record<string, unknown> => rel.split('.').reduceRight<unknown>((acc, k) => ({ [k]: acc }), v) as Record<string, unknown>;

test('every schema field is accounted for (tested, refused, or a listed known gap)', () => {
  const fields = allFields();
  const missing = fields.filter((f) => !(f.path in fieldCoverage)).map((f) => f.path);
  assert.deepEqual(missing, [], 'fields with no entry in test/field-coverage.ts: add a test, a refusal, or (last resort) a gap');
  const known = new Set(fields.map((f) => f.path));
  assert.deepEqual(Object.keys(fieldCoverage).filter((p) => !known.has(p)), [], 'entries for fields that no longer exist');
});

test('no field is a known gap: each is tested or refused', () => {
  assert.deepEqual(Object.entries(fieldCoverage).filter(([, c]) => 'gap' in c).map(([p]) => p), []);
});

test('a field listed as tested is named, with its owner, in the test file listed for it', () => {
  for (const [path, c] of Object.entries(fieldCoverage)) {
    if (!('tests' in c)) continue;
    for (const file of c.tests) {
      assert.ok(namesField(file, readFileSync(root + file, 'utf8'), path), `${file} does not mention ${path.split('.').pop()} together with its owner (${path})`);
    }
  }
});

test('a field listed as refused is refused by validation, naming it', () => {
  for (const f of allFields()) {
    const c = fieldCoverage[f.path];
    if (!c) continue;
    if ('refusedWith' in c) {
      const parent = fieldCoverage[c.refusedWith];
      assert.ok(parent && 'refused' in parent, `${f.path}: ${c.refusedWith} is not listed as refused`);
      continue;
    }
    if (!('refused' in c)) continue;
    const issues = f.kind === 'entity'
      ? ((r) => (r.ok ? [] : r.issues))(normalizeEntity(f.owner as never, { ...minimalEntity[f.owner], ...nest(f.rel, c.refused) }, { registry, now: 0 }))
      : ((r) => (r.ok ? [] : r.issues))(registry.validateConfig(f.owner, { ...(minimalConfig[f.owner] ?? {}), ...nest(f.rel, c.refused) }));
    assert.ok(issues.length > 0, `${f.path} = ${JSON.stringify(c.refused)} is accepted`);
    assert.ok(issues.some((i) => i.path === f.rel || i.path.startsWith(`${f.rel}.`) || i.path.startsWith(`${f.rel}[`)), `${f.path}: the refusal does not name the field: ${JSON.stringify(issues)}`);
  }
});
