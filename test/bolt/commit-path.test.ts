/**
 * The small-commit path: a branch a commit only walks through is written as a copy of its old
 * page with the changed child ids patched in, and a leaf that took one put as a copy of its old
 * elements with the put merged in; both must come out exactly as the element-by-element writer
 * would have written them, and every other change (new first key, split, merge, a second put
 * into the same leaf, a read of the elements) falls back to it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { DB, Tx } from '../../src/bolt/index.ts';
import type { Page } from '../../src/bolt/page.ts';
import { requireGoTools } from '../support/go-tools.ts';
import { withDb } from '../support/temp-db.ts';

const N = 3000;
const key = (i: number): Buffer => Buffer.from(`k${String(i).padStart(6, '0')}`);
const value = (i: number, n = 20): Buffer => Buffer.alloc(n, i & 0xff);

function fill(db: DB): void {
  db.update((tx) => {
    const b = tx.createBucket('t');
    for (let i = 0; i < N; i++) b.put(key(i * 2), value(i));
  });
}

/** The pages from the bucket's root to the leaf holding k, each with the index taken. */
function path(tx: Tx, k: Uint8Array): Array<{ id: number; page: Page; bytes: Buffer; index: number }> {
  const out: Array<{ id: number; page: Page; bytes: Buffer; index: number }> = [];
  let id = tx.bucket('t')!.rootPgid;
  for (;;) {
    const page = tx.treePage(id);
    const bytes = Buffer.from(page.buf);
    if (page.isLeaf) {
      out.push({ id, page, bytes, index: -1 });
      return out;
    }
    const exact = { hit: false };
    let i = page.lowerBound(k, exact);
    if (!exact.hit) i = i > 0 ? i - 1 : 0;
    out.push({ id, page, bytes, index: i });
    id = page.child(i);
  }
}

test(
  'a one-put commit rewrites each branch on its path as the old page with one child id changed',
  withDb(
    (db) => {
      fill(db);
      const k = key(2 * 1234);
      const before = db.view((tx) => path(tx, k));
      assert.ok(before.length >= 3, `expected a tree of three levels or more, got ${before.length}`);
      db.update((tx) => tx.bucket('t')!.put(k, value(7, 21)));
      const after = db.view((tx) => path(tx, k));
      assert.equal(after.length, before.length);
      for (let d = 0; d < before.length - 1; d++) {
        const o = before[d]!;
        const n = after[d]!;
        assert.notEqual(n.id, o.id, `level ${d} was not rewritten to a new page`);
        assert.equal(n.index, o.index);
        assert.equal(n.page.child(n.index), after[d + 1]!.id, `level ${d} does not point at the new child`);
        // Same bytes except the page id (bytes 0..8) and the changed element's child id.
        const at = 16 + o.index * 16 + 8;
        const expect = Buffer.from(o.bytes);
        expect.set(n.bytes.subarray(0, 8), 0);
        expect.set(n.bytes.subarray(at, at + 8), at);
        assert.ok(expect.equals(n.bytes), `level ${d}: the rewritten branch differs beyond its id and one child id`);
      }
      assert.deepEqual(db.check(), []);
      db.view((tx) => {
        const b = tx.bucket('t')!;
        assert.deepEqual(b.get(k), value(7, 21));
        assert.deepEqual(b.get(key(0)), value(0));
        assert.deepEqual(b.get(key(2 * (N - 1))), value(N - 1));
      });
    },
    { pageSize: 1024 },
  ),
);

test('a put below the first key changes the separators on the leftmost path, and Go reads the result', async (t) => {
  const go = requireGoTools(t);
  await withDb(
    (db, file) => {
      fill(db);
      db.update((tx) => tx.bucket('t')!.put(Buffer.from('a'), value(1)));
      db.view((tx) => {
        const levels = path(tx, Buffer.from('a'));
        assert.ok(levels.length >= 3);
        // Every branch on the leftmost path now starts with the new key.
        for (const level of levels) assert.deepEqual(level.page.key(0), Buffer.from('a'));
      });
      assert.deepEqual(db.check(), []);
      db.close();
      if (go) {
        const dump = go.dump(file);
        assert.deepEqual(dump.problems, []);
        const entries = dump.buckets.find((e) => Buffer.from(e.k, 'hex').toString() === 't')?.bucket?.entries ?? [];
        assert.equal(entries.length, N + 1);
        assert.equal(Buffer.from(entries[0]!.k, 'hex').toString(), 'a');
      }
    },
    { pageSize: 1024 },
  )();
});

type Step = { t: 'put'; i: number; n: number } | { t: 'del'; i: number } | { t: 'low'; n: number };

test('one-change commits on a deep tree agree with a model, pass check() and are read by Go', async (t) => {
  const go = requireGoTools(t);
  const stepArb: fc.Arbitrary<Step> = fc.oneof(
    {
      weight: 8,
      arbitrary: fc.record({
        t: fc.constant('put' as const),
        i: fc.nat(2 * N + 10),
        n: fc.oneof(
          { weight: 6, arbitrary: fc.nat(60) },
          { weight: 1, arbitrary: fc.integer({ min: 300, max: 3000 }) },
        ),
      }),
    },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('del' as const), i: fc.nat(2 * N + 10) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('low' as const), n: fc.nat(30) }) },
  );
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 40 }), async (steps) => {
      run++;
      await withDb(
        (db, file) => {
          fill(db);
          const model = new Map<string, Buffer>();
          for (let i = 0; i < N; i++) model.set(key(i * 2).toString('latin1'), value(i));
          let low = 0;
          for (const s of steps) {
            let k: Buffer;
            let v: Buffer | null;
            if (s.t === 'del') {
              k = key(s.i);
              v = null;
            } else if (s.t === 'low') {
              // Keys below every key so far: the leftmost separators change.
              k = Buffer.from(`a${String(1000 - ++low).padStart(4, '0')}`);
              v = value(low, s.n);
            } else {
              k = key(s.i);
              v = value(s.i, s.n);
            }
            const near = key(s.t === 'low' ? 0 : s.i + 1);
            db.update((tx) => {
              const b = tx.bucket('t')!;
              if (v === null) b.delete(k);
              else b.put(k, v);
              // Reads in the same transaction see the pending change, and so does a cursor.
              assert.deepEqual(b.get(k), v ?? undefined);
              const c = b.cursor();
              const at = c.seek(k);
              if (v !== null) assert.deepEqual(at, [k, v]);
              else assert.ok(at === undefined || Buffer.compare(at[0], k) > 0);
              // Every other step also changes a neighbour, so some leaves take a second put.
              if (s.t === 'put' && s.i % 2 === 0) b.put(near, value(s.i + 1, s.n % 7));
            });
            if (v === null) model.delete(k.toString('latin1'));
            else model.set(k.toString('latin1'), v);
            if (s.t === 'put' && s.i % 2 === 0) model.set(near.toString('latin1'), value(s.i + 1, s.n % 7));
          }
          assert.deepEqual(db.check(), []);
          const got: Array<[string, string]> = [];
          db.view((tx) => tx.bucket('t')!.forEach((k, v) => void got.push([k.toString('latin1'), v!.toString('hex')])));
          const want = [...model]
            .sort((a, b) => Buffer.compare(Buffer.from(a[0], 'latin1'), Buffer.from(b[0], 'latin1')))
            .map(([k, v]) => [k, v.toString('hex')]);
          assert.deepEqual(got, want);
          if (go && run % 8 === 1) {
            db.close();
            const dump = go.dump(file);
            assert.deepEqual(dump.problems, []);
            const entries = dump.buckets.find((e) => Buffer.from(e.k, 'hex').toString() === 't')?.bucket?.entries ?? [];
            assert.equal(entries.length, model.size);
          }
        },
        { pageSize: 1024 },
      )();
    }),
    { numRuns: 40 },
  );
});

test('several puts into one leaf in one transaction agree with a model, inside and after it', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ i: fc.integer({ min: 1990, max: 2030 }), n: fc.nat(40) }), { minLength: 1, maxLength: 14 }),
      fc.nat(60),
      fc.boolean(),
      async (puts, seekAt, readInside) => {
        await withDb(
          (db) => {
            fill(db);
            const model = new Map<string, Buffer>();
            for (let i = 0; i < N; i++) model.set(key(i * 2).toString('latin1'), value(i));
            db.update((tx) => {
              const b = tx.bucket('t')!;
              for (const p of puts) {
                b.put(key(p.i), value(p.i, p.n));
                model.set(key(p.i).toString('latin1'), value(p.i, p.n));
              }
              // Without reads the puts stay pending until spill merges them into the page.
              if (!readInside) return;
              // Inside the transaction: every put reads back, and a cursor walks the changed range in order.
              for (const p of puts) assert.deepEqual(b.get(key(p.i)), model.get(key(p.i).toString('latin1')));
              const c = b.cursor();
              const want = [...model.keys()]
                .filter((k) => k >= key(1980 + seekAt).toString('latin1'))
                .sort()
                .slice(0, 30);
              const got: string[] = [];
              for (let e = c.seek(key(1980 + seekAt)); e && got.length < 30; e = c.next())
                got.push(e[0].toString('latin1'));
              assert.deepEqual(got, want);
            });
            assert.deepEqual(db.check(), []);
            db.view((tx) => {
              const b = tx.bucket('t')!;
              for (const [k, v] of model) assert.deepEqual(b.get(Buffer.from(k, 'latin1')), v);
            });
          },
          { pageSize: 1024 },
        )();
      },
    ),
    { numRuns: 60 },
  );
});
