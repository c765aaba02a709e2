/** `portcullis config …` and `portcullis migrations …` dispatch. */
import { parseArgs } from 'node:util';
import { createRegistry } from '../plugins/registry.ts';
import { bundledPlugins } from '../plugins/bundled/index.ts';

export async function runTool(cmd: 'config' | 'migrations', argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      'dry-run': { type: 'boolean' },
      'admin-url': { type: 'string' },
    },
  });
  const registry = createRegistry(bundledPlugins);
  const [sub, file] = positionals;
  const adminUrl = values['admin-url'] ?? process.env.PORTCULLIS_ADMIN_URL ?? 'http://127.0.0.1:8001';
  if (cmd === 'config') {
    if (sub === 'validate' && file) {
      const { runConfigValidate } = await import('./config-validate.ts');
      return runConfigValidate(file, registry);
    }
    console.error('usage: portcullis config validate FILE | dump [-o FILE] | diff FILE | sync FILE [--dry-run]');
    return 2;
  }
  console.error('usage: portcullis migrations bootstrap|up|status');
  return 2;
}
