// The bitmap and page table under the freelists, checked against a Set / Map over ids that cross
// chunk boundaries (4096 and 65536 multiples) and sit near 2^53.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PageBitmap } from '../../../src/bolt/freelist/page-bitmap.ts';
import { PageTable, TxidTable } from '../../../src/bolt/freelist/page-table.ts';

const BASES = [2, 4096 - 40, 65536 - 40, 3 * 65536 + 4000, 2 ** 32 - 50, 2 ** 53 - 300];

const opArb = fc.record({
  kind: fc.constantFrom('add', 'delete', 'count', 'has'),
  base: fc.constantFrom(...BASES),
  offset: fc.integer({ min: 0, max: 200 }),
  // Single ids often: they take their own path (most frees are one page).
  n: fc.oneof({ weight: 1, arbitrary: fc.constant(1) }, { weight: 3, arbitrary: fc.integer({ min: 1, max: 100 }) }),
});

function runsOf(sorted: number[]): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  for (const id of sorted) {
    const last = runs[runs.length - 1];
    if (last !== undefined && last[0] + last[1] === id) last[1]++;
    else runs.push([id, 1]);
  }
  return runs;
}

test('PageBitmap matches a Set: ranges, counts, order, runs', () => {
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 60, size: 'max' }), (ops) => {
      const bm = new PageBitmap();
      const model = new Set<number>();
      for (const { kind, base, offset, n } of ops) {
        const start = Math.min(base + offset, 2 ** 53 - 1 - n);
        const ids = Array.from({ length: n }, (_, i) => start + i);
        if (kind === 'add') {
          const fresh = ids.filter((id) => !model.has(id)).length;
          assert.equal(bm.addRange(start, n), fresh);
          ids.forEach((id) => model.add(id));
        } else if (kind === 'delete') {
          const present = ids.filter((id) => model.has(id)).length;
          assert.equal(bm.deleteRange(start, n), present);
          ids.forEach((id) => model.delete(id));
        } else if (kind === 'count') {
          assert.equal(bm.countRange(start, n), ids.filter((id) => model.has(id)).length);
        } else {
          assert.equal(bm.has(start), model.has(start));
          assert.equal(bm.has(start + n), model.has(start + n));
        }
        assert.equal(bm.size, model.size);
      }
      const sorted = [...model].sort((a, b) => a - b);
      assert.deepEqual(bm.toArray(), sorted);
      const runs: Array<[number, number]> = [];
      bm.forEachRun((s, len) => runs.push([s, len]));
      assert.deepEqual(runs, runsOf(sorted));
    }),
    { numRuns: 300 },
  );
});

test('PageBitmap: a run spanning several whole chunks is one run; clear empties it', () => {
  const bm = new PageBitmap();
  assert.equal(bm.addRange(100, 300_000), 300_000);
  const runs: Array<[number, number]> = [];
  bm.forEachRun((s, n) => runs.push([s, n]));
  assert.deepEqual(runs, [[100, 300_000]]);
  assert.equal(bm.deleteRange(150_000, 10), 10);
  assert.equal(bm.countRange(149_990, 30), 20);
  bm.clear();
  assert.equal(bm.size, 0);
  assert.deepEqual(bm.toArray(), []);
  assert.equal(bm.has(100), false);
});

test('PageBitmap: chunks emptied and refilled (kept, not dropped) read as empty everywhere', () => {
  const bm = new PageBitmap();
  bm.addRange(65_536 + 10, 5);
  bm.addRange(3 * 65_536 + 7, 1);
  assert.equal(bm.deleteRange(65_536 + 10, 5), 5);
  assert.equal(bm.deleteRange(3 * 65_536 + 7, 1), 1);
  assert.equal(bm.size, 0);
  assert.deepEqual(bm.toArray(), []);
  const runs: Array<[number, number]> = [];
  bm.forEachRun((s, n) => runs.push([s, n]));
  assert.deepEqual(runs, []);
  assert.equal(bm.nextSet(0, 4 * 65_536), -1);
  assert.equal(bm.prevSet(4 * 65_536, 0), -1);
  assert.deepEqual(PageBitmap.union([bm, new PageBitmap()]), []);
  bm.addRange(3 * 65_536 + 9, 2);
  assert.deepEqual(bm.toArray(), [3 * 65_536 + 9, 3 * 65_536 + 10]);
  assert.equal(bm.nextSet(0, 4 * 65_536), 3 * 65_536 + 9);
  assert.equal(bm.prevSet(4 * 65_536, 0), 3 * 65_536 + 10);
});

test('PageTable stores a u32 per id across chunks and reads unwritten ids as 0', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(fc.constantFrom(...BASES), fc.integer({ min: 0, max: 9000 }), fc.integer({ min: 0, max: 0xffffffff })),
        { maxLength: 80 },
      ),
      (writes) => {
        const table = new PageTable();
        const model = new Map<number, number>();
        for (const [base, off, v] of writes) {
          table.set(base + off, v);
          model.set(base + off, v);
        }
        for (const [base, off] of writes) {
          assert.equal(table.get(base + off), model.get(base + off));
          assert.equal(table.get(base + off + 1), model.get(base + off + 1) ?? 0);
        }
      },
    ),
  );
});

test('TxidTable stores a txid past 2^32 per id across chunks; unwritten and reset ids read 0', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(
          fc.constantFrom(...BASES),
          fc.integer({ min: 0, max: 9000 }),
          fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2 ** 53 - 1 })),
        ),
        { maxLength: 80 },
      ),
      (writes) => {
        const table = new TxidTable();
        const model = new Map<number, number>();
        for (const [base, off, v] of writes) {
          table.set(base + off, v);
          model.set(base + off, v);
        }
        for (const [base, off] of writes) {
          assert.equal(table.get(base + off), model.get(base + off));
          assert.equal(table.get(base + off + 1), model.get(base + off + 1) ?? 0);
        }
        table.clear();
        for (const [base, off] of writes) assert.equal(table.get(base + off), 0);
      },
    ),
  );
});
