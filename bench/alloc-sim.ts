/**
 * Allocation-policy simulation (no I/O; see bench/lib/alloc-sim.ts): random one-put commits on a
 * tree of the 1M-key shape, counting the contiguous runs each commit's pages form (the extents its
 * data write makes) and the file size the policy settles at.
 *
 * Table 1: policies that never split a commit (they grow the file when no run is free) — where the
 * file size settles, per orientation of the long-lived pages in the run.
 * Table 2: from a file with --free of its pages free (scattered), the engine's freelists as tx.ts
 * drives them (small commits placed by lifetime: the leaf apart, the rest one run), the same with
 * one run for the whole commit (the policy before), the hashmap with the allocationSlack option (a
 * small commit with no free run of its size grows the file while free pages are under that share),
 * and the cursor model capped the same way: runs per commit and file size in the steady state.
 *
 *   node --import tsx bench/alloc-sim.ts [--leaves N] [--fanout N] [--commits N] [--free SHARE]
 */
import { ArrayFreelist, HashmapFreelist } from '../src/bolt/freelist/index.ts';
import {
  CursorModel,
  EngineAllocator,
  levelsOf,
  type Orientation,
  type SimAllocator,
  simulate,
} from './lib/alloc-sim.ts';
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

// The bench's 200k-key file after its load has about a third of its pages free (commit-path).
const START_FREE = args.includes('--free') ? Number(args[args.indexOf('--free') + 1]) : 0.34;
if (!(START_FREE >= 0 && START_FREE < 1)) throw new Error('--free wants a share from 0 to 1');
const capRows: Row[] = [];
const cases: Array<[string, () => SimAllocator]> = [
  ['engine hashmap, the default: leaf apart, the rest one run', () => new EngineAllocator(new HashmapFreelist())],
  ['engine array (first fit), leaf apart', () => new EngineAllocator(new ArrayFreelist())],
  [
    'engine hashmap, one run for the whole commit (before)',
    () => new EngineAllocator(new HashmapFreelist(), { byLifetime: false }),
  ],
  [
    'engine array, one run for the whole commit (before)',
    () => new EngineAllocator(new ArrayFreelist(), { byLifetime: false }),
  ],
];
for (const x of [0.5, 0.6, 0.65, 0.75]) {
  cases.push([`engine hashmap, allocationSlack ${x}`, () => new EngineAllocator(new HashmapFreelist(), { slack: x })]);
}
for (const x of [0.5, 0.65])
  cases.push([`cursor + pair model, grows while free < ${x}`, () => new CursorModel('pair', x)]);
for (const [name, make] of cases) {
  const r = simulate(shape, make(), COMMITS, { initialFree: START_FREE });
  capRows.push({
    policy: name,
    'runs/commit (last quarter)': r2(r.runsPerCommit),
    'one-run commits': r2(r.oneRun),
    'file ÷ live pages': r2(r.fileEnd / r.live),
    'runs/commit at each tenth': r.runsAt.map(r2).join(' '),
    'file ÷ live at each tenth': r.fileAt.map((x) => r2(x / r.live)).join(' '),
  });
}
printTable(`from a file with ${START_FREE} of its pages free, scattered: steady state per policy`, capRows);
console.log(
  `\nwrote ${writeResults('alloc-sim', { shape, levels: levelsOf(shape), commits: COMMITS, startFree: START_FREE, grow: growRows, capped: capRows })}`,
);
