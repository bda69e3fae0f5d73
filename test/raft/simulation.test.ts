/**
 * Randomized deterministic simulation: fast-check picks the cluster shape and a sequence of faults
 * and client actions; the safety invariants are checked after every step, and after healing the
 * cluster must elect a leader and commit new proposals on every member.
 * BOLTKV_STRESS=1 runs many more and longer sequences.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { type Op, applyOp, build, checkLiveness, opArb, shapeArb } from './sim-ops.ts';

const STRESS = process.env['BOLTKV_STRESS'] === '1';

test('simulation: safety under faults, liveness after healing', () => {
  let reads = 0;
  let leaders = 0;
  let snaps = 0;
  let confs = 0;
  let runs = 0;
  fc.assert(
    fc.property(
      shapeArb,
      fc.array(opArb, { minLength: 200, maxLength: STRESS ? 1000 : 500, size: 'max' }) as fc.Arbitrary<Op[]>,
      (shape, ops) => {
        const c = build(shape);
        const removed = new Set<number>();
        for (const op of ops) {
          const before = c.configs();
          applyOp(c, op, removed);
          c.checkInvariants(before);
        }
        runs++;
        leaders += c.leaderOfTerm.size;
        snaps += c.snapshotsDelivered;
        confs += c.confChangesApplied;
        reads += c.readsServed;
        checkLiveness(c);
      },
    ),
    { numRuns: STRESS ? 10000 : 500, includeErrorInReport: true },
  );
  // The generator must actually exercise elections and reads, or the property proves little.
  console.log(
    `simulation: ${runs} runs, ${leaders} terms with a leader, ${reads} reads served, ` +
      `${snaps} snapshots delivered, ${confs} conf changes applied (before healing)`,
  );
  assert.ok(leaders > runs, `only ${leaders} leaders elected over ${runs} runs`);
  assert.ok(snaps > 0, 'no snapshot was ever delivered');
  assert.ok(confs > 0, 'no membership change was ever applied');
  assert.ok(reads > 0, 'no ReadIndex read was ever served');
});
