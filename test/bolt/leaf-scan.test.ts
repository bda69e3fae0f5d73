/**
 * The bulk leaf scan (src/bolt/leaf-scan.ts) against a cursor walk: same entries in the same
 * order over trees built by several commits of puts and deletes (so leaves are scattered over the
 * file and freed pages lie between them), with overflow values, a nested bucket, early stops, a
 * bucket modified in the scanning transaction and an inline bucket; and its typed errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { open, type Bucket, type Tx } from '../../src/bolt/index.ts';
import { scanLeaves } from '../../src/bolt/leaf-scan.ts';
import { withDb } from '../support/temp-db.ts';
import { inTempDir } from '../support/temp-dir.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** What the scan hands over, as [key hex, value hex] pairs; stops after `stopAfter` entries. */
function leafEntries(b: Bucket, stopAfter = Infinity): [string, string][] {
  const out: [string, string][] = [];
  scanLeaves(b, (kb, ko, kl, vb, vo, vl) => {
    out.push([hex(kb.subarray(ko, ko + kl)), hex(vb.subarray(vo, vo + vl))]);
    return out.length < stopAfter;
  });
  return out;
}

function cursorEntries(b: Bucket, stopAfter = Infinity): [string, string][] {
  const out: [string, string][] = [];
  const c = b.cursor();
  for (let e = c.first(); e !== undefined && out.length < stopAfter; e = c.next()) {
    if (e[1] !== null) out.push([hex(e[0]), hex(e[1])]);
  }
  return out;
}

const opArb = fc.oneof(
  fc.record({
    put: fc.integer({ min: 0, max: 3000 }),
    size: fc.oneof(fc.integer({ min: 0, max: 120 }), fc.constant(3000)),
  }),
  fc.record({ del: fc.integer({ min: 0, max: 3000 }), span: fc.integer({ min: 1, max: 200 }) }),
);
const keyOf = (i: number): Buffer => Buffer.from(`k${String(i).padStart(5, '0')}`);

test(
  'scanLeaves yields what a cursor walk yields, over trees built by many commits',
  withDb(
    (db) => {
      fc.assert(
        fc.property(
          fc.array(fc.array(opArb, { minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 6 }),
          fc.integer({ min: 1, max: 500 }),
          (commits, stop) => {
            db.update((tx) => {
              if (tx.bucket('b')) tx.deleteBucket('b');
              const b = tx.createBucket('b');
              b.createBucket('nested').put('x', 'y');
            });
            for (const ops of commits) {
              db.update((tx) => {
                const b = tx.bucket('b')!;
                for (const op of ops) {
                  if ('put' in op) b.put(keyOf(op.put), Buffer.alloc(op.size, op.put & 0xff));
                  else for (let i = op.del; i < op.del + op.span; i++) b.delete(keyOf(i));
                }
              });
            }
            db.view((tx) => {
              const b = tx.bucket('b')!;
              assert.deepEqual(leafEntries(b), cursorEntries(b));
              assert.deepEqual(leafEntries(b, stop), cursorEntries(b, stop));
            });
          },
        ),
        { numRuns: 40 },
      );
    },
    { pageSize: 1024 },
  ),
);

test(
  'scanLeaves in a writable transaction sees its own writes; an inline bucket is walked too',
  withDb((db) => {
    db.update((tx) => {
      const b = tx.createBucket('big');
      for (let i = 0; i < 2000; i++) b.put(keyOf(i), Buffer.alloc(30, i & 0xff));
      tx.createBucket('small').put('a', '1');
    });
    db.update((tx) => {
      const b = tx.bucket('big')!;
      const before = leafEntries(b);
      assert.equal(before.length, 2000);
      b.delete(keyOf(5));
      b.put(keyOf(99999), 'new');
      const after = leafEntries(b);
      assert.deepEqual(after, cursorEntries(b));
      assert.equal(after.length, 2000);
      assert.equal(after.at(-1)![0], hex(keyOf(99999)));
      assert.deepEqual(leafEntries(tx.bucket('small')!), [[hex(Buffer.from('a')), hex(Buffer.from('1'))]]);
    });
  }),
);

test(
  'scanLeaves on an ended transaction or a closed database is a typed error',
  withDb((db) => {
    db.update((tx) => tx.createBucket('b').put('a', '1'));
    const tx: Tx = db.begin(false);
    const b = tx.bucket('b')!;
    tx.rollback();
    assert.throws(() => scanLeaves(b, () => {}), { code: 'ERR_TX_CLOSED' });
    const tx2 = db.begin(false);
    const b2 = tx2.bucket('b')!;
    assert.throws(() => scanLeaves(b2, 42 as unknown as () => void), { code: 'ERR_INVALID_ARGUMENT' });
    tx2.rollback();
  }),
);

/** The ids of a bucket's leaves, from its branch pages. */
function firstLeafIds(tx: Tx, b: Bucket): number[] {
  const root = tx.treePage(b.rootPgid);
  assert.ok(root.isBranch, 'the test bucket must be taller than one leaf');
  const ids: number[] = [];
  const walk = (id: number): void => {
    const p = tx.treePage(id);
    if (p.isLeaf) ids.push(id);
    else for (let i = 0; i < p.count; i++) walk(p.child(i));
  };
  walk(b.rootPgid);
  return ids;
}

for (const [name, damage] of [
  ['a leaf whose header names another page', (buf: Buffer) => buf.writeUInt32LE(buf.readUInt32LE(0) + 1, 0)],
  ['a leaf turned into a freelist page', (buf: Buffer) => buf.writeUInt16LE(0x10, 8)],
  ['a leaf whose element count overruns the page', (buf: Buffer) => buf.writeUInt16LE(0xffff, 10)],
  ['a leaf element pointing past the page', (buf: Buffer) => buf.writeUInt32LE(0xfffff, 16 + 4)],
] as const) {
  test(`scanLeaves refuses ${name} with ERR_CORRUPT_PAGE`, () =>
    inTempDir((dir) => {
      const file = path.join(dir, 'db');
      const ps = 4096;
      let leaf = 0;
      {
        const db = open(file, { noSync: true, pageSize: ps });
        db.update((tx) => {
          const b = tx.createBucket('b');
          for (let i = 0; i < 3000; i++) b.put(keyOf(i), Buffer.alloc(40, 1));
        });
        db.view((tx) => {
          const ids = firstLeafIds(tx, tx.bucket('b')!);
          leaf = ids[ids.length >> 1]!;
        });
        db.close();
      }
      const fd = fs.openSync(file, 'r+');
      const buf = Buffer.alloc(ps);
      fs.readSync(fd, buf, 0, ps, leaf * ps);
      damage(buf);
      fs.writeSync(fd, buf, 0, ps, leaf * ps);
      fs.closeSync(fd);
      const db = open(file, { noSync: true });
      try {
        db.view((tx) => assert.throws(() => scanLeaves(tx.bucket('b')!, () => {}), { code: 'ERR_CORRUPT_PAGE' }));
      } finally {
        db.close();
      }
    }, 'boltkv-leafscan-'));
}

test(
  'scanLeaves over more leaves than one read window, scattered by rewrites, matches a cursor walk',
  withDb(
    (db) => {
      db.update((tx) => {
        const b = tx.createBucket('b');
        for (let i = 0; i < 20000; i++) b.put(keyOf(i), Buffer.alloc(40, i & 0xff));
      });
      // rewrite every third key in small commits: freed pages are reused out of key order
      for (let c = 0; c < 20; c++) {
        db.update((tx) => {
          const b = tx.bucket('b')!;
          for (let i = c; i < 20000; i += 60) b.put(keyOf(i), Buffer.alloc(i % 7 === 0 ? 1500 : 20, 0xee));
        });
      }
      db.view((tx) => {
        const b = tx.bucket('b')!;
        const root = tx.treePage(b.rootPgid);
        assert.ok(root.isBranch);
        const got = leafEntries(b);
        assert.equal(got.length, 20000);
        assert.deepEqual(got, cursorEntries(b));
      });
    },
    { pageSize: 1024 },
  ),
);
