/**
 * Starts a real gateway node in this process on port 0 (proxy and Admin API), from a decK
 * document (YAML text or object), with the bundled plugins plus any test plugins.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createRegistry } from '../../src/plugins/registry.ts';
import { bundledPlugins } from '../../src/plugins/bundled/index.ts';
import type { PluginDefinition } from '../../src/plugins/sdk.ts';
import { readSettings, startSingle, type RunningNode } from '../../src/kernel/index.ts';

export interface TestGateway {
  readonly proxyUrl: string;
  readonly adminUrl: string;
  readonly proxyPort: number;
  readonly node: RunningNode;
  /** Every log line written so far, parsed. */
  readonly logs: Array<Record<string, unknown>>;
  /** Raw log text (to assert secrets never appear). */
  logText(): string;
  /** Replace the declarative file and reload (DB-less mode); resolves false when rejected. */
  reload(config: string | object): Promise<boolean>;
  close(): Promise<void>;
}

export interface StartGatewayOptions {
  /** decK document: YAML/JSON text or an object (`_format_version` added when missing). */
  config?: string | object;
  env?: Record<string, string>;
  plugins?: PluginDefinition[];
  /** proxy_listen (default '127.0.0.1:0'); proxyPorts() lists the bound ports in this order. */
  proxyListen?: string;
  /**
   * 'off' (default, declarative), 'sqlite' (embedded store in a temp dir) or 'postgres' (the
   * connection from `env`: PORTCULLIS_PG_*).
   */
  database?: 'off' | 'sqlite' | 'postgres';
}

function toText(config: string | object): string {
  if (typeof config === 'string') return config;
  return JSON.stringify({ _format_version: '3.0', ...config });
}

export async function startGateway(options: StartGatewayOptions = {}): Promise<TestGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-test-'));
  const file = join(dir, 'portcullis.yaml');
  const database = options.database ?? 'off';
  if (database === 'off') await writeFile(file, toText(options.config ?? { _format_version: '3.0' }));
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  const env: Record<string, string | undefined> = {
    ...process.env,
    PORTCULLIS_SQLITE_PATH: join(dir, 'portcullis.db'),
    PORTCULLIS_DRAIN_TIMEOUT: '5',
    PORTCULLIS_PREFIX: join(dir, 'prefix'),
    // The web admin UI listener defaults to the fixed port 8002; tests that want it set it to port 0.
    PORTCULLIS_ADMIN_GUI_LISTEN: 'off',
    ...options.env,
  };
  const settings = readSettings({
    config: database === 'off' ? file : undefined,
    database,
    workers: '1',
    proxyListen: options.proxyListen ?? '127.0.0.1:0',
    adminListen: '127.0.0.1:0',
    logLevel: process.env.PORTCULLIS_TEST_LOG ?? 'info',
  }, env);
  const log = pino({ level: settings.logLevel }, sink);
  // `plugins`: extra definitions, or a test's own copy of a bundled one (it replaces the bundled one).
  const extra = options.plugins ?? [];
  const replaced = new Set(extra.map((p) => p.name));
  const registry = createRegistry([...bundledPlugins.filter((p) => !replaced.has(p.name)), ...extra], { workers: 1, database });
  let node: RunningNode;
  try {
    node = await startSingle(settings, registry, log);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const proxyPort = node.proxyPorts()[0];
  const adminPort = node.adminPorts()[0];
  return {
    proxyUrl: `http://127.0.0.1:${proxyPort}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    proxyPort,
    node,
    get logs() {
      return lines.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    logText: () => lines.join(''),
    async reload(config) {
      await writeFile(file, toText(config));
      return node.reload();
    },
    async close() {
      await node.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Starts a gateway on `config` (a decK file's text), runs `fn` with it and always closes it. */
export async function withGateway(config: string, fn: (gw: TestGateway) => Promise<void>): Promise<void> {
  const gw = await startGateway({ config });
  try {
    await fn(gw);
  } finally {
    await gw.close();
  }
}

/** One Admin API call with a JSON body (when given): the status and the parsed answer (null when empty). */
export async function adminJson(adminUrl: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(adminUrl + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? null : JSON.parse(text) };
}
