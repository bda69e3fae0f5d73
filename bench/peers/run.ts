/**
 * `npm run bench:peers`: the engine benchmark with every peer engine required (lmdb, classic-level,
 * better-sqlite3) and Go's bbolt when `go` is present. Installs the peers into bench/peers/ first
 * when they are missing (they stay out of boltkv's own dependencies).
 *
 *   node --import tsx --conditions=boltkv-source bench/peers/run.ts [--quick] [engine.ts options]
 *   ... --no-install   fail instead of installing missing peers
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSuiteArgs, runEngineSuite } from '../engine.ts';

const here = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);

const installed = ['lmdb', 'classic-level', 'better-sqlite3'].every((p) => existsSync(join(here, 'node_modules', p)));
if (!installed && !argv.includes('--no-install')) {
  process.stderr.write('bench:peers: installing the peer engines (npm --prefix bench/peers install)\n');
  const r = spawnSync('npm', ['--prefix', here, 'install'], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('bench:peers: npm install of the peers failed; see above');
    process.exit(1);
  }
}

Promise.resolve()
  .then(() => runEngineSuite({ ...parseSuiteArgs(argv.filter((a) => a !== '--no-install')), peers: 'required' }))
  .catch((err: unknown) => {
    // A bad argument gets its message alone; anything else keeps its stack.
    console.error(
      err instanceof Error && /^(--|cannot read a size)/.test(err.message) ? `bench:peers: ${err.message}` : err,
    );
    process.exitCode = 1;
  });
