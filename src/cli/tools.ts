/** `portcullis config …` and `portcullis migrations …` dispatch. */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { createRegistry } from '../plugins/registry.ts';
import { enabledPlugins } from '../plugins/bundled/index.ts';

export async function runTool(cmd: 'config' | 'migrations', argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      'dry-run': { type: 'boolean' },
      'admin-url': { type: 'string' },
      'with-keys': { type: 'boolean' },
      workers: { type: 'string' },
    },
  });
  // `validate` judges a file as `start -c FILE` would run it: DB-less, with the same worker count
  // (checks such as openid-connect's session_secret depend on it).
  const workersRaw = values.workers ?? process.env.PORTCULLIS_WORKERS;
  const workers = workersRaw === undefined || workersRaw === '' || workersRaw === 'auto' ? os.availableParallelism() : Number(workersRaw);
  if (!Number.isInteger(workers) || workers < 1) {
    console.error(`workers: '${workersRaw}' must be a whole number from 1 to 256`);
    return 2;
  }
  let plugins;
  try {
    plugins = enabledPlugins(process.env.PORTCULLIS_PLUGINS);
  } catch (err) {
    console.error(`PORTCULLIS_PLUGINS: ${(err as Error).message}`);
    return 2;
  }
  const registry = createRegistry(plugins, { workers, database: 'off' });
  const [sub, file] = positionals;
  const adminUrl = values['admin-url'] ?? process.env.PORTCULLIS_ADMIN_URL ?? 'http://127.0.0.1:8001';
  if (cmd === 'config') {
    if (sub === 'validate' && file) {
      const { runConfigValidate } = await import('./config-validate.ts');
      return runConfigValidate(file, registry);
    }
    if (sub === 'dump') {
      const { runConfigDump } = await import('./config-sync.ts');
      return runConfigDump(adminUrl, values.output, {}, values['with-keys'] === true);
    }
    if (sub === 'diff' && file) {
      const { runConfigDiff } = await import('./config-sync.ts');
      return runConfigDiff(adminUrl, file, registry);
    }
    if (sub === 'sync' && file) {
      const { runConfigSync } = await import('./config-sync.ts');
      return runConfigSync(adminUrl, file, { dryRun: values['dry-run'] ?? false }, registry);
    }
    console.error('usage: portcullis config validate FILE | dump [-o FILE] | diff FILE | sync FILE [--dry-run]');
    return 2;
  }
  if (sub === 'bootstrap' || sub === 'up' || sub === 'status') {
    const { runMigrations } = await import('./config-sync.ts');
    const { readStoreSettings } = await import('../storage/index.ts');
    return runMigrations(sub, readStoreSettings(process.env));
  }
  console.error('usage: portcullis migrations bootstrap|up|status');
  return 2;
}
