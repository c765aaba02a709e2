/**
 * `portcullis config validate FILE`: load a declarative file and report every problem.
 * Exit code 0 and `OK` on stdout when valid; 1 and one `path: message` line per issue on stderr.
 */
import { isGatewayError } from '../errors.ts';
import { ConfigError } from '../errors.ts';
import type { PluginRegistry } from '../plugins/registry.ts';
import { loadDeclarativeFile } from '../config/index.ts';

export interface ConfigValidateIo {
  stdout?: (line: string) => void;
  stderr?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

export async function runConfigValidate(file: string, registry: PluginRegistry, io: ConfigValidateIo = {}): Promise<number> {
  const out = io.stdout ?? ((l: string) => process.stdout.write(`${l}\n`));
  const err = io.stderr ?? ((l: string) => process.stderr.write(`${l}\n`));
  try {
    await loadDeclarativeFile(file, { registry, env: io.env ?? process.env, warn: (w) => err(`warning: ${w}`) });
    out('OK');
    return 0;
  } catch (e) {
    if (e instanceof ConfigError) {
      for (const line of e.format().split('\n')) err(line);
    } else if (isGatewayError(e)) {
      err(e.message);
    } else {
      const code = (e as NodeJS.ErrnoException).code;
      err(code === 'ENOENT' ? `${file}: no such file` : `${file}: ${(e as Error).message}`);
    }
    return 1;
  }
}
