/**
 * The how-to guides' configurations must load: the decK files they render to (fixtures in
 * testdata/), and, when the team's reference copy is present, the `entity_examples` blocks of
 * the guides themselves, rendered the way the docs site renders them for decK.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { loadDeclarativeFile, parseDeclarative } from './index.ts';
import { testRegistry } from './testkit.ts';

const registry = testRegistry();
const env = {
  DECK_ISSUER: 'http://127.0.0.1:8080/realms/master',
  DECK_CLIENT_ID: 'kong',
  DECK_CLIENT_SECRET: 'not-a-real-secret',
  DECK_TOKEN_SALT: 'salt',
  CLIENT_SECRET: 'from-vault',
};
const testdata = new URL('./testdata/', import.meta.url).pathname;

test('how-to fixture (YAML) loads with env placeholders substituted', async () => {
  const data = await loadDeclarativeFile(join(testdata, 'howto-session-auth.yaml'), { registry, env, now: 0 });
  const oidc = data.plugins[0]!;
  assert.equal(oidc.name, 'openid-connect');
  assert.deepEqual(oidc.service, { id: data.services[0]!.id });
  assert.equal(oidc.config.issuer, env.DECK_ISSUER);
  assert.deepEqual(oidc.config.client_id, ['kong']);
  assert.deepEqual(oidc.config.auth_methods, ['session', 'password']);
});

test('how-to fixture (JSON) loads, with a vault reference', async () => {
  const data = await loadDeclarativeFile(join(testdata, 'howto-consumers.json'), { registry, env, now: 0 });
  assert.equal(data.consumers[0]!.username, 'alex');
  assert.deepEqual(data.plugins[0]!.config.client_secret, ['from-vault']);
  assert.deepEqual(data.plugins[0]!.config.consumer_claims, [['preferred_username']]);
});

/** Render a guide's `{% entity_examples %}` block as the decK file the docs show. */
function renderEntityExamples(block: string): string {
  const spec = parseYaml(block) as { entities: Record<string, unknown>; variables?: Record<string, { value: string }> };
  let text = stringify({
    _format_version: '3.0',
    // Every guide's prerequisites create these two.
    services: [{ name: 'example-service', url: 'http://httpbin.konghq.com/anything', routes: [{ name: 'example-route', paths: ['/anything'] }] }],
    ...spec.entities,
  });
  for (const [name, v] of Object.entries(spec.variables ?? {})) {
    text = text.replaceAll(`\${${name}}`, `\${{ env "DECK_${v.value.replace(/^\$/, '')}" }}`);
  }
  return text;
}

const referenceDir = '/work/shared/reference';
test('entity_examples of the reference how-to guides load', { skip: !existsSync(referenceDir) && 'reference copy not present' }, () => {
  let blocks = 0;
  for (const file of readdirSync(referenceDir).filter((f) => f.endsWith('.txt'))) {
    const source = readFileSync(join(referenceDir, file), 'utf8');
    for (const m of source.matchAll(/\{% entity_examples %\}\n([\s\S]*?)\{% endentity_examples %\}/g)) {
      blocks++;
      const data = parseDeclarative(renderEntityExamples(m[1] ?? ''), { registry, env, now: 0, filename: file });
      assert.equal(data.plugins.length, 1, file);
      assert.equal(data.plugins[0]!.config.issuer, env.DECK_ISSUER);
    }
  }
  assert.ok(blocks >= 1, 'expected at least one entity_examples block');
});
