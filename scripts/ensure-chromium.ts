/**
 * Runs before `npm test` (the `pretest` script): the sign-in tests drive a real Chromium, which
 * a fresh Debian machine does not have. As root with apt-get, Debian's `chromium` is installed;
 * otherwise a warning says the browser tests will be skipped (under CI=true they fail instead).
 * CHROMIUM_PATH points at another binary; PORTCULLIS_NO_INSTALL=1 never installs anything.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const path = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

if (!existsSync(path) && process.env.PORTCULLIS_NO_INSTALL !== '1' && process.getuid?.() === 0 && has('apt-get') && path === '/usr/bin/chromium') {
  console.log('pretest: installing Debian chromium for the real-browser sign-in tests');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  spawnSync('apt-get', ['install', '-y', '-qq', 'chromium'], { stdio: 'inherit', env });
}
if (!existsSync(path)) {
  console.warn(`pretest: no Chromium at ${path}: the real-browser sign-in tests will be skipped (install Debian's chromium, or set CHROMIUM_PATH)`);
}
