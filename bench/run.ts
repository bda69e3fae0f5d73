/**
 * `npm run bench`: the engine benchmark, then the allocator benchmark, each in its own Node
 * process (so one's heap and JIT state cannot colour the other's figures). `--quick` is passed to
 * both; any other argument goes to the engine benchmark only (see bench/engine.ts).
 *
 * The engine benchmark includes the peer engines if `npm --prefix bench/peers install` has been
 * run, and Go's bbolt if `go` is installed; bench/scale.ts is separate (it writes gigabytes).
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');

const steps: Array<[string, string[]]> = [
  ['engine.ts', argv],
  ['allocator.ts', quick ? ['--quick'] : []],
];
for (const [file, args] of steps) {
  process.stderr.write(`\n== bench/${file} ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=boltkv-source', join(here, file), ...args], {
    stdio: 'inherit',
  });
  if (r.status !== 0) {
    console.error(`bench/${file} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
}
