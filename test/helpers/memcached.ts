/**
 * A real memcached (Debian's /usr/bin/memcached) per test: started on a free port of 127.0.0.1,
 * optionally with TLS, and stopped by `close()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { freePort, waitFor } from './process.ts';

export interface Memcached {
  port: number;
  close(): Promise<void>;
}

export async function startMemcached(opts: { tls?: { certFile: string; keyFile: string } } = {}): Promise<Memcached> {
  const port = await freePort();
  const args = ['-p', String(port), '-l', '127.0.0.1', '-U', '0', '-m', '16'];
  // memcached refuses to run as root unless told which user to be.
  if (process.getuid?.() === 0) args.push('-u', 'root');
  if (opts.tls) args.push('-Z', '-o', `ssl_chain_cert=${opts.tls.certFile},ssl_key=${opts.tls.keyFile}`);
  const child: ChildProcess = spawn('memcached', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        if (child.exitCode !== null) return resolve(false);
        const s = connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      }),
    10_000,
    `memcached on ${port} (${stderr})`,
  );
  return {
    port,
    async close() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}
