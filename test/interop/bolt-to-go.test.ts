// Files boltkv writes must be bbolt files: Go's bbolt (Debian's source, built by us) opens them,
// its tx.Check finds nothing, and its dump is byte-identical to what the model predicts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { open } from '../../src/bolt/index.ts';
import { requireGoTools } from '../support/go-tools.ts';
import { mapPages } from '../support/page-map.ts';
import { applyTxs, dumpDb } from '../support/bolt-ops.ts';
import type { Op } from '../support/workload.ts';
import { bigSpecTxs, randomTxs, bigFreelistTxs, inTmp, modelOf } from './specs.ts';

type Options = { pageSize?: number; noFreelistSync?: boolean; freelist?: 'array' | 'hashmap' };

test('boltkv file with 100k keys, nested/inline buckets, overflow values, deletes and sequences passes bbolt Check and reads back identically in Go', (t) => {
  const go = requireGoTools(t);
  if (!go) return;
  inTmp((dir) => {
    const path = join(dir, 'big.db');
    const txs = bigSpecTxs();
    const db = open(path);
    try {
      assert.equal(applyTxs(db, txs), txs.length);
      assert.deepEqual(db.check(), []);
    } finally {
      db.close();
    }
    const d = go.dump(path);
    assert.deepEqual(d.problems, [], 'bbolt tx.Check');
    assert.equal(d.pageSize, 4096);
    assert.deepEqual(d.buckets, modelOf(txs).dump());
    // Small leaf-only buckets without sub-buckets ('empty', 'empty top') are stored inline, as bbolt does:
    // the same spec written by Go must have just as many inline buckets.
    const map = mapPages(readFileSync(path));
    const goPath = join(dir, 'big-go.db');
    go.write(goPath, { txs });
    assert.equal(map.inlineBuckets, mapPages(readFileSync(goPath)).inlineBuckets, 'inline buckets: boltkv vs bbolt');
    assert.ok(map.inlineBuckets >= 2, `expected inline buckets, found ${map.inlineBuckets}`);
    assert.ok(map.pages.overflow.length > 0 && map.pages.branch.length > 0, 'overflow and branch pages present');
  });
});

const VARIANTS: { name: string; seed: number; options: Options }[] = [
  { name: 'default', seed: 11, options: {} },
  { name: 'noFreelistSync', seed: 12, options: { noFreelistSync: true } },
  { name: 'hashmap freelist', seed: 13, options: { freelist: 'hashmap' } },
  { name: 'pageSize 8192', seed: 14, options: { pageSize: 8192 } },
  { name: 'pageSize 1024', seed: 15, options: { pageSize: 1024 } },
];

for (const v of VARIANTS) {
  test(`boltkv file from a random workload passes bbolt Check and matches in Go: ${v.name}`, (t) => {
    const go = requireGoTools(t);
    if (!go) return;
    inTmp((dir) => {
      const path = join(dir, 'rand.db');
      const txs = randomTxs(v.seed);
      // Reopen halfway so the file is also written by a second DB instance.
      const half = Math.floor(txs.length / 2);
      for (const part of [txs.slice(0, half), txs.slice(half)]) {
        const db = open(path, v.options);
        try {
          applyTxs(db, part);
        } finally {
          db.close();
        }
      }
      const d = go.dump(path);
      assert.deepEqual(d.problems, [], 'bbolt tx.Check');
      assert.equal(d.pageSize, v.options.pageSize ?? 4096);
      const want = modelOf(txs).dump();
      assert.deepEqual(d.buckets, want);
      // Inline or not is decided by content alone, so bbolt writing the same workload agrees.
      const goPath = join(dir, 'rand-go.db');
      go.write(goPath, { pageSize: v.options.pageSize, txs });
      const ps = v.options.pageSize ?? 4096;
      assert.equal(
        mapPages(readFileSync(path), ps).inlineBuckets,
        mapPages(readFileSync(goPath), ps).inlineBuckets,
        'inline buckets: boltkv vs bbolt',
      );
      // And boltkv agrees with itself after reopening.
      const db = open(path, { readOnly: true });
      try {
        assert.deepEqual(db.check(), []);
        assert.deepEqual(dumpDb(db), want);
      } finally {
        db.close();
      }
    });
  });
}

test('a new, empty boltkv file passes bbolt Check', (t) => {
  const go = requireGoTools(t);
  if (!go) return;
  inTmp((dir) => {
    const path = join(dir, 'empty.db');
    open(path).close();
    const d = go.dump(path);
    assert.deepEqual(d.problems, []);
    assert.deepEqual(d.buckets, []);
  });
});

test('u64 sequences written by boltkv read back exactly in Go', (t) => {
  const go = requireGoTools(t);
  if (!go) return;
  inTmp((dir) => {
    const path = join(dir, 'seq.db');
    const txs: Op[][] = [
      [
        { op: 'createBucket', path: [], name: '6d6178' },
        { op: 'setSequence', path: ['6d6178'], n: '18446744073709551615' },
        { op: 'createBucket', path: [], name: '6e657874' },
        { op: 'setSequence', path: ['6e657874'], n: '9007199254740993' },
      ],
    ];
    const db = open(path);
    try {
      applyTxs(db, txs);
    } finally {
      db.close();
    }
    const d = go.dump(path);
    assert.deepEqual(d.problems, []);
    assert.deepEqual(d.buckets, modelOf(txs).dump());
  });
});

test('a freelist of more than 0xFFFF ids (the extended count form) written by boltkv reads in Go', (t) => {
  const go = requireGoTools(t);
  if (!go) return;
  inTmp((dir) => {
    const path = join(dir, 'bigfree.db');
    // 1 KiB pages and a 70 MB value: deleting it frees ~70k pages in one go.
    const txs = bigFreelistTxs();
    const db = open(path, { pageSize: 1024 });
    try {
      applyTxs(db, txs);
      assert.ok(db.stats().freePageN + db.stats().pendingPageN > 0xffff, `free pages: ${db.stats().freePageN}`);
      assert.deepEqual(db.check(), []);
    } finally {
      db.close();
    }
    const d = go.dump(path);
    assert.deepEqual(d.problems, [], 'bbolt tx.Check');
    assert.deepEqual(d.buckets, modelOf(txs).dump());
  });
});
