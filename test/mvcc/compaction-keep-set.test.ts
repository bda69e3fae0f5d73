/**
 * The set of revisions a compaction keeps is an open-addressing table sized from the key count
 * (a Set rehashed for tens of milliseconds on the event loop as it doubled). It must still answer
 * exactly as a set does: any main revision up to 2^53, sub-revisions, a size hint that is too small
 * (the table grows) or too large, repeated adds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KeepSet, revKeyId } from '../../src/mvcc/key-index.ts';

const main = fc.oneof(
  fc.integer({ min: 1, max: 5000 }),
  fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  // multiples of a large power of two: the same low bits, only the high ones differ
  fc.integer({ min: 1, max: 2 ** 20 }).map((x) => x * 2 ** 32),
);
const rev = fc.record({ main, sub: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 5 })) });

test('KeepSet answers as a Set of (main, sub) would', () => {
  fc.assert(
    fc.property(
      fc.array(rev, { maxLength: 400 }),
      fc.array(rev, { maxLength: 100 }),
      fc.integer({ min: 0, max: 1000 }),
      (added, probes, expected) => {
        const keep = new KeepSet(expected);
        const model = new Set<string>();
        for (const r of added) {
          keep.add(r.main, r.sub);
          model.add(revKeyId(r.main, r.sub));
        }
        assert.equal(keep.size, model.size);
        for (const r of [...added, ...probes]) {
          assert.equal(keep.has(r.main, r.sub), model.has(revKeyId(r.main, r.sub)), revKeyId(r.main, r.sub));
        }
        assert.deepEqual([...keep].sort(), [...model].sort());
      },
    ),
    { numRuns: 300 },
  );
});

test('KeepSet grows past its size hint without losing a revision', () => {
  const keep = new KeepSet(4);
  for (let m = 1; m <= 100_000; m += 3) keep.add(m, 0);
  assert.equal(keep.size, 33_334);
  for (let m = 1; m <= 100_000; m++) assert.equal(keep.has(m, 0), m % 3 === 1, String(m));
  assert.equal(keep.has(1, 1), false);
});
