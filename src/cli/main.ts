/**
 * `portcullis` command line: start the gateway, and config/migrations tools.
 */
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { createRegistry } from '../plugins/registry.ts';
import { enabledPlugins } from '../plugins/bundled/index.ts';
import { createLogger } from '../observability/logger.ts';
import { readSettings, runWorker, settingDocs, SettingsError, startPrimary, startSingle, version, type RunningNode } from '../kernel/index.ts';

function usage(): string {
  const lines = [
    `portcullis ${version} — an API gateway with Kong-compatible configuration and OpenID Connect`,
    '',
    'Usage:',
    '  portcullis start [-c FILE] [--workers N] [--watch] [--proxy-listen L] [--admin-listen L] [--database off|sqlite|postgres] [--log-level LEVEL]',
    '  portcullis config validate FILE [--workers N]  check a decK-format file as `start -c FILE` would run it; exit 1 listing every problem',
    '  portcullis config dump [-o FILE]         write the running config (decK format) from the Admin API',
    '  portcullis config diff FILE              show what `sync` would change',
    '  portcullis config sync FILE [--dry-run]  make the running config match FILE through the Admin API',
    '  portcullis migrations bootstrap|up|status  prepare the PostgreSQL/SQLite schema',
    '  portcullis --help | --version',
    '',
    'Config tools talk to the Admin API at --admin-url (default http://127.0.0.1:8001, or PORTCULLIS_ADMIN_URL),',
    'sending PORTCULLIS_ADMIN_TOKEN as Kong-Admin-Token when set.',
    '',
    'Signals: SIGTERM/SIGINT drain in-flight requests and exit 0; SIGHUP reloads the configuration.',
    '',
    'Settings (flags win over environment variables):',
  ];
  for (const d of settingDocs) {
    lines.push(`  ${d.env}${d.flag ? ` (${d.flag})` : ''}`, `      ${d.help} Default: ${d.default}.`);
  }
  return lines.join('\n');
}

/** PORTCULLIS_PLUGINS as a settings error (exit 2 naming the setting). */
function pluginsOf(value: string | undefined) {
  try {
    return enabledPlugins(value);
  } catch (err) {
    throw new SettingsError(`PORTCULLIS_PLUGINS: ${(err as Error).message}`);
  }
}

/** `portcullis <command> --help`: the command's lines of the usage (start: with every setting). */
const subcommandHelp: Record<string, () => string> = {
  start: () => usage().replace(/\n {2}portcullis (config|migrations|--help)[^\n]*/g, ''),
  config: () => usage().split('\n').filter((l) => !/^ {2}portcullis (start|migrations|--help)/.test(l)).slice(0, 12).join('\n'),
  migrations: () => [
    'Usage: portcullis migrations bootstrap|up|status',
    '  bootstrap, up: create or update the tables of PORTCULLIS_DATABASE (sqlite: PORTCULLIS_SQLITE_PATH; postgres: PORTCULLIS_PG_*)',
    '  status: list executed and pending migrations',
  ].join('\n'),
};

async function start(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      workers: { type: 'string' },
      watch: { type: 'boolean' },
      'proxy-listen': { type: 'string' },
      'admin-listen': { type: 'string' },
      database: { type: 'string' },
      'log-level': { type: 'string' },
    },
    strict: true,
  });
  const settings = readSettings({
    config: values.config, workers: values.workers, watch: values.watch, proxyListen: values['proxy-listen'],
    adminListen: values['admin-listen'], database: values.database, logLevel: values['log-level'],
  });
  const log = createLogger({ level: settings.logLevel });
  const registry = createRegistry(pluginsOf(settings.env.PORTCULLIS_PLUGINS), { workers: settings.workers, database: settings.database });
  if (cluster.isWorker) {
    await runWorker(settings, registry, log.child({ worker: cluster.worker?.id }));
    return;
  }
  // Signal handlers go in before anything starts: a signal during start-up is acted on once the
  // node is up, instead of killing a half-started process.
  let node: RunningNode | null = null;
  let stopping = false;
  let reloadWanted = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    if (node === null) return;
    log.info({ signal }, 'draining and stopping');
    node.close().then(() => {
      log.flush?.();
      process.exit(0);
    }, (err: unknown) => {
      log.error({ err: { message: (err as Error).message } }, 'error while stopping');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  if (process.env.PORTCULLIS_LAUNCHER_PID && process.channel) {
    // Started by bin/portcullis.js under an older `node`: when the launcher goes away (killed, even
    // with SIGKILL), its IPC channel closes, and the gateway stops with its workers: no orphans.
    process.channel.unref();
    process.on('disconnect', () => stop('launcher exited'));
  }
  process.on('SIGHUP', () => {
    if (node === null) reloadWanted = true;
    else void node.reload();
  });
  const early = (globalThis as { portcullisEarlySignals?: { signals: string[]; release(): void } }).portcullisEarlySignals;
  if (early) {
    early.release();
    for (const signal of early.signals) {
      if (signal === 'SIGHUP') reloadWanted = true;
      else stopping = true;
    }
  }
  try {
    node = settings.workers > 1 ? await startPrimary(settings, registry, log) : await startSingle(settings, registry, log);
  } catch (err) {
    const e = err as Error & { format?: () => string };
    log.fatal({ problems: typeof e.format === 'function' ? e.format().split('\n') : undefined }, `portcullis could not start: ${e.message}`);
    log.flush?.();
    process.stderr.write(`portcullis could not start: ${typeof e.format === 'function' ? `\n${e.format()}` : e.message}\n`);
    process.exit(1);
  }
  if (settings.workers === 1) log.info({ proxy_ports: node.proxyPorts(), admin_ports: node.adminPorts(), ...(settings.streamListen.length > 0 ? { stream_ports: node.streamPorts() } : {}), database: settings.database }, 'portcullis started');
  if (stopping) {
    stopping = false;
    stop('SIGTERM');
  } else if (reloadWanted) {
    void node.reload();
  }
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
      console.log(usage());
      return 0;
    }
    if (cmd === '--version' || cmd === 'version') {
      console.log(version);
      return 0;
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      const help = subcommandHelp[cmd];
      if (help === undefined) {
        console.error(`unknown command '${cmd}'\n\n${usage()}`);
        return 2;
      }
      console.log(help());
      return 0;
    }
    if (cmd === 'start') {
      await start(rest);
      return -1;
    }
    if (cmd === 'config' || cmd === 'migrations') {
      const { runTool } = await import('./tools.ts');
      return await runTool(cmd, rest);
    }
    console.error(`unknown command '${cmd}'\n\n${usage()}`);
    return 2;
  } catch (err) {
    if (err instanceof SettingsError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`portcullis: ${(err as Error).message}`);
      return 2;
    }
    throw err;
  }
}

const code = await main(process.argv.slice(2));
if (code >= 0) process.exit(code);
