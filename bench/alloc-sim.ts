/**
 * Allocation-policy simulation (no I/O; see bench/lib/alloc-sim.ts): random one-put commits on a
 * tree of the 1M-key shape, counting the contiguous runs each commit's pages form (the extents its
 * data write makes) and the file size the policy settles at.
 *
 * Table 1: policies that never split a commit (they grow the file when no run is free) — where the
 * file size settles, per orientation of the long-lived pages in the run.
 * Table 2: the engine's freelist (best fit, reservation halving) against the cursor model capped
 * at the same file size (growth only while free pages are under the initial share), on files
 * starting with a given share of free pages: runs per commit in the steady state.
 *
 *   node --import tsx bench/alloc-sim.ts [--leaves N] [--fanout N] [--commits N]
 */
import { HashmapFreelist } from '../src/bolt/freelist/index.ts';
import { CursorModel, EngineAllocator, levelsOf, type Orientation, simulate } from './lib/alloc-sim.ts';
import { printTable, type Row, writeResults } from './lib/report.ts';

const args = process.argv.slice(2);
const int = (flag: string, dflt: number): number => {
  const i = args.indexOf(flag);
  const n = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${flag} wants a positive integer`);
  return n;
};
// 1M keys of 8 + 100 bytes: about 40k leaves at the fill a random load leaves, branches of ~100.
const shape = { leaves: int('--leaves', 40_000), fanout: int('--fanout', 100) };
const COMMITS = int('--commits', 100_000);
const r2 = (x: number): number => Math.round(x * 100) / 100;

const growRows: Row[] = [];
for (const o of ['front', 'alternate', 'neighbour', 'pair'] as Orientation[]) {
  const r = simulate(shape, new CursorModel(o), COMMITS);
  growRows.push({
    orientation: o,
    'runs/commit': r2(r.runsPerCommit),
    'file ÷ live pages': r2(r.fileEnd / r.live),
    'file ÷ live at each tenth': r.fileAt.map((x) => r2(x / r.live)).join(' '),
  });
}
printTable(
  `never split (cursor, grow when no run is free): ${levelsOf(shape).join('/')} nodes per level, ${COMMITS.toLocaleString('en-US')} commits`,
  growRows,
);

const capRows: Row[] = [];
for (const f of [0.2, 0.35, 0.5, 0.6, 0.64, 0.7]) {
  for (const [name, alloc] of [
    ['engine hashmap (best fit)', new EngineAllocator(new HashmapFreelist())],
    ['cursor + pair, capped', new CursorModel('pair', f)],
  ] as const) {
    const r = simulate(shape, alloc, COMMITS, { initialFree: f });
    capRows.push({
      'free share at start': f,
      policy: name,
      'runs/commit (last quarter)': r2(r.runsPerCommit),
      'one-run commits': r2(r.oneRun),
      'file ÷ live pages': r2(r.fileEnd / r.live),
      'runs/commit at each tenth': r.runsAt.map(r2).join(' '),
    });
  }
}
printTable('steady state at a given file size (initial free share; the cursor model may grow up to it)', capRows);
console.log(
  `\nwrote ${writeResults('alloc-sim', { shape, levels: levelsOf(shape), commits: COMMITS, grow: growRows, capped: capRows })}`,
);
