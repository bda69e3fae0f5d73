// Contract details of both freelists that the random scenarios reach only by luck: misuse is a
// Panic, the hashmap's fit policy, releaseRange between readers, rollback, and a larger list.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArrayFreelist, HashmapFreelist, createFreelist } from 'boltkv/freelist';
import type { Freelist } from 'boltkv/freelist';

const kinds = ['hashmap', 'array'] as const;
const panic = { code: 'ERR_PANIC' };

function range(start: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => start + i);
}

test('createFreelist builds each kind, hashmap by default, and rejects others', () => {
  assert.ok(createFreelist('hashmap') instanceof HashmapFreelist);
  assert.ok(createFreelist('array') instanceof ArrayFreelist);
  assert.equal(createFreelist().kind, 'hashmap');
  assert.throws(() => createFreelist('btree' as unknown as 'array'), { code: 'ERR_INVALID_OPTION' });
});

for (const kind of kinds) {
  test(`${kind}: misuse is a Panic and leaves the state intact`, () => {
    const fl = createFreelist(kind);
    assert.throws(() => fl.init([2, 3, 3]), panic);
    assert.throws(() => fl.init([1]), panic);
    assert.throws(() => fl.init([2.5]), panic);
    fl.init([5, 6, 7, 20]);
    assert.throws(() => fl.free(2, 6, 0), panic, 'free of a free page');
    assert.throws(() => fl.free(2, 4, 2), panic, 'run overlapping free pages');
    assert.throws(() => fl.free(2, 1, 0), panic, 'meta page');
    assert.throws(() => fl.free(2, 0, 0), panic, 'meta page');
    assert.throws(() => fl.free(2, 10, -1), panic, 'negative overflow');
    assert.throws(() => fl.allocate(2, 0), panic);
    assert.throws(() => fl.allocate(2, 1.5), panic);
    assert.throws(() => fl.allocate(-1, 1), panic);
    fl.free(2, 10, 1);
    assert.throws(() => fl.free(3, 11, 0), panic, 'free of a pending page');
    assert.deepEqual(fl.ids(), [5, 6, 7, 20]);
    assert.deepEqual(fl.pendingIds(), [10, 11]);
    assert.equal(fl.count(), 6);
  });

  test(`${kind}: init accepts ids in any order; copyAll merges free and pending`, () => {
    const fl = createFreelist(kind);
    fl.init(new Set([9, 3, 4, 12, 2]));
    assert.deepEqual(fl.ids(), [2, 3, 4, 9, 12]);
    fl.free(5, 7, 1);
    assert.deepEqual(fl.copyAll(), [2, 3, 4, 7, 8, 9, 12]);
    assert.equal(fl.freed(8), true);
    assert.equal(fl.freed(10), false);
    fl.init([]);
    assert.equal(fl.count(), 0);
    assert.equal(fl.allocate(6, 1), 0);
  });

  test(`${kind}: releaseRange frees only what lived entirely between two readers`, () => {
    const fl = createFreelist(kind);
    fl.init([60]);
    assert.equal(fl.allocate(4, 1), 60);
    fl.free(6, 60, 0); // born at 4, freed at 6
    fl.free(6, 50, 0); // in use since before the list was loaded: allocating txid unknown
    // Readers at txids 3 and 8, so the engine releases up to 2 and then the window [4, 7].
    // Page 60 is invisible to both readers; page 50 is still seen by reader 3.
    fl.release(2);
    fl.releaseRange(4, 7);
    assert.deepEqual(fl.ids(), [60]);
    assert.deepEqual(fl.pendingIds(), [50]);
    // A window that starts after the page was born must not free it.
    const fl2 = createFreelist(kind);
    fl2.init([80]);
    assert.equal(fl2.allocate(4, 1), 80);
    fl2.free(6, 80, 0);
    fl2.releaseRange(5, 7);
    assert.deepEqual(fl2.pendingIds(), [80]);
    fl2.release(6);
    assert.deepEqual(fl2.ids(), [80]);
  });

  test(`${kind}: rollback drops pending frees and returns the txid's allocations`, () => {
    const fl = createFreelist(kind);
    fl.init(range(10, 8));
    const a = fl.allocate(3, 2);
    fl.free(3, 40, 2); // a page in use before txid 3
    assert.equal(fl.freeCount(), 6);
    assert.equal(fl.pendingCount(), 3);
    fl.rollback(3);
    assert.deepEqual(fl.ids(), range(10, 8));
    assert.equal(fl.pendingCount(), 0);
    assert.equal(fl.freed(40), false);
    assert.ok(a >= 10 && a <= 16);
    // An undone free remembers who allocated the run: freed again later, releaseRange can use it.
    const b = fl.allocate(4, 1);
    fl.free(5, b, 0);
    fl.rollback(5);
    fl.free(6, b, 0);
    fl.releaseRange(4, 6);
    assert.equal(fl.ids().includes(b), true, 'allocated at 4, freed at 6: released by [4, 6]');
  });

  test(`${kind}: rolling back a txid whose allocations were already released is a Panic`, () => {
    const fl = createFreelist(kind);
    fl.init([10, 11]);
    const a = fl.allocate(2, 1);
    fl.free(2, a, 0);
    fl.release(2);
    assert.throws(() => fl.rollback(2), panic);
  });
}

test('hashmap policy: exact fit first, else the smallest sufficient span, remainder kept', () => {
  const fl = new HashmapFreelist();
  // Spans: 2+3 (2,3,4), 10+1, 20+6 (20..25), 40+2 (40,41).
  fl.init([2, 3, 4, 10, 20, 21, 22, 23, 24, 25, 40, 41]);
  assert.equal(fl.allocate(1, 2), 40, 'exact class 2');
  assert.equal(fl.allocate(1, 1), 10, 'exact class 1');
  assert.equal(fl.allocate(1, 2), 2, 'smallest sufficient is 3, not 6');
  assert.deepEqual(fl.debugSpans(), [
    [4, 1],
    [20, 6],
  ]);
  assert.equal(fl.allocate(1, 7), 0);
  assert.equal(fl.allocate(1, 5), 20);
  assert.deepEqual(fl.debugSpans(), [
    [4, 1],
    [25, 1],
  ]);
  // Releasing the middle of 4 .. 25 in pieces merges everything back into one span.
  fl.free(2, 5, 14);
  fl.free(2, 20, 4);
  fl.release(2);
  assert.deepEqual(fl.debugSpans(), [[4, 22]]);
  fl.debugCheck();
});

test('both kinds agree on a fragmented list of 200k pages with a contiguous tail', () => {
  const ids: number[] = [];
  for (let p = 2; p < 400_000; p += 2) ids.push(p);
  for (let p = 400_000; p < 400_100; p++) ids.push(p);
  const lists: Freelist[] = [new HashmapFreelist(), new ArrayFreelist()];
  for (const fl of lists) {
    fl.init(ids);
    assert.equal(fl.freeCount(), ids.length);
    assert.equal(fl.allocate(7, 64), 400_000, `${fl.kind}: only the tail holds 64 pages`);
    assert.equal(fl.allocate(7, 36), 400_064, `${fl.kind}: the rest of the tail`);
    assert.equal(fl.allocate(7, 2), 0, `${fl.kind}: no two free pages touch any more`);
    fl.free(7, 400_000, 63);
    fl.release(7);
    assert.deepEqual(fl.ids(), ids.slice(0, -100).concat(range(400_000, 64)));
  }
  (lists[0] as HashmapFreelist).debugCheck();
});

test('both kinds handle page ids near 2^53', () => {
  const top = Number.MAX_SAFE_INTEGER;
  for (const kind of kinds) {
    const fl = createFreelist(kind);
    fl.init([top - 5, top - 4, top - 3, top - 1, top]);
    assert.equal(fl.allocate(3, 2), kind === 'array' ? top - 5 : top - 1, 'first fit vs exact fit');
    const a = range(top - 5, 6).filter((p) => p !== top - 2 && !fl.freed(p));
    assert.equal(a.length, 2);
    fl.free(4, a[0]!, 1);
    assert.throws(() => fl.free(4, top, 1), panic, 'run past 2^53');
    fl.release(4);
    assert.deepEqual(fl.ids(), [top - 5, top - 4, top - 3, top - 1, top]);
    if (fl instanceof HashmapFreelist) {
      assert.deepEqual(fl.debugSpans(), [
        [top - 5, 3],
        [top - 1, 2],
      ]);
      fl.debugCheck();
    }
  }
});

test('a reservation hands out its run front to back, moves on to shorter runs, and gives back what is left', () => {
  const range = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, i) => a + i);
  const fl = new HashmapFreelist();
  fl.init([...range(10, 20), ...range(30, 38), 50, 51]);
  // No run of 20: the reservation settles for a run of 10.
  assert.equal(fl.reserve(5, 20), 10);
  assert.throws(() => fl.reserve(5, 4), /holds a reservation/);
  assert.equal(fl.allocate(5, 4), 10);
  assert.equal(fl.allocate(5, 4), 14);
  assert.deepEqual(fl.ids(), [...range(30, 38), 50, 51], 'reserved pages are not free');
  // Two pages left in the run, the estimate says 12 more: the rest goes back; no run of 10 (the
  // last run's length) is free, so it halves to 5, taken from the front of the 8-page run.
  assert.equal(fl.allocate(5, 4), 30);
  assert.deepEqual(fl.ids(), [18, 19, 35, 36, 37, 50, 51]);
  assert.equal(fl.allocate(5, 1), 34);
  fl.endReservation();
  assert.deepEqual(fl.ids(), [18, 19, 35, 36, 37, 50, 51]);
  // Without a reservation allocation is the usual policy again.
  assert.equal(fl.allocate(5, 2), 18, 'exact fit, the most recently freed span');
  fl.rollback(5);
  assert.deepEqual(fl.ids(), [...range(10, 20), ...range(30, 38), 50, 51], 'rollback returns every page');
  // A reservation nobody used is all given back by a rollback too.
  assert.equal(fl.reserve(6, 8), 30);
  fl.rollback(6);
  assert.equal(fl.freeCount(), 20);
  fl.init([5, 7, 9]);
  assert.equal(fl.reserve(7, 4), 0, 'no run of even two pages');
  assert.equal(fl.allocate(7, 1), 9, 'a failed reservation changes nothing');
});
