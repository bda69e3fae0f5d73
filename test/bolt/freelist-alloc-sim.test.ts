// The allocation-policy model (bench/lib/alloc-sim.ts): its run counting, that both engine
// freelists and the cursor model never hand out a page in use over thousands of commits, and the
// steady-state facts docs/benchmarks.md ("Commit path: allocation policy") rests on, at a small shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArrayFreelist, HashmapFreelist } from 'boltkv/freelist';
import { CursorModel, countRuns, EngineAllocator, levelsOf, simulate } from '../../bench/lib/alloc-sim.ts';

const shape = { leaves: 3000, fanout: 60 };

test('countRuns counts maximal contiguous groups in any order', () => {
  assert.equal(countRuns([]), 0);
  assert.equal(countRuns([7]), 1);
  assert.equal(countRuns([9, 7, 8]), 1);
  assert.equal(countRuns([2, 4, 3, 10, 12]), 3);
  assert.deepEqual(levelsOf(shape), [3000, 50, 1, 1]);
});

test('one run for the whole commit splits small commits on a file with little free space', () => {
  for (const fl of [new HashmapFreelist(), new ArrayFreelist()]) {
    const r = simulate(shape, new EngineAllocator(fl, { byLifetime: false }), 6000, { initialFree: 0.2 });
    assert.equal(r.fileEnd, r.fileStart, `${fl.kind}: the file does not grow while pages are free`);
    assert.ok(r.runsPerCommit > 2.5, `${fl.kind}: ${r.runsPerCommit} runs per commit`);
  }
});

test('placement by lifetime (the default) writes a small commit as two runs at the same file size', () => {
  for (const initialFree of [0.05, 0.2, 0.4]) {
    for (const fl of [new HashmapFreelist(), new ArrayFreelist()]) {
      const r = simulate(shape, new EngineAllocator(fl), 6000, { initialFree });
      const where = `${fl.kind}, ${initialFree} free`;
      assert.equal(r.fileEnd, r.fileStart, `${where}: the file does not grow`);
      assert.ok(r.runsPerCommit <= 2.05, `${where}: ${r.runsPerCommit} runs per commit`);
    }
  }
});

test('with two thirds of the file free, small commits go out as one run either way', () => {
  for (const byLifetime of [true, false]) {
    for (const fl of [new HashmapFreelist(), new ArrayFreelist()]) {
      const r = simulate(shape, new EngineAllocator(fl, { byLifetime }), 6000, { initialFree: 0.7 });
      assert.equal(r.fileEnd, r.fileStart);
      assert.ok(r.oneRun > 0.95, `${fl.kind}, byLifetime ${byLifetime}: ${r.oneRun} of commits in one run`);
    }
  }
});

test('a policy that never splits settles at a bounded file size', () => {
  for (const o of ['front', 'pair'] as const) {
    const r = simulate(shape, new CursorModel(o), 10_000);
    assert.equal(r.runsPerCommit, 1);
    const [a, b] = r.fileAt.slice(-2) as [number, number];
    assert.ok(b <= a * 1.01, `${o}: file still growing (${a} -> ${b})`);
    assert.ok(b / r.live > 1.8 && b / r.live < 3, `${o}: settles at ${b / r.live} x the live pages`);
  }
});

test('a cursor capped below that size converges back to split commits', () => {
  const r = simulate(shape, new CursorModel('pair', 0.35), 10_000, { initialFree: 0.35 });
  assert.ok(r.fileEnd / r.fileStart < 1.02, 'the cap holds the file size');
  assert.ok(r.runsPerCommit > 1.5, `${r.runsPerCommit} runs per commit`);
});
