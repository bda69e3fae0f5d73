/**
 * Property test of the chunked ordered map (the key index's container) against a plain Map sorted
 * on demand. Runs are long enough to split chunks many times, with sequential stretches (the
 * pattern its lookup finger serves) mixed with random keys and deletes that empty whole chunks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OrderedMap } from '../../src/mvcc/ordered-map.ts';

type Op =
  | { t: 'set'; k: number }
  | { t: 'run'; k: number; n: number; del: boolean }
  | { t: 'del'; k: number }
  | { t: 'range'; a: number; b: number };

const KEYS = 5000;
const keyOf = (i: number): string => `k${String(i).padStart(5, '0')}`;

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.nat(KEYS).map((k) => ({ t: 'set' as const, k })) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('run' as const),
      k: fc.nat(KEYS),
      n: fc.integer({ min: 1, max: 1500 }),
      del: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.nat(KEYS).map((k) => ({ t: 'del' as const, k })) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('range' as const), a: fc.nat(KEYS), b: fc.nat(KEYS) }) },
);

test('ordered map matches a sorted Map through splits, sequential runs and emptied chunks', () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
      const m = new OrderedMap<number>();
      const model = new Map<string, number>();
      let stamp = 0;
      for (const op of ops) {
        if (op.t === 'set') {
          const k = keyOf(op.k);
          m.set(k, ++stamp);
          model.set(k, stamp);
        } else if (op.t === 'del') {
          const k = keyOf(op.k);
          assert.equal(m.delete(k), model.delete(k));
        } else if (op.t === 'run') {
          for (let i = op.k; i < Math.min(KEYS, op.k + op.n); i++) {
            const k = keyOf(i);
            if (op.del) assert.equal(m.delete(k), model.delete(k));
            else {
              assert.equal(m.get(k), model.get(k));
              m.set(k, ++stamp);
              model.set(k, stamp);
            }
          }
        } else {
          const from = keyOf(Math.min(op.a, op.b));
          const to = op.a === op.b ? undefined : keyOf(Math.max(op.a, op.b));
          const got: [string, number][] = [];
          m.forEachInRange(from, to, (k, v) => {
            got.push([k, v]);
          });
          const want = [...model]
            .filter(([k]) => k >= from && (to === undefined || k < to))
            .sort((x, y) => (x[0] < y[0] ? -1 : 1));
          assert.deepEqual(got, want);
        }
        assert.equal(m.size, model.size);
      }
      const all = [...m.entries()];
      assert.deepEqual(
        all,
        [...model].sort((x, y) => (x[0] < y[0] ? -1 : 1)),
      );
      for (let i = 0; i < KEYS; i += 97) assert.equal(m.get(keyOf(i)), model.get(keyOf(i)));
    }),
    { numRuns: 60 },
  );
});
