/**
 * Builds the web admin UI (ui/ → ui/dist) during `npm install` / `npm ci` (the root `postinstall`)
 * and `npm run build:ui`: installs ui/'s own packages from the npm registry (ui/package-lock.json)
 * and runs Vite. Skipped when ui/dist was built from the same sources (a hash of ui/'s files is kept
 * in ui/dist/.build-hash), or when PORTCULLIS_SKIP_UI_BUILD=1. `--force` rebuilds anyway.
 * Text assets get a gzip sibling (`x.js.gz`) that the admin GUI listener serves to clients that take it.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = fileURLToPath(new URL('..', import.meta.url));
const ui = join(root, 'ui');
const dist = join(ui, 'dist');
const force = process.argv.includes('--force');

if (process.env.PORTCULLIS_SKIP_UI_BUILD === '1' && !force) {
  console.log('admin UI: build skipped (PORTCULLIS_SKIP_UI_BUILD=1)');
  process.exit(0);
}

function files(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...files(p));
    else out.push(p);
  }
  return out;
}

const sources = ['package.json', 'package-lock.json', '.npmrc', 'index.html', 'vite.config.ts'].map((f) => join(ui, f)).concat(files(join(ui, 'src'))).sort();
const hash = createHash('sha256');
for (const f of sources) hash.update(relative(ui, f)).update('\0').update(readFileSync(f)).update('\0');
const digest = hash.digest('hex');
const stamp = join(dist, '.build-hash');
if (!force && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === digest && existsSync(join(dist, 'index.html'))) {
  console.log('admin UI: ui/dist is up to date');
  process.exit(0);
}

function run(cmd: string, args: string[]): void {
  console.log(`admin UI: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: ui, stdio: 'inherit', env: process.env });
  if (r.status !== 0) {
    console.error(`admin UI: '${cmd} ${args.join(' ')}' failed (exit ${r.status ?? r.signal}); the gateway runs, its admin GUI listener answers 503 until the UI is built (npm run build:ui)`);
    process.exit(1);
  }
}

const started = Date.now();
// Install scripts of ui/'s packages are not run: none is needed for the build.
const lockStamp = join(ui, 'node_modules', '.portcullis-lock-hash');
const lockHash = createHash('sha256').update(readFileSync(join(ui, 'package-lock.json'))).digest('hex');
if (!existsSync(lockStamp) || readFileSync(lockStamp, 'utf8').trim() !== lockHash) {
  run('npm', ['ci', '--include=dev', '--ignore-scripts', '--legacy-peer-deps', '--no-audit', '--no-fund', '--loglevel=error']);
  writeFileSync(lockStamp, lockHash);
}
run(process.execPath, [join(ui, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--logLevel', 'warn']);

let zipped = 0;
for (const f of files(dist)) {
  if (!/\.(js|css|html|svg|json|map|txt)$/.test(f)) continue;
  const size = statSync(f).size;
  if (size < 1024) continue;
  writeFileSync(`${f}.gz`, gzipSync(readFileSync(f), { level: 9 }));
  zipped++;
}
writeFileSync(stamp, `${digest}\n`);
console.log(`admin UI: built into ui/dist in ${((Date.now() - started) / 1000).toFixed(1)} s (${zipped} files precompressed)`);
