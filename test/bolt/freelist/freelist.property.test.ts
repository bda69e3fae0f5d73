// Random engine-like scenarios run on both freelists against the Set-based model (see model.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ArrayFreelist, HashmapFreelist } from 'boltkv/freelist';
import type { Freelist } from 'boltkv/freelist';
import { runScenario } from './model.ts';
import type { Scenario, Step } from './model.ts';

const stress = process.env.BOLTKV_STRESS === '1';

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ op: 'begin' as const }) },
  {
    weight: 8,
    arbitrary: fc
      .oneof(
        { weight: 4, arbitrary: fc.constant(1) },
        { weight: 3, arbitrary: fc.integer({ min: 2, max: 4 }) },
        {
          weight: 1,
          arbitrary: fc.integer({ min: 5, max: 12 }),
        },
      )
      // A quarter placed apart (as a small commit's leaf), so most still meet the reservation.
      .chain((n) =>
        fc
          .oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) })
          .map((apart) => ({ op: 'alloc' as const, n, apart })),
      ),
  },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        { weight: 3, arbitrary: fc.integer({ min: 1, max: 8 }) },
        { weight: 1, arbitrary: fc.integer({ min: 9, max: 40 }) },
      )
      .chain((n) => fc.boolean().map((whole) => ({ op: 'reserve' as const, n, whole }))),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'endReservation' as const }) },
  { weight: 8, arbitrary: fc.nat().map((pick) => ({ op: 'free' as const, pick })) },
  { weight: 2, arbitrary: fc.constant({ op: 'commit' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'rollback' as const }) },
  { weight: 2, arbitrary: fc.constant({ op: 'openReader' as const }) },
  { weight: 2, arbitrary: fc.nat().map((pick) => ({ op: 'closeReader' as const, pick })) },
);

const scenarioArb: fc.Arbitrary<Scenario> = fc.integer({ min: 2, max: 90 }).chain((highWater) =>
  fc.record({
    highWater: fc.constant(highWater),
    initiallyFree: fc
      .array(fc.boolean(), { minLength: highWater - 2, maxLength: highWater - 2 })
      .map((bits) => bits.flatMap((b, i) => (b ? [i + 2] : []))),
    steps: fc.array(stepArb, { minLength: 1, maxLength: 160, size: 'max' }),
  }),
);

function property(make: () => Freelist, runs: number): void {
  let totals = { allocated: 0, failed: 0, released: 0, reservedAllocs: 0, apartBesideReservation: 0 };
  fc.assert(
    fc.property(scenarioArb, (sc) => {
      const s = runScenario(make(), sc);
      totals = {
        allocated: totals.allocated + s.allocated,
        failed: totals.failed + s.failed,
        released: totals.released + s.released,
        reservedAllocs: totals.reservedAllocs + s.reservedAllocs,
        apartBesideReservation: totals.apartBesideReservation + s.apartBesideReservation,
      };
    }),
    { numRuns: runs },
  );
  // The generator must reach the interesting paths, or the property proves little.
  assert.ok(totals.allocated > runs, `allocations happened (${totals.allocated})`);
  assert.ok(totals.failed > 0, 'some allocations found no run');
  assert.ok(totals.released > runs, `pending pages were released (${totals.released})`);
  assert.ok(totals.reservedAllocs > runs / 4, `allocations came from reservations (${totals.reservedAllocs})`);
  assert.ok(
    totals.apartBesideReservation > runs / 16,
    `allocations placed apart while a reservation was held (${totals.apartBesideReservation})`,
  );
}

const runs = stress ? 5000 : 400;

test('hashmap freelist agrees with the model; spans stay maximal; readers protected', () => {
  property(() => new HashmapFreelist(), runs);
});

test('array freelist agrees with the model and is first fit; readers protected', () => {
  property(() => new ArrayFreelist(), runs);
});

test('a page freed while an older reader is open is not reused until that reader closes', () => {
  for (const fl of [new HashmapFreelist(), new ArrayFreelist()]) {
    const steps: Step[] = [
      { op: 'begin' }, // txid 2
      { op: 'alloc', n: 1 }, // page 2 (grown: the freelist is empty)
      { op: 'commit' },
      { op: 'openReader' }, // reader at 2 sees page 2
      { op: 'begin' }, // txid 3
      { op: 'free', pick: 0 }, // page 2 pending for 3
      { op: 'commit' },
      { op: 'begin' }, // txid 4: reader 2 still open, page 2 must stay pending
      { op: 'alloc', n: 1 },
      { op: 'commit' },
      { op: 'closeReader', pick: 0 },
      { op: 'begin' }, // txid 5: now released
      { op: 'alloc', n: 1 },
    ];
    const stats = runScenario(fl, { highWater: 2, initiallyFree: [], steps });
    assert.equal(stats.failed, 2, `${fl.kind}: the first two allocations had to grow the file`);
    assert.equal(stats.allocated, 1, `${fl.kind}: the third reused the released page`);
    assert.equal(fl.freed(2), false);
  }
});
