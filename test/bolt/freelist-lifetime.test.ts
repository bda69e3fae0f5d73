// Placement by lifetime (tx.ts prepareCommit, the default): a small commit's leaf goes into a free
// hole of its own and its branch pages and the root bucket's leaf into one reserved run, so on a
// file with little free space a one-put commit writes two extents instead of one per page, the
// file does not grow, and bbolt's checker (ours and Go's) accepts the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'boltkv';
import { requireGoTools } from '../support/go-tools.ts';
import { countDataWrites, spreadKey as key, value100 as value } from '../support/small-commits.ts';

test('one-put commits on a nearly full file write two extents and keep the file size; Go checks it', (t) => {
  const go = requireGoTools(t);
  const dir = mkdtempSync(join(tmpdir(), 'boltkv-lifetime-'));
  try {
    const path = join(dir, 'life.db');
    const keys = 20_000;
    // 1 KiB pages: leaves, two branch levels, the bucket's root branch, the root bucket's leaf.
    const load = open(path, { noSync: true, pageSize: 1024 });
    load.update((tx) => tx.createBucket('b'));
    for (let lo = 0; lo < keys; lo += 2000) {
      load.update((tx) => {
        const b = tx.bucket('b')!;
        for (let i = lo; i < lo + 2000; i++) b.put(key(i), value(i));
      });
    }
    load.close();
    const db = open(path, { noSync: true });
    const before = db.stats();
    assert.ok(before.freePageN < 0.4 * before.pgid, `the load left ${before.freePageN} of ${before.pgid} pages free`);
    let seed = 11;
    const next = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % keys;
    };
    const put = (c: number): void => {
      const k = next();
      db.update((tx) => tx.bucket('b')!.put(key(k), value(k + c)));
    };
    // Settle: the free runs the load left are used up and the short-lived runs start to recycle.
    for (let c = 0; c < 4000; c++) put(c);
    const counter = countDataWrites(db);
    const tail = 1000;
    for (let c = 0; c < tail; c++) put(c);
    const after = db.stats();
    const pagesPerCommit = counter.pages / tail;
    const writesPerCommit = counter.writes / tail;
    assert.ok(pagesPerCommit >= 4, `${pagesPerCommit} pages per commit: the tree is as deep as meant`);
    assert.ok(writesPerCommit <= 2.1, `${writesPerCommit} data writes per commit of ${pagesPerCommit} pages`);
    assert.ok(after.pgid <= before.pgid + 8, `file ${before.pgid} -> ${after.pgid} pages`);
    assert.deepEqual(db.check(), []);
    db.close();
    const again = open(path, { readOnly: true });
    assert.deepEqual(again.check(), []);
    again.view((tx) => {
      const b = tx.bucket('b')!;
      for (let i = 0; i < keys; i += 97) assert.equal(b.get(key(i))?.length, 100);
    });
    again.close();
    if (go) {
      const dump = go.dump(path);
      assert.deepEqual(dump.problems, [], 'bbolt (Go) checks the file');
      const b = dump.buckets.find((e) => Buffer.from(e.k, 'hex').toString() === 'b')?.bucket?.entries ?? [];
      assert.equal(b.length, keys);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
