/**
 * The bulk filtered delete (src/bolt/delete-where.ts) against a model: a sorted key list walked
 * from `from` below `to`, each entry examined in order, the chosen ones deleted, stopping at the
 * limits. Trees are built by several commits of puts and deletes (pages of 1 KiB, so many leaves
 * and branch levels), some with the bucket already modified in the deleting transaction, with a
 * nested bucket inside the range; after the delete the bucket must equal the model both in the
 * transaction and after commit, and the file must pass the checker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Bucket } from '../../src/bolt/index.ts';
import { deleteWhere } from '../../src/bolt/delete-where.ts';
import { withDb } from '../support/temp-db.ts';

const keyOf = (i: number): Buffer => Buffer.from(`k${String(i).padStart(5, '0')}`);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function keysOf(b: Bucket): string[] {
  const out: string[] = [];
  const c = b.cursor();
  for (let e = c.first(); e !== undefined; e = c.next()) out.push(hex(e[0]));
  return out;
}

const opArb = fc.oneof(
  fc.record({
    put: fc.integer({ min: 0, max: 3000 }),
    size: fc.oneof(fc.integer({ min: 0, max: 120 }), fc.constant(1500)),
  }),
  fc.record({ del: fc.integer({ min: 0, max: 3000 }), span: fc.integer({ min: 1, max: 200 }) }),
);

const caseArb = fc.record({
  commits: fc.array(fc.array(opArb, { minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 5 }),
  /** puts made in the deleting transaction before the delete (the bucket is then partly nodes) */
  before: fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 40 }),
  from: fc.integer({ min: 0, max: 3200 }),
  span: fc.option(fc.integer({ min: 0, max: 3200 }), { nil: undefined }),
  /** which keys the predicate picks: i % mod in [0, take) */
  mod: fc.integer({ min: 1, max: 9 }),
  take: fc.integer({ min: 0, max: 9 }),
  maxDeleted: fc.option(fc.integer({ min: 1, max: 2000 }), { nil: undefined }),
  maxExamined: fc.option(fc.integer({ min: 1, max: 4000 }), { nil: undefined }),
});

test(
  'deleteWhere deletes what a key-by-key walk with the same limits deletes, and resumes where it says',
  withDb(
    (db) => {
      fc.assert(
        fc.property(caseArb, (c) => {
          db.update((tx) => {
            if (tx.bucket('b')) tx.deleteBucket('b');
            const b = tx.createBucket('b');
            b.createBucket(keyOf(1500)).put('x', 'y'); // a nested bucket among the keys
          });
          for (const ops of c.commits) {
            db.update((tx) => {
              const b = tx.bucket('b')!;
              for (const op of ops) {
                if ('put' in op) {
                  if (op.put !== 1500) b.put(keyOf(op.put), Buffer.alloc(op.size, op.put & 0xff));
                } else for (let i = op.del; i < op.del + op.span; i++) if (i !== 1500) b.delete(keyOf(i));
              }
            });
          }
          const from = keyOf(c.from);
          const to = c.span === undefined ? undefined : keyOf(c.from + c.span);
          const picks = (k: Uint8Array): boolean => Number(Buffer.from(k).toString().slice(1)) % c.mod < c.take;
          let expected: string[] = [];
          db.update((tx) => {
            const b = tx.bucket('b')!;
            for (const i of c.before) if (i !== 1500) b.put(keyOf(i), 'new');
            // the model: walk the sorted keys
            const all = keysOf(b);
            const nested = hex(keyOf(1500));
            let deleted = 0;
            let examined = 0;
            let next: string | undefined;
            const gone = new Set<string>();
            for (const k of all) {
              if (k < hex(from)) continue;
              if (to !== undefined && k >= hex(to)) break;
              if (deleted >= (c.maxDeleted ?? Infinity) || examined >= (c.maxExamined ?? Infinity)) {
                next = k;
                break;
              }
              if (k === nested) continue;
              examined++;
              if (picks(Buffer.from(k, 'hex'))) {
                gone.add(k);
                deleted++;
              }
            }
            expected = all.filter((k) => !gone.has(k));
            const seen: string[] = [];
            const r = deleteWhere(
              b,
              from,
              to,
              (k) => {
                seen.push(hex(k));
                return picks(k);
              },
              c.maxDeleted,
              c.maxExamined,
            );
            assert.equal(r.deleted, deleted);
            assert.equal(r.examined, examined);
            assert.equal(seen.length, examined);
            assert.deepEqual(seen, [...seen].sort(), 'examined in key order');
            if (next === undefined) {
              // the walk may end at the range's end or stop exactly at a limit after the last key
              if (r.next !== undefined)
                assert.ok(
                  !all.some((k) => k >= hex(r.next!) && k >= hex(from) && (to === undefined || k < hex(to))),
                  'nothing left past next',
                );
            } else {
              assert.ok(r.next !== undefined, `expected to stop before ${next}`);
              assert.equal(hex(r.next), next);
            }
            assert.deepEqual(keysOf(b), expected, 'in the transaction');
            assert.deepEqual(b.bucket(keyOf(1500))?.get('x')?.toString(), 'y');
          });
          db.view((tx) => assert.deepEqual(keysOf(tx.bucket('b')!), expected, 'after commit'));
          assert.deepEqual(db.check(), []);
        }),
        { numRuns: 60 },
      );
    },
    { pageSize: 1024 },
  ),
);

test(
  'deleteWhere leaves untouched leaves on their pages: deleting nothing writes only the meta',
  withDb((db) => {
    db.update((tx) => {
      const b = tx.createBucket('b');
      for (let i = 0; i < 3000; i++) b.put(keyOf(i), Buffer.alloc(40, 1));
    });
    const before = db.stats().pgid;
    const pagesOf = (): string[] =>
      db.view((tx) => {
        const ids: string[] = [];
        const walk = (id: number): void => {
          const p = tx.treePage(id);
          ids.push(String(id));
          if (!p.isLeaf) for (let i = 0; i < p.count; i++) walk(p.child(i));
        };
        walk(tx.bucket('b')!.rootPgid);
        return ids;
      });
    const ids = pagesOf();
    db.update((tx) => {
      const r = deleteWhere(tx.bucket('b')!, keyOf(0), undefined, () => false);
      assert.deepEqual(
        { deleted: r.deleted, examined: r.examined, next: r.next },
        { deleted: 0, examined: 3000, next: undefined },
      );
    });
    assert.deepEqual(pagesOf(), ids, 'no page of the bucket was rewritten');
    assert.equal(db.stats().pgid, before);
    // one doomed key rewrites its leaf and the path above it, nothing else
    db.update((tx) =>
      assert.equal(deleteWhere(tx.bucket('b')!, keyOf(0), undefined, (k) => hex(k) === hex(keyOf(1234))).deleted, 1),
    );
    const after = pagesOf();
    assert.ok(ids.length - after.filter((id) => ids.includes(id)).length <= 4, 'only one root-to-leaf path changed');
    assert.deepEqual(db.check(), []);
  }),
);

test(
  'deleteWhere: read-only transaction, bad predicate and bad limits are typed errors',
  withDb((db) => {
    db.update((tx) => tx.createBucket('b').put('a', '1'));
    db.view((tx) =>
      assert.throws(() => deleteWhere(tx.bucket('b')!, Buffer.from('a'), undefined, () => true), {
        code: 'ERR_TX_NOT_WRITABLE',
      }),
    );
    db.update((tx) => {
      const b = tx.bucket('b')!;
      assert.throws(() => deleteWhere(b, Buffer.from('a'), undefined, 42 as unknown as () => boolean), {
        code: 'ERR_INVALID_ARGUMENT',
      });
      assert.throws(() => deleteWhere(b, Buffer.from('a'), undefined, () => true, 0), { code: 'ERR_INVALID_ARGUMENT' });
      assert.throws(() => deleteWhere(b, Buffer.from('a'), undefined, () => true, 1, Number.NaN), {
        code: 'ERR_INVALID_ARGUMENT',
      });
    });
  }),
);
